package api

import (
	"net/http"

	"github.com/tollgate/tollgate/attest"
)

// verifyScan answers GET /v1/scans/{id}/verify: the evidence check `tollgate
// verify` does (attest.CheckScan) of a scan the principal may read. Evidence
// that does not verify is a 200 with ok false and the problems; a scan of
// another tenant is 404, as everywhere.
func (s *Server) verifyScan(w http.ResponseWriter, r *http.Request) {
	sc, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if s.deps.Verifier == nil {
		writeProblem(w, r, http.StatusNotImplemented, "not-implemented", "this server has no key to verify attestations with")
		return
	}
	res, err := attest.CheckScan(r.Context(), s.deps.Evidence, s.deps.Verifier, sc.ID)
	if err != nil {
		s.internal(w, r, "verify scan "+sc.ID, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/tollgate/tollgate/vex"
)

// VEXDocuments keeps the tenants' VEX documents; *vex.Store is one.
type VEXDocuments interface {
	Add(ctx context.Context, tenant, scan, by string, data []byte) (vex.Record, error)
	List(ctx context.Context, tenant, scan string) ([]vex.Record, error)
}

// maxVEXBody bounds an uploaded VEX document: vendors' documents run to a
// few hundred kilobytes.
const maxVEXBody = 4 << 20

// maxScanVEX bounds the vex parts of one scan submission.
const maxScanVEX = 8

// checkScanVEX checks the vex parts of a scan submission: sending any
// needs the right to add the tenant's VEX documents (vex.create), since a
// statement silences findings in the verdict, and each must parse. It
// returns the documents' sha256s, which are part of what the scan is. A
// principal that may add VEX for the whole tenant gains nothing by naming
// someone else's scan id: its documents only ever reach its own tenant.
func (s *Server) checkScanVEX(w http.ResponseWriter, r *http.Request, p Principal, docs [][]byte) ([]string, bool) {
	if len(docs) == 0 {
		return nil, true
	}
	if s.deps.VEX == nil {
		writeProblem(w, r, http.StatusNotImplemented, "not-implemented", "this server keeps no VEX documents: submit without vex parts")
		return nil, false
	}
	if ok, reason := s.authorize(r.Context(), p, "vex.create", p.Tenant); !ok {
		writeProblem(w, r, http.StatusForbidden, "forbidden", "a vex part silences findings and needs the right to add VEX documents: "+reason)
		return nil, false
	}
	digests := make([]string, len(docs))
	for i, doc := range docs {
		if _, err := vex.Parse(doc); err != nil {
			writeProblem(w, r, http.StatusBadRequest, "bad-vex", fmt.Sprintf("vex part %d: %v", i+1, err))
			return nil, false
		}
		sum := sha256.Sum256(doc)
		digests[i] = hex.EncodeToString(sum[:])
	}
	return digests, true
}

// VEXList is the body of GET /v1/vex.
type VEXList struct {
	Documents []vex.Record `json:"documents"`
}

// addVEX answers POST /v1/vex: the body is an OpenVEX (JSON) or CycloneDX
// VEX (JSON or XML) document, kept as evidence for the caller's tenant with
// who added it. Its statements then apply to the tenant's scans' policy.
func (s *Server) addVEX(w http.ResponseWriter, r *http.Request) {
	p, ok := s.tenantAction(w, r, "vex.create", s.deps.VEX != nil, "this server keeps no VEX documents")
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxVEXBody))
	if err != nil {
		s.bodyError(w, r, err)
		return
	}
	rec, err := s.deps.VEX.Add(r.Context(), p.Tenant, "", p.Name, body)
	switch {
	case errors.Is(err, vex.ErrInvalid):
		writeProblem(w, r, http.StatusBadRequest, "bad-vex", err.Error())
		return
	case err != nil:
		s.internal(w, r, "add VEX document", err)
		return
	}
	s.deps.Logger.InfoContext(r.Context(), "VEX document added", "tenant", p.Tenant, "id", rec.ID, "format", rec.Format,
		"statements", len(rec.Statements), "by", p.Name)
	writeJSON(w, http.StatusCreated, rec)
}

// listVEX answers GET /v1/vex: the tenant's documents, oldest first.
func (s *Server) listVEX(w http.ResponseWriter, r *http.Request) {
	p, ok := s.tenantAction(w, r, "vex.read", s.deps.VEX != nil, "this server keeps no VEX documents")
	if !ok {
		return
	}
	list, err := s.deps.VEX.List(r.Context(), p.Tenant, "")
	if err != nil {
		s.internal(w, r, "list VEX documents", err)
		return
	}
	if list == nil {
		list = []vex.Record{}
	}
	writeJSON(w, http.StatusOK, VEXList{Documents: list})
}

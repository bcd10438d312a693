package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/report"
)

// baseline finds the scan a submission's findings are compared with: the
// one its metadata names, which must be a finished scan of the same tenant
// and app (else problem says why, for a 400), or else the scan of the app's
// newest known-good release. It returns nil when there is none.
func (s *Server) baseline(ctx context.Context, tenant string, m Metadata) (*report.Baseline, string, error) {
	if m.Baseline != "" {
		sc, err := s.scans.Describe(ctx, m.Baseline)
		if errors.Is(err, control.ErrNoScan) || (err == nil && sc.Tenant != tenant) {
			// Another tenant's scan is as unknown here as a missing one.
			return nil, fmt.Sprintf("baseline %s: no scan of this tenant has that id", m.Baseline), nil
		} else if err != nil {
			return nil, "", fmt.Errorf("describe baseline scan %s: %w", m.Baseline, err)
		}
		if sc.App != m.App {
			return nil, fmt.Sprintf("baseline %s is a scan of app %q, not %q", m.Baseline, sc.App, m.App), nil
		}
		if sc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			return nil, fmt.Sprintf("baseline %s has not finished (or failed): a baseline needs its report", m.Baseline), nil
		}
		return &report.Baseline{ScanID: sc.ID}, "", nil
	}
	if s.deps.Releases == nil {
		return nil, "", nil
	}
	list, err := s.deps.Releases.List(ctx, tenant, m.App)
	if err != nil {
		return nil, "", fmt.Errorf("list releases of %s: %w", m.App, err)
	}
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].KnownGood != nil {
			return &report.Baseline{ScanID: list[i].ScanID, ReleaseID: list[i].ID}, "", nil
		}
	}
	return nil, "", nil
}

// diffScans answers GET /v1/scans/{id}/diff/{other}: what changed from the
// first scan to the second (report.Diff). With ?app=, either id may name a
// release of that app instead, which stands for the scan it released. Both
// scans must be the caller's tenant's (else 404, as for any scan), finished
// and of one app.
func (s *Server) diffScans(w http.ResponseWriter, r *http.Request) {
	app := r.URL.Query().Get("app")
	if app != "" && !appRe.MatchString(app) {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", fmt.Sprintf("app %q: use 1-63 of a-z, 0-9, '.', '_', '-'", app))
		return
	}
	from, ok := s.diffSide(w, r, r.PathValue("id"), app)
	if !ok {
		return
	}
	to, ok := s.diffSide(w, r, r.PathValue("other"), app)
	if !ok {
		return
	}
	if from.rep.App != to.rep.App {
		writeProblem(w, r, http.StatusBadRequest, "different-apps", fmt.Sprintf("scan %s is of app %q and scan %s of app %q: diff compares scans of one app", from.rep.ScanID, from.rep.App, to.rep.ScanID, to.rep.App))
		return
	}
	d := report.Compare(from.rep, to.rep)
	d.From.ReleaseID, d.To.ReleaseID = from.release, to.release
	writeJSON(w, http.StatusOK, d)
}

// diffScan is one side of a diff: a finished scan's report, and the
// release that named it, if one did.
type diffScan struct {
	rep     report.Report
	release string
}

// diffSide resolves id (a scan id, or with app a release id of that app)
// to a finished scan the caller may read. It answers the request itself
// when it returns false.
func (s *Server) diffSide(w http.ResponseWriter, r *http.Request, id, app string) (diffScan, bool) {
	ctx := r.Context()
	p := principalFrom(ctx)
	var side diffScan
	scanID := id
	if app != "" && s.deps.Releases != nil {
		if ok, reason := s.authorize(ctx, p, "app.read", p.Tenant); !ok {
			writeProblem(w, r, http.StatusForbidden, "forbidden", reason)
			return side, false
		}
		list, err := s.deps.Releases.List(ctx, p.Tenant, app)
		if err != nil {
			s.internal(w, r, "list releases", err)
			return side, false
		}
		for _, rel := range list {
			if rel.ID == id {
				scanID, side.release = rel.ScanID, rel.ID
			}
		}
	}
	sc, err := s.scans.Describe(ctx, scanID)
	if errors.Is(err, control.ErrNoScan) {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no scan or release "+id)
		return side, false
	} else if err != nil {
		s.internal(w, r, "describe scan", err)
		return side, false
	}
	if ok, _ := s.authorize(ctx, p, "scan.read", sc.Tenant); !ok {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no scan or release "+id)
		return side, false
	}
	if sc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		writeProblem(w, r, http.StatusConflict, "not-finished", fmt.Sprintf("scan %s has no report (yet): see its status", scanID))
		return side, false
	}
	out, err := s.scans.Read(ctx, sc, 0)
	if err == nil && out.Status != control.StatusCompleted {
		err = out.Err
	}
	if err != nil {
		s.internal(w, r, "read scan result", err)
		return side, false
	}
	raw, _, err := s.deps.Evidence.Get(ctx, out.Result.Report.Key)
	if err == nil {
		err = json.Unmarshal(raw, &side.rep)
	}
	if err != nil {
		s.internal(w, r, "read report", err)
		return side, false
	}
	return side, true
}

package api

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"golang.org/x/sync/errgroup"

	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tenant"
	"github.com/tollgate/tollgate/workflows"
)

// ScanSummary is one row of GET /v1/scans.
type ScanSummary struct {
	ScanID    string         `json:"scan_id"`
	App       string         `json:"app"`
	Status    string         `json:"status"`
	Verdict   report.Verdict `json:"verdict,omitempty"`
	Stage     string         `json:"stage,omitempty"`
	StartedAt time.Time      `json:"started_at"`
	StatusURL string         `json:"status_url"`
}

// ScanList is the body of GET /v1/scans.
type ScanList struct {
	Scans         []ScanSummary `json:"scans"`
	NextPageToken string        `json:"next_page_token,omitempty"`
}

// listScans pages through Temporal's visibility store, newest first, over
// the principal's own tenant's scans only: the tenant (and the app filter)
// are search attributes in the visibility query, so other tenants' scans are
// never read. The verdict filter applies to the memo, so a page can hold
// fewer than limit rows; follow next_page_token until it is empty. Scans
// started before the search attributes existed are not listed.
func (s *Server) listScans(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalFrom(ctx)
	// The tenant comes from the principal, never from the request, and goes
	// into the query only once it is a valid name (which holds no quote).
	if err := tenant.Validate(p.Tenant); err != nil {
		writeProblem(w, r, http.StatusForbidden, "forbidden", "the principal's tenant is not a valid name")
		return
	}
	if ok, reason := s.authorize(ctx, p, "scan.list", p.Tenant); !ok {
		writeProblem(w, r, http.StatusForbidden, "forbidden", reason)
		return
	}
	q := r.URL.Query()
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeProblem(w, r, http.StatusBadRequest, "bad-request", "limit must be 1 to 500")
			return
		}
		limit = n
	}
	query := fmt.Sprintf("%s AND %s = '%s'", workflows.ScanWorkflowTypes, workflows.SearchTenant.GetName(), p.Tenant)
	if v := q.Get("since"); v != "" {
		since, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeProblem(w, r, http.StatusBadRequest, "bad-request", "since must be an RFC 3339 time, e.g. 2026-11-22T00:00:00Z")
			return
		}
		query += fmt.Sprintf(" AND StartTime >= '%s'", since.UTC().Format(time.RFC3339))
	}
	app, verdict := q.Get("app"), q.Get("verdict")
	if app != "" && !appRe.MatchString(app) {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "app is not a valid app name")
		return
	}
	if verdict != "" && !strings.Contains("|pass|warn|block|review|", "|"+verdict+"|") {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "verdict must be pass, warn, block or review")
		return
	}
	if app != "" {
		query += fmt.Sprintf(" AND %s = '%s'", workflows.SearchApp.GetName(), app)
	}
	review, order := q.Get("review"), q.Get("order")
	switch {
	case review != "" && review != ReviewPending:
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "review must be pending")
		return
	case order != "" && order != OrderNewest && order != OrderOldest:
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "order must be newest or oldest")
		return
	case order == OrderOldest && review == "":
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "order=oldest is for review=pending only: other listings page newest first")
		return
	case review != "" && verdict != "" && verdict != string(report.VerdictReview):
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "a scan waiting for review has verdict review")
		return
	case review != "" && q.Get("page_token") != "":
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "review=pending answers in one page: it takes no page_token")
		return
	}
	if review == ReviewPending {
		s.listPendingReviews(w, r, query, limit, order)
		return
	}
	token, err := base64.RawURLEncoding.DecodeString(q.Get("page_token"))
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "page_token is not valid")
		return
	}
	resp, err := s.deps.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		PageSize: int32(limit), NextPageToken: token, Query: query,
	})
	if err != nil {
		s.internal(w, r, "list scans", err)
		return
	}
	out := ScanList{Scans: []ScanSummary{}, NextPageToken: base64.RawURLEncoding.EncodeToString(resp.GetNextPageToken())}
	dc := converter.GetDefaultDataConverter()
	for _, e := range resp.GetExecutions() {
		fields := e.GetMemo().GetFields()
		var sTenant, sApp, sVerdict, sStage string
		_ = dc.FromPayload(fields[workflows.MemoTenant], &sTenant)
		_ = dc.FromPayload(fields[workflows.MemoApp], &sApp)
		_ = dc.FromPayload(fields[workflows.MemoVerdict], &sVerdict)
		_ = dc.FromPayload(fields[workflows.MemoStage], &sStage)
		if sTenant != p.Tenant {
			continue // the query asked for this tenant only; never show another's
		}
		if (app != "" && sApp != app) || (verdict != "" && sVerdict != verdict) {
			continue
		}
		out.Scans = append(out.Scans, scanSummary(e, sApp, sVerdict, sStage))
	}
	writeJSON(w, http.StatusOK, out)
}

// scanSummary is one listed scan.
func scanSummary(e *workflowpb.WorkflowExecutionInfo, app, verdict, stage string) ScanSummary {
	id := control.ScanID(e.GetExecution().GetWorkflowId())
	status := "failed"
	switch e.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		status = "running"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		status = "completed"
	}
	return ScanSummary{ScanID: id, App: app, Status: status, Verdict: report.Verdict(verdict),
		Stage: stage, StartedAt: e.GetStartTime().AsTime(), StatusURL: statusURL(id)}
}

// Values of GET /v1/scans?review= and ?order=.
const (
	ReviewPending = "pending"
	OrderNewest   = "newest"
	OrderOldest   = "oldest"
)

// maxPendingCandidates bounds the running scans ?review=pending looks at,
// and pendingQueries the progress queries it asks at once.
const (
	maxPendingCandidates = 1000
	pendingQueries       = 8
	pendingQueryTimeout  = 5 * time.Second
)

// listPendingReviews answers GET /v1/scans?review=pending: the tenant's
// scans waiting for a reviewer's decision. A decision is recorded in the
// scan workflow itself (the review signal, see workflows.awaitReview): while
// none is taken, the running scan's progress query shows its review
// (Progress.Review, what POST /v1/scans/{id}/review checks too); once one
// is, the review is gone from it and the scan finishes. So the running
// scans of the query (the tenant's, up to maxPendingCandidates) are asked,
// a bounded number at a time, and those with a review pending are listed,
// newest first or, with order=oldest, oldest first, up to limit.
func (s *Server) listPendingReviews(w http.ResponseWriter, r *http.Request, query string, limit int, order string) {
	ctx := r.Context()
	p := principalFrom(ctx)
	query += " AND ExecutionStatus = 'Running'"
	var running []*workflowpb.WorkflowExecutionInfo
	var token []byte
	for len(running) < maxPendingCandidates {
		resp, err := s.deps.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			PageSize: int32(min(200, maxPendingCandidates-len(running))), NextPageToken: token, Query: query,
		})
		if err != nil {
			s.internal(w, r, "list scans waiting for review", err)
			return
		}
		running = append(running, resp.GetExecutions()...)
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	dc := converter.GetDefaultDataConverter()
	found := make([]*ScanSummary, len(running))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pendingQueries)
	for i, e := range running {
		fields := e.GetMemo().GetFields()
		var sTenant, sApp string
		_ = dc.FromPayload(fields[workflows.MemoTenant], &sTenant)
		_ = dc.FromPayload(fields[workflows.MemoApp], &sApp)
		if sTenant != p.Tenant {
			continue // the query asked for this tenant only; never show another's
		}
		g.Go(func() error {
			qctx, cancel := context.WithTimeout(gctx, pendingQueryTimeout)
			defer cancel()
			id := control.ScanID(e.GetExecution().GetWorkflowId())
			prog, err := s.scans.Progress(qctx, id)
			if err != nil {
				// Not known to wait for a review: not listed.
				s.deps.Logger.DebugContext(ctx, "progress of a running scan unknown", "scan_id", id, "err", err)
				return nil
			}
			if prog.Review != nil {
				row := scanSummary(e, sApp, string(report.VerdictReview), prog.Stage)
				found[i] = &row
			}
			return nil
		})
	}
	g.Wait()
	out := ScanList{Scans: []ScanSummary{}}
	for _, row := range found {
		if row != nil {
			out.Scans = append(out.Scans, *row)
		}
	}
	slices.SortStableFunc(out.Scans, func(a, b ScanSummary) int {
		if order == OrderOldest {
			return cmp.Or(a.StartedAt.Compare(b.StartedAt), strings.Compare(a.ScanID, b.ScanID))
		}
		return cmp.Or(b.StartedAt.Compare(a.StartedAt), strings.Compare(a.ScanID, b.ScanID))
	})
	if len(out.Scans) > limit {
		out.Scans = out.Scans[:limit]
	}
	writeJSON(w, http.StatusOK, out)
}

package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

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
		id := control.ScanID(e.GetExecution().GetWorkflowId())
		status := "failed"
		switch e.GetStatus() {
		case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			status = "running"
		case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			status = "completed"
		}
		out.Scans = append(out.Scans, ScanSummary{ScanID: id, App: sApp, Status: status, Verdict: report.Verdict(sVerdict),
			Stage: sStage, StartedAt: e.GetStartTime().AsTime(), StatusURL: statusURL(id)})
	}
	writeJSON(w, http.StatusOK, out)
}

package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/tenant"
	"github.com/tollgate/tollgate/workflows"
)

// ReviewRequest is the body of POST /v1/scans/{id}/review.
type ReviewRequest struct {
	// Decision is "approve" or "reject".
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

// reviewScan hands a reviewer's decision to a scan waiting for review. The
// reviewer needs the reviewer role in the scan's tenant and must be a person
// (an OIDC login, or a static token that names one) other than the person
// who submitted the scan and the commit's author: holding a second token
// does not make the author someone else. The workflow checks again.
func (s *Server) reviewScan(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalFrom(ctx)
	id := r.PathValue("id")
	var in ReviewRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		s.bodyError(w, r, err)
		return
	}
	if err := decodeStrict(body, &in); err != nil {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", err.Error())
		return
	}
	if in.Decision != workflows.ReviewApprove && in.Decision != workflows.ReviewReject {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", fmt.Sprintf("decision %q: want %q or %q", in.Decision, workflows.ReviewApprove, workflows.ReviewReject))
		return
	}
	if reason := strings.TrimSpace(in.Reason); reason == "" || len(reason) > 2000 {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "a reason of 1-2000 characters is required")
		return
	}
	sc, err := s.scans.Describe(ctx, id)
	found := err == nil
	if err != nil && !errors.Is(err, control.ErrNoScan) {
		s.internal(w, r, "describe scan", err)
		return
	}
	tenant := sc.Tenant
	if ok, _ := s.authorize(ctx, p, "scan.read", tenant); !found || !ok {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no scan "+id)
		return
	}
	if ok, reason := s.authorize(ctx, p, "review.decide", tenant); !ok {
		writeProblem(w, r, http.StatusForbidden, "forbidden", reason)
		return
	}
	if p.Person == "" {
		writeProblem(w, r, http.StatusForbidden, "forbidden",
			fmt.Sprintf("principal %q names no person: a review is decided by a human (log in with OIDC, or use a static token with a person)", p.Name))
		return
	}
	// Who submitted the scan comes from the same description: its memo.
	sub := submission{Submitter: sc.Submitter, Person: sc.SubmitterPerson, Author: sc.Author}
	if why := sub.refuses(p); why != "" {
		writeProblem(w, r, http.StatusForbidden, "forbidden", why)
		return
	}
	out, err := s.scans.Read(ctx, sc, 0)
	if err != nil {
		s.internal(w, r, "describe scan", err)
		return
	}
	status := scanStatus(id, "", out)
	if !sc.Running() || status.Review == nil {
		writeProblem(w, r, http.StatusConflict, "not-waiting-for-review", fmt.Sprintf("scan %s is %s and not waiting for a review", id, status.Status))
		return
	}
	sig := workflows.ReviewSignal{Decision: in.Decision, Reviewer: p.Name, Person: p.Person, Auth: p.Auth, Tenant: p.Tenant,
		Reason: in.Reason, At: time.Now().UTC()}
	err = s.scans.Review(ctx, id, sig)
	if errors.Is(err, control.ErrScanEnded) {
		writeProblem(w, r, http.StatusConflict, "not-waiting-for-review", "the scan ended before the decision arrived")
		return
	} else if err != nil {
		s.internal(w, r, "signal review", err)
		return
	}
	s.deps.Logger.InfoContext(ctx, "review decided", "scan_id", id, "tenant", tenant, "reviewer", p.Name, "person", p.Person, "decision", in.Decision)
	writeJSON(w, http.StatusAccepted, status)
}

// submission is who stands behind a scan: the submitting principal, its
// person and the commit's author, as the API recorded them at submission.
type submission struct {
	Submitter, Person, Author string
}

// refuses says why p may not decide a review of the submission, or "".
// Persons and emails compare case-insensitively.
func (sub submission) refuses(p Principal) string {
	switch {
	case sub.Submitter != "" && sub.Submitter == p.Name:
		return "the submitter may not review their own scan"
	case sub.Person != "" && strings.EqualFold(sub.Person, p.Person):
		return "the submitter may not review their own scan (same person, another token)"
	case sub.Author != "" && strings.EqualFold(sub.Author, p.Person):
		return "the commit's author may not review their own change"
	}
	return ""
}

// validEmail reports whether s is a bare email address (no display name).
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && len(s) <= 254
}

// oidcPerson is the person behind an OIDC login: its email when the IdP
// says it is verified (so it compares with commit authors), else its
// subject.
func oidcPerson(subject string, claims map[string]any) string {
	email, _ := claims["email"].(string)
	if verified, _ := claims["email_verified"].(bool); verified && validEmail(email) {
		return email
	}
	return subject
}

// RematchTriggered is the answer of POST /v1/rematch: the caller's
// tenant's re-match run, started now or already running (then joined).
type RematchTriggered struct {
	Tenant      string    `json:"tenant"`
	WorkflowID  string    `json:"workflow_id"`
	RunID       string    `json:"run_id"`
	TriggeredAt time.Time `json:"triggered_at"`
}

// triggerRematch re-matches the caller's tenant's live releases now (roles
// sre, security), e.g. right after the workers' vulnerability DB was
// updated. It starts the tenant's own run (workflows.RematchNowWorkflowID),
// or joins it when one is running, so one tenant's trigger never spends the
// fleet's capacity on every tenant's apps; the schedule still covers all
// tenants.
func (s *Server) triggerRematch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalFrom(ctx)
	if err := tenant.Validate(p.Tenant); err != nil {
		writeProblem(w, r, http.StatusForbidden, "forbidden", err.Error())
		return
	}
	if ok, reason := s.authorize(ctx, p, "rematch.run", p.Tenant); !ok {
		writeProblem(w, r, http.StatusForbidden, "forbidden", reason)
		return
	}
	id := workflows.RematchNowWorkflowID(p.Tenant)
	run, err := s.deps.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.RematchWorkflow, workflows.RematchRequest{Tenant: p.Tenant})
	if err != nil {
		s.internal(w, r, "start rematch of tenant "+p.Tenant, err)
		return
	}
	s.deps.Logger.InfoContext(ctx, "rematch triggered", "by", p.Name, "tenant", p.Tenant, "workflow_id", id, "run_id", run.GetRunID())
	writeJSON(w, http.StatusAccepted, RematchTriggered{Tenant: p.Tenant, WorkflowID: id, RunID: run.GetRunID(), TriggeredAt: time.Now().UTC()})
}

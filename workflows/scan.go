package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
)

// dispatchOptions bound a scanner task. There is deliberately no heartbeat
// timeout: a task may wait in its pool's queue for a long time under load, and
// nobody heartbeats a queued task. A worker that dies mid-scan stops extending
// its JetStream ack wait, so JetStream hands the same message, with the same
// still-valid task token, to another worker. The start-to-close timeout is the
// backstop for a task lost outright; retries cover failed publishes (NATS
// down) and failed scans.
var dispatchOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        30 * time.Second,
		MaximumAttempts:        10,
		NonRetryableErrorTypes: []string{tasks.ErrTypeBadInput, tasks.ErrTypeTenantBacklog},
	},
}

// A scan whose tenant is at its cap of pending tasks tries again after
// backlogWait, doubling up to backlogWaitMax.
const (
	backlogWait    = 2 * time.Second
	backlogWaitMax = 15 * time.Second
)

var localOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: 200 * time.Millisecond,
		MaximumAttempts: 5,
	},
}

var finalizeOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 2 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second,
		MaximumInterval: 30 * time.Second,
		MaximumAttempts: 10,
	},
}

// ScanWorkflow gates one source tree: a fast stage (secrets, metadata policy)
// that can fail the scan early, then a deep stage (SBOM, vulnerabilities,
// licences, deep policy), then the report and its evidence.
func ScanWorkflow(ctx workflow.Context, req ScanRequest) (ScanResult, error) {
	logger := workflow.GetLogger(ctx)
	started := workflow.Now(ctx)
	progress := Progress{Stage: report.StageFast}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return progress, nil }); err != nil {
		return ScanResult{}, err
	}

	timings := map[string]float64{}
	// The tenant's accepted risks, read once: the policy applies those in
	// force when each stage is decided. Versioned: scans started before
	// exceptions existed replay without the read; version 1 read them in an
	// activity, version 2 in a local activity, which spares every scan a
	// round trip through Temporal's task queue before its fast stage.
	var excs []exceptions.Exception
	switch workflow.GetVersion(ctx, "exceptions", workflow.DefaultVersion, 2) {
	case 1:
		ectx := workflow.WithActivityOptions(ctx, finalizeOptions)
		if err := workflow.ExecuteActivity(ectx, ActivityLoadExceptions, req.Tenant, req.App).Get(ctx, &excs); err != nil {
			return ScanResult{}, err
		}
	case 2:
		lctx := workflow.WithLocalActivityOptions(ctx, localOptions)
		if err := workflow.ExecuteLocalActivity(lctx, ActivityLoadExceptions, req.Tenant, req.App).Get(ctx, &excs); err != nil {
			return ScanResult{}, err
		}
	}
	var results []tasks.Result
	var decisions []report.Decision

	runStage := func(stage, pool, kind string) (report.Decision, error) {
		begin := workflow.Now(ctx)
		progress.Stage = stage
		task := tasks.Task{ScanID: req.ScanID, App: req.App, Pool: pool, Kind: kind, Input: req.Input, SubmittedAt: req.SubmittedAt,
			Tenant: req.Tenant, Priority: req.Priority}
		res, err := dispatch(workflow.WithActivityOptions(ctx, dispatchOptions), task, func(wait time.Duration) {
			progress.Waiting = fmt.Sprintf("tenant backlog: %s pool at its cap of pending %s tasks", pool, cmp.Or(req.Priority, tasks.PriorityCI))
			logger.Info("tenant backlog full; waiting", "scan_id", req.ScanID, "pool", pool, "wait", wait)
		})
		if err != nil {
			return report.Decision{}, err
		}
		progress.Waiting = ""
		results = append(results, res)
		var dec report.Decision
		lctx := workflow.WithLocalActivityOptions(ctx, localOptions)
		pr := PolicyRequest{Stage: stage, Scan: req, Results: []tasks.Result{res}, Exceptions: excs, Now: workflow.Now(ctx)}
		if err := workflow.ExecuteLocalActivity(lctx, ActivityPolicy, pr).Get(ctx, &dec); err != nil {
			return report.Decision{}, err
		}
		decisions = append(decisions, dec)
		timings[stage] = workflow.Now(ctx).Sub(begin).Seconds()
		return dec, nil
	}

	fast, err := runStage(report.StageFast, tasks.PoolFast, tasks.KindSecrets)
	if err != nil {
		return ScanResult{}, err
	}
	stage := report.StageFast
	if fast.Verdict == report.VerdictBlock && !req.Full {
		logger.Info("fast stage blocked; skipping the deep stage", "scan_id", req.ScanID)
	} else {
		deep, err := runStage(report.StageDeep, tasks.PoolDeep, tasks.KindDeep)
		if err != nil {
			return ScanResult{}, err
		}
		// The verdict was decided where the worst decision came from.
		if fast.Verdict != report.VerdictBlock || deep.Verdict == report.VerdictBlock {
			stage = report.StageDeep
		}
	}

	// A change the policy says a human must see waits for a reviewer.
	// Versioned: scans started before the gate replay without it.
	var review *report.Review
	if workflow.GetVersion(ctx, "review-gate", workflow.DefaultVersion, 1) >= 1 && Combine(decisions).Verdict != report.VerdictBlock {
		var rdec report.Decision
		lctx := workflow.WithLocalActivityOptions(ctx, localOptions)
		pr := PolicyRequest{Stage: StageReview, Scan: req, Results: results, Exceptions: excs, Now: workflow.Now(ctx)}
		if err := workflow.ExecuteLocalActivity(lctx, ActivityPolicy, pr).Get(ctx, &rdec); err != nil {
			return ScanResult{}, err
		}
		if rdec.Verdict == report.VerdictReview {
			begin := workflow.Now(ctx)
			var dec report.Decision
			review, dec = awaitReview(ctx, req, rdec, &progress)
			decisions = append(decisions, dec)
			timings["review"] = workflow.Now(ctx).Sub(begin).Seconds()
		}
	}

	progress.Stage = "finalize"
	fin := FinalizeRequest{
		Scan: req, Stage: stage, Decisions: decisions, Results: results,
		Timings: timings, StartedAt: started, FinishedAt: workflow.Now(ctx), Review: review,
	}
	var out ScanResult
	fctx := workflow.WithActivityOptions(ctx, finalizeOptions)
	if err := workflow.ExecuteActivity(fctx, ActivityFinalize, fin).Get(ctx, &out); err != nil {
		return ScanResult{}, err
	}
	progress = Progress{Stage: out.Stage, Verdict: out.Verdict, Done: true}
	// The verdict goes into the memo too, so that listing scans needs no
	// result fetch per scan. Versioned: scans started before this change
	// replay without it.
	if workflow.GetVersion(ctx, "memo-verdict", workflow.DefaultVersion, 1) >= 1 {
		if err := workflow.UpsertMemo(ctx, map[string]interface{}{MemoVerdict: string(out.Verdict), MemoStage: out.Stage}); err != nil {
			return ScanResult{}, err
		}
	}
	return out, nil
}

// dispatch runs the Dispatch activity for task. A tenant at its cap of
// pending tasks waits for room, backing off up to backlogWaitMax between
// tries (waiting is told each wait); the wait counts toward no retry limit.
func dispatch(ctx workflow.Context, task tasks.Task, waiting func(time.Duration)) (tasks.Result, error) {
	var res tasks.Result
	for wait := backlogWait; ; wait = min(2*wait, backlogWaitMax) {
		err := workflow.ExecuteActivity(ctx, ActivityDispatch, task).Get(ctx, &res)
		if err == nil {
			return res, nil
		}
		if appErr, ok := errors.AsType[*temporal.ApplicationError](err); !ok || appErr.Type() != tasks.ErrTypeTenantBacklog {
			return tasks.Result{}, err
		}
		waiting(wait)
		if err := workflow.Sleep(ctx, wait); err != nil {
			return tasks.Result{}, err
		}
	}
}

// awaitReview waits for a reviewer's decision on the review signal, up to
// the policy's timeout, and turns it into a decision: approved passes,
// rejected and timed out block. Decisions it cannot take (by the submitter,
// or malformed) are recorded as refused, and the wait goes on.
func awaitReview(ctx workflow.Context, req ScanRequest, rdec report.Decision, progress *Progress) (*report.Review, report.Decision) {
	timeout := DefaultReviewTimeout
	if d, err := time.ParseDuration(rdec.Timeout); err == nil && d > 0 {
		timeout = min(d, MaxReviewTimeout)
	}
	if req.ReviewTimeout != 0 {
		timeout = max(req.ReviewTimeout, 0)
	}
	// Versioned: a review bound to a person (neither the submitter's nor the
	// commit author's) refuses decisions earlier scans took, so scans that
	// reached their review before it replay with the old checks.
	byPerson := workflow.GetVersion(ctx, "review-person", workflow.DefaultVersion, 1) >= 1
	now := workflow.Now(ctx)
	rv := &report.Review{Reasons: rdec.Reasons, Submitter: req.Submitter, SubmitterPerson: req.SubmitterPerson, Author: req.Author,
		Requested: now, Deadline: now.Add(timeout)}
	progress.Verdict, progress.Review = report.VerdictReview, rv
	progress.Waiting = fmt.Sprintf("review: a reviewer (role reviewer, a person who is neither the submitter nor the commit author) must approve or reject it by %s: tollgate review approve|reject %s --reason TEXT",
		rv.Deadline.Format(time.RFC3339), req.ScanID)
	workflow.GetLogger(ctx).Info("scan waits for review", "scan_id", req.ScanID, "deadline", rv.Deadline)

	ch := workflow.GetSignalChannel(ctx, SignalReview)
	tctx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	timer := workflow.NewTimer(tctx, timeout)
	for rv.Outcome == "" {
		timedOut := false
		var sig ReviewSignal
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(timer, func(workflow.Future) { timedOut = true })
		sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &sig) })
		sel.Select(ctx)
		at := workflow.Now(ctx)
		if timedOut {
			rv.Outcome, rv.At = report.ReviewTimedOut, at
			break
		}
		why := reviewRefusal(req, sig, byPerson)
		if why != "" {
			rv.Refused = append(rv.Refused, report.ReviewRefusal{Reviewer: sig.Reviewer, Person: sig.Person, Decision: sig.Decision, At: at, Why: why})
			continue
		}
		rv.Reviewer, rv.Reason, rv.At = sig.Reviewer, sig.Reason, at
		if byPerson {
			rv.Approver = &report.Approver{Person: sig.Person, Principal: sig.Reviewer, Auth: sig.Auth, Tenant: sig.Tenant}
		}
		rv.Outcome = report.ReviewApproved
		if sig.Decision == ReviewReject {
			rv.Outcome = report.ReviewRejected
		}
	}
	progress.Verdict, progress.Review, progress.Waiting = "", nil, ""

	switch rv.Outcome {
	case report.ReviewApproved:
		return rv, report.Decision{Verdict: report.VerdictPass, Reasons: []report.Reason{{Policy: "review.approved", Verdict: report.VerdictPass,
			Message: fmt.Sprintf("review approved by %s: %s", rv.Reviewer, rv.Reason)}}}
	case report.ReviewRejected:
		return rv, report.Decision{Verdict: report.VerdictBlock, Reasons: []report.Reason{{Policy: "review.rejected", Verdict: report.VerdictBlock,
			Message: fmt.Sprintf("review rejected by %s: %s", rv.Reviewer, rv.Reason)}}}
	default:
		msg := fmt.Sprintf("no reviewer decided within %s of the request", timeout)
		if timeout == 0 {
			msg = "the change needs a human review, and this mode has no reviewers: submit it through the API (tollgate submit)"
		}
		return rv, report.Decision{Verdict: report.VerdictBlock, Reasons: []report.Reason{{Policy: "review.timeout", Verdict: report.VerdictBlock, Message: msg}}}
	}
}

// reviewRefusal says why the workflow does not take a review decision, or
// "" when it does. It checks on its own what the API checked before
// signalling: the workflow does not trust the API alone. With byPerson the
// decision must come from a named person who is neither the submitter's
// person nor the commit's author (emails compare case-insensitively).
func reviewRefusal(req ScanRequest, sig ReviewSignal, byPerson bool) string {
	person := strings.TrimSpace(sig.Person)
	switch {
	case sig.Reviewer == "":
		return "no reviewer named"
	case req.Submitter != "" && sig.Reviewer == req.Submitter:
		return "the submitter may not review their own scan"
	case byPerson && person == "":
		return "the reviewer names no person: a review is decided by a human (an OIDC login or a static token with a person)"
	case byPerson && req.SubmitterPerson != "" && strings.EqualFold(person, req.SubmitterPerson):
		return "the submitter may not review their own scan (same person, another token)"
	case byPerson && req.Author != "" && strings.EqualFold(person, req.Author):
		return "the commit's author may not review their own change"
	case byPerson && req.Tenant != "" && sig.Tenant != "" && sig.Tenant != req.Tenant:
		return fmt.Sprintf("the reviewer is of tenant %q, not the scan's", sig.Tenant)
	case sig.Decision != ReviewApprove && sig.Decision != ReviewReject:
		return fmt.Sprintf("decision %q is neither %s nor %s", sig.Decision, ReviewApprove, ReviewReject)
	case strings.TrimSpace(sig.Reason) == "":
		return "no reason given"
	}
	return ""
}

// Combine merges stage decisions into one: the worst verdict, every reason.
func Combine(decisions []report.Decision) report.Decision {
	out := report.Decision{Verdict: report.VerdictPass, Reasons: []report.Reason{}}
	for _, d := range decisions {
		out.Verdict = report.Worse(out.Verdict, d.Verdict)
		out.Reasons = append(out.Reasons, d.Reasons...)
		for _, e := range d.Exceptions {
			if !slices.ContainsFunc(out.Exceptions, func(x report.AppliedException) bool { return x.ID == e.ID }) {
				out.Exceptions = append(out.Exceptions, e)
			}
		}
	}
	slices.SortFunc(out.Exceptions, func(a, b report.AppliedException) int { return strings.Compare(a.ID, b.ID) })
	return out
}

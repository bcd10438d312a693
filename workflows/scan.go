package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
)

// dispatchOptions bound a scanner task. A task may wait in its pool's queue
// for a long time under load: the orchestrator that dispatched it heartbeats
// it meanwhile (activities.QueuedTasks), and the worker that runs it does
// too. A worker that dies mid-scan stops extending its JetStream ack wait, so
// JetStream hands the same message, with the same still-valid task token, to
// another worker. An orchestrator that dies before its task reached the queue
// stops heartbeating, and the heartbeat timeout dispatches the task again
// within a minute. The start-to-close timeout is the backstop for a task lost
// outright; retries cover failed publishes (NATS down) and failed scans.
var dispatchOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Minute,
	HeartbeatTimeout:    DispatchHeartbeatTimeout,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        30 * time.Second,
		MaximumAttempts:        10,
		NonRetryableErrorTypes: []string{tasks.ErrTypeBadInput, tasks.ErrTypeTenantBacklog},
	},
}

// DispatchHeartbeatTimeout is how long a dispatched task's activity may go
// without a heartbeat from its orchestrator or worker (activities'
// QueuedTasks beats every 20 s, workers every 5 s).
const DispatchHeartbeatTimeout = time.Minute

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

// scanFinalizeOptions are finalizeOptions with a heartbeat timeout: Finalize
// heartbeats before each evidence write, so one whose orchestrator died is
// retried after 20 s instead of its 2-minute start-to-close (the drills'
// orchestrator SIGKILL found that stall). A retry writes the same bytes,
// which write-once evidence accepts.
var scanFinalizeOptions = func() workflow.ActivityOptions {
	o := finalizeOptions
	o.HeartbeatTimeout = 20 * time.Second
	return o
}()

// ScanWorkflowName is the workflow type new scans start as: ScanWorkflowV2.
// ScanWorkflowV1Name is the type of the scans started before it, which the
// orchestrator still runs so that those in flight (a review waits up to
// MaxReviewTimeout) finish and their histories replay.
const (
	ScanWorkflowName   = "ScanWorkflowV2"
	ScanWorkflowV1Name = "ScanWorkflow"
)

// ScanWorkflowTypes is the visibility-query term that matches scans of
// either type (GET /v1/scans).
const ScanWorkflowTypes = "WorkflowType IN ('" + ScanWorkflowV1Name + "', '" + ScanWorkflowName + "')"

// ScanWorkflowV2 gates one source tree: a fast stage (secrets, metadata
// policy) that can fail the scan early, then a deep stage (SBOM,
// vulnerabilities, licences, deep policy), a human review when the policy
// asks for one, then the report and its evidence. It is ScanWorkflow at its
// newest version without the workflow.GetVersion calls that got it there:
// each of those recorded a marker and upserted the TemporalChangeVersion
// search attribute (a visibility write) in every scan. A new type, rather
// than one more version, is what lets them go: histories of ScanWorkflow
// keep replaying against ScanWorkflow. Change this shape behind
// workflow.GetVersion again, or with a new type when versions pile up.
func ScanWorkflowV2(ctx workflow.Context, req ScanRequest) (ScanResult, error) {
	excVersion := workflow.Version(2) // read in a local activity
	if req.Tenant == "" {
		// The embedded mode has no tenant, hence no exceptions to read.
		excVersion = workflow.DefaultVersion
	}
	always := func() bool { return true }
	return runScan(ctx, req, scanVersions{
		exceptions: func() workflow.Version { return excVersion }, reviewGate: always, reviewPerson: always, memoVerdict: always,
	})
}

// scanVersions say which version of each change to the flow a run takes,
// asked at the point where the change is. ScanWorkflow asks
// workflow.GetVersion; ScanWorkflowV2 takes the newest without asking.
type scanVersions struct {
	// exceptions: 1 reads the exceptions in an activity, 2 in a local
	// activity (which spares the scan a round trip through Temporal's task
	// queue before its fast stage), any other version reads none.
	exceptions func() workflow.Version
	// reviewGate sends a scan that is not blocked to the review policy,
	// reviewPerson binds a review to a person (see awaitReview), and
	// memoVerdict writes the verdict into the memo.
	reviewGate, reviewPerson, memoVerdict func() bool
}

// runScan is the scan flow, at the versions v says.
func runScan(ctx workflow.Context, req ScanRequest, v scanVersions) (ScanResult, error) {
	s, err := newScanRun(ctx, req)
	if err != nil {
		return ScanResult{}, err
	}
	// The tenant's accepted risks, read once: the policy applies those in
	// force when each stage is decided.
	switch v.exceptions() {
	case 1:
		if err := s.loadExceptions(false); err != nil {
			return ScanResult{}, err
		}
	case 2:
		if err := s.loadExceptions(true); err != nil {
			return ScanResult{}, err
		}
	}
	stage, err := s.stages()
	if err != nil {
		return ScanResult{}, err
	}
	var review *report.Review
	if v.reviewGate() && Combine(s.decisions).Verdict != report.VerdictBlock {
		if review, err = s.review(v.reviewPerson); err != nil {
			return ScanResult{}, err
		}
	}
	out, err := s.finalize(stage, review)
	if err != nil {
		return ScanResult{}, err
	}
	// The verdict goes into the memo, so that listing scans needs no result
	// fetch per scan; the upsert goes in the task that completes the run.
	if v.memoVerdict() {
		if err := upsertVerdict(ctx, out); err != nil {
			return ScanResult{}, err
		}
	}
	return out, nil
}

// scanRun is one run of a scan workflow: the state every shape of it keeps,
// and the steps they share. Steps that schedule commands must keep their
// order: ScanWorkflow's recorded histories replay through them.
type scanRun struct {
	ctx       workflow.Context
	req       ScanRequest
	logger    log.Logger
	started   time.Time
	progress  Progress
	timings   map[string]float64
	excs      []exceptions.Exception
	results   []tasks.Result
	decisions []report.Decision
}

// newScanRun starts a run's state and answers the progress query from it.
func newScanRun(ctx workflow.Context, req ScanRequest) (*scanRun, error) {
	s := &scanRun{ctx: ctx, req: req, logger: workflow.GetLogger(ctx), started: workflow.Now(ctx),
		progress: Progress{Stage: report.StageFast}, timings: map[string]float64{}}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return s.progress, nil }); err != nil {
		return nil, err
	}
	return s, nil
}

// loadExceptions reads the tenant's accepted risks, once: the policy applies
// those in force when each stage is decided. local reads them in a local
// activity, which spares the scan a round trip through Temporal's task
// queue before its fast stage.
func (s *scanRun) loadExceptions(local bool) error {
	if local {
		lctx := workflow.WithLocalActivityOptions(s.ctx, localOptions)
		return workflow.ExecuteLocalActivity(lctx, ActivityLoadExceptions, s.req.Tenant, s.req.App).Get(s.ctx, &s.excs)
	}
	ectx := workflow.WithActivityOptions(s.ctx, finalizeOptions)
	return workflow.ExecuteActivity(ectx, ActivityLoadExceptions, s.req.Tenant, s.req.App).Get(s.ctx, &s.excs)
}

// runStage dispatches a stage's task to its pool and decides the stage.
func (s *scanRun) runStage(stage, pool, kind string) (report.Decision, error) {
	req := s.req
	begin := workflow.Now(s.ctx)
	s.progress.Stage = stage
	task := tasks.Task{ScanID: req.ScanID, App: req.App, Pool: pool, Kind: kind, Input: req.Input, SubmittedAt: req.SubmittedAt,
		Tenant: req.Tenant, Priority: req.Priority}
	res, err := dispatch(workflow.WithActivityOptions(s.ctx, dispatchOptions), task, func(wait time.Duration) {
		s.progress.Waiting = fmt.Sprintf("tenant backlog: %s pool at its cap of pending %s tasks", pool, cmp.Or(req.Priority, tasks.PriorityCI))
		s.logger.Info("tenant backlog full; waiting", "scan_id", req.ScanID, "pool", pool, "wait", wait)
	})
	if err != nil {
		return report.Decision{}, err
	}
	s.progress.Waiting = ""
	s.results = append(s.results, res)
	var dec report.Decision
	lctx := workflow.WithLocalActivityOptions(s.ctx, localOptions)
	pr := PolicyRequest{Stage: stage, Scan: req, Results: []tasks.Result{res}, Exceptions: s.excs, Now: workflow.Now(s.ctx)}
	if err := workflow.ExecuteLocalActivity(lctx, ActivityPolicy, pr).Get(s.ctx, &dec); err != nil {
		return report.Decision{}, err
	}
	s.decisions = append(s.decisions, dec)
	s.timings[stage] = workflow.Now(s.ctx).Sub(begin).Seconds()
	return dec, nil
}

// stages runs the fast stage, then the deep one unless the fast stage
// blocked a scan that is not full, and returns the stage the verdict was
// decided in.
func (s *scanRun) stages() (string, error) {
	fast, err := s.runStage(report.StageFast, tasks.PoolFast, tasks.KindSecrets)
	if err != nil {
		return "", err
	}
	if fast.Verdict == report.VerdictBlock && !s.req.Full {
		s.logger.Info("fast stage blocked; skipping the deep stage", "scan_id", s.req.ScanID)
		return report.StageFast, nil
	}
	deep, err := s.runStage(report.StageDeep, tasks.PoolDeep, tasks.KindDeep)
	if err != nil {
		return "", err
	}
	// The verdict was decided where the worst decision came from.
	if fast.Verdict != report.VerdictBlock || deep.Verdict == report.VerdictBlock {
		return report.StageDeep, nil
	}
	return report.StageFast, nil
}

// review asks the review policy whether a human must see the change and, if
// so, waits for a reviewer's decision (see awaitReview; byPerson is asked
// only then). It returns the review, or nil when none was needed.
func (s *scanRun) review(byPerson func() bool) (*report.Review, error) {
	var rdec report.Decision
	lctx := workflow.WithLocalActivityOptions(s.ctx, localOptions)
	pr := PolicyRequest{Stage: StageReview, Scan: s.req, Results: reviewResults(s.results), Exceptions: s.excs, Now: workflow.Now(s.ctx)}
	if err := workflow.ExecuteLocalActivity(lctx, ActivityPolicy, pr).Get(s.ctx, &rdec); err != nil {
		return nil, err
	}
	if rdec.Verdict != report.VerdictReview {
		return nil, nil
	}
	begin := workflow.Now(s.ctx)
	review, dec := awaitReview(s.ctx, s.req, rdec, &s.progress, byPerson())
	s.decisions = append(s.decisions, dec)
	s.timings["review"] = workflow.Now(s.ctx).Sub(begin).Seconds()
	return review, nil
}

// reviewResults are the parts of the results the review policy reads
// (review.rego: the scan's labels and the touched areas) and the sandbox
// limits EvaluatePolicy checks in every stage. The rest (packages,
// vulnerabilities, secrets) would only be encoded into the local activity
// and the policy's input for nothing.
func reviewResults(results []tasks.Result) []tasks.Result {
	out := make([]tasks.Result, 0, len(results))
	for _, r := range results {
		out = append(out, tasks.Result{Kind: r.Kind, Findings: report.Findings{Touches: r.Touches}, Limit: r.Limit})
	}
	return out
}

// finalize builds and stores the report and its evidence in the Finalize
// activity. It stays a regular activity: its input (the finish time and
// the timings, from workflow.Now) is fixed in history when it is
// scheduled, so a retry writes the same write-once bytes. A local activity
// would compute that input again in the workflow task that follows a
// crash, with another time: the evidence already stored would refuse it.
func (s *scanRun) finalize(stage string, review *report.Review) (ScanResult, error) {
	s.progress.Stage = "finalize"
	fin := FinalizeRequest{
		Scan: s.req, Stage: stage, Decisions: s.decisions, Results: s.results,
		Timings: s.timings, StartedAt: s.started, FinishedAt: workflow.Now(s.ctx), Review: review,
	}
	var out ScanResult
	fctx := workflow.WithActivityOptions(s.ctx, scanFinalizeOptions)
	if err := workflow.ExecuteActivity(fctx, ActivityFinalize, fin).Get(s.ctx, &out); err != nil {
		return ScanResult{}, err
	}
	s.progress = Progress{Stage: out.Stage, Verdict: out.Verdict, Done: true}
	return out, nil
}

// upsertVerdict writes a finished scan's verdict and stage into its memo.
func upsertVerdict(ctx workflow.Context, out ScanResult) error {
	return workflow.UpsertMemo(ctx, map[string]interface{}{MemoVerdict: string(out.Verdict), MemoStage: out.Stage})
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
// or malformed) are recorded as refused, and the wait goes on. byPerson
// binds the review to a person (neither the submitter's nor the commit
// author's), refusing decisions the scans before that version took.
func awaitReview(ctx workflow.Context, req ScanRequest, rdec report.Decision, progress *Progress, byPerson bool) (*report.Review, report.Decision) {
	timeout := DefaultReviewTimeout
	if d, err := time.ParseDuration(rdec.Timeout); err == nil && d > 0 {
		timeout = min(d, MaxReviewTimeout)
	}
	if req.ReviewTimeout != 0 {
		timeout = max(req.ReviewTimeout, 0)
	}
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
		for _, v := range d.VEX {
			if !slices.ContainsFunc(out.VEX, func(x report.AppliedVEX) bool {
				return x.Record == v.Record && x.Vulnerability == v.Vulnerability && x.PURL == v.PURL
			}) {
				out.VEX = append(out.VEX, v)
			}
		}
	}
	slices.SortFunc(out.Exceptions, func(a, b report.AppliedException) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(out.VEX, func(a, b report.AppliedVEX) int {
		return cmp.Or(strings.Compare(a.Vulnerability, b.Vulnerability), strings.Compare(a.PURL, b.PURL), strings.Compare(a.Record, b.Record))
	})
	return out
}

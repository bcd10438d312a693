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
	// exceptions existed replay without the read.
	var excs []exceptions.Exception
	if workflow.GetVersion(ctx, "exceptions", workflow.DefaultVersion, 1) >= 1 {
		ectx := workflow.WithActivityOptions(ctx, finalizeOptions)
		if err := workflow.ExecuteActivity(ectx, ActivityLoadExceptions, req.Tenant, req.App).Get(ctx, &excs); err != nil {
			return ScanResult{}, err
		}
	}
	var results []tasks.Result
	var decisions []report.Decision

	runStage := func(stage, pool, kind string) (report.Decision, error) {
		begin := workflow.Now(ctx)
		progress.Stage = stage
		var res tasks.Result
		task := tasks.Task{ScanID: req.ScanID, App: req.App, Pool: pool, Kind: kind, Input: req.Input, SubmittedAt: req.SubmittedAt,
			Tenant: req.Tenant, Priority: req.Priority}
		actx := workflow.WithActivityOptions(ctx, dispatchOptions)
		// A tenant at its cap of pending tasks waits for room, backing off
		// up to backlogWaitMax between tries; the wait counts toward no
		// retry limit.
		for wait := backlogWait; ; wait = min(2*wait, backlogWaitMax) {
			err := workflow.ExecuteActivity(actx, ActivityDispatch, task).Get(ctx, &res)
			if err == nil {
				break
			}
			if appErr, ok := errors.AsType[*temporal.ApplicationError](err); !ok || appErr.Type() != tasks.ErrTypeTenantBacklog {
				return report.Decision{}, err
			}
			progress.Waiting = fmt.Sprintf("tenant backlog: %s pool at its cap of pending %s tasks", pool, cmp.Or(req.Priority, tasks.PriorityCI))
			logger.Info("tenant backlog full; waiting", "scan_id", req.ScanID, "pool", pool, "wait", wait)
			if err := workflow.Sleep(ctx, wait); err != nil {
				return report.Decision{}, err
			}
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

	progress.Stage = "finalize"
	fin := FinalizeRequest{
		Scan: req, Stage: stage, Decisions: decisions, Results: results,
		Timings: timings, StartedAt: started, FinishedAt: workflow.Now(ctx),
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

package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tollgate/tollgate/report"
)

// Activities of the guard and of RollbackWorkflow.
const (
	// ActivityPickRelease chooses the release to roll back to (PickRequest →
	// RollbackTarget). It fails non-retryably when there is none.
	ActivityPickRelease = "PickRelease"
	// ActivityDeploy tells the app's deploy target to switch (DeployRequest →
	// DeployReceipt). It is idempotent by DeployRequest.RollbackID.
	ActivityDeploy = "Deploy"
	// ActivityRecordRollback stores a RollbackRecord as evidence.
	ActivityRecordRollback = "RecordRollback"
	// ActivityMarkKnownGood records that a release was healthy long enough
	// (KnownGoodRequest).
	ActivityMarkKnownGood = "MarkKnownGood"
	// ActivityPullHealth reads one HealthSample from Prometheus (PullRequest).
	ActivityPullHealth = "PullHealth"
	// ActivityGuardRules resolves an app's guard rules from policy
	// (GuardRulesRequest → Rules), as a local activity.
	ActivityGuardRules = "GuardRules"
)

// Signals and query of RollbackWorkflow, and the guard signal it sends.
const (
	// SignalRollbackJoined carries a RollbackRequest made while this
	// rollback was running: it is recorded, and no second rollback starts.
	SignalRollbackJoined = "rollback-requested"
	// SignalRecovery carries the guard's first conclusive evaluation of the
	// release rolled back to (RecoveryReport).
	SignalRecovery = "recovery"
	// SignalRollbackStarted tells the guard a rollback of its app started
	// (RollbackNotice), so that it stops judging the release being left.
	SignalRollbackStarted = "rollback-started"
	// SignalRollbackFinished tells the guard how a rollback ended
	// (RollbackNotice with Outcome): after a failed one it watches the
	// release it was leaving again.
	SignalRollbackFinished = "rollback-finished"
	QueryRollbackStatus    = "rollback-status"
)

// Rollback outcomes.
const (
	OutcomeRecovered    = "recovered"     // the guard judged the release rolled back to healthy
	OutcomeNotRecovered = "not-recovered" // it breached too
	OutcomeUnconfirmed  = "unconfirmed"   // no conclusive data within the confirmation window
	OutcomeFailed       = "failed"        // no target, or the deploy target refused
)

// GuardWorkflowID is the workflow ID of an app's guard.
func GuardWorkflowID(tenant, app string) string { return "guard/" + tenant + "/" + app }

// RollbackWorkflowID is the workflow ID of an app's rollback. One ID per app
// is what keeps two rollbacks of an app from running at once.
func RollbackWorkflowID(tenant, app string) string { return "rollback/" + tenant + "/" + app }

// PickRequest asks for the release to roll back to.
type PickRequest struct {
	Tenant string `json:"tenant"`
	App    string `json:"app"`
	From   string `json:"from"`
	To     string `json:"to,omitempty"`
}

// Skipped is a release the pick passed over.
type Skipped struct {
	ReleaseID string `json:"release_id"`
	Reason    string `json:"reason"`
}

// RollbackTarget is the picked release.
type RollbackTarget struct {
	Release   ReleaseRef `json:"release"`
	KnownGood bool       `json:"known_good"`
	Evidence  string     `json:"evidence"`
	Skipped   []Skipped  `json:"skipped,omitempty"`
}

// DeployRequest asks the app's deploy target to make a release live.
type DeployRequest struct {
	Tenant      string     `json:"tenant"`
	App         string     `json:"app"`
	Release     ReleaseRef `json:"release"`
	FromRelease string     `json:"from_release"`
	RollbackID  string     `json:"rollback_id"`
	Reason      string     `json:"reason"`
	Trigger     string     `json:"trigger"`
}

// DeployReceipt is what the deploy target answered.
type DeployReceipt struct {
	Target    string `json:"target"`
	Status    int    `json:"status,omitempty"`
	Detail    string `json:"detail,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// KnownGoodRequest marks a release known-good.
type KnownGoodRequest struct {
	Tenant       string        `json:"tenant"`
	App          string        `json:"app"`
	ReleaseID    string        `json:"release_id"`
	HealthySince time.Time     `json:"healthy_since"`
	At           time.Time     `json:"at"`
	Measurements []Measurement `json:"measurements"`
}

// PullRequest asks for one sample at a time.
type PullRequest struct {
	Tenant  string        `json:"tenant"`
	App     string        `json:"app"`
	Queries HealthQueries `json:"queries"`
	At      time.Time     `json:"at"`
}

// PullResult is a pulled sample and the signals that had no data.
type PullResult struct {
	Sample  HealthSample `json:"sample"`
	Missing []string     `json:"missing,omitempty"`
}

// GuardRulesRequest asks policy for an app's guard rules.
type GuardRulesRequest struct {
	Tenant string `json:"tenant"`
	App    string `json:"app"`
}

// RollbackNotice tells the guard a rollback started.
type RollbackNotice struct {
	RollbackID string `json:"rollback_id"`
	Trigger    string `json:"trigger"`
	Reason     string `json:"reason"`
	// FromRelease is the release being left.
	FromRelease string `json:"from_release,omitempty"`
	// Outcome is set when the rollback finished.
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
}

// RecoveryReport is the guard's first conclusive judgement of the release a
// rollback went to.
type RecoveryReport struct {
	ReleaseID   string       `json:"release_id"`
	At          time.Time    `json:"at"`
	Healthy     bool         `json:"healthy"`
	Evaluations []Evaluation `json:"evaluations"`
}

// RollbackRecord is the evidence of one rollback: what was measured against
// which thresholds, the releases, who or what asked, and how it went.
type RollbackRecord struct {
	Schema     string            `json:"schema"`
	RollbackID string            `json:"rollback_id"`
	RunID      string            `json:"run_id"`
	Tenant     string            `json:"tenant"`
	App        string            `json:"app"`
	Requests   []RollbackRequest `json:"requests"`
	From       string            `json:"from_release"`
	Target     *RollbackTarget   `json:"target,omitempty"`
	Deploy     *DeployReceipt    `json:"deploy,omitempty"`
	Recovery   *RecoveryReport   `json:"recovery,omitempty"`
	Outcome    string            `json:"outcome"`
	Error      string            `json:"error,omitempty"`
	StartedAt  time.Time         `json:"started_at"`
	DeployedAt time.Time         `json:"deployed_at,omitzero"`
	FinishedAt time.Time         `json:"finished_at"`
}

// RollbackRecordSchema is RollbackRecord.Schema.
const RollbackRecordSchema = "tollgate/rollback/v1"

// RollbackResult is what RollbackWorkflow returns and its status query
// answers while it runs.
type RollbackResult struct {
	RollbackID string          `json:"rollback_id"`
	Phase      string          `json:"phase"`
	Outcome    string          `json:"outcome,omitempty"`
	Target     *RollbackTarget `json:"target,omitempty"`
	Requests   int             `json:"requests"`
	Evidence   report.Evidence `json:"evidence,omitzero"`
}

// Rollback phases.
const (
	PhasePicking    = "picking"
	PhaseDeploying  = "deploying"
	PhaseConfirming = "confirming"
	PhaseRecording  = "recording"
	PhaseDone       = "done"
)

// defaultConfirmWithin bounds the wait for the guard's judgement when the
// request does not say.
const defaultConfirmWithin = 10 * time.Minute

var (
	pickOptions = workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second, MaximumAttempts: 5},
	}
	// A deploy retries for about ten minutes: the deploy target dedupes by
	// the rollback ID, so a retry after a lost reply deploys nothing twice.
	deployOptions = workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute, MaximumAttempts: 15},
	}
	// Recording retries for about ten minutes, then gives up: a rollback
	// that cannot record must end (failed), or it holds the app's rollback
	// id and no other rollback of the app can start. A refusal retrying
	// cannot fix (ErrTypeRecordRefused) ends it at once.
	recordOptions = workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute, MaximumAttempts: 15,
			NonRetryableErrorTypes: []string{ErrTypeRecordRefused}},
	}
)

// RollbackWorkflow rolls an app back: it picks the release to go to, tells
// the deploy target, hands the release to the guard and waits for the guard's
// first conclusive judgement of it, then stores the whole decision as
// evidence. It runs under RollbackWorkflowID, so an app has at most one
// running; requests made meanwhile join it by SignalRollbackJoined.
func RollbackWorkflow(ctx workflow.Context, req RollbackRequest) (RollbackResult, error) {
	logger := workflow.GetLogger(ctx)
	info := workflow.GetInfo(ctx)
	if req.App == "" || req.Tenant == "" {
		return RollbackResult{}, temporal.NewNonRetryableApplicationError("rollback: no app or tenant", "BadRequest", nil)
	}
	rec := RollbackRecord{
		Schema: RollbackRecordSchema, RollbackID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		Tenant: req.Tenant, App: req.App, Requests: []RollbackRequest{req}, From: req.FromRelease,
		StartedAt: workflow.Now(ctx),
	}
	res := RollbackResult{RollbackID: rec.RollbackID, Phase: PhasePicking, Requests: 1}
	if err := workflow.SetQueryHandler(ctx, QueryRollbackStatus, func() (RollbackResult, error) {
		res.Requests = len(rec.Requests)
		return res, nil
	}); err != nil {
		return res, err
	}
	joined := workflow.GetSignalChannel(ctx, SignalRollbackJoined)
	drainJoins := func() {
		for {
			var j RollbackRequest
			if !joined.ReceiveAsync(&j) {
				return
			}
			logger.Info("rollback request joined the running rollback", "app", req.App, "trigger", j.Trigger)
			rec.Requests = append(rec.Requests, j)
		}
	}
	guardID := GuardWorkflowID(req.Tenant, req.App)
	// The guard stops judging the release being left. It may not exist (an
	// app rolled back by hand before it was ever guarded).
	notice := RollbackNotice{RollbackID: rec.RollbackID, Trigger: req.Trigger, Reason: req.Reason, FromRelease: req.FromRelease}
	if err := workflow.SignalExternalWorkflow(ctx, guardID, "", SignalRollbackStarted, notice).Get(ctx, nil); err != nil {
		logger.Info("no guard to tell about the rollback", "app", req.App, "error", err)
	}

	finish := func(outcome string, cause error) (RollbackResult, error) {
		drainJoins()
		res.Phase, res.Outcome, rec.Outcome = PhaseRecording, outcome, outcome
		if cause != nil {
			rec.Error = cause.Error()
		}
		rec.FinishedAt = workflow.Now(ctx)
		var ev report.Evidence
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, recordOptions), ActivityRecordRollback, rec).Get(ctx, &ev); err != nil {
			// Without its evidence the rollback failed, whatever the deploy
			// did; ending here frees the app's rollback id for the next one.
			res.Phase, res.Outcome = PhaseDone, OutcomeFailed
			rollbackMetrics(ctx, req, OutcomeFailed)
			logger.Error("rollback not recorded", "app", req.App, "outcome", outcome, "error", err)
			return res, fmt.Errorf("record rollback of %s (outcome %s): %w", req.App, outcome, err)
		}
		res.Phase, res.Evidence, res.Requests = PhaseDone, ev, len(rec.Requests)
		rollbackMetrics(ctx, req, outcome)
		if outcome == OutcomeFailed {
			notice.Outcome, notice.Error = outcome, rec.Error
			if err := workflow.SignalExternalWorkflow(ctx, guardID, "", SignalRollbackFinished, notice).Get(ctx, nil); err != nil {
				logger.Info("no guard to tell the rollback failed", "app", req.App, "error", err)
			}
		}
		logger.Info("rollback finished", "app", req.App, "outcome", outcome)
		if cause != nil {
			return res, cause
		}
		return res, nil
	}

	var target RollbackTarget
	pick := PickRequest{Tenant: req.Tenant, App: req.App, From: req.FromRelease, To: req.ToRelease}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, pickOptions), ActivityPickRelease, pick).Get(ctx, &target); err != nil {
		return finish(OutcomeFailed, fmt.Errorf("pick a release to roll %s back to: %w", req.App, err))
	}
	rec.Target, res.Target = &target, &target
	drainJoins()

	res.Phase = PhaseDeploying
	var receipt DeployReceipt
	dreq := DeployRequest{
		Tenant: req.Tenant, App: req.App, Release: target.Release, FromRelease: req.FromRelease,
		RollbackID: rec.RollbackID + "/" + rec.RunID, Reason: req.Reason, Trigger: req.Trigger,
	}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, deployOptions), ActivityDeploy, dreq).Get(ctx, &receipt); err != nil {
		return finish(OutcomeFailed, fmt.Errorf("deploy release %s of %s: %w", target.Release.ID, req.App, err))
	}
	rec.Deploy, rec.DeployedAt = &receipt, workflow.Now(ctx)
	if !req.BreachAt.IsZero() {
		workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"app": req.App}).
			Timer(MetricBreachToRollback).Record(rec.DeployedAt.Sub(req.BreachAt))
	}

	// The guard watches the release rolled back to and reports its first
	// conclusive evaluation back here.
	res.Phase = PhaseConfirming
	ref := target.Release
	ref.RollbackID = rec.RollbackID
	if err := workflow.SignalExternalWorkflow(ctx, guardID, "", SignalRelease, ref).Get(ctx, nil); err != nil {
		logger.Warn("no guard to confirm the rollback", "app", req.App, "error", err)
		return finish(OutcomeUnconfirmed, nil)
	}
	recovery := workflow.GetSignalChannel(ctx, SignalRecovery)
	timedOut := false
	tctx, cancelTimer := workflow.WithCancel(ctx)
	timer := workflow.NewTimer(tctx, cmp.Or(req.ConfirmWithin, defaultConfirmWithin))
	for rec.Recovery == nil && !timedOut {
		workflow.NewSelector(ctx).
			AddReceive(recovery, func(c workflow.ReceiveChannel, _ bool) {
				var r RecoveryReport
				c.Receive(ctx, &r)
				if r.ReleaseID == target.Release.ID {
					rec.Recovery = &r
				}
			}).
			AddReceive(joined, func(c workflow.ReceiveChannel, _ bool) {
				var j RollbackRequest
				c.Receive(ctx, &j)
				rec.Requests = append(rec.Requests, j)
			}).
			AddFuture(timer, func(workflow.Future) { timedOut = true }).
			Select(ctx)
	}
	cancelTimer()
	switch {
	case rec.Recovery == nil:
		return finish(OutcomeUnconfirmed, nil)
	case rec.Recovery.Healthy:
		return finish(OutcomeRecovered, nil)
	default:
		return finish(OutcomeNotRecovered, nil)
	}
}

// Metric names, emitted through the Temporal SDK's metrics handler so that
// replays do not count twice. MetricBreachToRollback runs from the start of
// the breached window to the deploy: how long users saw the breach.
const (
	MetricRollbacks           = "tollgate_rollbacks"
	MetricBreachToRollback    = "tollgate_rollback_breach_to_deploy"
	MetricInconclusiveWindows = "tollgate_guard_inconclusive_windows"
)

// rollbackMetrics counts a finished rollback by app, trigger kind, reason
// (the signal that breached, or "manual") and outcome.
func rollbackMetrics(ctx workflow.Context, req RollbackRequest, outcome string) {
	trigger, reason := "manual", "manual"
	if req.Trigger == TriggerGuard {
		trigger = TriggerGuard
		var signals []string
		for _, m := range req.Measurements {
			signals = append(signals, m.Signal)
		}
		reason = cmp.Or(strings.Join(signals, "+"), "breach")
	}
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{
		"app": req.App, "trigger": trigger, "reason": reason, "outcome": outcome,
	}).Counter(MetricRollbacks).Inc(1)
}

// ErrTypeNoTarget is the non-retryable error type PickRelease fails with
// when there is nothing to roll back to.
const ErrTypeNoTarget = "NoRollbackTarget"

// ErrTypeRecordRefused is the non-retryable error type RecordRollback fails
// with when the store refuses the record for good.
const ErrTypeRecordRefused = "RollbackRecordRefused"

// IsNoTarget reports whether err is PickRelease's "nothing to roll back to".
func IsNoTarget(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == ErrTypeNoTarget
}

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

	"github.com/tollgate/tollgate/health"
)

// ActivityStartRollback starts a RollbackWorkflow for an app. It must be
// idempotent: the guard may call it again after a lost reply.
const ActivityStartRollback = "StartRollback"

// Signals and the query of GuardWorkflow.
const (
	SignalHealthSample  = "health-sample"  // HealthSample (one; earlier APIs)
	SignalHealthSamples = "health-samples" // HealthBatch: one push, one signal
	SignalFreeze        = "freeze"         // FreezeRequest
	SignalUnfreeze      = "unfreeze"       // no payload
	SignalRelease       = "release"        // ReleaseRef: watch this release from now on
	SignalStop          = "stop"           // no payload: the guard returns
	QueryGuardStatus    = "guard-status"   // GuardStatus
)

// TriggerGuard is RollbackRequest.Trigger for rollbacks the guard starts.
const TriggerGuard = "guard"

// Decision actions.
const (
	ActionNone           = "none"
	ActionAlert          = "alert"
	ActionRollback       = "rollback"
	ActionDryRunRollback = "dry-run-rollback"
	ActionInconclusive   = "inconclusive"
	ActionKnownGood      = "known-good"
)

// guardTicksPerRun bounds one run's history; the guard then continues as new
// with its state.
const guardTicksPerRun = 500

// guardDecisionsKept is how many decisions the status keeps.
const guardDecisionsKept = 20

// Limits on pushed health samples (workflow version "health-push" on). A
// pushed sample dated more than PushClockSkew after the guard's now, or
// older than the rules' longest window, is refused; so is any pushed sample
// beyond MaxPushedSamples in the store, which holds one longest window (plus
// an interval) of samples: whatever is pushed, the guard's state and the
// continue-as-new payload stay bounded (1000 samples are about 150 KB).
const (
	PushClockSkew    = 2 * time.Minute
	MaxPushedSamples = 1000
)

// Where a sample came from (HealthSample.Source).
const (
	SourcePush = ""     // pushed through the API
	SourcePull = "pull" // pulled by the guard from Prometheus
)

// HealthBatch is the payload of the "health-samples" signal: one push.
type HealthBatch struct {
	Samples []HealthSample `json:"samples"`
}

// GuardRequest starts one GuardWorkflow, one per app. A request without a
// release waits for a "release" signal.
type GuardRequest struct {
	Tenant  string     `json:"tenant"`
	App     string     `json:"app"`
	Release ReleaseRef `json:"release"`
	// Rules apply unless RulesFromPolicy is set; then each run of the guard
	// asks policy (ActivityGuardRules), so a policy change applies from the
	// next continue-as-new.
	Rules           Rules `json:"rules"`
	RulesFromPolicy bool  `json:"rules_from_policy,omitempty"`
	// State is carried over by continue-as-new; callers leave it nil.
	State *GuardState `json:"state,omitempty"`
}

// GuardState is what one run of the guard hands to the next.
type GuardState struct {
	Frozen       bool      `json:"frozen,omitempty"`
	FreezeReason string    `json:"freeze_reason,omitempty"`
	FrozenAt     time.Time `json:"frozen_at,omitzero"`
	// WatchingSince is when the current release started being watched;
	// older samples belong to the release before it.
	WatchingSince time.Time `json:"watching_since,omitzero"`
	// AwaitingRelease is set once a rollback started: the guard evaluates
	// nothing until the release rolled back to is signalled.
	AwaitingRelease bool `json:"awaiting_release,omitempty"`
	// PushRefused counts the pushed samples refused: outside the clock
	// window, or over MaxPushedSamples.
	PushRefused int `json:"push_refused,omitempty"`
	Breaches    int `json:"breaches,omitempty"`
	// BreachAt is when the current run of breaches began: the start of the
	// breached window when it was first found.
	BreachAt time.Time `json:"breach_at,omitzero"`
	// HealthySince is the first of the current run of healthy evaluations;
	// KnownGood is set once the release was marked known-good.
	HealthySince time.Time `json:"healthy_since,omitzero"`
	KnownGood    bool      `json:"known_good,omitempty"`
	// RollbackFailed is the release a rollback away from failed: the guard
	// alerts on it but does not start another rollback by itself.
	RollbackFailed string         `json:"rollback_failed,omitempty"`
	Samples        []HealthSample `json:"samples,omitempty"`
	Current        []Evaluation   `json:"current,omitempty"`
	EvaluatedAt    time.Time      `json:"evaluated_at,omitzero"`
	Decisions      []Decision     `json:"decisions,omitempty"`
}

// FreezeRequest is the payload of the "freeze" signal.
type FreezeRequest struct {
	Reason string `json:"reason"`
}

// Decision is what the guard did about one evaluation. Repeated evaluations
// with the same action are folded into one decision: Repeats counts them and
// Until is the last.
type Decision struct {
	At           time.Time     `json:"at"`
	Action       string        `json:"action"`
	Reason       string        `json:"reason"`
	Measurements []Measurement `json:"measurements"`
	Repeats      int           `json:"repeats,omitempty"`
	Until        time.Time     `json:"until,omitzero"`
}

// RollbackRequest asks for a rollback of App away from FromRelease. The
// activity behind ActivityStartRollback passes it to RollbackWorkflow.
type RollbackRequest struct {
	Tenant      string `json:"tenant"`
	App         string `json:"app"`
	FromRelease string `json:"from_release"`
	// ToRelease names the release to go to; empty picks the newest
	// known-good one before FromRelease.
	ToRelease string `json:"to_release,omitempty"`
	Reason    string `json:"reason"`
	// Trigger is who or what asked: TriggerGuard, or an on-call user.
	Trigger     string    `json:"trigger"`
	RequestedAt time.Time `json:"requested_at"`
	// Measurements are the breaches that caused it, under Rules; BreachAt
	// is when the breach was first found.
	Measurements []Measurement `json:"measurements,omitempty"`
	Rules        *Rules        `json:"rules,omitempty"`
	BreachAt     time.Time     `json:"breach_at,omitzero"`
	// ConfirmWithin bounds the wait for the guard's judgement of the
	// release rolled back to (default 10 minutes).
	ConfirmWithin time.Duration `json:"confirm_within,omitempty"`
}

// GuardStatus answers the "guard-status" query.
type GuardStatus struct {
	Tenant  string     `json:"tenant"`
	App     string     `json:"app"`
	Release ReleaseRef `json:"release"`
	Rules   Rules      `json:"rules"`
	GuardState
}

var startRollbackOptions = workflow.ActivityOptions{
	StartToCloseTimeout: time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second,
		MaximumInterval: 30 * time.Second,
		MaximumAttempts: 5,
	},
}

// GuardWorkflow watches one app's release health and rolls it back when the
// rules say so. It runs until a "stop" signal, continuing as new now and then.
//
// Every SampleInterval it evaluates the rules over the samples received by
// signal. A breach found ConsecutiveBreaches evaluations in a row starts a
// rollback, unless the app is frozen (then it is an alert) or the rules are a
// dry run (then the decision is only recorded). After starting a rollback the
// guard waits for the "release" signal naming what was rolled back to.
func GuardWorkflow(ctx workflow.Context, req GuardRequest) error {
	logger := workflow.GetLogger(ctx)
	if req.App == "" {
		return errors.New("guard: no app")
	}
	rules := req.Rules
	if req.RulesFromPolicy {
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 10 * time.Second,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
		})
		if err := workflow.ExecuteLocalActivity(lctx, ActivityGuardRules, GuardRulesRequest{Tenant: req.Tenant, App: req.App}).Get(ctx, &rules); err != nil {
			return fmt.Errorf("guard app %q: rules from policy: %w", req.App, err)
		}
	}
	rules = rules.WithDefaults()
	if err := rules.Validate(); err != nil {
		return fmt.Errorf("guard app %q: %w", req.App, err)
	}
	g := &guard{tenant: req.Tenant, app: req.App, release: req.Release, rules: rules}
	// Versioned: pushed samples are held to a clock window and a cap, and a
	// pulled sample outvotes the pushed ones of its period. Runs started
	// before replay without it.
	g.pushLimits = workflow.GetVersion(ctx, "health-push", workflow.DefaultVersion, 1) >= 1
	if req.State != nil {
		g.GuardState = *req.State
	} else {
		g.WatchingSince = workflow.Now(ctx)
		g.AwaitingRelease = req.Release.ID == ""
	}
	if err := workflow.SetQueryHandler(ctx, QueryGuardStatus, func() (GuardStatus, error) { return g.status(), nil }); err != nil {
		return err
	}

	samples := workflow.GetSignalChannel(ctx, SignalHealthSample)
	batches := workflow.GetSignalChannel(ctx, SignalHealthSamples)
	started := workflow.GetSignalChannel(ctx, SignalRollbackStarted)
	finished := workflow.GetSignalChannel(ctx, SignalRollbackFinished)
	freeze := workflow.GetSignalChannel(ctx, SignalFreeze)
	unfreeze := workflow.GetSignalChannel(ctx, SignalUnfreeze)
	release := workflow.GetSignalChannel(ctx, SignalRelease)
	stop := workflow.GetSignalChannel(ctx, SignalStop)

	// onSignals adds every signal to a selector; one Select handles one.
	onSignals := func(s workflow.Selector) workflow.Selector {
		return s.
			AddReceive(samples, func(c workflow.ReceiveChannel, _ bool) {
				var hs HealthSample
				c.Receive(ctx, &hs)
				g.push(ctx, hs)
			}).
			AddReceive(batches, func(c workflow.ReceiveChannel, _ bool) {
				var b HealthBatch
				c.Receive(ctx, &b)
				for _, hs := range b.Samples {
					g.push(ctx, hs)
				}
			}).
			AddReceive(freeze, func(c workflow.ReceiveChannel, _ bool) {
				var f FreezeRequest
				c.Receive(ctx, &f)
				g.Frozen, g.FreezeReason, g.FrozenAt = true, f.Reason, workflow.Now(ctx)
				logger.Info("guard frozen", "app", g.app, "reason", f.Reason)
			}).
			AddReceive(unfreeze, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, nil)
				g.Frozen, g.FreezeReason, g.FrozenAt = false, "", time.Time{}
				logger.Info("guard unfrozen", "app", g.app)
			}).
			AddReceive(release, func(c workflow.ReceiveChannel, _ bool) {
				var r ReleaseRef
				c.Receive(ctx, &r)
				g.watch(ctx, r)
				logger.Info("guard watching release", "app", g.app, "release", r.ID)
			}).
			AddReceive(started, func(c workflow.ReceiveChannel, _ bool) {
				var n RollbackNotice
				c.Receive(ctx, &n)
				g.rollbackStarted(ctx, n)
			}).
			AddReceive(finished, func(c workflow.ReceiveChannel, _ bool) {
				var n RollbackNotice
				c.Receive(ctx, &n)
				g.rollbackFinished(ctx, n)
			}).
			AddReceive(stop, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, nil)
				g.stopped = true
			})
	}

	// Ticks, not evaluations, bound a run: a guard awaiting a release still
	// adds a timer to the history every interval.
	ticks := 0
	for {
		fired := false
		timer := workflow.NewTimer(ctx, rules.SampleInterval)
		for !fired && !g.stopped {
			onSignals(workflow.NewSelector(ctx)).AddFuture(timer, func(workflow.Future) { fired = true }).Select(ctx)
		}
		if g.stopped {
			logger.Info("guard stopped", "app", g.app)
			return nil
		}
		if !g.AwaitingRelease {
			g.pull(ctx)
			g.evaluate(ctx)
		}
		ticks++
		if ticks >= guardTicksPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			// Signals already delivered to this run would be lost: take them
			// first.
			for {
				s := onSignals(workflow.NewSelector(ctx))
				if !s.HasPending() {
					break
				}
				s.Select(ctx)
			}
			if g.stopped {
				return nil
			}
			g.prune(workflow.Now(ctx))
			state := g.GuardState
			return workflow.NewContinueAsNewError(ctx, GuardWorkflow, GuardRequest{
				Tenant: g.tenant, App: g.app, Release: g.release, Rules: req.Rules, RulesFromPolicy: req.RulesFromPolicy, State: &state,
			})
		}
	}
}

// guard is one run's state. Only the workflow goroutine touches it.
type guard struct {
	tenant  string
	app     string
	release ReleaseRef
	rules   Rules
	stopped bool
	// pushLimits: see PushClockSkew and (*guard).judged.
	pushLimits bool
	GuardState
}

func (g *guard) status() GuardStatus {
	return GuardStatus{Tenant: g.tenant, App: g.app, Release: g.release, Rules: g.rules, GuardState: g.GuardState}
}

func (g *guard) addSample(ctx workflow.Context, s HealthSample) {
	logger := workflow.GetLogger(ctx)
	if err := s.Validate(); err != nil {
		logger.Warn("guard dropped a health sample", "app", g.app, "error", err)
		return
	}
	if g.AwaitingRelease || !s.At.After(g.WatchingSince) {
		return // the previous release's, or one being rolled back
	}
	g.Samples = append(g.Samples, s)
}

// push adds a pushed sample. With pushLimits it refuses one dated outside
// [now - longest window, now + PushClockSkew] (one dated ahead would keep a
// window "healthy" and fresh), and any beyond MaxPushedSamples in the store.
func (g *guard) push(ctx workflow.Context, s HealthSample) {
	s.Source = SourcePush
	if !g.pushLimits {
		g.addSample(ctx, s)
		return
	}
	now := workflow.Now(ctx)
	why := ""
	switch {
	case s.At.After(now.Add(PushClockSkew)):
		why = "dated ahead of the guard's clock"
	case !s.At.After(now.Add(-g.rules.LongestWindow())):
		why = "older than the longest window"
	case g.pushed() >= MaxPushedSamples:
		why = "over the cap of pushed samples per window"
	}
	if why != "" {
		g.PushRefused++
		workflow.GetLogger(ctx).Warn("guard refused a pushed health sample", "app", g.app, "at", s.At, "why", why)
		return
	}
	g.addSample(ctx, s)
}

// pushed counts the pushed samples in the store.
func (g *guard) pushed() int {
	n := 0
	for _, s := range g.Samples {
		if s.Source != SourcePull {
			n++
		}
	}
	return n
}

// judged returns the samples the rules judge. With pushLimits, a pushed
// sample within one SampleInterval of a pulled one describes the same
// period, and the pulled one stands alone: pushed samples fill the periods
// the pull has no sample for, and never outvote it (a healthy push cannot
// turn a pulled breach into healthy, nor a pulled gap into a stale window).
func (g *guard) judged() []HealthSample {
	if !g.pushLimits {
		return g.Samples
	}
	var pulled []time.Time
	for _, s := range g.Samples {
		if s.Source == SourcePull {
			pulled = append(pulled, s.At)
		}
	}
	if len(pulled) == 0 {
		return g.Samples
	}
	out := make([]HealthSample, 0, len(g.Samples))
	for _, s := range g.Samples {
		if s.Source != SourcePull && slices.ContainsFunc(pulled, func(p time.Time) bool {
			d := s.At.Sub(p)
			return d > -g.rules.SampleInterval && d < g.rules.SampleInterval
		}) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// watch switches to a new release: its windows start empty.
func (g *guard) watch(ctx workflow.Context, r ReleaseRef) {
	g.release = r
	g.WatchingSince = workflow.Now(ctx)
	g.AwaitingRelease = r.ID == ""
	g.Breaches, g.BreachAt = 0, time.Time{}
	g.HealthySince, g.KnownGood = time.Time{}, false
	g.Samples = nil
	g.Current = nil
}

// rollbackStarted stops judging the release being left. A rollback the
// guard started itself is already recorded.
func (g *guard) rollbackStarted(ctx workflow.Context, n RollbackNotice) {
	if g.AwaitingRelease {
		return
	}
	g.AwaitingRelease = true
	g.Breaches, g.BreachAt = 0, time.Time{}
	g.record(Decision{At: workflow.Now(ctx), Action: ActionRollback, Reason: fmt.Sprintf("rollback %s by %s: %s", n.RollbackID, n.Trigger, n.Reason)})
	workflow.GetLogger(ctx).Info("guard saw a rollback start", "app", g.app, "trigger", n.Trigger)
}

// rollbackFinished resumes watching the release a failed rollback could not
// leave; the guard will alert on it, but not roll it back by itself again.
func (g *guard) rollbackFinished(ctx workflow.Context, n RollbackNotice) {
	if n.Outcome != OutcomeFailed || !g.AwaitingRelease {
		return
	}
	g.AwaitingRelease = false
	g.RollbackFailed = cmp.Or(n.FromRelease, g.release.ID)
	g.record(Decision{At: workflow.Now(ctx), Action: ActionAlert, Reason: fmt.Sprintf("rollback %s failed, still on %s: %s", n.RollbackID, g.release.ID, n.Error)})
	workflow.GetLogger(ctx).Warn("guard saw a rollback fail", "app", g.app, "error", n.Error)
}

var pullOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 20 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 2},
}

// pull adds a sample read from Prometheus, when the rules have queries. A
// failed pull adds nothing: the window goes inconclusive, never healthy.
func (g *guard) pull(ctx workflow.Context) {
	if g.rules.Queries.IsZero() {
		return
	}
	var res PullResult
	req := PullRequest{Tenant: g.tenant, App: g.app, Queries: g.rules.Queries, At: workflow.Now(ctx)}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, pullOptions), ActivityPullHealth, req).Get(ctx, &res); err != nil {
		workflow.GetLogger(ctx).Warn("guard could not pull health", "app", g.app, "error", err)
		return
	}
	res.Sample.Source = SourcePull
	g.addSample(ctx, res.Sample)
}

// prune drops the samples no window reaches any more.
func (g *guard) prune(now time.Time) {
	start := now.Add(-g.rules.LongestWindow())
	kept := g.Samples[:0]
	for _, s := range g.Samples {
		if s.At.After(start) {
			kept = append(kept, s)
		}
	}
	g.Samples = kept
}

// evaluate applies the rules at the current time and acts on the outcome.
func (g *guard) evaluate(ctx workflow.Context) {
	logger := workflow.GetLogger(ctx)
	now := workflow.Now(ctx)
	g.prune(now)
	evs := health.Evaluate(g.judged(), now, g.rules, g.release.BaselineP95)
	g.Current, g.EvaluatedAt = evs, now

	var breaches, inconclusive []string
	var all, breached []Measurement
	for _, ev := range evs {
		all = append(all, ev.Measurement)
		switch ev.Outcome {
		case OutcomeBreach:
			breaches = append(breaches, ev.Reason)
			breached = append(breached, ev.Measurement)
		case OutcomeInconclusive:
			inconclusive = append(inconclusive, ev.Reason)
		}
	}
	// Anything but a breach, missing data included, breaks a run of breaches.
	if len(breaches) == 0 {
		g.Breaches, g.BreachAt = 0, time.Time{}
	} else {
		if g.Breaches == 0 {
			// Every sample of the window breached: the breach began no
			// later than the start of the longest breached window.
			var longest time.Duration
			for _, m := range breached {
				longest = max(longest, m.Window)
			}
			g.BreachAt = now.Add(-longest)
		}
		g.Breaches++
	}
	healthy := len(breaches) == 0 && len(inconclusive) == 0
	if len(inconclusive) > 0 {
		workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"app": g.app}).Counter(MetricInconclusiveWindows).Inc(1)
	}
	g.reportRecovery(ctx, evs, len(inconclusive) == 0)
	g.trackKnownGood(ctx, healthy, all)

	d := Decision{At: now, Action: ActionNone, Reason: "healthy", Measurements: all}
	switch {
	case len(breaches) > 0 && g.Breaches < g.rules.ConsecutiveBreaches:
		d.Action = ActionAlert
		d.Reason = fmt.Sprintf("breach %d of %d in a row: %s", g.Breaches, g.rules.ConsecutiveBreaches, strings.Join(breaches, "; "))
	case len(breaches) > 0 && g.Frozen:
		d.Action = ActionAlert
		d.Reason = fmt.Sprintf("frozen (%s), not rolling back: %s", g.FreezeReason, strings.Join(breaches, "; "))
	case len(breaches) > 0 && g.RollbackFailed == g.release.ID:
		d.Action = ActionAlert
		d.Reason = fmt.Sprintf("a rollback from %s already failed, not starting another: %s", g.release.ID, strings.Join(breaches, "; "))
	case len(breaches) > 0 && g.rules.DryRun:
		d.Action = ActionDryRunRollback
		d.Reason = strings.Join(breaches, "; ")
	case len(breaches) > 0:
		d.Action = ActionRollback
		d.Reason = strings.Join(breaches, "; ")
		rules := g.rules
		rb := RollbackRequest{
			Tenant: g.tenant, App: g.app, FromRelease: g.release.ID, Reason: d.Reason, Trigger: TriggerGuard,
			RequestedAt: now, Measurements: breached, Rules: &rules, BreachAt: g.BreachAt,
			ConfirmWithin: g.rules.LongestWindow() + 2*g.rules.SampleInterval,
		}
		actx := workflow.WithActivityOptions(ctx, startRollbackOptions)
		if err := workflow.ExecuteActivity(actx, ActivityStartRollback, rb).Get(ctx, nil); err != nil {
			// The breach stands: the next evaluation tries again.
			logger.Error("guard could not start a rollback", "app", g.app, "release", g.release.ID, "error", err)
			d.Action = ActionAlert
			d.Reason = fmt.Sprintf("start rollback failed (%v): %s", err, d.Reason)
		} else {
			logger.Info("guard started a rollback", "app", g.app, "release", g.release.ID, "reason", d.Reason)
			g.AwaitingRelease = true
			g.Breaches, g.BreachAt = 0, time.Time{}
		}
	case len(inconclusive) > 0:
		d.Action = ActionInconclusive
		d.Reason = strings.Join(inconclusive, "; ")
	}
	g.record(d)
}

// record keeps d, folding it into the last decision when it repeats that
// action for the same release; the folded decision keeps the reason and the
// measurements of its first evaluation (GuardState.Current has the latest).
// Rollbacks are never folded: each one is an act of its own.
func (g *guard) record(d Decision) {
	if n := len(g.Decisions); n > 0 && d.Action != ActionRollback {
		if last := &g.Decisions[n-1]; last.Action == d.Action && !last.At.Before(g.WatchingSince) {
			last.Repeats++
			last.Until = d.At
			return
		}
	}
	g.Decisions = append(g.Decisions, d)
	if n := len(g.Decisions); n > guardDecisionsKept {
		g.Decisions = append([]Decision(nil), g.Decisions[n-guardDecisionsKept:]...)
	}
}

// reportRecovery tells the rollback that switched to this release how its
// first conclusive evaluation went.
func (g *guard) reportRecovery(ctx workflow.Context, evs []Evaluation, conclusive bool) {
	if g.release.RollbackID == "" || !conclusive {
		return
	}
	healthy := true
	for _, ev := range evs {
		healthy = healthy && ev.Outcome == OutcomeHealthy
	}
	r := RecoveryReport{ReleaseID: g.release.ID, At: workflow.Now(ctx), Healthy: healthy, Evaluations: evs}
	if err := workflow.SignalExternalWorkflow(ctx, g.release.RollbackID, "", SignalRecovery, r).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("guard could not report recovery", "app", g.app, "rollback", g.release.RollbackID, "error", err)
	}
	g.release.RollbackID = ""
}

var knownGoodOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second, MaximumAttempts: 5},
}

// trackKnownGood marks the release known-good once it has been judged
// healthy, without a break, for KnownGoodAfter. Missing data is a break.
func (g *guard) trackKnownGood(ctx workflow.Context, healthy bool, ms []Measurement) {
	now := workflow.Now(ctx)
	switch {
	case !healthy:
		g.HealthySince = time.Time{}
		return
	case g.HealthySince.IsZero():
		g.HealthySince = now
	}
	if g.KnownGood || now.Sub(g.HealthySince) < g.rules.KnownGoodAfter {
		return
	}
	req := KnownGoodRequest{Tenant: g.tenant, App: g.app, ReleaseID: g.release.ID, HealthySince: g.HealthySince, At: now, Measurements: ms}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, knownGoodOptions), ActivityMarkKnownGood, req).Get(ctx, nil); err != nil {
		// The next healthy evaluation tries again.
		workflow.GetLogger(ctx).Error("guard could not mark a release known-good", "app", g.app, "release", g.release.ID, "error", err)
		return
	}
	g.KnownGood = true
	g.record(Decision{At: now, Action: ActionKnownGood, Reason: fmt.Sprintf("healthy since %s", g.HealthySince.Format(time.RFC3339)), Measurements: ms})
	workflow.GetLogger(ctx).Info("guard marked a release known-good", "app", g.app, "release", g.release.ID)
}

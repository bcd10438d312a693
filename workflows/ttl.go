package workflows

import (
	"cmp"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tollgate/tollgate/report"
)

// Names of the idle-app TTL: its schedule, sweep and revive workflows, and
// activities. The sweep lists apps with ActivityRematchPage (every app with
// a recorded release) and deploys with ActivityDeploy, as a rollback does.
const (
	// TTLScheduleID is the Temporal Schedule that starts TTLWorkflow;
	// TTLWorkflowID the workflow id it starts.
	TTLScheduleID = "tollgate-ttl"
	TTLWorkflowID = "ttl"

	// ActivityAppActivity reads where an app stands (RematchRef →
	// AppActivity): its lifecycle state, its newest scan, release or
	// health traffic, its periods from policy and its live release.
	ActivityAppActivity = "AppActivity"
	// ActivityRecordLifecycle stores a LifecycleChange as write-once
	// evidence and emits its event (NATS tollgate.events.app.<tenant>.<app>
	// and the events webhook) (LifecycleChange → report.Evidence).
	ActivityRecordLifecycle = "RecordLifecycle"
	// ActivityDisableApp has the app's deploy target take it out of
	// service (DisableRequest → DeployReceipt), idempotent by its key.
	ActivityDisableApp = "DisableApp"
	// ActivityStopGuard stops the app's guard, if it runs (RematchRef).
	ActivityStopGuard = "StopGuard"
	// ActivityWatchRelease starts the app's guard again on a release
	// (WatchRequest).
	ActivityWatchRelease = "WatchRelease"
)

// Lifecycle states of an app (releases.StateActive and the others).
const (
	LifecycleActive   = "active"
	LifecycleIdle     = "idle"
	LifecycleArchived = "archived"
)

// TriggerTTL is LifecycleChange.By for the schedule's own changes.
const TriggerTTL = "ttl"

// ReviveWorkflowID is the workflow id of an app's revive: one at a time.
func ReviveWorkflowID(tenant, app string) string { return "revive/" + tenant + "/" + app }

// ttlAppsPerRun bounds one sweep run; it then continues as new.
const ttlAppsPerRun = 500

// TTLRequest is the input of TTLWorkflow. The schedule starts it empty:
// every tenant's apps from the first.
type TTLRequest struct {
	// Tenant, when set, limits the run to that tenant's apps.
	Tenant string `json:"tenant,omitempty"`
	// After is where a continued run resumes.
	After RematchRef `json:"after,omitzero"`
	// Totals are the counts of the runs before this one.
	Totals TTLResult `json:"totals,omitzero"`
	// PageSize and AppsPerRun override the defaults (tests).
	PageSize   int `json:"page_size,omitempty"`
	AppsPerRun int `json:"apps_per_run,omitempty"`
}

// TTLResult counts what a sweep did.
type TTLResult struct {
	Apps     int `json:"apps"`
	Failed   int `json:"failed,omitempty"`
	Idled    int `json:"idled,omitempty"`
	Cleared  int `json:"cleared,omitempty"`
	Archived int `json:"archived,omitempty"`
}

func (r TTLResult) plus(o TTLResult) TTLResult {
	return TTLResult{Apps: r.Apps + o.Apps, Failed: r.Failed + o.Failed, Idled: r.Idled + o.Idled, Cleared: r.Cleared + o.Cleared, Archived: r.Archived + o.Archived}
}

// AppActivity is where an app stands for the TTL.
type AppActivity struct {
	Tenant string `json:"tenant"`
	App    string `json:"app"`
	// State is the app's lifecycle state and Since when it began (zero for
	// an app never marked).
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"`
	// LastActivity is the newest of: its newest scan, its newest release,
	// its newest health sample with traffic, and its last revive or
	// cleared idle mark.
	LastActivity time.Time `json:"last_activity,omitzero"`
	// IdleAfter (zero: the TTL is off for the app) and Grace are the
	// app's periods from policy.
	IdleAfter time.Duration `json:"idle_after"`
	Grace     time.Duration `json:"grace"`
	// Release is the app's live release (its newest), when it has one.
	Release ReleaseRef `json:"release,omitzero"`
}

// LifecycleChange is a change of an app's lifecycle state, to record as
// evidence and announce.
type LifecycleChange struct {
	Tenant       string        `json:"tenant"`
	App          string        `json:"app"`
	State        string        `json:"state"`
	At           time.Time     `json:"at"`
	By           string        `json:"by"`
	Reason       string        `json:"reason"`
	LastActivity time.Time     `json:"last_activity,omitzero"`
	IdleAfter    time.Duration `json:"idle_after,omitempty"`
	Grace        time.Duration `json:"grace,omitempty"`
	// Event is the event's type: app.idle, app.active (idle cleared by
	// activity), app.archived or app.revived.
	Event        string         `json:"event"`
	ReleaseID    string         `json:"release_id,omitempty"`
	Deploy       *DeployReceipt `json:"deploy,omitempty"`
	GuardStopped bool           `json:"guard_stopped,omitempty"`
	GuardStarted bool           `json:"guard_started,omitempty"`
}

// Event types of lifecycle changes.
const (
	EventAppIdle     = "app.idle"
	EventAppActive   = "app.active"
	EventAppArchived = "app.archived"
	EventAppRevived  = "app.revived"
)

// DisableRequest asks the app's deploy target to take it out of service.
// Key is the idempotency key: the same for every retry of one archive.
type DisableRequest struct {
	Tenant    string `json:"tenant"`
	App       string `json:"app"`
	ReleaseID string `json:"release_id,omitempty"`
	Key       string `json:"key"`
	Reason    string `json:"reason"`
	Trigger   string `json:"trigger"`
}

// WatchRequest has an app's guard watch a release (started if stopped).
type WatchRequest struct {
	Tenant  string     `json:"tenant"`
	App     string     `json:"app"`
	Release ReleaseRef `json:"release"`
}

// TTL steps: what the sweep does to one app.
const (
	ttlNone    = ""
	ttlIdle    = "idle"
	ttlClear   = "clear"
	ttlArchive = "archive"
)

// ttlStep decides what the sweep does to an app at now: mark it idle after
// IdleAfter without activity, clear idle on activity since it was marked
// (or when the TTL was turned off), archive it after Grace more without
// any. An archived app stays archived until revived.
func ttlStep(a AppActivity, now time.Time) string {
	switch a.State {
	case LifecycleIdle:
		switch {
		case a.IdleAfter <= 0 || a.LastActivity.After(a.Since):
			return ttlClear
		case !now.Before(a.Since.Add(a.Grace)):
			return ttlArchive
		}
	case LifecycleArchived:
	default:
		if a.IdleAfter > 0 && !a.LastActivity.IsZero() && !now.Before(a.LastActivity.Add(a.IdleAfter)) {
			return ttlIdle
		}
	}
	return ttlNone
}

// ttlReadOptions are those of the TTL's reads and guard actions. A guard
// that cannot be stopped leaves the app idle, not archived: the next sweep
// tries again (the disable before it is idempotent by its key).
var ttlReadOptions = workflow.ActivityOptions{
	StartToCloseTimeout: time.Minute,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second, MaximumAttempts: 5},
}

// TTLWorkflow is the idle-app TTL's sweep. For every app with a recorded
// release (of req.Tenant, or every tenant) it reads the app's newest scan,
// release and health traffic and its periods from policy, and:
//   - marks an active app idle after IdleAfter (default 30 days) without
//     any: a lifecycle record, an app.idle event and the events webhook;
//   - clears idle when there was activity since (app.active);
//   - archives an app still idle after Grace (default 7 days): its deploy
//     target's disable, its guard stopped, then the archived record
//     (app.archived), which is the evidence of what was done.
//
// One app's failure is counted and does not stop the others; the next run
// tries it again. A Temporal Schedule (TTLScheduleID) starts it hourly.
func TTLWorkflow(ctx workflow.Context, req TTLRequest) (TTLResult, error) {
	logger := workflow.GetLogger(ctx)
	pageSize, perRun := cmp.Or(req.PageSize, rematchPageSize), cmp.Or(req.AppsPerRun, ttlAppsPerRun)
	out := req.Totals
	actx := workflow.WithActivityOptions(ctx, ttlReadOptions)
	cont, err := appPages(ctx, actx, req.Tenant, &req.After, pageSize, perRun, func(apps []RematchRef) {
		for _, ref := range apps {
			res, err := ttlApp(ctx, ref)
			if err != nil {
				logger.Warn("ttl of an app failed", "tenant", ref.Tenant, "app", ref.App, "error", err)
				res = TTLResult{Failed: 1}
			}
			res.Apps = 1
			out = out.plus(res)
		}
	})
	if err != nil {
		return out, err
	}
	if cont {
		req.Totals = out
		return out, workflow.NewContinueAsNewError(ctx, TTLWorkflow, req)
	}
	logger.Info("ttl sweep done", "tenant", req.Tenant, "apps", out.Apps, "idled", out.Idled, "archived", out.Archived, "failed", out.Failed)
	return out, nil
}

// ttlApp takes one app one step.
func ttlApp(ctx workflow.Context, ref RematchRef) (TTLResult, error) {
	actx := workflow.WithActivityOptions(ctx, ttlReadOptions)
	var a AppActivity
	if err := workflow.ExecuteActivity(actx, ActivityAppActivity, ref).Get(ctx, &a); err != nil {
		return TTLResult{}, err
	}
	now := workflow.Now(ctx)
	change := LifecycleChange{
		Tenant: a.Tenant, App: a.App, At: now, By: TriggerTTL, LastActivity: a.LastActivity,
		IdleAfter: a.IdleAfter, Grace: a.Grace, ReleaseID: a.Release.ID,
	}
	var out TTLResult
	switch ttlStep(a, now) {
	case ttlIdle:
		change.State, change.Event, out.Idled = LifecycleIdle, EventAppIdle, 1
		change.Reason = fmt.Sprintf("no scan, release or health traffic since %s (idle after %s); archived after %s more without any",
			a.LastActivity.UTC().Format(time.RFC3339), a.IdleAfter, a.Grace)
	case ttlClear:
		change.State, change.Event, out.Cleared = LifecycleActive, EventAppActive, 1
		change.Reason = fmt.Sprintf("activity at %s, after it was marked idle", a.LastActivity.UTC().Format(time.RFC3339))
		if a.IdleAfter <= 0 {
			change.Reason = "the idle-app TTL is off for this app"
		}
	case ttlArchive:
		change.State, change.Event, out.Archived = LifecycleArchived, EventAppArchived, 1
		change.Reason = fmt.Sprintf("idle since %s with no scan, release or health traffic for the grace period (%s)", a.Since.UTC().Format(time.RFC3339), a.Grace)
		dreq := DisableRequest{
			Tenant: a.Tenant, App: a.App, ReleaseID: a.Release.ID, Reason: change.Reason, Trigger: TriggerTTL,
			Key: "archive/" + a.Tenant + "/" + a.App + "/" + a.Since.UTC().Format("20060102T150405Z"),
		}
		var receipt DeployReceipt
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, deployOptions), ActivityDisableApp, dreq).Get(ctx, &receipt); err != nil {
			return TTLResult{}, fmt.Errorf("disable %s/%s: %w", a.Tenant, a.App, err)
		}
		change.Deploy = &receipt
		if err := workflow.ExecuteActivity(actx, ActivityStopGuard, ref).Get(ctx, nil); err != nil {
			return TTLResult{}, fmt.Errorf("stop the guard of %s/%s: %w", a.Tenant, a.App, err)
		}
		change.GuardStopped = true
	default:
		return out, nil
	}
	var ev report.Evidence
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, recordOptions), ActivityRecordLifecycle, change).Get(ctx, &ev); err != nil {
		return TTLResult{}, fmt.Errorf("record %s %s/%s: %w", change.State, a.Tenant, a.App, err)
	}
	workflow.GetLogger(ctx).Info("app lifecycle changed", "tenant", a.Tenant, "app", a.App, "state", change.State)
	return out, nil
}

// ReviveRequest asks to bring an idle or archived app back.
type ReviveRequest struct {
	Tenant      string    `json:"tenant"`
	App         string    `json:"app"`
	By          string    `json:"by"`
	Reason      string    `json:"reason"`
	RequestedAt time.Time `json:"requested_at"`
}

// ReviveResult is what a revive did. Previous is the state it found; an
// app that was active is left as it was (Revived false).
type ReviveResult struct {
	Tenant       string          `json:"tenant"`
	App          string          `json:"app"`
	Previous     string          `json:"previous"`
	Revived      bool            `json:"revived"`
	ReleaseID    string          `json:"release_id,omitempty"`
	Deploy       *DeployReceipt  `json:"deploy,omitempty"`
	GuardStarted bool            `json:"guard_started,omitempty"`
	Evidence     report.Evidence `json:"evidence,omitzero"`
}

// ReviveWorkflow brings an idle or archived app back: an archived one is
// deployed again on its live release (the deploy target's ActionDeploy,
// which undoes the disable) and its guard started on that release; either
// way the active record (app.revived, with who asked and why) is stored as
// evidence and announced. It runs under ReviveWorkflowID.
func ReviveWorkflow(ctx workflow.Context, req ReviveRequest) (ReviveResult, error) {
	out := ReviveResult{Tenant: req.Tenant, App: req.App}
	actx := workflow.WithActivityOptions(ctx, ttlReadOptions)
	var a AppActivity
	if err := workflow.ExecuteActivity(actx, ActivityAppActivity, RematchRef{Tenant: req.Tenant, App: req.App}).Get(ctx, &a); err != nil {
		return out, err
	}
	out.Previous, out.ReleaseID = cmp.Or(a.State, LifecycleActive), a.Release.ID
	if out.Previous == LifecycleActive {
		return out, nil
	}
	now := workflow.Now(ctx)
	change := LifecycleChange{
		Tenant: req.Tenant, App: req.App, State: LifecycleActive, Event: EventAppRevived, At: now, By: req.By,
		Reason: req.Reason, LastActivity: a.LastActivity, IdleAfter: a.IdleAfter, Grace: a.Grace, ReleaseID: a.Release.ID,
	}
	if a.State == LifecycleArchived && a.Release.ID != "" {
		dreq := DeployRequest{
			Tenant: req.Tenant, App: req.App, Release: a.Release, Reason: "revive: " + req.Reason, Trigger: req.By,
			RollbackID: "revive/" + req.Tenant + "/" + req.App + "/" + req.RequestedAt.UTC().Format("20060102T150405.000000000Z"),
		}
		var receipt DeployReceipt
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, deployOptions), ActivityDeploy, dreq).Get(ctx, &receipt); err != nil {
			return out, fmt.Errorf("deploy release %s of %s/%s again: %w", a.Release.ID, req.Tenant, req.App, err)
		}
		change.Deploy, out.Deploy = &receipt, &receipt
		wreq := WatchRequest{Tenant: req.Tenant, App: req.App, Release: a.Release}
		if err := workflow.ExecuteActivity(actx, ActivityWatchRelease, wreq).Get(ctx, nil); err != nil {
			return out, fmt.Errorf("start the guard of %s/%s again: %w", req.Tenant, req.App, err)
		}
		change.GuardStarted, out.GuardStarted = true, true
	}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, recordOptions), ActivityRecordLifecycle, change).Get(ctx, &out.Evidence); err != nil {
		return out, fmt.Errorf("record the revive of %s/%s: %w", req.Tenant, req.App, err)
	}
	out.Revived = true
	workflow.GetLogger(ctx).Info("app revived", "tenant", req.Tenant, "app", req.App, "previous", out.Previous, "by", req.By)
	return out, nil
}

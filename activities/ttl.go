package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/tenant"
	"github.com/tollgate/tollgate/workflows"
)

// AppEventsSubjectPrefix is where the idle-app TTL's lifecycle events go:
// tollgate.events.app.<tenant token>.<app>.
const AppEventsSubjectPrefix = "tollgate.events.app"

// AppEvent says an app's lifecycle changed: marked idle (app.idle), idle
// cleared by new activity (app.active), archived (app.archived) or revived
// by on-call (app.revived). It carries the stored record and where it is.
type AppEvent struct {
	Type string `json:"type"`
	releases.Lifecycle
	Evidence report.Evidence `json:"evidence"`
}

// AppRecords keeps apps' releases and lifecycle records; *releases.Store
// is one.
type AppRecords interface {
	List(ctx context.Context, tenant, app string) ([]releases.Status, error)
	Lifecycle(ctx context.Context, tenant, app string) (releases.Lifecycle, error)
	RecordLifecycle(ctx context.Context, rec releases.Lifecycle) (storage.Object, error)
}

var _ AppRecords = (*releases.Store)(nil)

// LastScans finds an app's newest completed scan; *control.Scans is one.
type LastScans interface {
	Last(ctx context.Context, tenant, app string) (*control.LastScan, error)
}

// AppGuards reads, stops and starts apps' guards; *control.Guards is one.
type AppGuards interface {
	Status(ctx context.Context, tenant, app string) (control.GuardStatus, error)
	Stop(ctx context.Context, tenant, app string) error
	Watch(ctx context.Context, tenant, app string, ref workflows.ReleaseRef) error
}

var _ AppGuards = (*control.Guards)(nil)

// TTLPolicy resolves an app's idle-app periods; *policies.Engine is one.
type TTLPolicy interface {
	TTL(ctx context.Context, tenant, app string) (policies.TTL, error)
}

var _ TTLPolicy = (*policies.Engine)(nil)

// TTL holds the clients of the idle-app TTL's activities.
type TTL struct {
	Apps    AppRecords
	Scans   LastScans
	Guards  AppGuards
	Policy  TTLPolicy
	Targets DeployTargets
	Events  *Events
	Logger  *slog.Logger
}

// ErrTypeBadApp is the non-retryable error type of a TTL activity given an
// invalid tenant or app, or a record the store refuses for good.
const ErrTypeBadApp = "BadApp"

// Register registers the TTL's activities.
func (t *TTL) Register(w worker.Registry) {
	w.RegisterActivityWithOptions(t.AppActivity, activity.RegisterOptions{Name: workflows.ActivityAppActivity})
	w.RegisterActivityWithOptions(t.RecordLifecycle, activity.RegisterOptions{Name: workflows.ActivityRecordLifecycle})
	w.RegisterActivityWithOptions(t.DisableApp, activity.RegisterOptions{Name: workflows.ActivityDisableApp})
	w.RegisterActivityWithOptions(t.StopGuard, activity.RegisterOptions{Name: workflows.ActivityStopGuard})
	w.RegisterActivityWithOptions(t.WatchRelease, activity.RegisterOptions{Name: workflows.ActivityWatchRelease})
}

func badApp(err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadApp, err)
}

func checkRef(tenantName, app string) error {
	if err := tenant.Validate(tenantName); err != nil {
		return badApp(err)
	}
	if err := releases.ValidName("app", app); err != nil {
		return badApp(err)
	}
	return nil
}

// AppActivity reads where an app stands: its lifecycle state, the newest
// of its scans, releases, health traffic (a guard sample with requests)
// and revives, its live release and its periods from policy.
func (t *TTL) AppActivity(ctx context.Context, ref workflows.RematchRef) (workflows.AppActivity, error) {
	out := workflows.AppActivity{Tenant: ref.Tenant, App: ref.App}
	if err := checkRef(ref.Tenant, ref.App); err != nil {
		return out, err
	}
	latest := func(at time.Time) {
		if at.After(out.LastActivity) {
			out.LastActivity = at.UTC()
		}
	}
	rels, err := t.Apps.List(ctx, ref.Tenant, ref.App)
	if err != nil {
		return out, fmt.Errorf("app activity of %s/%s: %w", ref.Tenant, ref.App, err)
	}
	if len(rels) > 0 {
		live := rels[len(rels)-1]
		out.Release = live.Ref()
		latest(live.RecordedAt)
	}
	lc, err := t.Apps.Lifecycle(ctx, ref.Tenant, ref.App)
	if err != nil {
		return out, fmt.Errorf("app activity of %s/%s: %w", ref.Tenant, ref.App, err)
	}
	out.State, out.Since = lc.State, lc.At
	if lc.State == releases.StateActive {
		latest(lc.At) // a revive, or idle cleared
	}
	scan, err := t.Scans.Last(ctx, ref.Tenant, ref.App)
	if err != nil {
		return out, fmt.Errorf("app activity of %s/%s: %w", ref.Tenant, ref.App, err)
	}
	if scan != nil {
		latest(scan.At)
	}
	st, err := t.Guards.Status(ctx, ref.Tenant, ref.App)
	switch {
	case errors.Is(err, control.ErrNoGuard):
	case err != nil:
		return out, fmt.Errorf("app activity of %s/%s: %w", ref.Tenant, ref.App, err)
	default:
		for _, s := range st.Guard.Samples {
			if s.Requests > 0 {
				latest(s.At)
			}
		}
	}
	p, err := t.Policy.TTL(ctx, ref.Tenant, ref.App)
	if err != nil {
		return out, temporal.NewNonRetryableApplicationError(err.Error(), "BadTTLPolicy", err)
	}
	out.IdleAfter, out.Grace = p.IdleAfter, p.Grace
	return out, nil
}

// RecordLifecycle stores a lifecycle change as write-once evidence (the
// same change again, a retry, finds it stored) and emits its event.
func (t *TTL) RecordLifecycle(ctx context.Context, c workflows.LifecycleChange) (report.Evidence, error) {
	if err := checkRef(c.Tenant, c.App); err != nil {
		return report.Evidence{}, err
	}
	rec := releases.Lifecycle{
		Tenant: c.Tenant, App: c.App, State: c.State, At: c.At, By: c.By, Reason: c.Reason,
		LastActivity: c.LastActivity, IdleAfter: c.IdleAfter, Grace: c.Grace, ReleaseID: c.ReleaseID,
		GuardStopped: c.GuardStopped, GuardStarted: c.GuardStarted,
	}
	if c.Deploy != nil {
		rec.Target, rec.Detail = c.Deploy.Target, c.Deploy.Detail
	}
	obj, err := t.Apps.RecordLifecycle(ctx, rec)
	if err != nil {
		if errors.Is(err, releases.ErrInvalid) || permanentStoreError(err) {
			return report.Evidence{}, temporal.NewNonRetryableApplicationError(err.Error(), workflows.ErrTypeRecordRefused, err)
		}
		return report.Evidence{}, err
	}
	ev := report.Evidence{Name: "lifecycle.json", Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, SHA256: obj.SHA256}
	rec.Schema = releases.LifecycleSchema
	body, err := json.Marshal(AppEvent{Type: c.Event, Lifecycle: rec, Evidence: ev})
	if err != nil {
		return ev, fmt.Errorf("encode %s event of %s/%s: %w", c.Event, c.Tenant, c.App, err)
	}
	subject := AppEventsSubjectPrefix + "." + tasks.TenantToken(c.Tenant) + "." + c.App
	if err := t.Events.Emit(ctx, subject, "lifecycle/"+obj.Key, body); err != nil {
		return ev, err
	}
	orDiscard(t.Logger).InfoContext(ctx, "app lifecycle changed", "tenant", c.Tenant, "app", c.App, "state", c.State, "event", c.Event, "by", c.By)
	return ev, nil
}

// DisableApp has the app's deploy target take it out of service. Refusals
// retrying cannot fix are not retried.
func (t *TTL) DisableApp(ctx context.Context, req workflows.DisableRequest) (workflows.DeployReceipt, error) {
	if err := checkRef(req.Tenant, req.App); err != nil {
		return workflows.DeployReceipt{}, err
	}
	d, err := t.Targets.Deployer(req.Tenant, req.App)
	if err != nil {
		return workflows.DeployReceipt{}, temporal.NewNonRetryableApplicationError(err.Error(), "NoDeployTarget", err)
	}
	dis, ok := d.(deployers.Disabler)
	if !ok {
		err := fmt.Errorf("the deploy target of %s/%s cannot disable an app", req.Tenant, req.App)
		return workflows.DeployReceipt{}, temporal.NewNonRetryableApplicationError(err.Error(), "NoDeployTarget", err)
	}
	rc, err := dis.Disable(ctx, deployers.Request{
		Action: deployers.ActionDisable, App: req.App, Tenant: req.Tenant, ReleaseID: req.ReleaseID,
		RollbackID: req.Key, Reason: req.Reason, Trigger: req.Trigger,
	})
	out := workflows.DeployReceipt{Target: rc.Target, Status: rc.Status, Detail: rc.Detail, Duplicate: rc.Duplicate}
	if errors.Is(err, deployers.ErrPermanent) {
		return out, temporal.NewNonRetryableApplicationError(err.Error(), "DeployRefused", err)
	}
	if err != nil {
		return out, err
	}
	orDiscard(t.Logger).InfoContext(ctx, "disabled an idle app", "tenant", req.Tenant, "app", req.App, "target", rc.Target, "duplicate", rc.Duplicate)
	return out, nil
}

// StopGuard stops the app's guard; one not running is already stopped.
func (t *TTL) StopGuard(ctx context.Context, ref workflows.RematchRef) error {
	if err := checkRef(ref.Tenant, ref.App); err != nil {
		return err
	}
	return t.Guards.Stop(ctx, ref.Tenant, ref.App)
}

// WatchRelease starts the app's guard again on its live release.
func (t *TTL) WatchRelease(ctx context.Context, req workflows.WatchRequest) error {
	if err := checkRef(req.Tenant, req.App); err != nil {
		return err
	}
	return t.Guards.Watch(ctx, req.Tenant, req.App, req.Release)
}

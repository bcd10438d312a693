package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/tenant"
	"github.com/tollgate/tollgate/workflows"
)

// Errors callers map to responses.
var (
	// ErrNoGuard is an app nobody recorded a release of.
	ErrNoGuard = errors.New("no guard for this app: record a release first")
	// ErrRollbackConflict is a rollback to a release other than the running one's.
	ErrRollbackConflict = errors.New("another rollback of this app is running")
)

// Guards acts on apps' guards and rollbacks.
type Guards struct {
	Temporal client.Client
}

// checkApp checks the names a guard's and a rollback's workflow ids are
// made of, so that one tenant's request can never name another tenant's
// workflow ("guard/x/../victim/app"). Errors wrap tenant.ErrInvalid or
// releases.ErrInvalid.
func checkApp(tenantName, app string) error {
	if err := tenant.Validate(tenantName); err != nil {
		return fmt.Errorf("guard of app %q: %w", app, err)
	}
	if err := releases.ValidName("app", app); err != nil {
		return fmt.Errorf("guard in tenant %q: %w", tenantName, err)
	}
	return nil
}

// Watch has the app's guard watch a release from now on, starting the guard
// (with its rules from policy) if it is not running.
func (c *Guards) Watch(ctx context.Context, tenant, app string, ref workflows.ReleaseRef) error {
	if err := checkApp(tenant, app); err != nil {
		return err
	}
	_, err := c.Temporal.SignalWithStartWorkflow(ctx, workflows.GuardWorkflowID(tenant, app), workflows.SignalRelease, ref,
		c.guardOptions(tenant, app), workflows.GuardWorkflow, workflows.GuardRequest{Tenant: tenant, App: app, RulesFromPolicy: true})
	if err != nil {
		return fmt.Errorf("watch release %s of %s/%s: %w", ref.ID, tenant, app, err)
	}
	return nil
}

func (c *Guards) guardOptions(tenant, app string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID: workflows.GuardWorkflowID(tenant, app), TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		Memo:                  map[string]any{workflows.MemoTenant: tenant, workflows.MemoApp: app},
	}
}

// Push hands health samples to the app's guard, in order, as one signal:
// a push of many samples adds one event to the guard's history, not one per
// sample.
func (c *Guards) Push(ctx context.Context, tenant, app string, samples []workflows.HealthSample) error {
	if err := c.signal(ctx, tenant, app, workflows.SignalHealthSamples, workflows.HealthBatch{Samples: samples}); err != nil {
		return fmt.Errorf("push %d health samples of %s/%s: %w", len(samples), tenant, app, err)
	}
	return nil
}

// Freeze stops the guard from rolling the app back; it still watches and
// alerts. An app without a guard gets one, frozen, awaiting its release.
func (c *Guards) Freeze(ctx context.Context, tenant, app, reason string) error {
	if err := checkApp(tenant, app); err != nil {
		return err
	}
	_, err := c.Temporal.SignalWithStartWorkflow(ctx, workflows.GuardWorkflowID(tenant, app), workflows.SignalFreeze, workflows.FreezeRequest{Reason: reason},
		c.guardOptions(tenant, app), workflows.GuardWorkflow, workflows.GuardRequest{Tenant: tenant, App: app, RulesFromPolicy: true})
	if err != nil {
		return fmt.Errorf("freeze %s/%s: %w", tenant, app, err)
	}
	return nil
}

// Unfreeze lets the guard roll the app back again.
func (c *Guards) Unfreeze(ctx context.Context, tenant, app string) error {
	if err := c.signal(ctx, tenant, app, workflows.SignalUnfreeze, nil); err != nil {
		return fmt.Errorf("unfreeze %s/%s: %w", tenant, app, err)
	}
	return nil
}

func (c *Guards) signal(ctx context.Context, tenant, app, name string, arg any) error {
	if err := checkApp(tenant, app); err != nil {
		return err
	}
	err := c.Temporal.SignalWorkflow(ctx, workflows.GuardWorkflowID(tenant, app), "", name, arg)
	if _, ok := errors.AsType[*serviceerror.NotFound](err); ok {
		return ErrNoGuard
	}
	return err
}

// RollbackStarted says which rollback a request went to.
type RollbackStarted struct {
	RollbackID string `json:"rollback_id"`
	RunID      string `json:"run_id"`
	// Joined is set when a rollback was already running: the request was
	// added to it, and no second rollback started.
	Joined bool `json:"joined"`
}

// Rollback starts the app's rollback, or joins the one running. A request
// naming a release (ToRelease) cannot join a rollback going elsewhere: that
// is ErrRollbackConflict.
func (c *Guards) Rollback(ctx context.Context, req workflows.RollbackRequest) (RollbackStarted, error) {
	if err := checkApp(req.Tenant, req.App); err != nil {
		return RollbackStarted{}, err
	}
	if req.RequestedAt.IsZero() {
		req.RequestedAt = time.Now().UTC()
	}
	id := workflows.RollbackWorkflowID(req.Tenant, req.App)
	opts := client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy:                 enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     map[string]any{workflows.MemoTenant: req.Tenant, workflows.MemoApp: req.App},
	}
	// A rollback that finishes between the failed start and the join is
	// gone; then start again, once.
	for attempt := 0; ; attempt++ {
		run, err := c.Temporal.ExecuteWorkflow(ctx, opts, workflows.RollbackWorkflow, req)
		if err == nil {
			return RollbackStarted{RollbackID: id, RunID: run.GetRunID()}, nil
		}
		if _, ok := errors.AsType[*serviceerror.WorkflowExecutionAlreadyStarted](err); !ok {
			return RollbackStarted{}, fmt.Errorf("start rollback of %s/%s: %w", req.Tenant, req.App, err)
		}
		st, err := c.joinRunning(ctx, id, req)
		if _, gone := errors.AsType[*serviceerror.NotFound](err); gone && attempt == 0 {
			continue
		}
		return st, err
	}
}

func (c *Guards) joinRunning(ctx context.Context, id string, req workflows.RollbackRequest) (RollbackStarted, error) {
	desc, err := c.Temporal.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return RollbackStarted{}, fmt.Errorf("join rollback %s: %w", id, err)
	}
	runID := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	if req.ToRelease != "" {
		var st workflows.RollbackResult
		v, err := c.Temporal.QueryWorkflow(ctx, id, runID, workflows.QueryRollbackStatus)
		if err == nil {
			err = v.Get(&st)
		}
		if err != nil {
			return RollbackStarted{}, fmt.Errorf("join rollback %s: %w", id, err)
		}
		if st.Target == nil || st.Target.Release.ID != req.ToRelease {
			target := "a release not yet picked"
			if st.Target != nil {
				target = st.Target.Release.ID
			}
			return RollbackStarted{RollbackID: id, RunID: runID}, fmt.Errorf("%w: rollback %s is going to %s, not %s; wait for it to finish", ErrRollbackConflict, id, target, req.ToRelease)
		}
	}
	if err := c.Temporal.SignalWorkflow(ctx, id, runID, workflows.SignalRollbackJoined, req); err != nil {
		return RollbackStarted{}, fmt.Errorf("join rollback %s: %w", id, err)
	}
	return RollbackStarted{RollbackID: id, RunID: runID, Joined: true}, nil
}

// GuardStatus is an app's guard and its latest rollback.
type GuardStatus struct {
	Guard    workflows.GuardStatus     `json:"guard"`
	Rollback *workflows.RollbackResult `json:"rollback,omitempty"`
	// RollbackRunning is set while the rollback has not finished.
	RollbackRunning bool `json:"rollback_running,omitempty"`
}

// Status reads the guard's status and the latest rollback's.
func (c *Guards) Status(ctx context.Context, tenant, app string) (GuardStatus, error) {
	if err := checkApp(tenant, app); err != nil {
		return GuardStatus{}, err
	}
	var st GuardStatus
	v, err := c.Temporal.QueryWorkflow(ctx, workflows.GuardWorkflowID(tenant, app), "", workflows.QueryGuardStatus)
	if _, ok := errors.AsType[*serviceerror.NotFound](err); ok {
		return GuardStatus{}, ErrNoGuard
	}
	if err == nil {
		err = v.Get(&st.Guard)
	}
	if err != nil {
		return GuardStatus{}, fmt.Errorf("guard status of %s/%s: %w", tenant, app, err)
	}
	id := workflows.RollbackWorkflowID(tenant, app)
	desc, err := c.Temporal.DescribeWorkflowExecution(ctx, id, "")
	if _, ok := errors.AsType[*serviceerror.NotFound](err); ok {
		return st, nil
	} else if err != nil {
		return GuardStatus{}, fmt.Errorf("rollback status of %s/%s: %w", tenant, app, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	st.RollbackRunning = info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING
	var rb workflows.RollbackResult
	if st.RollbackRunning {
		v, err := c.Temporal.QueryWorkflow(ctx, id, info.GetExecution().GetRunId(), workflows.QueryRollbackStatus)
		if err == nil && v.Get(&rb) == nil {
			st.Rollback = &rb
		}
		return st, nil
	}
	run := c.Temporal.GetWorkflow(ctx, id, info.GetExecution().GetRunId())
	if err := run.Get(ctx, &rb); err == nil {
		st.Rollback = &rb
	} else {
		st.Rollback = &workflows.RollbackResult{RollbackID: id, Phase: workflows.PhaseDone, Outcome: workflows.OutcomeFailed}
	}
	return st, nil
}

// Stop stops the app's guard (the idle-app TTL's archive). An app without
// a running guard is already stopped.
func (c *Guards) Stop(ctx context.Context, tenant, app string) error {
	err := c.signal(ctx, tenant, app, workflows.SignalStop, nil)
	if errors.Is(err, ErrNoGuard) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop the guard of %s/%s: %w", tenant, app, err)
	}
	return nil
}

// Revive brings an idle or archived app back (ReviveWorkflow, one per app
// at a time) and waits for it to finish: a revive already running is
// joined, and its result returned.
func (c *Guards) Revive(ctx context.Context, req workflows.ReviveRequest) (workflows.ReviveResult, error) {
	if err := checkApp(req.Tenant, req.App); err != nil {
		return workflows.ReviveResult{}, err
	}
	if req.RequestedAt.IsZero() {
		req.RequestedAt = time.Now().UTC()
	}
	run, err := c.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.ReviveWorkflowID(req.Tenant, req.App), TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		Memo:                     map[string]any{workflows.MemoTenant: req.Tenant, workflows.MemoApp: req.App},
	}, workflows.ReviveWorkflow, req)
	if err != nil {
		return workflows.ReviveResult{}, fmt.Errorf("revive %s/%s: %w", req.Tenant, req.App, err)
	}
	var res workflows.ReviveResult
	if err := run.Get(ctx, &res); err != nil {
		return workflows.ReviveResult{}, fmt.Errorf("revive %s/%s: %w", req.Tenant, req.App, err)
	}
	return res, nil
}

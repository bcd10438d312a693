package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tenant"
	"github.com/tollgate/tollgate/workflows"
)

// Releases is the release record the guard's activities read and add to;
// *releases.Store is one.
type Releases interface {
	PickTarget(ctx context.Context, tenant, app, from, to string) (releases.Pick, error)
	MarkKnownGood(ctx context.Context, kg releases.KnownGood) (releases.KnownGood, error)
}

// Rollbacks starts or joins an app's rollback; *control.Guards is one.
type Rollbacks interface {
	Rollback(ctx context.Context, req workflows.RollbackRequest) (control.RollbackStarted, error)
}

// HealthPuller reads one sample from Prometheus.
type HealthPuller interface {
	Pull(ctx context.Context, q workflows.HealthQueries, at time.Time) (workflows.HealthSample, []string, error)
}

// GuardPolicy resolves an app's guard rules; *policies.Engine is one.
type GuardPolicy interface {
	GuardRules(ctx context.Context, tenant, app string) (workflows.Rules, error)
}

// DeployTargets finds an app's deploy target.
type DeployTargets interface {
	Deployer(tenant, app string) (deployers.Deployer, error)
}

// Guard holds the clients of the guard's and the rollback's activities.
type Guard struct {
	Releases  Releases
	Rollbacks Rollbacks
	Targets   DeployTargets
	Policy    GuardPolicy
	Evidence  storage.Evidence
	// Health pulls samples; nil refuses guards with queries.
	Health HealthPuller
	// PullLag is how far behind the guard's clock samples are pulled: at
	// least one scrape interval, so that every query of a sample sees the
	// same scrapes.
	PullLag time.Duration
	Logger  *slog.Logger
}

// Register registers the activities under the names the workflows use.
func (g *Guard) Register(w worker.Registry) {
	w.RegisterActivityWithOptions(g.StartRollback, activity.RegisterOptions{Name: workflows.ActivityStartRollback})
	w.RegisterActivityWithOptions(g.PickRelease, activity.RegisterOptions{Name: workflows.ActivityPickRelease})
	w.RegisterActivityWithOptions(g.Deploy, activity.RegisterOptions{Name: workflows.ActivityDeploy})
	w.RegisterActivityWithOptions(g.RecordRollback, activity.RegisterOptions{Name: workflows.ActivityRecordRollback})
	w.RegisterActivityWithOptions(g.MarkKnownGood, activity.RegisterOptions{Name: workflows.ActivityMarkKnownGood})
	w.RegisterActivityWithOptions(g.PullHealth, activity.RegisterOptions{Name: workflows.ActivityPullHealth})
	w.RegisterActivityWithOptions(g.GuardRules, activity.RegisterOptions{Name: workflows.ActivityGuardRules})
}

func (g *Guard) logger() *slog.Logger { return orDiscard(g.Logger) }

// StartRollback starts the app's RollbackWorkflow, or joins the running one.
func (g *Guard) StartRollback(ctx context.Context, req workflows.RollbackRequest) error {
	st, err := g.Rollbacks.Rollback(ctx, req)
	if errors.Is(err, control.ErrRollbackConflict) {
		// The guard names no release: it cannot conflict; but never retry a
		// conflict.
		return temporal.NewNonRetryableApplicationError(err.Error(), "RollbackConflict", err)
	}
	if err != nil {
		return err
	}
	g.logger().InfoContext(ctx, "guard rollback", "app", req.App, "rollback", st.RollbackID, "joined", st.Joined)
	return nil
}

// PickRelease chooses the release to roll back to.
func (g *Guard) PickRelease(ctx context.Context, req workflows.PickRequest) (workflows.RollbackTarget, error) {
	pick, err := g.Releases.PickTarget(ctx, req.Tenant, req.App, req.From, req.To)
	if errors.Is(err, releases.ErrNoTarget) || errors.Is(err, releases.ErrNotFound) || errors.Is(err, releases.ErrInvalid) {
		return workflows.RollbackTarget{}, temporal.NewNonRetryableApplicationError(err.Error(), workflows.ErrTypeNoTarget, err)
	}
	if err != nil {
		return workflows.RollbackTarget{}, err
	}
	t := workflows.RollbackTarget{Release: pick.Release.Ref(), KnownGood: pick.Release.KnownGood != nil, Evidence: pick.Evidence}
	for _, s := range pick.Skipped {
		t.Skipped = append(t.Skipped, workflows.Skipped{ReleaseID: s.ReleaseID, Reason: s.Reason})
	}
	return t, nil
}

// Deploy tells the app's deploy target to switch. Refusals retrying cannot
// fix are not retried.
func (g *Guard) Deploy(ctx context.Context, req workflows.DeployRequest) (workflows.DeployReceipt, error) {
	d, err := g.Targets.Deployer(req.Tenant, req.App)
	if err != nil {
		return workflows.DeployReceipt{}, temporal.NewNonRetryableApplicationError(err.Error(), "NoDeployTarget", err)
	}
	rc, err := d.Deploy(ctx, deployers.Request{
		App: req.App, Tenant: req.Tenant, ReleaseID: req.Release.ID, Artifact: req.Release.Artifact,
		RollbackID: req.RollbackID, FromRelease: req.FromRelease, Reason: req.Reason, Trigger: req.Trigger,
	})
	out := workflows.DeployReceipt{Target: rc.Target, Status: rc.Status, Detail: rc.Detail, Duplicate: rc.Duplicate}
	if errors.Is(err, deployers.ErrPermanent) {
		return out, temporal.NewNonRetryableApplicationError(err.Error(), "DeployRefused", err)
	}
	if err != nil {
		return out, err
	}
	g.logger().InfoContext(ctx, "deployed a rollback", "app", req.App, "release", req.Release.ID, "target", rc.Target, "duplicate", rc.Duplicate)
	return out, nil
}

// RecordRollback stores the rollback's decision record as evidence. An
// error retrying cannot fix (a malformed record, a key already holding other
// bytes under object lock, a store that refuses the write) fails
// non-retryably as workflows.ErrTypeRecordRefused, so the rollback ends
// failed instead of retrying forever and holding the app's rollback id.
func (g *Guard) RecordRollback(ctx context.Context, rec workflows.RollbackRecord) (report.Evidence, error) {
	if err := tenant.Validate(rec.Tenant); err != nil {
		return report.Evidence{}, recordRefused(fmt.Errorf("record rollback %s: %w", rec.RollbackID, err))
	}
	if err := releases.ValidName("app", rec.App); err != nil {
		return report.Evidence{}, recordRefused(fmt.Errorf("record rollback %s: %w", rec.RollbackID, err))
	}
	doc, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return report.Evidence{}, recordRefused(fmt.Errorf("encode rollback %s: %w", rec.RollbackID, err))
	}
	// One record per run: the workflow ID is per app, the run ID is not.
	key, err := releases.RollbackKey(rec.Tenant, rec.App, strings.ReplaceAll(rec.RunID, "/", "-"))
	if err != nil {
		return report.Evidence{}, recordRefused(fmt.Errorf("record rollback %s: %w", rec.RollbackID, err))
	}
	obj, err := g.Evidence.Put(ctx, key, "application/json", doc)
	if err != nil {
		err = fmt.Errorf("store rollback %s of %s: %w", rec.RollbackID, rec.App, err)
		if permanentStoreError(err) {
			return report.Evidence{}, recordRefused(err)
		}
		return report.Evidence{}, err
	}
	return report.Evidence{Name: "decision.json", Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, SHA256: obj.SHA256}, nil
}

func recordRefused(err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), workflows.ErrTypeRecordRefused, err)
}

// permanentS3Codes are S3 error codes a retry of the same write cannot
// change: permissions, object lock, and requests the store finds malformed.
var permanentS3Codes = map[string]bool{
	"AccessDenied": true, "InvalidObjectState": true, "ObjectLocked": true, "InvalidArgument": true,
	"InvalidRequest": true, "InvalidBucketName": true, "NoSuchBucket": true, "MethodNotAllowed": true,
	"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "KeyTooLongError": true,
}

// permanentStoreError reports whether an evidence write failed for a
// reason retrying cannot fix. Anything else (timeouts, 5xx, a lost
// connection) is worth retrying.
func permanentStoreError(err error) bool {
	if errors.Is(err, storage.ErrImmutable) || errors.Is(err, fs.ErrPermission) || errors.Is(err, tenant.ErrInvalid) {
		return true
	}
	var resp minio.ErrorResponse
	return errors.As(err, &resp) && permanentS3Codes[resp.Code]
}

// MarkKnownGood records a release as known-good.
func (g *Guard) MarkKnownGood(ctx context.Context, req workflows.KnownGoodRequest) error {
	_, err := g.Releases.MarkKnownGood(ctx, releases.KnownGood{
		Tenant: req.Tenant, App: req.App, ReleaseID: req.ReleaseID, HealthySince: req.HealthySince, At: req.At, Measurements: req.Measurements,
	})
	if errors.Is(err, releases.ErrNotFound) || errors.Is(err, releases.ErrInvalid) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "UnknownRelease", err)
	}
	return err
}

// PullHealth reads one sample at req.At.
func (g *Guard) PullHealth(ctx context.Context, req workflows.PullRequest) (workflows.PullResult, error) {
	if g.Health == nil {
		return workflows.PullResult{}, temporal.NewNonRetryableApplicationError("the guard has health queries but no Prometheus is configured (TOLLGATE_PROMETHEUS_URL)", "NoPrometheus", nil)
	}
	s, missing, err := g.Health.Pull(ctx, req.Queries, req.At.Add(-g.PullLag))
	if err != nil {
		return workflows.PullResult{}, fmt.Errorf("pull health of %s/%s: %w", req.Tenant, req.App, err)
	}
	return workflows.PullResult{Sample: s, Missing: missing}, nil
}

// GuardRules resolves the app's rules from policy.
func (g *Guard) GuardRules(ctx context.Context, req workflows.GuardRulesRequest) (workflows.Rules, error) {
	r, err := g.Policy.GuardRules(ctx, req.Tenant, req.App)
	if err != nil {
		return workflows.Rules{}, temporal.NewNonRetryableApplicationError(err.Error(), "BadGuardPolicy", err)
	}
	return r, nil
}

package workflows

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/tollgate/tollgate/report"
)

var r1 = ReleaseRef{ID: "r1", Artifact: "sha256:1111", ScanID: "s1"}

// rollbackFakes stand in for the rollback's activities and the guard.
type rollbackFakes struct {
	mu       sync.Mutex
	pickErr  error
	deployFn func(DeployRequest) (DeployReceipt, error)
	deploys  []DeployRequest
	records  []RollbackRecord
	signals  []string // guard signals, by name
	// recovery, when set, is sent back as the guard's judgement this long
	// after the release signal.
	recovery *RecoveryReport
	after    time.Duration
	// recordErr, when set, is RecordRollback's error on its nth call.
	recordErr   func(n int) error
	recordCalls int
}

func (f *rollbackFakes) PickRelease(_ context.Context, req PickRequest) (RollbackTarget, error) {
	if f.pickErr != nil {
		return RollbackTarget{}, f.pickErr
	}
	if req.To != "" && req.To != "r1" {
		return RollbackTarget{}, temporal.NewNonRetryableApplicationError("no such release", ErrTypeNoTarget, nil)
	}
	return RollbackTarget{Release: r1, KnownGood: true, Evidence: "verified", Skipped: []Skipped{{ReleaseID: "r1b", Reason: "never healthy"}}}, nil
}

func (f *rollbackFakes) Deploy(_ context.Context, req DeployRequest) (DeployReceipt, error) {
	f.mu.Lock()
	f.deploys = append(f.deploys, req)
	fn := f.deployFn
	f.mu.Unlock()
	if fn != nil {
		return fn(req)
	}
	return DeployReceipt{Target: "webhook test", Status: 200}, nil
}

func (f *rollbackFakes) RecordRollback(_ context.Context, rec RollbackRecord) (report.Evidence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recordCalls++
	if f.recordErr != nil {
		if err := f.recordErr(f.recordCalls); err != nil {
			return report.Evidence{}, err
		}
	}
	f.records = append(f.records, rec)
	return report.Evidence{Name: "decision.json", Key: "apps/acme/todo/rollbacks/x/decision.json"}, nil
}

func newRollbackEnv(t *testing.T, f *rollbackFakes) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(guardStart)
	env.RegisterActivityWithOptions(f.PickRelease, activity.RegisterOptions{Name: ActivityPickRelease})
	env.RegisterActivityWithOptions(f.Deploy, activity.RegisterOptions{Name: ActivityDeploy})
	env.RegisterActivityWithOptions(f.RecordRollback, activity.RegisterOptions{Name: ActivityRecordRollback})
	guard := GuardWorkflowID("acme", "todo")
	env.OnSignalExternalWorkflow(mock.Anything, guard, "", mock.Anything, mock.Anything).Return(
		func(_, _, _, name string, arg any) error {
			f.mu.Lock()
			f.signals = append(f.signals, name)
			f.mu.Unlock()
			if name == SignalRelease && f.recovery != nil {
				rep := *f.recovery
				rep.ReleaseID = arg.(ReleaseRef).ID
				env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalRecovery, rep) }, f.after)
			}
			return nil
		})
	return env
}

func guardRequest() RollbackRequest {
	rules := Rules{}.WithDefaults()
	return RollbackRequest{
		Tenant: "acme", App: "todo", FromRelease: "r2", Trigger: TriggerGuard, Reason: "error_rate 0.05 over 5m0s above 0.03",
		RequestedAt: guardStart, BreachAt: guardStart.Add(-5 * time.Minute), Rules: &rules,
		Measurements:  []Measurement{{Signal: SignalErrorRate, Value: 0.05, Threshold: 0.03, Window: 5 * time.Minute}},
		ConfirmWithin: 6 * time.Minute,
	}
}

func runRollback(t *testing.T, env *testsuite.TestWorkflowEnvironment, req RollbackRequest) (RollbackResult, error) {
	t.Helper()
	env.ExecuteWorkflow(RollbackWorkflow, req)
	if !env.IsWorkflowCompleted() {
		t.Fatal("rollback did not complete")
	}
	var res RollbackResult
	err := env.GetWorkflowError()
	if err == nil {
		if gerr := env.GetWorkflowResult(&res); gerr != nil {
			t.Fatal(gerr)
		}
	}
	return res, err
}

func TestRollbackRecovers(t *testing.T) {
	f := &rollbackFakes{recovery: &RecoveryReport{Healthy: true, At: guardStart.Add(time.Minute)}, after: time.Minute}
	env := newRollbackEnv(t, f)
	res, err := runRollback(t, env, guardRequest())
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeRecovered || res.Phase != PhaseDone || res.Target.Release.ID != "r1" || res.Evidence.Key == "" {
		t.Fatalf("result %+v", res)
	}
	if len(f.deploys) != 1 {
		t.Fatalf("%d deploys, want 1", len(f.deploys))
	}
	if d := f.deploys[0]; d.Release.ID != "r1" || d.FromRelease != "r2" || !strings.HasPrefix(d.RollbackID, "default-test-workflow-id/") || d.Trigger != TriggerGuard {
		t.Errorf("deploy %+v", d)
	}
	if want := []string{SignalRollbackStarted, SignalRelease}; strings.Join(f.signals, ",") != strings.Join(want, ",") {
		t.Errorf("guard signals %v, want %v", f.signals, want)
	}
	if len(f.records) != 1 {
		t.Fatalf("%d records", len(f.records))
	}
	rec := f.records[0]
	if rec.Schema != RollbackRecordSchema || rec.Outcome != OutcomeRecovered || rec.Recovery == nil || rec.Deploy == nil ||
		rec.Target.Evidence != "verified" || len(rec.Requests) != 1 || rec.Requests[0].Measurements[0].Value != 0.05 ||
		rec.Requests[0].Rules.ErrorWindow != 5*time.Minute || rec.DeployedAt.IsZero() || rec.FinishedAt.Before(rec.DeployedAt) {
		t.Errorf("record %+v", rec)
	}
}

// A manual rollback requested while the guard's runs joins it: one deploy,
// and the record names both.
func TestRollbackManualDuringAutomatic(t *testing.T) {
	f := &rollbackFakes{recovery: &RecoveryReport{Healthy: true}, after: 2 * time.Minute}
	env := newRollbackEnv(t, f)
	manual := RollbackRequest{Tenant: "acme", App: "todo", Trigger: "alice", Reason: "pager", RequestedAt: guardStart.Add(time.Minute)}
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalRollbackJoined, manual) }, time.Minute)
	var mid RollbackResult
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryRollbackStatus)
		if err == nil {
			err = v.Get(&mid)
		}
		if err != nil {
			t.Error(err)
		}
	}, 90*time.Second)
	res, err := runRollback(t, env, guardRequest())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.deploys) != 1 || res.Requests != 2 {
		t.Fatalf("%d deploys, %d requests; want 1 and 2", len(f.deploys), res.Requests)
	}
	if mid.Phase != PhaseConfirming || mid.Requests != 2 {
		t.Errorf("status while confirming %+v", mid)
	}
	if rec := f.records[0]; rec.Requests[1].Trigger != "alice" {
		t.Errorf("requests %+v", rec.Requests)
	}
}

func TestRollbackWithNothingToGoBackTo(t *testing.T) {
	f := &rollbackFakes{pickErr: temporal.NewNonRetryableApplicationError("no release to roll back to", ErrTypeNoTarget, nil)}
	env := newRollbackEnv(t, f)
	_, err := runRollback(t, env, guardRequest())
	if err == nil || !strings.Contains(err.Error(), "no release to roll back to") {
		t.Fatalf("error %v", err)
	}
	if len(f.deploys) != 0 || len(f.records) != 1 || f.records[0].Outcome != OutcomeFailed || f.records[0].Error == "" {
		t.Fatalf("deploys %d, records %+v", len(f.deploys), f.records)
	}
	if last := f.signals[len(f.signals)-1]; last != SignalRollbackFinished {
		t.Errorf("guard signals %v, want the failure last", f.signals)
	}
}

func TestRollbackDeployRefused(t *testing.T) {
	f := &rollbackFakes{deployFn: func(DeployRequest) (DeployReceipt, error) {
		return DeployReceipt{}, temporal.NewNonRetryableApplicationError("webhook answered 403", "DeployRefused", nil)
	}}
	env := newRollbackEnv(t, f)
	if _, err := runRollback(t, env, guardRequest()); err == nil {
		t.Fatal("no error")
	}
	if len(f.deploys) != 1 || f.records[0].Outcome != OutcomeFailed || !strings.Contains(f.records[0].Error, "403") {
		t.Fatalf("deploys %d, record %+v", len(f.deploys), f.records[0])
	}
}

// A deploy target that fails for a while is retried with the same rollback
// ID, which is what lets it deduplicate.
func TestRollbackRetriesTheDeploy(t *testing.T) {
	fails := 3
	f := &rollbackFakes{recovery: &RecoveryReport{Healthy: false}, after: time.Minute}
	f.deployFn = func(DeployRequest) (DeployReceipt, error) {
		if fails > 0 {
			fails--
			return DeployReceipt{}, errors.New("503 from the deployer")
		}
		return DeployReceipt{Target: "webhook", Status: 200}, nil
	}
	env := newRollbackEnv(t, f)
	res, err := runRollback(t, env, guardRequest())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.deploys) != 4 || f.deploys[0].RollbackID != f.deploys[3].RollbackID {
		t.Fatalf("deploys %+v", f.deploys)
	}
	if res.Outcome != OutcomeNotRecovered {
		t.Errorf("outcome %s, want not-recovered", res.Outcome)
	}
}

func TestRollbackUnconfirmedWithoutData(t *testing.T) {
	f := &rollbackFakes{}
	env := newRollbackEnv(t, f)
	req := guardRequest()
	req.Trigger, req.ToRelease = "bob", "r1"
	res, err := runRollback(t, env, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeUnconfirmed || f.records[0].FinishedAt.Sub(guardStart) != 6*time.Minute {
		t.Fatalf("result %+v, finished at %s", res, f.records[0].FinishedAt)
	}
}

// A store that refuses the rollback's record for good ends the rollback
// failed at once: the workflow closes, so the app's next rollback can start.
func TestRollbackEndsFailedWhenTheRecordIsRefused(t *testing.T) {
	f := &rollbackFakes{recovery: &RecoveryReport{Healthy: true}, after: time.Minute}
	f.recordErr = func(int) error {
		return temporal.NewNonRetryableApplicationError("put evidence: AccessDenied", ErrTypeRecordRefused, nil)
	}
	env := newRollbackEnv(t, f)
	_, err := runRollback(t, env, guardRequest())
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("error %v, want the refusal", err)
	}
	if f.recordCalls != 1 {
		t.Fatalf("%d record attempts, want 1", f.recordCalls)
	}
	// The rollback's status says it failed, not how the deploy went.
	v, err := env.QueryWorkflow(QueryRollbackStatus)
	if err != nil {
		t.Fatal(err)
	}
	var st RollbackResult
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	if st.Outcome != OutcomeFailed || st.Phase != PhaseDone {
		t.Fatalf("status %+v, want done and failed", st)
	}
}

// A record that keeps failing with a retryable error is retried a bounded
// number of times, then the rollback ends failed instead of holding the
// app's rollback id forever. (The test environment caps retries of an
// unbounded policy by itself; the policy's bound is for the real server.)
func TestRollbackRecordRetriesAreBounded(t *testing.T) {
	f := &rollbackFakes{}
	f.recordErr = func(n int) error {
		if n > 100 {
			// An unbounded policy on a real server: stop it here.
			return temporal.NewNonRetryableApplicationError("still retrying", "TestGaveUp", nil)
		}
		return errors.New("503 from the store")
	}
	env := newRollbackEnv(t, f)
	_, err := runRollback(t, env, guardRequest())
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("error %v, want the store's 503", err)
	}
	if f.recordCalls > 20 {
		t.Fatalf("%d record attempts, want a bounded retry", f.recordCalls)
	}
}

package workflows

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The guard tests run on simulated time: samples and signals arrive through
// delayed callbacks, and the guard evaluates every 30s from guardStart.
// Samples come at 10s past each tick so that no sample ties with a timer.

var guardStart = time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)

var guardRelease = ReleaseRef{ID: "r2", Artifact: "sha256:2222", ScanID: "s2", BaselineP95: 200 * time.Millisecond}

// rollbacks stands in for the StartRollback and MarkKnownGood activities
// and remembers their calls.
type rollbacks struct {
	env   *testsuite.TestWorkflowEnvironment
	mu    sync.Mutex
	calls []RollbackRequest
	at    []time.Duration // since guardStart
	good  []KnownGoodRequest
}

func (r *rollbacks) MarkKnownGood(_ context.Context, req KnownGoodRequest) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.good = append(r.good, req)
	return nil
}

func (r *rollbacks) knownGood() []KnownGoodRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]KnownGoodRequest(nil), r.good...)
}

func (r *rollbacks) StartRollback(_ context.Context, req RollbackRequest) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, req)
	r.at = append(r.at, r.env.Now().Sub(guardStart))
	return nil
}

func (r *rollbacks) get() ([]RollbackRequest, []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RollbackRequest(nil), r.calls...), append([]time.Duration(nil), r.at...)
}

func newGuardEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *rollbacks) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(guardStart)
	rb := &rollbacks{env: env}
	env.RegisterActivityWithOptions(rb.StartRollback, activity.RegisterOptions{Name: ActivityStartRollback})
	env.RegisterActivityWithOptions(rb.MarkKnownGood, activity.RegisterOptions{Name: ActivityMarkKnownGood})
	return env, rb
}

// feed pushes s every 30s at offsets from..to (to excluded), stamped with the
// simulated time it is sent at.
func feed(env *testsuite.TestWorkflowEnvironment, from, to time.Duration, s HealthSample) {
	for at := from; at < to; at += 30 * time.Second {
		env.RegisterDelayedCallback(func() {
			x := s
			x.At = env.Now()
			env.SignalWorkflow(SignalHealthSample, x)
		}, at)
	}
}

func signalAt(env *testsuite.TestWorkflowEnvironment, at time.Duration, name string, payload any) {
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(name, payload) }, at)
}

// statusAt queries the guard at an offset into *into.
func statusAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, at time.Duration, into *GuardStatus) {
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryGuardStatus)
		if err != nil {
			t.Errorf("query at %s: %v", at, err)
			return
		}
		if err := v.Get(into); err != nil {
			t.Errorf("decode status at %s: %v", at, err)
		}
	}, at)
}

// runGuard runs the guard until the stop signal at stopAt, and returns its
// final status.
func runGuard(t *testing.T, env *testsuite.TestWorkflowEnvironment, req GuardRequest, stopAt time.Duration) GuardStatus {
	t.Helper()
	var st GuardStatus
	statusAt(t, env, stopAt-time.Second, &st)
	signalAt(env, stopAt, SignalStop, nil)
	env.ExecuteWorkflow(GuardWorkflow, req)
	if !env.IsWorkflowCompleted() {
		t.Fatal("guard did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("guard: %v", err)
	}
	return st
}

func actions(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Action)
	}
	return out
}

func has(ds []Decision, action string) bool {
	for _, d := range ds {
		if d.Action == action {
			return true
		}
	}
	return false
}

var (
	good = HealthSample{Requests: 100, Errors: 1, P95: 150 * time.Millisecond}
	bad  = HealthSample{Requests: 100, Errors: 5, P95: 150 * time.Millisecond}
	slow = HealthSample{Requests: 100, Errors: 1, P95: 900 * time.Millisecond}
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestGuardRollsBackASustainedErrorBreach(t *testing.T) {
	env, rb := newGuardEnv(t)
	feed(env, 10*time.Second, 130*time.Second, good)
	// The error rate is 5% from 100s on (the sample at 130s covers 100-130s).
	feed(env, 130*time.Second, 12*time.Minute, bad)
	st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease}, 12*time.Minute)

	calls, at := rb.get()
	if len(calls) != 1 {
		t.Fatalf("%d rollbacks, want 1: %+v", len(calls), calls)
	}
	// Five minutes of breach end at 400s; the next evaluation is at 420s.
	if at[0] < 400*time.Second || at[0] > 430*time.Second {
		t.Errorf("rollback at %s, want within one interval of 6m40s", at[0])
	}
	c := calls[0]
	if c.App != "todo" || c.FromRelease != "r2" || c.Trigger != TriggerGuard || !strings.Contains(c.Reason, "error_rate 0.05") {
		t.Errorf("request %+v", c)
	}
	if len(c.Measurements) != 1 {
		t.Fatalf("measurements %+v, want the error rate only", c.Measurements)
	}
	if m := c.Measurements[0]; m.Signal != SignalErrorRate || !near(m.Value, 0.05) || m.Threshold != 0.03 || m.Window != 5*time.Minute {
		t.Errorf("measurement %+v, want error_rate 0.05 over 5m against 0.03", m)
	}
	if !st.AwaitingRelease || !has(st.Decisions, ActionRollback) {
		t.Errorf("status %+v, want a rollback decision and awaiting a release", st)
	}
}

func TestGuardBreachThatRecoversInsideTheWindow(t *testing.T) {
	env, rb := newGuardEnv(t)
	feed(env, 10*time.Second, 130*time.Second, good)
	feed(env, 130*time.Second, 310*time.Second, bad) // three minutes of 5%
	feed(env, 310*time.Second, 12*time.Minute, good)
	st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease}, 12*time.Minute)

	if calls, _ := rb.get(); len(calls) != 0 {
		t.Fatalf("rollbacks %+v, want none", calls)
	}
	if got := actions(st.Decisions); len(got) != 1 || got[0] != ActionNone {
		t.Errorf("decisions %v, want one folded healthy decision", got)
	}
	if st.Decisions[0].Repeats != 22 {
		t.Errorf("repeats %d, want 22 (23 evaluations before the query at 11m59s)", st.Decisions[0].Repeats)
	}
}

func TestGuardMissingDataIsInconclusive(t *testing.T) {
	tests := []struct {
		name  string
		rules Rules
		feed  func(*testsuite.TestWorkflowEnvironment)
		want  []string
	}{
		{
			name: "no samples",
			feed: func(*testsuite.TestWorkflowEnvironment) {},
			want: []string{ActionInconclusive},
		},
		{
			name:  "too few requests to judge",
			rules: Rules{MinRequests: 1000},
			feed: func(env *testsuite.TestWorkflowEnvironment) {
				feed(env, 10*time.Second, 10*time.Minute, HealthSample{Requests: 10, Errors: 10})
			},
			want: []string{ActionInconclusive},
		},
		{
			name: "samples stop",
			feed: func(env *testsuite.TestWorkflowEnvironment) {
				feed(env, 10*time.Second, 130*time.Second, good)
			},
			want: []string{ActionNone, ActionInconclusive},
		},
		{
			name: "errors without traffic",
			feed: func(env *testsuite.TestWorkflowEnvironment) {
				feed(env, 10*time.Second, 10*time.Minute, HealthSample{})
			},
			want: []string{ActionInconclusive},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, rb := newGuardEnv(t)
			tt.feed(env)
			st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease, Rules: tt.rules}, 10*time.Minute)
			if calls, _ := rb.get(); len(calls) != 0 {
				t.Fatalf("rollbacks %+v, want none", calls)
			}
			if got := actions(st.Decisions); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("decisions %v, want %v", got, tt.want)
			}
			for _, ev := range st.Current {
				if ev.Outcome != OutcomeInconclusive {
					t.Errorf("current %+v, want inconclusive", ev)
				}
			}
		})
	}
}

func TestGuardFrozenAlertsAndNeverRollsBack(t *testing.T) {
	env, rb := newGuardEnv(t)
	signalAt(env, 5*time.Second, SignalFreeze, FreezeRequest{Reason: "migration 42 is irreversible"})
	feed(env, 10*time.Second, 15*time.Minute, bad)
	var frozen GuardStatus
	statusAt(t, env, 10*time.Minute, &frozen)
	signalAt(env, 10*time.Minute+5*time.Second, SignalUnfreeze, nil)
	st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease}, 15*time.Minute)

	if !frozen.Frozen || frozen.FreezeReason != "migration 42 is irreversible" {
		t.Errorf("status while frozen %+v", frozen.GuardState)
	}
	var alert *Decision
	for i, d := range frozen.Decisions {
		if d.Action == ActionRollback || d.Action == ActionDryRunRollback {
			t.Fatalf("decision %+v while frozen", d)
		}
		if d.Action == ActionAlert {
			alert = &frozen.Decisions[i]
		}
	}
	if alert == nil || !strings.Contains(alert.Reason, "frozen (migration 42 is irreversible)") || alert.Repeats == 0 {
		t.Fatalf("decisions while frozen %+v, want repeated alerts", frozen.Decisions)
	}
	// Unfrozen, the breach that still holds rolls back at the next evaluation.
	calls, at := rb.get()
	if len(calls) != 1 || at[0] != 10*time.Minute+30*time.Second {
		t.Fatalf("rollbacks %+v at %v, want one at 10m30s", calls, at)
	}
	if st.Frozen {
		t.Error("still frozen after unfreeze")
	}
}

func TestGuardDryRunOnlyRecords(t *testing.T) {
	env, rb := newGuardEnv(t)
	feed(env, 10*time.Second, 8*time.Minute, bad)
	st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease, Rules: Rules{DryRun: true}}, 8*time.Minute)

	if calls, _ := rb.get(); len(calls) != 0 {
		t.Fatalf("rollbacks %+v in a dry run", calls)
	}
	var dry *Decision
	for i, d := range st.Decisions {
		if d.Action == ActionDryRunRollback {
			dry = &st.Decisions[i]
		}
	}
	if dry == nil {
		t.Fatalf("decisions %v, want a dry-run rollback", actions(st.Decisions))
	}
	// The window is full of 5% from the first sample on: 10s covers -20s..10s,
	// so the first full window ends at 5m.
	if got := dry.At.Sub(guardStart); got != 5*time.Minute {
		t.Errorf("dry-run rollback at %s, want 5m", got)
	}
	if len(dry.Measurements) == 0 || !near(dry.Measurements[0].Value, 0.05) {
		t.Errorf("measurements %+v", dry.Measurements)
	}
	if st.AwaitingRelease {
		t.Error("a dry run stopped evaluating")
	}
}

func TestGuardRollsBackSustainedLatency(t *testing.T) {
	env, rb := newGuardEnv(t)
	feed(env, 10*time.Second, 130*time.Second, good)
	feed(env, 130*time.Second, 8*time.Minute, slow) // p95 900ms against 2 x 200ms
	runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease}, 8*time.Minute)

	calls, at := rb.get()
	if len(calls) != 1 {
		t.Fatalf("%d rollbacks, want 1", len(calls))
	}
	// Three minutes of slow responses end at 280s; the next evaluation is at 300s.
	if at[0] != 300*time.Second {
		t.Errorf("rollback at %s, want 5m", at[0])
	}
	ms := calls[0].Measurements
	if len(ms) != 1 || ms[0].Signal != SignalP95Latency || !near(ms[0].Value, 0.9) || !near(ms[0].Threshold, 0.4) || ms[0].Window != 3*time.Minute {
		t.Errorf("measurements %+v, want p95_latency 0.9s over 3m against 0.4s", ms)
	}
}

func TestGuardStatusShowsValuesAgainstThresholds(t *testing.T) {
	env, _ := newGuardEnv(t)
	feed(env, 10*time.Second, 130*time.Second, good)
	feed(env, 130*time.Second, 4*time.Minute, bad)
	var mid GuardStatus
	statusAt(t, env, 3*time.Minute+15*time.Second, &mid)
	st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease, Rules: Rules{ErrorRate: 0.04}}, 4*time.Minute)

	if mid.App != "todo" || mid.Release.ID != "r2" || mid.Rules.ErrorRate != 0.04 || mid.Rules.ErrorWindow != 5*time.Minute {
		t.Errorf("status header %+v %+v %+v", mid.App, mid.Release, mid.Rules)
	}
	if len(mid.Current) != 2 {
		t.Fatalf("current %+v, want error rate and latency", mid.Current)
	}
	// Evaluated at 3m: 6 samples, 4 at 1% and 2 at 5%.
	er, lat := mid.Current[0], mid.Current[1]
	if er.Signal != SignalErrorRate || !near(er.Value, 14.0/600) || er.Threshold != 0.04 || er.Outcome != OutcomeHealthy || er.Samples != 6 || er.Requests != 600 {
		t.Errorf("error rate %+v", er)
	}
	if lat.Signal != SignalP95Latency || !near(lat.Value, 0.15) || !near(lat.Threshold, 0.4) || lat.Outcome != OutcomeHealthy {
		t.Errorf("latency %+v", lat)
	}
	if mid.EvaluatedAt != guardStart.Add(3*time.Minute) {
		t.Errorf("evaluated at %s", mid.EvaluatedAt)
	}
	if len(st.Decisions) == 0 || st.Decisions[0].Action != ActionNone || len(st.Decisions[0].Measurements) != 2 {
		t.Errorf("decisions %+v", st.Decisions)
	}
}

func TestGuardReleaseSignalResetsTheWindows(t *testing.T) {
	env, rb := newGuardEnv(t)
	feed(env, 10*time.Second, 6*time.Minute, bad)
	signalAt(env, 6*time.Minute+5*time.Second, SignalRelease, ReleaseRef{ID: "r1", Artifact: "sha256:1111", ScanID: "s1"})
	var after GuardStatus
	statusAt(t, env, 6*time.Minute+20*time.Second, &after)
	feed(env, 6*time.Minute+10*time.Second, 14*time.Minute, bad)
	runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease}, 14*time.Minute)

	if after.Release.ID != "r1" || after.AwaitingRelease || len(after.Samples) != 1 {
		t.Errorf("after the release signal: release %+v awaiting %v samples %d", after.Release, after.AwaitingRelease, len(after.Samples))
	}
	calls, at := rb.get()
	if len(calls) != 2 || calls[0].FromRelease != "r2" || calls[1].FromRelease != "r1" {
		t.Fatalf("rollbacks %+v, want one from r2 then one from r1", calls)
	}
	// r1 is watched from 6m5s; its first sample at 6m10s covers 5m40s on, so
	// its first full window ends at 10m40s, evaluated at 11m.
	if at[0] != 5*time.Minute || at[1] != 11*time.Minute {
		t.Errorf("rollbacks at %v, want 5m and 11m", at)
	}
}

func TestGuardRetriesAFailedRollbackStart(t *testing.T) {
	env, rb := newGuardEnv(t)
	fails := 0
	env.OnActivity(ActivityStartRollback, mock.Anything, mock.Anything).Return(func(ctx context.Context, req RollbackRequest) error {
		if fails < 5 { // every attempt of the first evaluation
			fails++
			return errors.New("temporal frontend unavailable")
		}
		return rb.StartRollback(ctx, req)
	})
	feed(env, 10*time.Second, 10*time.Minute, bad)
	st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease}, 10*time.Minute)

	calls, _ := rb.get()
	if len(calls) != 1 || !has(st.Decisions, ActionRollback) {
		t.Fatalf("rollbacks %+v, decisions %v", calls, actions(st.Decisions))
	}
	if got := actions(st.Decisions); got[len(got)-2] != ActionAlert || !strings.Contains(st.Decisions[len(got)-2].Reason, "start rollback failed") {
		t.Errorf("decisions %v, want the failed start as an alert", got)
	}
}

func TestGuardContinuesAsNewWithItsState(t *testing.T) {
	env, _ := newGuardEnv(t)
	signalAt(env, 5*time.Second, SignalFreeze, FreezeRequest{Reason: "migration"})
	feed(env, 10*time.Second, guardTicksPerRun*30*time.Second, good)
	env.ExecuteWorkflow(GuardWorkflow, GuardRequest{App: "todo", Release: guardRelease})

	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("got %v, want continue-as-new", err)
	}
	var next GuardRequest
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.App != "todo" || next.Release != guardRelease || next.State == nil {
		t.Fatalf("next run %+v", next)
	}
	s := next.State
	if !s.Frozen || s.FreezeReason != "migration" || len(s.Decisions) == 0 {
		t.Errorf("state %+v", s)
	}
	// Only the samples the longest window still reaches: 5m at one per 30s.
	if len(s.Samples) != 10 {
		t.Errorf("%d samples carried, want 10", len(s.Samples))
	}
}

func TestGuardRejectsBadRequests(t *testing.T) {
	for name, req := range map[string]GuardRequest{
		"no app":    {Release: guardRelease},
		"bad rules": {App: "todo", Release: guardRelease, Rules: Rules{ErrorRate: 2}},
	} {
		t.Run(name, func(t *testing.T) {
			env, _ := newGuardEnv(t)
			env.ExecuteWorkflow(GuardWorkflow, req)
			if env.GetWorkflowError() == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestGuardMarksAKnownGoodRelease(t *testing.T) {
	env, rb := newGuardEnv(t)
	// Healthy from the start, but a stretch without data at 4-6 minutes
	// restarts the count.
	feed(env, 10*time.Second, 4*time.Minute, good)
	feed(env, 6*time.Minute+10*time.Second, 20*time.Minute, good)
	st := runGuard(t, env, GuardRequest{Tenant: "acme", App: "todo", Release: guardRelease, Rules: Rules{KnownGoodAfter: 5 * time.Minute}}, 20*time.Minute)

	marks := rb.knownGood()
	if len(marks) != 1 {
		t.Fatalf("%d known-good marks, want 1: %+v", len(marks), marks)
	}
	m := marks[0]
	if m.Tenant != "acme" || m.App != "todo" || m.ReleaseID != "r2" || len(m.Measurements) != 2 {
		t.Errorf("mark %+v", m)
	}
	// Healthy again from the first full window after the gap; five minutes
	// later it is known-good.
	if got := m.At.Sub(m.HealthySince); got < 5*time.Minute || got > 5*time.Minute+30*time.Second {
		t.Errorf("marked after %s of health, want 5m", got)
	}
	if m.HealthySince.Before(guardStart.Add(6 * time.Minute)) {
		t.Errorf("healthy since %s: the gap at 4-6m should have reset it", m.HealthySince)
	}
	if !st.KnownGood || !has(st.Decisions, ActionKnownGood) {
		t.Errorf("status %+v", st)
	}
}

func TestGuardMissingDataIsNeverKnownGood(t *testing.T) {
	env, rb := newGuardEnv(t)
	st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease, Rules: Rules{KnownGoodAfter: time.Minute}}, 10*time.Minute)
	if marks := rb.knownGood(); len(marks) != 0 || st.KnownGood {
		t.Fatalf("marked known-good without data: %+v", marks)
	}
}

// A manual rollback that starts while the guard counts breaches: the guard
// stops judging the release, and starts no rollback of its own.
func TestGuardManualRollbackDuringABreach(t *testing.T) {
	env, rb := newGuardEnv(t)
	feed(env, 10*time.Second, 12*time.Minute, bad)
	signalAt(env, 3*time.Minute+5*time.Second, SignalRollbackStarted, RollbackNotice{RollbackID: "rollback/acme/todo", Trigger: "alice", Reason: "bad deploy"})
	st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease}, 12*time.Minute)
	if calls, _ := rb.get(); len(calls) != 0 {
		t.Fatalf("guard started %d rollbacks during a manual one: %+v", len(calls), calls)
	}
	if !st.AwaitingRelease || !has(st.Decisions, ActionRollback) || !strings.Contains(st.Decisions[len(st.Decisions)-1].Reason, "alice") {
		t.Fatalf("status %+v, want the manual rollback recorded", st)
	}
}

// The rollback workflow's own notice after the guard started it changes
// nothing; a failed rollback sends the guard back to alerting only.
func TestGuardAfterAFailedRollback(t *testing.T) {
	env, rb := newGuardEnv(t)
	feed(env, 10*time.Second, 15*time.Minute, bad)
	notice := RollbackNotice{RollbackID: "rollback/acme/todo", Trigger: TriggerGuard, FromRelease: "r2"}
	signalAt(env, 5*time.Minute+5*time.Second, SignalRollbackStarted, notice)
	failed := notice
	failed.Outcome, failed.Error = OutcomeFailed, "no release to roll back to"
	signalAt(env, 5*time.Minute+15*time.Second, SignalRollbackFinished, failed)
	st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease}, 15*time.Minute)

	if calls, _ := rb.get(); len(calls) != 1 {
		t.Fatalf("%d rollbacks, want the first only", len(calls))
	}
	if st.AwaitingRelease || st.RollbackFailed != "r2" {
		t.Fatalf("status %+v, want watching r2 again", st)
	}
	last := st.Decisions[len(st.Decisions)-1]
	if last.Action != ActionAlert || !strings.Contains(last.Reason, "already failed") {
		t.Fatalf("last decision %+v, want an alert", last)
	}
}

// After a rollback the guard watches the release rolled back to and reports
// its first conclusive evaluation to the rollback.
func TestGuardReportsRecovery(t *testing.T) {
	env, _ := newGuardEnv(t)
	var reports []RecoveryReport
	env.OnSignalExternalWorkflow(mock.Anything, "rollback/acme/todo", "", SignalRecovery, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error {
			reports = append(reports, arg.(RecoveryReport))
			return nil
		})
	r1 := ReleaseRef{ID: "r1", Artifact: "sha256:1111", RollbackID: "rollback/acme/todo"}
	signalAt(env, 5*time.Second, SignalRelease, r1)
	feed(env, 10*time.Second, 10*time.Minute, good)
	st := runGuard(t, env, GuardRequest{Tenant: "acme", App: "todo"}, 10*time.Minute)

	if len(reports) != 1 {
		t.Fatalf("%d recovery reports, want 1", len(reports))
	}
	if r := reports[0]; r.ReleaseID != "r1" || !r.Healthy || len(r.Evaluations) != 1 {
		t.Errorf("report %+v", r)
	}
	if st.Release.ID != "r1" || st.Release.RollbackID != "" {
		t.Errorf("watching %+v", st.Release)
	}
}

// Pulled samples are judged like pushed ones; a pull that finds nothing
// leaves the window inconclusive.
func TestGuardPullsFromPrometheus(t *testing.T) {
	env, rb := newGuardEnv(t)
	q := HealthQueries{Requests: `sum(increase(http_requests_total[30s]))`, Errors: `sum(increase(http_requests_total{code=~"5.."}[30s]))`}
	pulls := 0
	env.RegisterActivityWithOptions(func(_ context.Context, req PullRequest) (PullResult, error) {
		pulls++
		if req.Queries != q || req.App != "todo" {
			return PullResult{}, errors.New("wrong request")
		}
		at := req.At.Sub(guardStart)
		switch {
		case at < 3*time.Minute:
			return PullResult{Missing: []string{"requests", "errors"}}, nil
		case at < 6*time.Minute:
			return PullResult{Sample: HealthSample{At: req.At, Requests: 1000, Errors: 2}}, nil
		default:
			return PullResult{Sample: HealthSample{At: req.At, Requests: 1000, Errors: 90}}, nil
		}
	}, activity.RegisterOptions{Name: ActivityPullHealth})
	st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease, Rules: Rules{Queries: q}}, 13*time.Minute)

	if pulls == 0 || !has(st.Decisions, ActionInconclusive) || !has(st.Decisions, ActionNone) {
		t.Fatalf("%d pulls, decisions %v", pulls, actions(st.Decisions))
	}
	calls, at := rb.get()
	if len(calls) != 1 {
		t.Fatalf("%d rollbacks, want 1", len(calls))
	}
	// Bad from the pull at 6m (it covers 5m30s-6m); five minutes later.
	if at[0] != 10*time.Minute+30*time.Second {
		t.Errorf("rollback at %s", at[0])
	}
	if c := calls[0]; c.BreachAt.IsZero() || c.Rules == nil || c.ConfirmWithin == 0 {
		t.Errorf("request %+v", c)
	}
}

// TestGuardAndRollbackReplay replays the histories of a real guard and its
// rollback (recorded by the end-to-end test in internal/cli with
// `go test ./internal/cli -run TestGuardRollsBackEndToEnd -update-history`)
// against the current code: a change that breaks running guards fails here.
func TestGuardAndRollbackReplay(t *testing.T) {
	// guard_history_push.json is a guard with the health-push version
	// (pushes held to a clock window and a cap, pulled samples winning).
	for _, name := range []string{"guard_history.json", "rollback_history.json", "guard_history_push.json"} {
		t.Run(name, func(t *testing.T) {
			replayer := worker.NewWorkflowReplayer()
			replayer.RegisterWorkflow(GuardWorkflow)
			replayer.RegisterWorkflow(RollbackWorkflow)
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, filepath.Join("testdata", name)); err != nil {
				t.Fatalf("replay %s: %v", name, err)
			}
		})
	}
}

// One healthy sample pushed an hour ahead kept every window "healthy" and
// fresh on 9ae75cb, whatever the real traffic: now it is refused (and
// counted), and the window without real samples is inconclusive.
func TestGuardRefusesAPushDatedAhead(t *testing.T) {
	env, rb := newGuardEnv(t)
	env.RegisterDelayedCallback(func() {
		ahead := good
		ahead.At = env.Now().Add(time.Hour)
		env.SignalWorkflow(SignalHealthSample, ahead)
	}, 10*time.Second)
	st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease}, 10*time.Minute)
	if calls, _ := rb.get(); len(calls) != 0 {
		t.Fatalf("rollbacks %+v", calls)
	}
	if st.PushRefused != 1 || len(st.Samples) != 0 || has(st.Decisions, ActionNone) || !has(st.Decisions, ActionInconclusive) {
		t.Fatalf("refused %d, samples %d, decisions %v: want the push refused and the guard inconclusive",
			st.PushRefused, len(st.Samples), actions(st.Decisions))
	}
}

// Pulled samples breach; a pusher sends healthy samples for the same
// periods. The pushed ones cannot turn the breach into healthy: the guard
// rolls back when the pulled samples alone say so. On 9ae75cb the healthy
// pushes broke every window's run of breaches and no rollback came.
func TestGuardPulledSamplesOutvotePushedOnes(t *testing.T) {
	env, rb := newGuardEnv(t)
	q := HealthQueries{Requests: `sum(increase(http_requests_total[30s]))`, Errors: `sum(increase(http_requests_total{code=~"5.."}[30s]))`}
	env.RegisterActivityWithOptions(func(_ context.Context, req PullRequest) (PullResult, error) {
		return PullResult{Sample: HealthSample{At: req.At, Requests: 1000, Errors: 90}}, nil
	}, activity.RegisterOptions{Name: ActivityPullHealth})
	feed(env, 10*time.Second, 12*time.Minute, good)
	st := runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease, Rules: Rules{Queries: q}}, 12*time.Minute)
	calls, at := rb.get()
	if len(calls) != 1 {
		t.Fatalf("%d rollbacks (decisions %v), want 1: pushed samples outvoted pulled ones", len(calls), actions(st.Decisions))
	}
	// The first pull, at 30s, covers 0-30s: five minutes of pulled breach
	// are complete at 5m.
	if at[0] != 5*time.Minute {
		t.Errorf("rollback at %s, want 5m", at[0])
	}
}

// Pushing many full batches keeps the guard's sample store (its state, and
// the continue-as-new payload) bounded by MaxPushedSamples; the rest are
// refused and counted.
func TestGuardPushedSamplesAreBounded(t *testing.T) {
	env, _ := newGuardEnv(t)
	const batches, perBatch = 6, 500
	for i := range batches {
		env.RegisterDelayedCallback(func() {
			b := HealthBatch{}
			for range perBatch {
				s := good
				s.At = env.Now()
				b.Samples = append(b.Samples, s)
			}
			env.SignalWorkflow(SignalHealthSamples, b)
		}, time.Duration(i+1)*time.Second)
	}
	var mid GuardStatus
	statusAt(t, env, 10*time.Second, &mid)
	runGuard(t, env, GuardRequest{App: "todo", Release: guardRelease}, 2*time.Minute)
	if len(mid.Samples) != MaxPushedSamples || mid.PushRefused != batches*perBatch-MaxPushedSamples {
		t.Fatalf("%d samples kept, %d refused; want %d kept and the rest refused", len(mid.Samples), mid.PushRefused, MaxPushedSamples)
	}
}

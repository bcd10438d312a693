package workflows

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tollgate/tollgate/report"
)

var ttlStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

const (
	day       = 24 * time.Hour
	idleAfter = 30 * day
	grace     = 7 * day
)

// ttlApp is one app of the fake world.
type ttlWorldApp struct {
	state    string
	since    time.Time
	activity time.Time // newest scan, release or traffic
	release  ReleaseRef
}

// ttlWorld stands in for the TTL's activities: apps, their activity and
// lifecycle, and what was done to them.
type ttlWorld struct {
	mu       sync.Mutex
	apps     map[RematchRef]*ttlWorldApp
	broken   map[RematchRef]bool
	off      bool // the TTL is off (IdleAfter 0) for every app
	records  []LifecycleChange
	disables []DisableRequest
	stopped  []RematchRef
	deploys  []DeployRequest
	watches  []WatchRequest
}

func newTTLWorld(refs ...RematchRef) *ttlWorld {
	w := &ttlWorld{apps: map[RematchRef]*ttlWorldApp{}, broken: map[RematchRef]bool{}}
	for _, r := range refs {
		w.apps[r] = &ttlWorldApp{activity: ttlStart, release: ReleaseRef{ID: "r1-" + r.App, Artifact: "sha256:aaaa", ScanID: "s1"}}
	}
	return w
}

func (w *ttlWorld) touch(ref RematchRef, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.apps[ref].activity = at
}

func (w *ttlWorld) page(_ context.Context, req RematchPageRequest) (RematchPage, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var refs []RematchRef
	for r := range w.apps {
		if (req.Tenant == "" || r.Tenant == req.Tenant) && compareRef(r, req.After) > 0 {
			refs = append(refs, r)
		}
	}
	slices.SortFunc(refs, compareRef)
	return RematchPage{Apps: refs[:min(req.Limit, len(refs))], More: len(refs) > req.Limit}, nil
}

func compareRef(a, b RematchRef) int {
	switch {
	case a.Tenant+"/"+a.App < b.Tenant+"/"+b.App:
		return -1
	case a == b:
		return 0
	}
	return 1
}

func (w *ttlWorld) appActivity(_ context.Context, ref RematchRef) (AppActivity, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken[ref] {
		return AppActivity{}, errors.New("store unreachable")
	}
	a := w.apps[ref]
	out := AppActivity{Tenant: ref.Tenant, App: ref.App, State: a.state, Since: a.since, LastActivity: a.activity,
		IdleAfter: idleAfter, Grace: grace, Release: a.release}
	if w.off {
		out.IdleAfter = 0
	}
	// A revive or a cleared idle mark counts as activity, as in the real
	// activity.
	if a.state == LifecycleActive && a.since.After(out.LastActivity) {
		out.LastActivity = a.since
	}
	return out, nil
}

func (w *ttlWorld) record(_ context.Context, c LifecycleChange) (report.Evidence, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.records = append(w.records, c)
	a := w.apps[RematchRef{Tenant: c.Tenant, App: c.App}]
	a.state, a.since = c.State, c.At
	return report.Evidence{Name: "lifecycle.json", Key: "apps/" + c.Tenant + "/" + c.App + "/lifecycle/x.json"}, nil
}

func (w *ttlWorld) disable(_ context.Context, req DisableRequest) (DeployReceipt, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.disables = append(w.disables, req)
	return DeployReceipt{Target: "webhook test", Status: 200}, nil
}

func (w *ttlWorld) stopGuard(_ context.Context, ref RematchRef) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = append(w.stopped, ref)
	return nil
}

func (w *ttlWorld) deploy(_ context.Context, req DeployRequest) (DeployReceipt, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deploys = append(w.deploys, req)
	return DeployReceipt{Target: "webhook test", Status: 200}, nil
}

func (w *ttlWorld) watch(_ context.Context, req WatchRequest) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.watches = append(w.watches, req)
	return nil
}

// events are the recorded changes' event types, in order, with when.
func (w *ttlWorld) events() ([]string, []time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	var at []time.Duration
	for _, r := range w.records {
		names = append(names, r.App+" "+r.Event)
		at = append(at, r.At.Sub(ttlStart))
	}
	return names, at
}

// ttlEvery stands in for the schedule: it runs a sweep every interval
// until the time is up, as children, so the test env skips the time.
func ttlEvery(ctx workflow.Context, every, until time.Duration) (TTLResult, error) {
	var total TTLResult
	for start := workflow.Now(ctx); workflow.Now(ctx).Sub(start) < until; {
		var res TTLResult
		if err := workflow.ExecuteChildWorkflow(ctx, TTLWorkflow, TTLRequest{PageSize: 2}).Get(ctx, &res); err != nil {
			return total, err
		}
		total = total.plus(res)
		if err := workflow.Sleep(ctx, every); err != nil {
			return total, err
		}
	}
	return total, nil
}

func newTTLEnv(t *testing.T, w *ttlWorld) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(ttlStart)
	env.RegisterWorkflow(TTLWorkflow)
	env.RegisterWorkflow(ReviveWorkflow)
	env.RegisterWorkflow(ttlEvery)
	env.RegisterActivityWithOptions(w.page, activity.RegisterOptions{Name: ActivityRematchPage})
	env.RegisterActivityWithOptions(w.appActivity, activity.RegisterOptions{Name: ActivityAppActivity})
	env.RegisterActivityWithOptions(w.record, activity.RegisterOptions{Name: ActivityRecordLifecycle})
	env.RegisterActivityWithOptions(w.disable, activity.RegisterOptions{Name: ActivityDisableApp})
	env.RegisterActivityWithOptions(w.stopGuard, activity.RegisterOptions{Name: ActivityStopGuard})
	env.RegisterActivityWithOptions(w.deploy, activity.RegisterOptions{Name: ActivityDeploy})
	env.RegisterActivityWithOptions(w.watch, activity.RegisterOptions{Name: ActivityWatchRelease})
	return env
}

func runTTL(t *testing.T, env *testsuite.TestWorkflowEnvironment, until time.Duration) TTLResult {
	t.Helper()
	env.ExecuteWorkflow(ttlEvery, 6*time.Hour, until)
	if !env.IsWorkflowCompleted() {
		t.Fatal("not completed")
	}
	var res TTLResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

var (
	shop = RematchRef{Tenant: "acme", App: "shop"}
	todo = RematchRef{Tenant: "acme", App: "todo"}
)

// An app without a scan, release or traffic for 30 days is marked idle at
// the first sweep after the period; 7 days later, still without any, it is
// archived: disabled through its deploy target with a stable key, its
// guard stopped, the archived record made. An app with traffic is left
// alone, and an archived app stays archived.
func TestTTLMarksIdleThenArchivesAfterGrace(t *testing.T) {
	w := newTTLWorld(shop, todo)
	env := newTTLEnv(t, w)
	// todo has traffic every day.
	for d := 1; d <= 45; d++ {
		env.RegisterDelayedCallback(func() { w.touch(todo, env.Now()) }, time.Duration(d)*day-time.Hour)
	}
	res := runTTL(t, env, 45*day)

	names, at := w.events()
	if !slices.Equal(names, []string{"shop " + EventAppIdle, "shop " + EventAppArchived}) {
		t.Fatalf("events %v at %v", names, at)
	}
	if at[0] != idleAfter || at[1] != idleAfter+grace {
		t.Fatalf("idle at %s, archived at %s; want %s and %s", at[0], at[1], idleAfter, idleAfter+grace)
	}
	if res.Idled != 1 || res.Archived != 1 || res.Failed != 0 {
		t.Fatalf("result %+v", res)
	}
	if len(w.disables) != 1 || len(w.stopped) != 1 || w.stopped[0] != shop {
		t.Fatalf("disables %+v, guards stopped %v", w.disables, w.stopped)
	}
	d := w.disables[0]
	if d.Key != "archive/acme/shop/20260331T000000Z" || d.ReleaseID != "r1-shop" || d.Trigger != TriggerTTL {
		t.Fatalf("disable %+v", d)
	}
	arch := w.records[1]
	if arch.State != LifecycleArchived || !arch.GuardStopped || arch.Deploy == nil || arch.By != TriggerTTL || !arch.LastActivity.Equal(ttlStart) {
		t.Fatalf("archived record %+v", arch)
	}
}

// Activity during the grace period clears idle at the next sweep: nothing
// is archived, and the period starts again from that activity.
func TestTTLActivityDuringGraceClearsIdle(t *testing.T) {
	w := newTTLWorld(shop)
	env := newTTLEnv(t, w)
	scanAt := idleAfter + 3*day + time.Hour
	env.RegisterDelayedCallback(func() { w.touch(shop, env.Now()) }, scanAt)
	runTTL(t, env, scanAt+idleAfter+day)

	names, at := w.events()
	want := []string{"shop " + EventAppIdle, "shop " + EventAppActive, "shop " + EventAppIdle}
	if !slices.Equal(names, want) {
		t.Fatalf("events %v at %v, want %v", names, at, want)
	}
	if at[1] != idleAfter+3*day+6*time.Hour {
		t.Fatalf("cleared at %s, want at the first sweep after the scan", at[1])
	}
	if at[2] != at[1]+idleAfter {
		t.Fatalf("idle again at %s, want %s after it was cleared", at[2], idleAfter)
	}
	if len(w.disables) != 0 || len(w.stopped) != 0 {
		t.Fatalf("archived during grace: %+v %v", w.disables, w.stopped)
	}
}

// Revive of an archived app deploys its live release again, restarts its
// guard on it and records who revived it; the next sweeps count from the
// revive, not from the old activity.
func TestReviveRedeploysAndRestartsTheGuard(t *testing.T) {
	w := newTTLWorld(shop)
	w.apps[shop].state, w.apps[shop].since = LifecycleArchived, ttlStart.Add(-day)
	env := newTTLEnv(t, w)
	req := ReviveRequest{Tenant: "acme", App: "shop", By: "alice", Reason: "customer is back", RequestedAt: ttlStart}
	env.ExecuteWorkflow(ReviveWorkflow, req)
	var res ReviveResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if !res.Revived || res.Previous != LifecycleArchived || !res.GuardStarted || res.Deploy == nil || res.ReleaseID != "r1-shop" {
		t.Fatalf("result %+v", res)
	}
	if len(w.deploys) != 1 || w.deploys[0].Release.ID != "r1-shop" || w.deploys[0].Trigger != "alice" ||
		w.deploys[0].RollbackID != "revive/acme/shop/20260301T000000.000000000Z" {
		t.Fatalf("deploys %+v", w.deploys)
	}
	if len(w.watches) != 1 || w.watches[0].Release.ID != "r1-shop" {
		t.Fatalf("watches %+v", w.watches)
	}
	rec := w.records[0]
	if rec.State != LifecycleActive || rec.Event != EventAppRevived || rec.By != "alice" || rec.Reason != "customer is back" {
		t.Fatalf("record %+v", rec)
	}

	// The sweep that follows leaves it alone: the revive is activity.
	env2 := newTTLEnv(t, w)
	env2.SetStartTime(ttlStart.Add(time.Hour))
	env2.ExecuteWorkflow(TTLWorkflow, TTLRequest{})
	if names, _ := w.events(); len(names) != 1 {
		t.Fatalf("events after the revive %v", names)
	}
}

// Revive of an idle app (still served, its guard running) only clears the
// mark; of an active app it does nothing.
func TestReviveOfIdleClearsAndOfActiveDoesNothing(t *testing.T) {
	w := newTTLWorld(shop, todo)
	w.apps[shop].state, w.apps[shop].since = LifecycleIdle, ttlStart.Add(-day)
	for _, c := range []struct {
		ref     RematchRef
		revived bool
	}{{shop, true}, {todo, false}} {
		env := newTTLEnv(t, w)
		env.ExecuteWorkflow(ReviveWorkflow, ReviveRequest{Tenant: c.ref.Tenant, App: c.ref.App, By: "alice", Reason: "r", RequestedAt: ttlStart})
		var res ReviveResult
		if err := env.GetWorkflowResult(&res); err != nil || res.Revived != c.revived {
			t.Fatalf("%s: %+v, %v", c.ref.App, res, err)
		}
	}
	if len(w.deploys) != 0 || len(w.watches) != 0 || len(w.records) != 1 || w.records[0].App != "shop" {
		t.Fatalf("deploys %v, watches %v, records %+v", w.deploys, w.watches, w.records)
	}
}

// One app that cannot be read is counted as failed; the others are swept.
// Turning the TTL off clears an idle mark.
func TestTTLSweepsPastAFailedAppAndOffClearsIdle(t *testing.T) {
	w := newTTLWorld(shop, todo)
	w.broken[shop] = true
	w.off = true
	w.apps[todo].state, w.apps[todo].since = LifecycleIdle, ttlStart.Add(-day)
	env := newTTLEnv(t, w)
	env.ExecuteWorkflow(TTLWorkflow, TTLRequest{PageSize: 1})
	var res TTLResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Apps != 2 || res.Failed != 1 || res.Cleared != 1 {
		t.Fatalf("result %+v", res)
	}
	if names, _ := w.events(); !slices.Equal(names, []string{"todo " + EventAppActive}) {
		t.Fatalf("events %v", names)
	}
}

func TestTTLStep(t *testing.T) {
	now := ttlStart.Add(100 * day)
	base := AppActivity{IdleAfter: idleAfter, Grace: grace}
	for _, c := range []struct {
		name string
		a    func(AppActivity) AppActivity
		want string
	}{
		{"active, recent", func(a AppActivity) AppActivity { a.LastActivity = now.Add(-day); return a }, ttlNone},
		{"active, exactly the period", func(a AppActivity) AppActivity { a.LastActivity = now.Add(-idleAfter); return a }, ttlIdle},
		{"active, no activity known", func(a AppActivity) AppActivity { return a }, ttlNone},
		{"active, ttl off", func(a AppActivity) AppActivity { a.IdleAfter, a.LastActivity = 0, now.Add(-90*day); return a }, ttlNone},
		{"idle, in grace", func(a AppActivity) AppActivity {
			a.State, a.Since, a.LastActivity = LifecycleIdle, now.Add(-day), now.Add(-31*day)
			return a
		}, ttlNone},
		{"idle, activity since", func(a AppActivity) AppActivity {
			a.State, a.Since, a.LastActivity = LifecycleIdle, now.Add(-2*day), now.Add(-day)
			return a
		}, ttlClear},
		{"idle, grace over", func(a AppActivity) AppActivity {
			a.State, a.Since, a.LastActivity = LifecycleIdle, now.Add(-grace), now.Add(-40*day)
			return a
		}, ttlArchive},
		{"archived", func(a AppActivity) AppActivity {
			a.State, a.Since, a.LastActivity = LifecycleArchived, now.Add(-90*day), now.Add(-99*day)
			return a
		}, ttlNone},
	} {
		if got := ttlStep(c.a(base), now); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestTTLReplay replays a real sweep that archived an app and the revive
// that brought it back (recorded by go test ./orchestrator -run
// TestTTLEndToEnd -update-history): a change that breaks running TTL
// workflows fails here.
func TestTTLReplay(t *testing.T) {
	for _, name := range []string{"ttl_history.json", "revive_history.json"} {
		t.Run(name, func(t *testing.T) {
			replayer := worker.NewWorkflowReplayer()
			replayer.RegisterWorkflow(TTLWorkflow)
			replayer.RegisterWorkflow(ReviveWorkflow)
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, filepath.Join("testdata", name)); err != nil {
				t.Fatalf("replay %s: %v", name, err)
			}
		})
	}
}

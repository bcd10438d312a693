package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
)

func (fakeActivities) RematchPlan(context.Context) ([]RematchItem, error) { return nil, nil }
func (fakeActivities) RecordRematch(context.Context, RematchRecord) error { return nil }
func (fakeActivities) RematchPage(context.Context, RematchPageRequest) (RematchPage, error) {
	return RematchPage{}, nil
}
func (fakeActivities) RematchTarget(context.Context, RematchRef) (RematchTarget, error) {
	return RematchTarget{}, nil
}
func (fakeActivities) DecideRematch(context.Context, RematchDecideRequest) (RematchOutcome, error) {
	return RematchOutcome{}, nil
}

func newRematchEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	env := newEnv(t)
	var a fakeActivities
	env.RegisterWorkflow(RematchAppWorkflow)
	env.RegisterActivityWithOptions(a.RematchPlan, activity.RegisterOptions{Name: ActivityRematchPlan})
	env.RegisterActivityWithOptions(a.RecordRematch, activity.RegisterOptions{Name: ActivityRecordRematch})
	env.RegisterActivityWithOptions(a.RematchPage, activity.RegisterOptions{Name: ActivityRematchPage})
	env.RegisterActivityWithOptions(a.RematchTarget, activity.RegisterOptions{Name: ActivityRematchTarget})
	env.RegisterActivityWithOptions(a.DecideRematch, activity.RegisterOptions{Name: ActivityDecideRematch})
	return env
}

// fakeApps serves pages of apps, targets by reference and decisions; what
// was asked is kept for the test to check.
type fakeApps struct {
	mu      sync.Mutex
	apps    []RematchRef
	broken  map[string]bool // apps whose target cannot be read
	targets []RematchRef
	decided []RematchDecideRequest
	pages   []RematchPageRequest
	maxPage int // largest page payload, in bytes
}

func (f *fakeApps) mock(t *testing.T, env *testsuite.TestWorkflowEnvironment, v1 time.Time) {
	env.OnActivity(ActivityRematchPage, mock.Anything, mock.Anything).Return(func(_ context.Context, req RematchPageRequest) (RematchPage, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.pages = append(f.pages, req)
		var rest []RematchRef
		for _, a := range f.apps {
			if (req.Tenant == "" || a.Tenant == req.Tenant) && (req.After == RematchRef{} || a.Tenant+"/"+a.App > req.After.Tenant+"/"+req.After.App) {
				rest = append(rest, a)
			}
		}
		page := RematchPage{Apps: rest[:min(req.Limit, len(rest))], More: len(rest) > req.Limit}
		raw, _ := json.Marshal(page)
		f.maxPage = max(f.maxPage, len(raw))
		return page, nil
	})
	env.OnActivity(ActivityRematchTarget, mock.Anything, mock.Anything).Return(func(_ context.Context, ref RematchRef) (RematchTarget, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.targets = append(f.targets, ref)
		if f.broken[ref.App] {
			return RematchTarget{}, temporal.NewNonRetryableApplicationError("decode report of scan s-"+ref.App, "BadRematch", nil)
		}
		return RematchTarget{
			Tenant: ref.Tenant, App: ref.App, ReleaseID: "r-" + ref.App, ScanID: "s-" + ref.App,
			Report: storage.Object{Key: "scans/s-" + ref.App + "/report.json", SHA256: "aa"},
			SBOM:   storage.Object{Key: "scans/s-" + ref.App + "/sbom.cdx.json"},
			VulnDB: report.VulnDB{Available: true, UpdatedAt: v1}, Verdict: report.VerdictPass,
		}, nil
	})
}

// Two live apps: one whose SBOM the worker matches against a newer DB and
// finds a HIGH advisory (worse: recorded), one the worker skips (same DB)
// whose verdict stays. The run passes references; each app is a child.
func TestRematchWorkflow(t *testing.T) {
	env := newRematchEnv(t)
	v1 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f := &fakeApps{apps: []RematchRef{{"acme", "notes"}, {"acme", "todo"}}}
	f.mock(t, env, v1)
	high := report.Vulnerability{ID: "GHSA-35jh-r3h4-6jhm", Package: "lodash", Version: "4.17.20", Severity: "HIGH"}
	env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(func(_ context.Context, task tasks.Task) (tasks.Result, error) {
		if task.Kind != tasks.KindRematch || task.Pool != tasks.PoolDeep || task.Priority != tasks.PriorityBulk || task.Input.SBOM == nil || !task.MatchedDB.Equal(v1) {
			t.Errorf("task %+v", task)
		}
		if task.App == "notes" {
			return tasks.Result{Kind: task.Kind, Skipped: true}, nil
		}
		return tasks.Result{Kind: task.Kind, Findings: report.Findings{Vulnerabilities: []report.Vulnerability{high}}, VulnDB: &report.VulnDB{Available: true, UpdatedAt: v1.Add(24 * time.Hour)}}, nil
	})
	env.OnActivity(ActivityDecideRematch, mock.Anything, mock.Anything).Return(func(_ context.Context, req RematchDecideRequest) (RematchOutcome, error) {
		f.mu.Lock()
		f.decided = append(f.decided, req)
		f.mu.Unlock()
		if req.At.IsZero() || req.Target.Report.Key == "" {
			t.Errorf("decide request %+v", req)
		}
		if req.Matched {
			return RematchOutcome{Matched: true, Previous: report.VerdictPass, Verdict: report.VerdictWarn, Worse: true, Recorded: true}, nil
		}
		return RematchOutcome{Previous: report.VerdictPass, Verdict: report.VerdictPass}, nil
	})
	env.ExecuteWorkflow(RematchWorkflow, RematchRequest{})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res RematchResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := RematchResult{Apps: 2, Releases: 2, Matched: 1, Skipped: 1, Changed: 1, Worsened: 1, Unchanged: 1}
	if res != want {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	slices.SortFunc(f.decided, func(a, b RematchDecideRequest) int { return strings.Compare(a.Target.App, b.Target.App) })
	if len(f.decided) != 2 || f.decided[0].Matched || !f.decided[1].Matched || len(f.decided[1].Vulnerabilities) != 1 || !f.decided[1].VulnDB.UpdatedAt.After(v1) {
		t.Fatalf("decisions %+v", f.decided)
	}
}

// One app whose records cannot be read fails its own child; the others are
// matched, and the run says how many failed.
func TestRematchOneFailingAppDoesNotStopTheOthers(t *testing.T) {
	env := newRematchEnv(t)
	f := &fakeApps{apps: []RematchRef{{"acme", "a"}, {"acme", "broken"}, {"acme", "c"}}, broken: map[string]bool{"broken": true}}
	f.mock(t, env, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(tasks.Result{Kind: tasks.KindRematch, Skipped: true}, nil)
	var decided []string
	env.OnActivity(ActivityDecideRematch, mock.Anything, mock.Anything).Return(func(_ context.Context, req RematchDecideRequest) (RematchOutcome, error) {
		decided = append(decided, req.Target.App)
		return RematchOutcome{Previous: report.VerdictPass, Verdict: report.VerdictPass}, nil
	})
	env.ExecuteWorkflow(RematchWorkflow, RematchRequest{})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res RematchResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	slices.Sort(decided)
	if res.Apps != 3 || res.Failed != 1 || res.Releases != 2 || strings.Join(decided, ",") != "a,c" {
		t.Fatalf("result %+v, decided %v; want a and c decided, broken failed", res, decided)
	}
}

// A run triggered for one tenant lists only that tenant's apps.
func TestRematchForOneTenantPlansOnlyItsApps(t *testing.T) {
	env := newRematchEnv(t)
	f := &fakeApps{apps: []RematchRef{{"acme", "todo"}, {"globex", "shop"}, {"initech", "tps"}}}
	f.mock(t, env, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(tasks.Result{Kind: tasks.KindRematch, Skipped: true}, nil)
	env.OnActivity(ActivityDecideRematch, mock.Anything, mock.Anything).Return(RematchOutcome{Previous: report.VerdictPass, Verdict: report.VerdictPass}, nil)
	env.ExecuteWorkflow(RematchWorkflow, RematchRequest{Tenant: "globex"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(f.targets) != 1 || f.targets[0] != (RematchRef{"globex", "shop"}) {
		t.Fatalf("matched %v, want globex/shop only", f.targets)
	}
	for _, p := range f.pages {
		if p.Tenant != "globex" {
			t.Errorf("page request %+v names no tenant", p)
		}
	}
}

// Hundreds of apps: each run lists pages of references, starts at most
// AppsPerRun children and continues as new with a small input; every app is
// matched exactly once across the runs, and the totals add up. Nothing a
// run carries grows with the number of apps: its pages, its children and
// its continue-as-new input are bounded by the page size and AppsPerRun.
func TestRematchManyAppsStayBoundedPerRun(t *testing.T) {
	const apps, pageSize, perRun = 320, 25, 100
	f := &fakeApps{}
	for i := range apps {
		f.apps = append(f.apps, RematchRef{Tenant: fmt.Sprintf("t%02d", i%7), App: fmt.Sprintf("app-%03d", i)})
	}
	slices.SortFunc(f.apps, func(a, b RematchRef) int { return strings.Compare(a.Tenant+"/"+a.App, b.Tenant+"/"+b.App) })
	req := RematchRequest{PageSize: pageSize, AppsPerRun: perRun}
	var res RematchResult
	runs := 0
	for {
		runs++
		if runs > apps/perRun+2 {
			t.Fatalf("%d runs for %d apps at %d a run", runs, apps, perRun)
		}
		env := newRematchEnv(t)
		f.mock(t, env, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
		env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(tasks.Result{Kind: tasks.KindRematch, Skipped: true}, nil)
		env.OnActivity(ActivityDecideRematch, mock.Anything, mock.Anything).Return(func(_ context.Context, req RematchDecideRequest) (RematchOutcome, error) {
			f.mu.Lock()
			f.decided = append(f.decided, req)
			f.mu.Unlock()
			return RematchOutcome{Previous: report.VerdictPass, Verdict: report.VerdictPass}, nil
		})
		before := len(f.targets)
		env.ExecuteWorkflow(RematchWorkflow, req)
		if children := len(f.targets) - before; children > perRun {
			t.Fatalf("run %d started %d children, want at most %d", runs, children, perRun)
		}
		err := env.GetWorkflowError()
		var cont *workflow.ContinueAsNewError
		if errors.As(err, &cont) {
			raw, _ := json.Marshal(cont.Input)
			if len(raw) > 1024 {
				t.Fatalf("continue-as-new input of %d bytes: %s", len(raw), raw)
			}
			req = RematchRequest{}
			if err := converter.GetDefaultDataConverter().FromPayloads(cont.Input, &req); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		break
	}
	if runs != 4 {
		t.Errorf("%d runs, want 4 (%d apps, %d a run)", runs, apps, perRun)
	}
	if res.Apps != apps || res.Releases != apps || res.Failed != 0 {
		t.Fatalf("totals %+v, want %d apps", res, apps)
	}
	seen := map[RematchRef]bool{}
	for _, ref := range f.targets {
		if seen[ref] {
			t.Fatalf("%v matched twice", ref)
		}
		seen[ref] = true
	}
	if len(seen) != apps {
		t.Fatalf("%d apps matched, want %d", len(seen), apps)
	}
	if f.maxPage > 4096 {
		t.Errorf("a page of %d bytes: pages must carry references only", f.maxPage)
	}
	for _, p := range f.pages {
		if p.Limit > pageSize {
			t.Errorf("page request %+v above the page size", p)
		}
	}
}

// TestRematchReplay replays a version 0 RematchWorkflow history (one plan of
// every release, matched in one workflow), recorded before version 1.
func TestRematchReplay(t *testing.T) {
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflow(RematchWorkflow)
	if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, filepath.Join("testdata", "rematch_history.json")); err != nil {
		t.Fatalf("replay: %v", err)
	}
}

// TestRematchReplayChildren replays a version 1 run and its child, recorded
// from the real end-to-end run (go test ./orchestrator -run
// TestRematchEndToEnd -update-history rewrites them).
func TestRematchReplayChildren(t *testing.T) {
	for _, name := range []string{"rematch_history_v1.json", "rematch_app_history.json"} {
		replayer := worker.NewWorkflowReplayer()
		replayer.RegisterWorkflow(RematchWorkflow)
		replayer.RegisterWorkflow(RematchAppWorkflow)
		if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, filepath.Join("testdata", name)); err != nil {
			t.Fatalf("replay %s: %v", name, err)
		}
	}
}

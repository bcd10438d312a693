package workflows

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
)

// scaleActivities answer a re-match of many apps with small fakes.
type scaleActivities struct{ apps []RematchRef }

func (s scaleActivities) page(_ context.Context, req RematchPageRequest) (RematchPage, error) {
	i, _ := slices.BinarySearchFunc(s.apps, req.After, func(a, b RematchRef) int {
		return strings.Compare(a.Tenant+"/"+a.App, b.Tenant+"/"+b.App)
	})
	if req.After != (RematchRef{}) && i < len(s.apps) && s.apps[i] == req.After {
		i++
	}
	rest := s.apps[i:]
	return RematchPage{Apps: rest[:min(req.Limit, len(rest))], More: len(rest) > req.Limit}, nil
}

func (scaleActivities) target(_ context.Context, ref RematchRef) (RematchTarget, error) {
	if ref.App == "app-013" {
		return RematchTarget{}, temporal.NewNonRetryableApplicationError("decode report of "+ref.App, "BadRematch", nil)
	}
	return RematchTarget{Tenant: ref.Tenant, App: ref.App, ReleaseID: "r-" + ref.App, ScanID: "s-" + ref.App,
		Report: storage.Object{Key: "scans/s-" + ref.App + "/report.json"}, SBOM: storage.Object{Key: "scans/s-" + ref.App + "/sbom.cdx.json"},
		Verdict: report.VerdictPass}, nil
}

func (scaleActivities) dispatch(_ context.Context, t tasks.Task) (tasks.Result, error) {
	// Each release's match carries a real-sized finding list: it stays in
	// the app's child, never in the run.
	vulns := make([]report.Vulnerability, 200)
	for i := range vulns {
		vulns[i] = report.Vulnerability{ID: fmt.Sprintf("GHSA-%04d", i), Package: "pkg", Version: "1.0.0", Severity: "LOW"}
	}
	return tasks.Result{Kind: t.Kind, Findings: report.Findings{Vulnerabilities: vulns}, VulnDB: &report.VulnDB{Available: true}}, nil
}

func (scaleActivities) decide(_ context.Context, req RematchDecideRequest) (RematchOutcome, error) {
	return RematchOutcome{Matched: true, Previous: report.VerdictPass, Verdict: report.VerdictPass, Recorded: true}, nil
}

// TestRematchHistoriesStayBoundedOnARealServer runs a re-match of 300 apps
// on the Temporal dev server and reads every history back: each run of the
// parent stays within a bound set by AppsPerRun, not by the number of apps,
// no run payload carries findings, and the one failing app is counted while
// the other 299 are matched.
func TestRematchHistoriesStayBoundedOnARealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the Temporal dev server")
	}
	const apps, pageSize, perRun = 300, 50, 100
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tdev, err := stack.StartTemporalDev(ctx, stack.TemporalDevOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tdev.Stop()
	tc, err := client.Dial(client.Options{HostPort: tdev.Addr, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	var s scaleActivities
	for i := range apps {
		s.apps = append(s.apps, RematchRef{Tenant: fmt.Sprintf("t%d", i%4), App: fmt.Sprintf("app-%03d", i)})
	}
	slices.SortFunc(s.apps, func(a, b RematchRef) int { return strings.Compare(a.Tenant+"/"+a.App, b.Tenant+"/"+b.App) })
	w := worker.New(tc, "rematch-scale", worker.Options{})
	w.RegisterWorkflow(RematchWorkflow)
	w.RegisterWorkflow(RematchAppWorkflow)
	w.RegisterActivityWithOptions(s.page, activity.RegisterOptions{Name: ActivityRematchPage})
	w.RegisterActivityWithOptions(s.target, activity.RegisterOptions{Name: ActivityRematchTarget})
	w.RegisterActivityWithOptions(s.dispatch, activity.RegisterOptions{Name: ActivityDispatch})
	w.RegisterActivityWithOptions(s.decide, activity.RegisterOptions{Name: ActivityDecideRematch})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "rematch-scale", TaskQueue: "rematch-scale"},
		RematchWorkflow, RematchRequest{PageSize: pageSize, AppsPerRun: perRun})
	if err != nil {
		t.Fatal(err)
	}
	first := run.GetRunID() // Get follows the chain and moves the run id
	var res RematchResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if res.Apps != apps || res.Failed != 1 || res.Releases != apps-1 {
		t.Fatalf("result %+v, want %d apps, 1 failed", res, apps)
	}
	// Follow the chain of runs and measure each history.
	runs, maxEvents, maxPayload := 0, 0, 0
	for runID := first; runID != ""; runs++ {
		events, largest, next := readHistory(ctx, t, tc, "rematch-scale", runID)
		maxEvents, maxPayload = max(maxEvents, events), max(maxPayload, largest)
		runID = next
	}
	t.Logf("%d apps: %d runs, at most %d events and a largest event of %d bytes per run", apps, runs, maxEvents, maxPayload)
	if runs != apps/perRun {
		t.Errorf("%d runs, want %d", runs, apps/perRun)
	}
	// Per run: three events per child and up to three of the workflow
	// task each completion wakes, a handful per page.
	if bound := 7*perRun + 10*(perRun/pageSize+1) + 20; maxEvents > bound {
		t.Errorf("a run has %d events, above %d", maxEvents, bound)
	}
	if maxPayload > 4096 {
		t.Errorf("a run's event of %d bytes: the run must carry references only", maxPayload)
	}
}

// readHistory counts a run's events, its largest event's size, and the run
// it continued as.
func readHistory(ctx context.Context, t *testing.T, tc client.Client, id, runID string) (int, int, string) {
	t.Helper()
	it := tc.GetWorkflowHistory(ctx, id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n, largest, next := 0, 0, ""
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		n++
		largest = max(largest, proto.Size(ev))
		if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
			next = a.GetNewExecutionRunId()
		}
	}
	return n, largest, next
}

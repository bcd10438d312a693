package workflows

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/internal/golden"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/tasks"
)

var updateHistory = flag.Bool("update-history", false,
	"write testdata/scan_history_v2_block.json (a ScanWorkflowV2 blocked in its fast stage) from TestScanActions' run")

// scanActions are what one scan costs in Temporal: its history and the calls
// the worker and the starter made for it.
type scanActions struct {
	Events, WorkflowTasks, Activities, LocalActivities, VersionMarkers, SearchAttributeUpserts, MemoUpserts int
	// EagerActivities came back in the answer to a workflow task's
	// completion; PolledActivities came from polling the task queue.
	EagerActivities, PolledActivities int
	// Calls are the gRPC calls that returned something (polls that ended
	// empty left out), by method.
	Calls map[string]int
}

func (a scanActions) String() string {
	calls := 0
	for _, n := range a.Calls {
		calls += n
	}
	return fmt.Sprintf("%2d events, %d workflow tasks, %d activities (%d eager, %d polled), %d local activities, %d version markers, %d search-attribute upserts, %d memo upserts, %d gRPC calls %v",
		a.Events, a.WorkflowTasks, a.Activities, a.EagerActivities, a.PolledActivities, a.LocalActivities, a.VersionMarkers,
		a.SearchAttributeUpserts, a.MemoUpserts, calls, a.Calls)
}

// callCounter counts the gRPC calls a client makes, as a unary interceptor.
type callCounter struct {
	mu            sync.Mutex
	calls         map[string]int
	eager, polled int
}

func (c *callCounter) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	name := method[strings.LastIndex(method, "/")+1:]
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r := reply.(type) {
	case *workflowservice.PollActivityTaskQueueResponse:
		if len(r.GetTaskToken()) == 0 {
			return err
		}
		c.polled++
	case *workflowservice.PollWorkflowTaskQueueResponse:
		if len(r.GetTaskToken()) == 0 {
			return err
		}
	case *workflowservice.RespondWorkflowTaskCompletedResponse:
		c.eager += len(r.GetActivityTasks())
	}
	if name == "GetSystemInfo" || name == "DescribeNamespace" {
		return err
	}
	c.calls[name]++
	return err
}

// take returns what was counted since the last take, and starts again.
func (c *callCounter) take() (calls map[string]int, eager, polled int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls, eager, polled = c.calls, c.eager, c.polled
	c.calls, c.eager, c.polled = map[string]int{}, 0, 0
	return calls, eager, polled
}

// stubActivities answer as the real ones would for two apps: "leaky" has a
// secret, which the fast policy blocks; anything else passes.
type stubActivities struct{}

func (stubActivities) Dispatch(_ context.Context, t tasks.Task) (tasks.Result, error) {
	if t.Kind == tasks.KindSecrets && t.App == "leaky" {
		return secretsResult(), nil
	}
	if t.Kind == tasks.KindDeep {
		return deepResult(), nil
	}
	return tasks.Result{Kind: t.Kind}, nil
}

func (stubActivities) EvaluatePolicy(_ context.Context, r PolicyRequest) (report.Decision, error) {
	for _, res := range r.Results {
		if len(res.Secrets) > 0 {
			return report.Decision{Verdict: report.VerdictBlock, Reasons: []report.Reason{{Policy: "secrets.none", Verdict: report.VerdictBlock}}}, nil
		}
	}
	return report.Decision{Verdict: report.VerdictPass, Reasons: []report.Reason{}}, nil
}

func (stubActivities) LoadExceptions(context.Context, string, string) ([]exceptions.Exception, error) {
	return nil, nil
}

// TestScanActions counts, on a real Temporal dev server started as the
// fleet starts it (stack.StartTemporalDev), what a passing scan and a scan
// blocked in its fast stage cost in Temporal for each scan workflow type:
// history events by kind, workflow tasks, activities (and how many started
// eagerly), and the gRPC calls made for it. Activities are stubs; the
// workflow, the server and the SDK are real. `go test ./workflows -run
// TestScanActions -v` prints the counts.
func TestScanActions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
	if _, err := stack.FindTemporalCLI(""); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tdev, err := stack.StartTemporalDev(ctx, stack.TemporalDevOptions{DBFile: filepath.Join(t.TempDir(), "temporal.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer tdev.Stop()
	counter := &callCounter{calls: map[string]int{}}
	c, err := client.Dial(client.Options{HostPort: tdev.Addr, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(counter.intercept)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// As the orchestrator registers them.
	w := worker.New(c, TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(ScanWorkflowV2, workflow.RegisterOptions{Name: ScanWorkflowName})
	w.RegisterWorkflowWithOptions(ScanWorkflow, workflow.RegisterOptions{Name: ScanWorkflowV1Name})
	var a stubActivities
	w.RegisterActivityWithOptions(a.Dispatch, activity.RegisterOptions{Name: ActivityDispatch})
	w.RegisterActivityWithOptions(a.EvaluatePolicy, activity.RegisterOptions{Name: ActivityPolicy})
	w.RegisterActivityWithOptions(finalize, activity.RegisterOptions{Name: ActivityFinalize})
	w.RegisterActivityWithOptions(a.LoadExceptions, activity.RegisterOptions{Name: ActivityLoadExceptions})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	got := map[string]scanActions{}
	for _, shape := range []string{ScanWorkflowV1Name, ScanWorkflowName} {
		for _, app := range []string{"todo", "leaky"} {
			// As the API starts a scan: the tenant's scan with its memo and
			// search attributes.
			req := request
			req.ScanID, req.App, req.Tenant = shape+"-"+app, app, "acme"
			counter.take()
			run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: "scan-" + req.ScanID, TaskQueue: TaskQueue,
				Memo:                  map[string]any{MemoTenant: req.Tenant, MemoApp: req.App},
				TypedSearchAttributes: temporal.NewSearchAttributes(SearchTenant.ValueSet(req.Tenant), SearchApp.ValueSet(req.App)),
			}, shape, req)
			if err != nil {
				t.Fatal(err)
			}
			var res ScanResult
			if err := run.Get(ctx, &res); err != nil {
				t.Fatalf("%s %s: %v", shape, app, err)
			}
			if want := map[string]report.Verdict{"todo": report.VerdictPass, "leaky": report.VerdictBlock}[app]; res.Verdict != want {
				t.Fatalf("%s %s: verdict %s, want %s", shape, app, res.Verdict, want)
			}
			n := countHistory(ctx, t, c, run.GetID())
			n.Calls, n.EagerActivities, n.PolledActivities = counter.take()
			got[shape+" "+app] = n
			t.Logf("%-14s %-5s %v", shape, app, n)
			if *updateHistory && shape == ScanWorkflowName && app == "leaky" {
				golden.WriteHistory(ctx, t, c, run.GetID(), filepath.Join("testdata", "scan_history_v2_block.json"))
			}
		}
	}

	// ScanWorkflowV2 records no version markers and upserts no search
	// attributes; the rest of the flow is ScanWorkflow's.
	for _, app := range []string{"todo", "leaky"} {
		v1, v2 := got[ScanWorkflowV1Name+" "+app], got[ScanWorkflowName+" "+app]
		if v2.VersionMarkers != 0 || v2.SearchAttributeUpserts != 0 || v2.MemoUpserts != 1 {
			t.Errorf("%s %s: %v; want no version markers or search-attribute upserts, one memo upsert", ScanWorkflowName, app, v2)
		}
		if v2.WorkflowTasks != v1.WorkflowTasks || v2.Activities != v1.Activities || v2.LocalActivities != v1.LocalActivities {
			t.Errorf("%s: the flows differ: %v against %v", app, v2, v1)
		}
		if v2.Events != v1.Events-2*v1.VersionMarkers {
			t.Errorf("%s: %d events against %d, want %d fewer (a marker and an upsert per version)", app, v2.Events, v1.Events, 2*v1.VersionMarkers)
		}
	}

	// The listing's query finds scans of both types (the visibility store
	// catches up with the runs asynchronously).
	query := ScanWorkflowTypes + " AND " + SearchTenant.GetName() + " = 'acme'"
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatalf("list %q: %v", query, err)
		}
		if closed := countClosed(resp); closed == 4 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("list %q: %d scans of 4 after the wait", query, countClosed(resp))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func countClosed(resp *workflowservice.ListWorkflowExecutionsResponse) int {
	n := 0
	for _, e := range resp.GetExecutions() {
		if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			n++
		}
	}
	return n
}

// countHistory counts a workflow's history events by kind.
func countHistory(ctx context.Context, t *testing.T, c client.Client, workflowID string) scanActions {
	t.Helper()
	var n scanActions
	it := c.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", workflowID, err)
		}
		n.Events++
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			n.WorkflowTasks++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			n.Activities++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			switch ev.GetMarkerRecordedEventAttributes().GetMarkerName() {
			case "Version":
				n.VersionMarkers++
			case "LocalActivity":
				n.LocalActivities++
			}
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			n.SearchAttributeUpserts++
		case enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
			n.MemoUpserts++
		}
	}
	return n
}

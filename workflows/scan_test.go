package workflows

import (
	"context"
	"errors"
	tlog "go.temporal.io/sdk/log"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
)

// fakeActivities stand in for the real ones; they are registered under the
// real names so the workflow cannot tell.
type fakeActivities struct{}

func (fakeActivities) Dispatch(context.Context, tasks.Task) (tasks.Result, error) {
	return tasks.Result{}, nil
}
func (fakeActivities) EvaluatePolicy(context.Context, PolicyRequest) (report.Decision, error) {
	return report.Decision{}, nil
}
func (fakeActivities) Finalize(context.Context, FinalizeRequest) (ScanResult, error) {
	return ScanResult{}, nil
}
func (fakeActivities) LoadExceptions(context.Context, string, string) ([]exceptions.Exception, error) {
	return nil, nil
}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	var a fakeActivities
	env.RegisterActivityWithOptions(a.Dispatch, activity.RegisterOptions{Name: ActivityDispatch})
	env.RegisterActivityWithOptions(a.EvaluatePolicy, activity.RegisterOptions{Name: ActivityPolicy})
	env.RegisterActivityWithOptions(a.Finalize, activity.RegisterOptions{Name: ActivityFinalize})
	env.RegisterActivityWithOptions(a.LoadExceptions, activity.RegisterOptions{Name: ActivityLoadExceptions})
	return env
}

// forEachShape runs test against each scan workflow type the orchestrator
// runs: the flow is one, its versions differ.
func forEachShape(t *testing.T, test func(t *testing.T, scanWorkflow any)) {
	t.Helper()
	for _, shape := range []struct {
		name string
		fn   any
	}{{ScanWorkflowV1Name, ScanWorkflow}, {ScanWorkflowName, ScanWorkflowV2}} {
		t.Run(shape.name, func(t *testing.T) { test(t, shape.fn) })
	}
}

var request = ScanRequest{ScanID: "s1", App: "todo", Input: tasks.Input{Dir: "/src"}, SubmittedAt: time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)}

func secretsResult() tasks.Result {
	return tasks.Result{Kind: tasks.KindSecrets, Findings: report.Findings{Secrets: []report.Secret{{Rule: "github-pat", File: "a.js", Line: 3, Fingerprint: "a.js:github-pat:3"}}}}
}

func deepResult() tasks.Result {
	return tasks.Result{Kind: tasks.KindDeep, Findings: report.Findings{Packages: []report.Package{{Name: "lodash", Version: "4.17.15"}}}}
}

func finalize(_ context.Context, f FinalizeRequest) (ScanResult, error) {
	d := Combine(f.Decisions)
	return ScanResult{ScanID: f.Scan.ScanID, Verdict: d.Verdict, Stage: f.Stage, Reasons: d.Reasons}, nil
}

func TestScanWorkflowFastFail(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env := newEnv(t)
		env.OnActivity(ActivityDispatch, mock.Anything, mock.MatchedBy(func(t tasks.Task) bool { return t.Kind == tasks.KindSecrets })).
			Return(secretsResult(), nil).Once()
		block := report.Decision{Verdict: report.VerdictBlock, Reasons: []report.Reason{{Policy: "secrets.none", Message: "secret", Verdict: report.VerdictBlock}}}
		env.OnActivity(ActivityPolicy, mock.Anything, mock.MatchedBy(func(r PolicyRequest) bool { return r.Stage == report.StageFast })).Return(block, nil).Once()
		env.OnActivity(ActivityFinalize, mock.Anything, mock.Anything).Return(finalize).Once()

		env.ExecuteWorkflow(scanWorkflow, request)
		if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
			t.Fatalf("workflow: %v", env.GetWorkflowError())
		}
		var res ScanResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		if res.Verdict != report.VerdictBlock || res.Stage != report.StageFast {
			t.Fatalf("got %+v, want a fast-stage block", res)
		}
		env.AssertExpectations(t)
		env.AssertNotCalled(t, ActivityDispatch, mock.Anything, mock.MatchedBy(func(t tasks.Task) bool { return t.Kind == tasks.KindDeep }))
	})
}

func TestScanWorkflowFullRunsDeepAfterBlock(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env := newEnv(t)
		req := request
		req.Full = true
		env.OnActivity(ActivityDispatch, mock.Anything, mock.MatchedBy(func(t tasks.Task) bool { return t.Kind == tasks.KindSecrets && t.Pool == tasks.PoolFast })).Return(secretsResult(), nil).Once()
		env.OnActivity(ActivityDispatch, mock.Anything, mock.MatchedBy(func(t tasks.Task) bool { return t.Kind == tasks.KindDeep && t.Pool == tasks.PoolDeep })).Return(deepResult(), nil).Once()
		env.OnActivity(ActivityPolicy, mock.Anything, mock.MatchedBy(func(r PolicyRequest) bool { return r.Stage == report.StageFast })).
			Return(report.Decision{Verdict: report.VerdictBlock, Reasons: []report.Reason{{Policy: "secrets.none"}}}, nil).Once()
		env.OnActivity(ActivityPolicy, mock.Anything, mock.MatchedBy(func(r PolicyRequest) bool { return r.Stage == report.StageDeep })).
			Return(report.Decision{Verdict: report.VerdictWarn, Reasons: []report.Reason{{Policy: "vulnerabilities.high"}}}, nil).Once()
		var got FinalizeRequest
		env.OnActivity(ActivityFinalize, mock.Anything, mock.Anything).Return(func(ctx context.Context, f FinalizeRequest) (ScanResult, error) {
			got = f
			return finalize(ctx, f)
		}).Once()

		env.ExecuteWorkflow(scanWorkflow, req)
		var res ScanResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		if res.Verdict != report.VerdictBlock || res.Stage != report.StageFast || len(res.Reasons) != 2 {
			t.Fatalf("got %+v", res)
		}
		if len(got.Results) != 2 || got.Results[0].Kind != tasks.KindSecrets || got.Results[1].Kind != tasks.KindDeep {
			t.Fatalf("finalize got results %+v", got.Results)
		}
		if _, ok := got.Timings[report.StageDeep]; !ok {
			t.Fatalf("no deep timing in %+v", got.Timings)
		}
		env.AssertExpectations(t)
	})
}

func TestScanWorkflowPassesThroughBothStages(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env := newEnv(t)
		env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(func(_ context.Context, t tasks.Task) (tasks.Result, error) {
			if t.Kind == tasks.KindDeep {
				return deepResult(), nil
			}
			return tasks.Result{Kind: tasks.KindSecrets}, nil
		}).Twice()
		// fast, deep, and whether a human must review it.
		env.OnActivity(ActivityPolicy, mock.Anything, mock.Anything).Return(report.Decision{Verdict: report.VerdictPass, Reasons: []report.Reason{}}, nil).Times(3)
		env.OnActivity(ActivityFinalize, mock.Anything, mock.Anything).Return(finalize).Once()
		env.ExecuteWorkflow(scanWorkflow, request)
		var res ScanResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		if res.Verdict != report.VerdictPass || res.Stage != report.StageDeep {
			t.Fatalf("got %+v", res)
		}
	})
}

func TestScanWorkflowRetriesALostTask(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env := newEnv(t)
		calls := 0
		env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(func(_ context.Context, t tasks.Task) (tasks.Result, error) {
			calls++
			if t.Kind == tasks.KindSecrets && calls == 1 {
				// A retryable failure, as when the worker holding the task died.
				return tasks.Result{}, temporal.NewApplicationError("worker lost", "ScanFailed")
			}
			return tasks.Result{Kind: t.Kind}, nil
		})
		env.OnActivity(ActivityPolicy, mock.Anything, mock.Anything).Return(report.Decision{Verdict: report.VerdictPass}, nil)
		env.OnActivity(ActivityFinalize, mock.Anything, mock.Anything).Return(finalize)
		env.ExecuteWorkflow(scanWorkflow, request)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		if calls != 3 {
			t.Fatalf("dispatch called %d times, want 3 (a retry of the lost secrets task, then deep)", calls)
		}
	})
}

func TestScanWorkflowBadInputIsNotRetried(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env := newEnv(t)
		calls := 0
		env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(func(context.Context, tasks.Task) (tasks.Result, error) {
			calls++
			return tasks.Result{}, temporal.NewNonRetryableApplicationError("archive rejected", tasks.ErrTypeBadInput, nil)
		})
		env.ExecuteWorkflow(scanWorkflow, request)
		err := env.GetWorkflowError()
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != tasks.ErrTypeBadInput {
			t.Fatalf("got %v, want a BadInput application error", err)
		}
		if calls != 1 {
			t.Fatalf("dispatch called %d times, want 1", calls)
		}
	})
}

func TestScanWorkflowAnswersProgress(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env := newEnv(t)
		var stages []string
		env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(func(_ context.Context, t tasks.Task) (tasks.Result, error) {
			return tasks.Result{Kind: t.Kind}, nil
		})
		env.OnActivity(ActivityPolicy, mock.Anything, mock.Anything).Return(func(context.Context, PolicyRequest) (report.Decision, error) {
			v, err := env.QueryWorkflow(QueryProgress)
			if err != nil {
				return report.Decision{}, err
			}
			var p Progress
			if err := v.Get(&p); err != nil {
				return report.Decision{}, err
			}
			stages = append(stages, p.Stage)
			return report.Decision{Verdict: report.VerdictPass}, nil
		})
		env.OnActivity(ActivityFinalize, mock.Anything, mock.Anything).Return(finalize)
		env.ExecuteWorkflow(scanWorkflow, request)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		// The review policy is asked at the end of the deep stage.
		if len(stages) != 3 || stages[0] != report.StageFast || stages[1] != report.StageDeep || stages[2] != report.StageDeep {
			t.Fatalf("progress stages %v", stages)
		}
	})
}

func TestCombine(t *testing.T) {
	d := Combine([]report.Decision{
		{Verdict: report.VerdictWarn, Reasons: []report.Reason{{Policy: "a"}}},
		{Verdict: report.VerdictPass},
		{Verdict: report.VerdictBlock, Reasons: []report.Reason{{Policy: "b"}}},
	})
	if d.Verdict != report.VerdictBlock || len(d.Reasons) != 2 {
		t.Fatalf("got %+v", d)
	}
	if d := Combine(nil); d.Verdict != report.VerdictPass || d.Reasons == nil {
		t.Fatalf("empty: %+v", d)
	}
}

// TestScanWorkflowReplay replays histories recorded from real runs against
// the current code, so a change that breaks running workflows fails here. Each
// workflow version keeps its history: scan_history.json predates the verdict
// memo, scan_history_memo.json has it; scan_history_review_person.json has a
// review bound to a person (version review-person). Those are ScanWorkflow's;
// scan_history_v2*.json are ScanWorkflowV2's (the replayer runs each history
// as the type it names). Record ScanWorkflowV2's anew with
// `go test ./embedded -run TestScanExamples -update-history`.
func TestScanWorkflowReplay(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "scan_history*.json"))
	if len(paths) < 2 {
		t.Fatalf("want a saved history per workflow version in testdata, found %v", paths)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			replayer := worker.NewWorkflowReplayer()
			replayer.RegisterWorkflow(ScanWorkflow)
			replayer.RegisterWorkflowWithOptions(ScanWorkflowV2, workflow.RegisterOptions{Name: ScanWorkflowName})
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, path); err != nil {
				t.Fatalf("replay %s: %v", path, err)
			}
		})
	}
}

// A tenant at its cap of pending tasks waits, with a growing back-off and a
// progress that says so, for as long as it takes: the refusals spend no
// retry attempts, and the tenant and priority reach the task.
func TestScanWorkflowWaitsOutATenantBacklog(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env := newEnv(t)
		req := request
		req.Tenant, req.Priority = "acme", tasks.PriorityBulk
		refusals := 0
		var waits []time.Duration
		last := env.Now()
		env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(func(_ context.Context, t tasks.Task) (tasks.Result, error) {
			if t.Tenant != "acme" || t.Priority != tasks.PriorityBulk {
				return tasks.Result{}, temporal.NewNonRetryableApplicationError("task lost its tenant or priority", "BadTask", nil)
			}
			if t.Kind == tasks.KindSecrets && refusals < 12 {
				refusals++
				waits = append(waits, env.Now().Sub(last).Round(time.Second))
				last = env.Now()
				return tasks.Result{}, temporal.NewNonRetryableApplicationError("tenant at cap", tasks.ErrTypeTenantBacklog, nil)
			}
			return tasks.Result{Kind: t.Kind}, nil
		})
		env.OnActivity(ActivityPolicy, mock.Anything, mock.Anything).Return(report.Decision{Verdict: report.VerdictPass}, nil)
		env.OnActivity(ActivityFinalize, mock.Anything, mock.Anything).Return(finalize)
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(QueryProgress)
			var p Progress
			if err != nil || v.Get(&p) != nil || p.Waiting == "" {
				t.Errorf("progress while waiting: %+v, %v", p, err)
			}
		}, 10*time.Second)
		env.ExecuteWorkflow(scanWorkflow, req)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		// Two, four, eight seconds, then fifteen at most.
		want := []time.Duration{0, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second}
		for i, w := range want {
			if waits[i] != w {
				t.Fatalf("waits %v, want them to start %v", waits, want)
			}
		}
		if refusals != 12 {
			t.Fatalf("%d refusals", refusals)
		}
	})
}

// ScanWorkflowV2 asks the review policy with what it reads (labels,
// touches, sandbox limits), not every finding, and reads no exceptions
// for a scan without a tenant (the embedded mode has none).
func TestScanWorkflowV2ReviewInputAndExceptions(t *testing.T) {
	for _, tenant := range []string{"", "acme"} {
		env := newEnv(t)
		req := request
		req.Tenant = tenant
		env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(func(_ context.Context, t tasks.Task) (tasks.Result, error) {
			if t.Kind == tasks.KindDeep {
				return deepResult(), nil
			}
			return tasks.Result{Kind: tasks.KindSecrets, Findings: report.Findings{Touches: map[string][]string{"auth": {"login.js"}}}}, nil
		})
		var review PolicyRequest
		env.OnActivity(ActivityPolicy, mock.Anything, mock.Anything).Return(func(_ context.Context, r PolicyRequest) (report.Decision, error) {
			if r.Stage == StageReview {
				review = r
			}
			return report.Decision{Verdict: report.VerdictPass}, nil
		})
		env.OnActivity(ActivityFinalize, mock.Anything, mock.Anything).Return(finalize)
		loads := 0
		env.OnActivity(ActivityLoadExceptions, mock.Anything, mock.Anything, mock.Anything).Return(func(context.Context, string, string) ([]exceptions.Exception, error) {
			loads++
			return nil, nil
		})
		env.ExecuteWorkflow(ScanWorkflowV2, req)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 1}[tenant == ""]; loads != want {
			t.Errorf("tenant %q: exceptions read %d times, want %d", tenant, loads, want)
		}
		if len(review.Results) != 2 || len(review.Results[1].Packages) != 0 || len(review.Results[0].Touches["auth"]) != 1 {
			t.Fatalf("review policy got results %+v", review.Results)
		}
	}
}

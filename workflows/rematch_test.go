package workflows

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
)

func (fakeActivities) RematchPlan(context.Context) ([]RematchItem, error) { return nil, nil }
func (fakeActivities) RecordRematch(context.Context, RematchRecord) error { return nil }

// Two live releases: one whose SBOM the worker matches against a newer DB
// and finds a HIGH advisory (worse: recorded), one the worker skips (same
// DB) whose verdict stays (not recorded).
func TestRematchWorkflow(t *testing.T) {
	env := newEnv(t)
	var a fakeActivities
	env.RegisterActivityWithOptions(a.RematchPlan, activity.RegisterOptions{Name: ActivityRematchPlan})
	env.RegisterActivityWithOptions(a.RecordRematch, activity.RegisterOptions{Name: ActivityRecordRematch})
	v1 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	items := []RematchItem{
		{Tenant: "acme", App: "todo", ReleaseID: "r1", ScanID: "s1", SBOM: storage.Object{Key: "scans/s1/sbom.cdx.json"}, VulnDB: report.VulnDB{Available: true, UpdatedAt: v1}, Verdict: report.VerdictPass},
		{Tenant: "acme", App: "notes", ReleaseID: "r2", ScanID: "s2", SBOM: storage.Object{Key: "scans/s2/sbom.cdx.json"}, VulnDB: report.VulnDB{Available: true, UpdatedAt: v1}, Verdict: report.VerdictPass},
	}
	high := report.Vulnerability{ID: "GHSA-35jh-r3h4-6jhm", Package: "lodash", Version: "4.17.20", Severity: "HIGH"}
	env.OnActivity(ActivityRematchPlan, mock.Anything).Return(items, nil)
	env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(func(_ context.Context, task tasks.Task) (tasks.Result, error) {
		if task.Kind != tasks.KindRematch || task.Pool != tasks.PoolDeep || task.Priority != tasks.PriorityBulk || task.Input.SBOM == nil || !task.MatchedDB.Equal(v1) {
			t.Errorf("task %+v", task)
		}
		if task.App == "notes" {
			return tasks.Result{Kind: task.Kind, Skipped: true}, nil
		}
		return tasks.Result{Kind: task.Kind, Vulnerabilities: []report.Vulnerability{high}, VulnDB: &report.VulnDB{Available: true, UpdatedAt: v1.Add(24 * time.Hour)}}, nil
	})
	env.OnActivity(ActivityPolicy, mock.Anything, mock.Anything).Return(func(_ context.Context, r PolicyRequest) (report.Decision, error) {
		if r.Stage != report.StageDeep || r.Now.IsZero() {
			t.Errorf("policy request %+v", r)
		}
		if len(r.Results[0].Vulnerabilities) > 0 {
			return report.Decision{Verdict: report.VerdictWarn, Reasons: []report.Reason{{Policy: "vulnerabilities.high"}}}, nil
		}
		return report.Decision{Verdict: report.VerdictPass, Reasons: []report.Reason{}}, nil
	})
	var records []RematchRecord
	env.OnActivity(ActivityRecordRematch, mock.Anything, mock.Anything).Return(func(_ context.Context, rec RematchRecord) error {
		records = append(records, rec)
		return nil
	})
	env.ExecuteWorkflow(RematchWorkflow)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res RematchResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := RematchResult{Releases: 2, Matched: 1, Skipped: 1, Changed: 1, Worsened: 1, Unchanged: 1}
	if res != want {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	if len(records) != 1 {
		t.Fatalf("records %+v, want the worse one only", records)
	}
	rec := records[0]
	if rec.App != "todo" || !rec.Matched || !rec.Worse || rec.Previous != report.VerdictPass || rec.Verdict != report.VerdictWarn || !rec.VulnDB.UpdatedAt.After(v1) || len(rec.Vulnerabilities) != 1 {
		t.Fatalf("record %+v", rec)
	}
}

// TestRematchReplay replays a RematchWorkflow history recorded from the
// real end-to-end run (go test ./orchestrator -run TestRematchEndToEnd
// -update-history rewrites it).
func TestRematchReplay(t *testing.T) {
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflow(RematchWorkflow)
	if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, filepath.Join("testdata", "rematch_history.json")); err != nil {
		t.Fatalf("replay: %v", err)
	}
}

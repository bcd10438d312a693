package activities

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workflows"
)

func request() workflows.FinalizeRequest {
	start := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	return workflows.FinalizeRequest{
		Scan:  workflows.ScanRequest{ScanID: "s1", App: "todo", Commit: "0123abc"},
		Stage: report.StageDeep,
		Decisions: []report.Decision{
			{Verdict: report.VerdictPass, Reasons: []report.Reason{}},
			{Verdict: report.VerdictWarn, Reasons: []report.Reason{{Policy: "vulnerabilities.high", Message: "x", Verdict: report.VerdictWarn}}},
		},
		// Out of stage order on purpose.
		Results: []tasks.Result{
			{Kind: tasks.KindDeep, Packages: []report.Package{{Name: "lodash"}}, VulnDB: &report.VulnDB{Available: true},
				Evidence: []report.Evidence{{Name: "sbom.cdx.json", Key: "scans/s1/sbom.cdx.json"}}, Timings: map[string]float64{"sbom": 0.04}},
			{Kind: tasks.KindSecrets, Timings: map[string]float64{"secrets": 0.005}},
		},
		Timings:   map[string]float64{"fast": 0.1, "deep": 0.2},
		StartedAt: start, FinishedAt: start.Add(500 * time.Millisecond),
	}
}

func TestBuildReport(t *testing.T) {
	r := BuildReport(request())
	if r.Verdict != report.VerdictWarn || len(r.Reasons) != 1 || r.Schema != report.Schema {
		t.Fatalf("verdict %s reasons %v", r.Verdict, r.Reasons)
	}
	if !r.VulnDB.Available || len(r.Packages) != 1 || len(r.Evidence) != 1 {
		t.Fatalf("results not merged: %+v", r)
	}
	for k, want := range map[string]float64{"fast": 0.1, "deep": 0.2, "sbom": 0.04, "secrets": 0.005, "total": 0.5} {
		if r.Timings[k] != want {
			t.Errorf("timing %s = %v, want %v", k, r.Timings[k], want)
		}
	}
	// Lists are never null in the JSON contract.
	if r.Secrets == nil || r.Vulnerabilities == nil {
		t.Fatal("nil lists")
	}
}

func TestBuildReportWithoutDeepStage(t *testing.T) {
	req := request()
	req.Results = req.Results[1:]
	r := BuildReport(req)
	if r.VulnDB.Available || !strings.Contains(r.VulnDB.Note, "deep stage did not run") {
		t.Fatalf("vulndb %+v", r.VulnDB)
	}
}

func TestFinalizeStoresReportSARIFAndVerdict(t *testing.T) {
	ctx := context.Background()
	store, err := storage.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := &Activities{Evidence: store}
	res, err := a.Finalize(ctx, request())
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != report.VerdictWarn || res.Report.Key != "scans/s1/report.json" {
		t.Fatalf("result %+v", res)
	}
	names := map[string]bool{}
	for _, e := range res.Evidence {
		names[e.Name] = true
	}
	for _, n := range []string{"sbom.cdx.json", "report.sarif.json", "verdict.json", "report.json"} {
		if !names[n] {
			t.Errorf("no %s in %v", n, names)
		}
	}
	data, obj, err := store.Get(ctx, res.Report.Key)
	if err != nil || obj.SHA256 != res.Report.SHA256 {
		t.Fatalf("report object: %v", err)
	}
	var r report.Report
	if err := json.Unmarshal(data, &r); err != nil || r.ScanID != "s1" {
		t.Fatalf("stored report: %v %+v", err, r)
	}
	// Finalize is retried by Temporal: a second run stores the same bytes and succeeds.
	if _, err := a.Finalize(ctx, request()); err != nil {
		t.Fatalf("retried finalize: %v", err)
	}
}

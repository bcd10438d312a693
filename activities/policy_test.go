package activities

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workflows"
)

// TestDeepPolicyOnIaCExample decides the deep stage of examples/iac-bad from
// what the deep worker finds in it (workers/scanners' golden, which that
// package checks against the real trivy CLI): its CRITICAL misconfiguration
// blocks, each HIGH one warns, and the report carries them all.
func TestDeepPolicyOnIaCExample(t *testing.T) {
	ctx := context.Background()
	data, err := os.ReadFile(filepath.Join("..", "workers", "scanners", "testdata", "misconfig.iac-bad.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var found []report.Misconfiguration
	if err := json.Unmarshal(data, &found); err != nil {
		t.Fatal(err)
	}
	b, err := policies.Default()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policies.NewEngine(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	a := &Activities{Policies: engine}
	scan := workflows.ScanRequest{ScanID: "iac", App: "iac-bad"}
	deep := tasks.Result{Kind: tasks.KindDeep, Misconfigurations: found, VulnDB: &report.VulnDB{Available: true}}
	d, err := a.EvaluatePolicy(ctx, workflows.PolicyRequest{Stage: report.StageDeep, Scan: scan, Results: []tasks.Result{deep}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != report.VerdictBlock || len(d.Reasons) == 0 {
		t.Fatalf("verdict %s, reasons %v", d.Verdict, d.Reasons)
	}
	want := report.Reason{Policy: "misconfig.critical", Verdict: report.VerdictBlock, Check: "AWS-0104",
		Message: "AWS-0104 in main.tf:27 is CRITICAL: A security group rule should not allow unrestricted egress to any IP address."}
	if d.Reasons[0] != want {
		t.Fatalf("first reason %+v, want %+v", d.Reasons[0], want)
	}
	high, warned := 0, 0
	for _, m := range found {
		if m.Severity == "HIGH" {
			high++
		}
	}
	for _, r := range d.Reasons[1:] {
		if r.Policy != "misconfig.high" || r.Verdict != report.VerdictWarn {
			t.Fatalf("unexpected reason %+v", r)
		}
		warned++
	}
	if high == 0 || warned != high {
		t.Fatalf("%d HIGH misconfigurations, %d warnings", high, warned)
	}

	r := BuildReport(workflows.FinalizeRequest{Scan: scan, Stage: report.StageDeep, Decisions: []report.Decision{d},
		Results: []tasks.Result{{Kind: tasks.KindSecrets}, deep}})
	if r.Verdict != report.VerdictBlock || len(r.Misconfigurations) != len(found) {
		t.Fatalf("report verdict %s with %d misconfigurations, want block with %d", r.Verdict, len(r.Misconfigurations), len(found))
	}
}

// A report whose deep stage found no misconfiguration lists none, never null.
func TestBuildReportListsNoMisconfigurations(t *testing.T) {
	r := BuildReport(request())
	if r.Misconfigurations == nil || len(r.Misconfigurations) != 0 {
		t.Fatalf("misconfigurations %#v", r.Misconfigurations)
	}
}

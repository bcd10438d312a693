package activities

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workflows"
)

// withDefaultPolicies is Activities that evaluate the embedded bundle.
func withDefaultPolicies(t *testing.T) *Activities {
	t.Helper()
	b, err := policies.Default()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policies.NewEngine(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return &Activities{Policies: engine}
}

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
	a := withDefaultPolicies(t)
	scan := workflows.ScanRequest{ScanID: "iac", App: "iac-bad"}
	deep := tasks.Result{Kind: tasks.KindDeep, Findings: report.Findings{Misconfigurations: found}, VulnDB: &report.VulnDB{Available: true}}
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

// TestFastPolicyOnWeaknesses: the fast task's code weaknesses reach the fast
// policy (a high-confidence, high-severity one blocks, naming its rule, CWE
// and place) and the report, with what the code scan read.
func TestFastPolicyOnWeaknesses(t *testing.T) {
	ctx := context.Background()
	a := withDefaultPolicies(t)
	scan := workflows.ScanRequest{ScanID: "sast", App: "todo"}
	fast := tasks.Result{Kind: tasks.KindSecrets, Findings: report.Findings{Weaknesses: []report.Weakness{
		{Rule: "js-sql-injection", CWE: []string{"CWE-89"}, Severity: "high", Confidence: "high", File: "src/db.js", Line: 14, EndLine: 14,
			Message: "SQL query built from request data", Fingerprint: "tgw1:3f0c2a9d5e7b41c8",
			Trace: []report.TraceStep{{File: "src/db.js", Line: 11, Step: "source: req.query.id"}, {File: "src/db.js", Line: 14, Step: "sink: db.query"}}},
		{Rule: "py-debug-mode", CWE: []string{"CWE-489"}, Severity: "medium", Confidence: "high", File: "app.py", Line: 30, EndLine: 30,
			Message: "Flask debug mode on", Fingerprint: "tgw1:0a1b2c3d4e5f6071"},
	}, CodeScan: &report.CodeScan{Files: map[string]int{"javascript": 1, "python": 1}, Lines: map[string]int{"javascript": 20, "python": 31}, Rules: 40}}}
	d, err := a.EvaluatePolicy(ctx, workflows.PolicyRequest{Stage: report.StageFast, Scan: scan, Results: []tasks.Result{fast}})
	if err != nil {
		t.Fatal(err)
	}
	want := []report.Reason{
		{Policy: "weaknesses.block", Check: "js-sql-injection", Verdict: report.VerdictBlock,
			Message: "js-sql-injection (CWE-89) in src/db.js:14: SQL query built from request data (high severity, high confidence)"},
		{Policy: "weaknesses.warn", Check: "py-debug-mode", Verdict: report.VerdictWarn,
			Message: "py-debug-mode (CWE-489) in app.py:30: Flask debug mode on (medium severity, high confidence)"},
	}
	if d.Verdict != report.VerdictBlock || !slices.Equal(d.Reasons, want) {
		t.Fatalf("verdict %s, reasons %+v; want block with %+v", d.Verdict, d.Reasons, want)
	}

	r := BuildReport(workflows.FinalizeRequest{Scan: scan, Stage: report.StageFast, Decisions: []report.Decision{d}, Results: []tasks.Result{fast}})
	if len(r.Weaknesses) != 2 || r.CodeScan == nil || r.CodeScan.Files["python"] != 1 {
		t.Fatalf("report weaknesses %+v, code scan %+v", r.Weaknesses, r.CodeScan)
	}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	// The pattern finding's trace is a list, never null.
	if !strings.Contains(string(raw), `"file":"app.py","line":30,"end_line":30,"message":"Flask debug mode on","fingerprint":"tgw1:0a1b2c3d4e5f6071","trace":[]`) {
		t.Fatalf("report JSON %s", raw)
	}
}

// A report whose fast stage found no weakness lists none, never null.
func TestBuildReportListsNoWeaknesses(t *testing.T) {
	raw, err := json.Marshal(BuildReport(request()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"weaknesses":[]`) {
		t.Fatalf("report JSON %s", raw)
	}
}

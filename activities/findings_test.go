package activities

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workflows"
)

// The four types that spelled findings out field by field, and the two
// merges, as they were before report.Findings (6290be6). The tests below
// hold the types that embed Findings to them: the report's JSON and the
// policies' input unchanged, task payloads and re-match items readable both
// ways.

type legacyResult struct {
	Kind              string                    `json:"kind"`
	Secrets           []report.Secret           `json:"secrets,omitempty"`
	Unscanned         []report.Skipped          `json:"unscanned,omitempty"`
	Manifest          *report.Manifest          `json:"manifest,omitempty"`
	Touches           map[string][]string       `json:"touches,omitempty"`
	Weaknesses        []report.Weakness         `json:"weaknesses,omitempty"`
	CodeScan          *report.CodeScan          `json:"code_scan,omitempty"`
	Packages          []report.Package          `json:"packages,omitempty"`
	Vulnerabilities   []report.Vulnerability    `json:"vulnerabilities,omitempty"`
	Misconfigurations []report.Misconfiguration `json:"misconfigurations,omitempty"`
	VulnDB            *report.VulnDB            `json:"vulndb,omitempty"`
	Evidence          []report.Evidence         `json:"evidence,omitempty"`
	Timings           map[string]float64        `json:"timings,omitempty"`
	Worker            string                    `json:"worker,omitempty"`
	Skipped           bool                      `json:"skipped,omitempty"`
	Limit             string                    `json:"limit,omitempty"`
}

type legacyReport struct {
	Schema            string                    `json:"schema"`
	ScanID            string                    `json:"scan_id"`
	App               string                    `json:"app"`
	Commit            string                    `json:"commit,omitempty"`
	Labels            []string                  `json:"labels,omitempty"`
	Verdict           report.Verdict            `json:"verdict"`
	Stage             string                    `json:"stage"`
	Reasons           []report.Reason           `json:"reasons"`
	Exceptions        []report.AppliedException `json:"exceptions,omitempty"`
	Review            *report.Review            `json:"review,omitempty"`
	Touches           map[string][]string       `json:"touches,omitempty"`
	Manifest          *report.Manifest          `json:"manifest,omitempty"`
	Secrets           []report.Secret           `json:"secrets"`
	Skipped           []report.Skipped          `json:"skipped,omitempty"`
	Vulnerabilities   []report.Vulnerability    `json:"vulnerabilities"`
	Misconfigurations []report.Misconfiguration `json:"misconfigurations"`
	Weaknesses        []report.Weakness         `json:"weaknesses"`
	CodeScan          *report.CodeScan          `json:"code_scan,omitempty"`
	Packages          []report.Package          `json:"packages"`
	VulnDB            report.VulnDB             `json:"vulndb"`
	Evidence          []report.Evidence         `json:"evidence"`
	Timings           map[string]float64        `json:"timings"`
	StartedAt         time.Time                 `json:"started_at"`
	FinishedAt        time.Time                 `json:"finished_at"`
}

type legacyScan struct {
	App    string   `json:"app"`
	Commit string   `json:"commit"`
	Labels []string `json:"labels"`
	Full   bool     `json:"full"`
	Tenant string   `json:"tenant,omitempty"`
}

type legacyInput struct {
	Stage             string                    `json:"stage"`
	Scan              legacyScan                `json:"scan"`
	Secrets           []report.Secret           `json:"secrets"`
	Packages          []report.Package          `json:"packages"`
	Vulnerabilities   []report.Vulnerability    `json:"vulnerabilities"`
	Misconfigurations []report.Misconfiguration `json:"misconfigurations"`
	Weaknesses        []report.Weakness         `json:"weaknesses"`
	VulnDB            report.VulnDB             `json:"vulndb"`
	Manifest          *report.Manifest          `json:"manifest"`
	Touches           map[string][]string       `json:"touches"`
	Exceptions        []exceptions.Exception    `json:"exceptions"`
	Now               string                    `json:"now"`
}

type legacyRematchItem struct {
	Tenant            string                    `json:"tenant"`
	App               string                    `json:"app"`
	ReleaseID         string                    `json:"release_id"`
	ScanID            string                    `json:"scan_id"`
	SBOM              storage.Object            `json:"sbom"`
	VulnDB            report.VulnDB             `json:"vulndb"`
	Packages          []report.Package          `json:"packages"`
	Vulnerabilities   []report.Vulnerability    `json:"vulnerabilities"`
	Misconfigurations []report.Misconfiguration `json:"misconfigurations,omitempty"`
	Verdict           report.Verdict            `json:"verdict"`
}

func legacyOf(r tasks.Result) legacyResult {
	return legacyResult{
		Kind: r.Kind, Secrets: r.Secrets, Unscanned: r.Unscanned, Manifest: r.Manifest, Touches: r.Touches,
		Weaknesses: r.Weaknesses, CodeScan: r.CodeScan, Packages: r.Packages, Vulnerabilities: r.Vulnerabilities,
		Misconfigurations: r.Misconfigurations, VulnDB: r.VulnDB, Evidence: r.Evidence, Timings: r.Timings,
		Worker: r.Worker, Skipped: r.Skipped, Limit: r.Limit,
	}
}

// legacyBuildReport is BuildReport's merge before report.Findings, over
// the report's other fields as BuildReport sets them.
func legacyBuildReport(now report.Report, results []tasks.Result) legacyReport {
	r := legacyReport{
		Schema: now.Schema, ScanID: now.ScanID, App: now.App, Commit: now.Commit, Labels: now.Labels,
		Verdict: now.Verdict, Stage: now.Stage, Reasons: now.Reasons, Exceptions: now.Exceptions, Review: now.Review,
		Secrets: []report.Secret{}, Vulnerabilities: []report.Vulnerability{}, Misconfigurations: []report.Misconfiguration{},
		Weaknesses: []report.Weakness{}, Packages: []report.Package{},
		VulnDB: now.VulnDB, Evidence: now.Evidence, Timings: now.Timings, StartedAt: now.StartedAt, FinishedAt: now.FinishedAt,
	}
	for _, res := range orderedResults(results) {
		r.Secrets = append(r.Secrets, res.Secrets...)
		r.Skipped = report.MergeSkipped(r.Skipped, res.Unscanned)
		if res.Manifest != nil {
			r.Manifest = res.Manifest
		}
		for area, files := range res.Touches {
			if r.Touches == nil {
				r.Touches = map[string][]string{}
			}
			r.Touches[area] = append(r.Touches[area], files...)
		}
		r.Packages = append(r.Packages, res.Packages...)
		r.Vulnerabilities = append(r.Vulnerabilities, res.Vulnerabilities...)
		r.Misconfigurations = append(r.Misconfigurations, res.Misconfigurations...)
		r.Weaknesses = report.MergeWeaknesses(r.Weaknesses, res.Weaknesses)
		if res.CodeScan != nil {
			r.CodeScan = res.CodeScan
		}
	}
	return r
}

// legacyPolicyValue is PolicyInput, normalized and Engine.Evaluate's JSON
// round trip into OPA (rego.EvalInput's copy included) before
// report.Findings.
func legacyPolicyValue(t *testing.T, stage string, scan workflows.ScanRequest, excs []exceptions.Exception, now string, results []tasks.Result) ast.Value {
	t.Helper()
	in := legacyInput{Stage: stage, Scan: legacyScan{App: scan.App, Commit: scan.Commit, Labels: scan.Labels, Full: scan.Full, Tenant: scan.Tenant},
		Exceptions: excs, Now: now}
	for _, r := range results {
		in.Secrets = append(in.Secrets, r.Secrets...)
		if r.Manifest != nil {
			in.Manifest = r.Manifest
		}
		for area, files := range r.Touches {
			if in.Touches == nil {
				in.Touches = map[string][]string{}
			}
			in.Touches[area] = append(in.Touches[area], files...)
		}
		in.Packages = append(in.Packages, r.Packages...)
		in.Vulnerabilities = append(in.Vulnerabilities, r.Vulnerabilities...)
		in.Misconfigurations = append(in.Misconfigurations, r.Misconfigurations...)
		in.Weaknesses = append(in.Weaknesses, r.Weaknesses...)
		if r.VulnDB != nil {
			in.VulnDB = *r.VulnDB
		}
	}
	orEmpty := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	in.Scan.Labels = orEmpty(in.Scan.Labels)
	if in.Secrets == nil {
		in.Secrets = []report.Secret{}
	}
	if in.Exceptions == nil {
		in.Exceptions = []exceptions.Exception{}
	}
	if in.Touches == nil {
		in.Touches = map[string][]string{}
	}
	in.Weaknesses = report.MergeWeaknesses(nil, in.Weaknesses)
	// Copies, so that the new code's normalising cannot reach these.
	in.Packages = append([]report.Package{}, in.Packages...)
	for i := range in.Packages {
		in.Packages[i].Licenses = orEmpty(in.Packages[i].Licenses)
	}
	in.Vulnerabilities = append([]report.Vulnerability{}, in.Vulnerabilities...)
	for i := range in.Vulnerabilities {
		in.Vulnerabilities[i].Aliases = orEmpty(in.Vulnerabilities[i].Aliases)
		in.Vulnerabilities[i].FixedVersions = orEmpty(in.Vulnerabilities[i].FixedVersions)
	}
	in.Misconfigurations = append([]report.Misconfiguration{}, in.Misconfigurations...)
	for i := range in.Misconfigurations {
		in.Misconfigurations[i].References = orEmpty(in.Misconfigurations[i].References)
	}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if err := util.RoundTripFast(&doc); err != nil {
		t.Fatal(err)
	}
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// findingsResults are task results of every shape a worker gives: full,
// empty, with empty lists rather than nil ones, a sandbox limit, a skipped
// re-match.
func findingsResults() map[string]tasks.Result {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	return map[string]tasks.Result{
		"fast": {Kind: tasks.KindSecrets, Findings: report.Findings{
			Touches:  map[string][]string{"auth": {"src/login.js"}, "egress": {"src/fetch.js", "src/mail.js"}},
			Manifest: &report.Manifest{Present: true, File: "tollgate.yaml", Valid: false, Errors: []report.ManifestError{{Path: "/app", Message: "missing"}}, Ignored: []string{"app.manifest.json"}},
			Secrets:  []report.Secret{{Rule: "github-pat", File: "a.js", Line: 3, Fingerprint: "tgfp1:aa"}},
			Unscanned: []report.Skipped{{File: "vendor/z.jar", Reason: "too many entries"}, {File: "charts/a.tgz", Reason: "too deep"},
				{File: "vendor/z.jar", Reason: "too many entries"}},
			Weaknesses: []report.Weakness{
				{Rule: "js-sql-injection", CWE: []string{"CWE-89"}, Severity: "high", Confidence: "high", File: "src/db.js", Line: 14, EndLine: 14,
					Message: "SQL", Fingerprint: "tgw1:01", Trace: []report.TraceStep{{File: "src/db.js", Line: 11, Step: "source: req.query.id"}}},
				{Rule: "py-debug-mode", Severity: "medium", Confidence: "high", File: "app.py", Line: 30, EndLine: 30, Message: "debug", Fingerprint: "tgw1:02"},
			},
			CodeScan: &report.CodeScan{Files: map[string]int{"javascript": 2}, Lines: map[string]int{"javascript": 40}, Skipped: map[string]int{"minified": 1}, Rules: 40},
		}, Evidence: []report.Evidence{{Name: "x.json", Bucket: "local", Key: "scans/s/x.json"}}, Timings: map[string]float64{"secrets": 0.005}, Worker: "w1"},
		"deep": {Kind: tasks.KindDeep, Findings: report.Findings{
			Touches:   map[string][]string{"auth": {"src/auth.go"}},
			Unscanned: []report.Skipped{{File: "charts/a.tgz", Reason: "too deep"}, {File: "b.jar", Reason: "too large"}},
			Packages: []report.Package{{Name: "lodash", Version: "4.17.20", Ecosystem: "npm", PURL: "pkg:npm/lodash@4.17.20", Licenses: []string{"MIT"}, Files: []string{"package-lock.json"}},
				{Name: "left-pad", Version: "1.3.0", Ecosystem: "npm", PURL: "pkg:npm/left-pad@1.3.0"}},
			Vulnerabilities: []report.Vulnerability{{ID: "GHSA-35jh", Aliases: []string{"CVE-2021-23337"}, Package: "lodash", Version: "4.17.20", Ecosystem: "npm",
				Severity: "HIGH", FixedVersions: []string{"4.17.21"}, Title: "Command Injection"}, {ID: "GO-1", Package: "x", Severity: "UNKNOWN"}},
			Misconfigurations: []report.Misconfiguration{{ID: "DS-0002", Title: "root", Severity: "HIGH", Type: "dockerfile", File: "Dockerfile", Message: "USER"},
				{ID: "AWS-0104", Severity: "CRITICAL", Type: "terraform", File: "main.tf", StartLine: 27, EndLine: 27, References: []string{"https://x"}}},
		}, VulnDB: &report.VulnDB{Available: true, Path: "/db", Version: 2, UpdatedAt: at}, Timings: map[string]float64{"sbom": 0.04}},
		"fast-empty": {Kind: tasks.KindSecrets},
		"fast-empty-lists": {Kind: tasks.KindSecrets, Findings: report.Findings{
			Touches: map[string][]string{}, Manifest: &report.Manifest{}, Secrets: []report.Secret{}, Unscanned: []report.Skipped{},
			Weaknesses: []report.Weakness{}, CodeScan: &report.CodeScan{},
		}},
		"deep-empty-lists": {Kind: tasks.KindDeep, Findings: report.Findings{
			Packages: []report.Package{}, Vulnerabilities: []report.Vulnerability{}, Misconfigurations: []report.Misconfiguration{},
		}, VulnDB: &report.VulnDB{}, Evidence: []report.Evidence{}, Timings: map[string]float64{}},
		"limit":           {Kind: tasks.KindDeep, Worker: "w2", Limit: "memory limit"},
		"rematch-skipped": {Kind: tasks.KindRematch, Skipped: true, VulnDB: &report.VulnDB{Available: true, UpdatedAt: at}},
	}
}

var findingsCombos = [][]string{
	{}, {"fast"}, {"deep"}, {"fast", "deep"}, {"deep", "fast"}, {"fast-empty"}, {"fast-empty-lists", "deep-empty-lists"},
	{"fast-empty", "limit"}, {"fast", "deep", "fast-empty-lists"}, {"rematch-skipped"},
}

func combo(names []string) []tasks.Result {
	all := findingsResults()
	out := []tasks.Result{}
	for _, n := range names {
		out = append(out, all[n])
	}
	return out
}

// TestReportJSONAsBeforeFindings: the report of every mix of results is
// byte for byte the report the merge before report.Findings wrote.
func TestReportJSONAsBeforeFindings(t *testing.T) {
	for _, names := range findingsCombos {
		t.Run(fmt.Sprint(names), func(t *testing.T) {
			req := workflows.FinalizeRequest{
				Scan: workflows.ScanRequest{ScanID: "s1", App: "todo", Commit: "abc", Labels: []string{"ci"}}, Stage: report.StageDeep,
				Decisions: []report.Decision{{Verdict: report.VerdictWarn, Reasons: []report.Reason{{Policy: "p", Message: "m"}}}},
				Results:   combo(names), Timings: map[string]float64{"fast": 0.1},
				StartedAt: time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC), FinishedAt: time.Date(2026, 11, 22, 6, 0, 1, 0, time.UTC),
			}
			now := BuildReport(req)
			got, err := json.MarshalIndent(now, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.MarshalIndent(legacyBuildReport(now, combo(names)), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("report JSON differs:\n got %s\nwant %s", got, want)
			}
			// A stored report reads back the same.
			var back report.Report
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			again, _ := json.MarshalIndent(back, "", "  ")
			if !bytes.Equal(again, got) {
				t.Fatalf("report JSON read back differs:\n got %s\nwant %s", again, got)
			}
		})
	}
}

// TestPolicyInputAsBeforeFindings: every stage's policy sees, for every mix
// of results, the Rego input it saw before report.Findings (and before the
// input skipped its JSON round trip).
func TestPolicyInputAsBeforeFindings(t *testing.T) {
	excs := []exceptions.Exception{{Schema: "tollgate/exception/v1", ID: "e1", Tenant: "acme", Scope: "app", App: "todo",
		Finding: exceptions.Finding{Vulnerability: "GHSA-35jh"}, Reason: "r", Approver: "a",
		CreatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), ExpiresAt: time.Date(2027, 1, 1, 0, 0, 0, 123, time.UTC),
		Revoked: &exceptions.Revocation{ID: "e1", By: "b", At: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)}}}
	scans := []workflows.ScanRequest{{ScanID: "s1", App: "todo"}, {ScanID: "s2", App: "todo", Commit: "abc", Labels: []string{"ci", "prod"}, Full: true, Tenant: "acme"}}
	for _, names := range findingsCombos {
		for i, scan := range scans {
			for _, stage := range []string{report.StageFast, report.StageDeep, "review"} {
				t.Run(fmt.Sprint(names, i, stage), func(t *testing.T) {
					var ex []exceptions.Exception
					now := ""
					if i == 1 {
						ex, now = excs, "2026-11-22T06:00:00Z"
					}
					in := PolicyInput(stage, scan, combo(names)...)
					in.Exceptions, in.Now = ex, now
					got, err := in.Value()
					if err != nil {
						t.Fatal(err)
					}
					want := legacyPolicyValue(t, stage, scan, ex, now, combo(names))
					if got.Compare(want) != 0 {
						t.Fatalf("policy input differs:\n got %s\nwant %s", got, want)
					}
				})
			}
		}
	}
}

// TestTaskPayloadsReadBothWays: a result as a worker before report.Findings
// encoded it decodes to the same result, and a result encoded now decodes
// in a worker or orchestrator from before to the same result (a fleet
// upgraded one process at a time, histories recorded before).
func TestTaskPayloadsReadBothWays(t *testing.T) {
	for name, r := range findingsResults() {
		t.Run(name, func(t *testing.T) {
			old, err := json.Marshal(legacyOf(r))
			if err != nil {
				t.Fatal(err)
			}
			var now tasks.Result
			if err := json.Unmarshal(old, &now); err != nil {
				t.Fatal(err)
			}
			if again, _ := json.Marshal(legacyOf(now)); !bytes.Equal(again, old) {
				t.Fatalf("old payload read now:\n got %s\nwant %s", again, old)
			}
			raw, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var before legacyResult
			if err := json.Unmarshal(raw, &before); err != nil {
				t.Fatal(err)
			}
			if again, _ := json.Marshal(before); !bytes.Equal(again, old) {
				t.Fatalf("new payload %s read as before:\n got %s\nwant %s", raw, again, old)
			}
			if bytes.Contains(raw, []byte(`"skipped":[`)) {
				t.Fatalf("payload names the unscanned files \"skipped\": %s", raw)
			}
		})
	}
}

// TestRematchItemsReadAsBefore: a re-match plan recorded before
// report.Findings decodes to the same items.
func TestRematchItemsReadAsBefore(t *testing.T) {
	all := findingsResults()
	deep := all["deep"]
	for _, it := range []legacyRematchItem{
		{Tenant: "acme", App: "shop", ReleaseID: "r1", ScanID: "s1", SBOM: storage.Object{Bucket: "b", Key: "k"}, VulnDB: *deep.VulnDB,
			Packages: deep.Packages, Vulnerabilities: deep.Vulnerabilities, Misconfigurations: deep.Misconfigurations, Verdict: report.VerdictWarn},
		{Tenant: "acme", App: "shop", ReleaseID: "r2", ScanID: "s2", Packages: []report.Package{}, Vulnerabilities: []report.Vulnerability{}, Verdict: report.VerdictPass},
		{Tenant: "acme", App: "shop"},
	} {
		old, err := json.Marshal([]legacyRematchItem{it})
		if err != nil {
			t.Fatal(err)
		}
		var now []workflows.RematchItem
		if err := json.Unmarshal(old, &now); err != nil {
			t.Fatal(err)
		}
		n := now[0]
		back := legacyRematchItem{Tenant: n.Tenant, App: n.App, ReleaseID: n.ReleaseID, ScanID: n.ScanID, SBOM: n.SBOM, VulnDB: n.VulnDB,
			Packages: n.Packages, Vulnerabilities: n.Vulnerabilities, Misconfigurations: n.Misconfigurations, Verdict: n.Verdict}
		if again, _ := json.Marshal([]legacyRematchItem{back}); !bytes.Equal(again, old) {
			t.Fatalf("re-match item read now:\n got %s\nwant %s", again, old)
		}
	}
}

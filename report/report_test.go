package report

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/owenrumney/go-sarif/v2/sarif"

	"github.com/tollgate/tollgate/internal/golden"
)

func fixture() Report {
	return Report{
		Schema: Schema, ScanID: "0193-test", App: "node-todo", Commit: "0123abc",
		Verdict: VerdictBlock, Stage: StageFast,
		Reasons: []Reason{
			{Policy: "secrets.none", Message: `secret found by rule "github-pat" in src/config.js:15`, Verdict: VerdictBlock},
			{Policy: "misconfig.critical", Message: "AWS-0104 in main.tf:27 is CRITICAL: A security group rule should not allow unrestricted egress to any IP address.", Verdict: VerdictBlock},
			{Policy: "weaknesses.blocking", Check: "js-sql-injection", Message: "js-sql-injection (CWE-89) in src/db.js:14: SQL query built from request data (high severity, high confidence)", Verdict: VerdictBlock},
			{Policy: "vulnerabilities.high", Message: "GHSA-35jh-r3h4-6jhm in lodash@4.17.15 is HIGH", Verdict: VerdictWarn},
		},
		Findings: Findings{
			Secrets: []Secret{{Rule: "github-pat", File: "src/config.js", Line: 15, Fingerprint: "tgfp1:5d1c0b3a9e7f44e2a6b8c0d2e4f61728"}},
			Vulnerabilities: []Vulnerability{
				{ID: "GHSA-35jh-r3h4-6jhm", Aliases: []string{"CVE-2021-23337"}, Package: "lodash", Version: "4.17.15", Ecosystem: "npm",
					PURL: "pkg:npm/lodash@4.17.15", Severity: "HIGH", FixedVersions: []string{"4.17.21"}, Title: "Command Injection in lodash", File: "package-lock.json"},
				{ID: "GO-2022-1059", Aliases: []string{}, Package: "golang.org/x/text", Version: "v0.3.7", Ecosystem: "Go",
					PURL: "pkg:golang/golang.org/x/text@v0.3.7", Severity: "UNKNOWN", FixedVersions: []string{}, File: "go.mod"},
			},
			Misconfigurations: []Misconfiguration{
				{ID: "DS-0002", Title: "Image user should not be 'root'", Severity: "HIGH", Type: "dockerfile", File: "Dockerfile",
					Message: "Specify at least 1 USER command in Dockerfile with non-root user as argument", Resolution: "Add 'USER <non root user name>' line to the Dockerfile",
					PrimaryURL: "https://avd.aquasec.com/misconfig/ds-0002", References: []string{"https://avd.aquasec.com/misconfig/ds-0002"}},
				{ID: "AWS-0104", Title: "A security group rule should not allow unrestricted egress to any IP address.", Severity: "CRITICAL", Type: "terraform", File: "main.tf",
					StartLine: 27, EndLine: 27, Resource: "aws_security_group.ssh", Message: "Security group rule allows unrestricted egress to any IP address.",
					Resolution: "Set a more restrictive cidr range", PrimaryURL: "https://avd.aquasec.com/misconfig/aws-0104", References: []string{"https://avd.aquasec.com/misconfig/aws-0104"}},
			},
			Weaknesses: []Weakness{
				{Rule: "js-sql-injection", CWE: []string{"CWE-89"}, OWASP: "A03:2021", Severity: "high", Confidence: "high",
					File: "src/db.js", Line: 14, EndLine: 14, Column: 3,
					Message: "SQL query built from request data", Fix: "Pass the value as a query parameter: db.query('... WHERE id = $1', [id])",
					References:  []string{"https://cwe.mitre.org/data/definitions/89.html", "https://owasp.org/Top10/A03_2021-Injection/"},
					Fingerprint: "tgw1:3f0c2a9d5e7b41c8a6d2e0f4b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9",
					Trace: []TraceStep{
						{File: "src/db.js", Line: 11, Step: "source: req.query.id"},
						{File: "src/db.js", Line: 12, Step: "assign: q"},
						{File: "src/db.js", Line: 14, Step: "sink: db.query"},
					}},
				{Rule: "py-yaml-load", CWE: []string{"CWE-502"}, Severity: "medium", Confidence: "medium",
					File: "worker/load.py", Line: 7, EndLine: 8,
					Message: "yaml.load without a safe loader", Fix: "Use yaml.safe_load",
					Fingerprint: "tgw1:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", Trace: []TraceStep{}},
			},
			CodeScan: &CodeScan{Files: map[string]int{"javascript": 3, "python": 1}, Lines: map[string]int{"javascript": 240, "python": 30},
				Skipped: map[string]int{"minified": 2, "vendored": 1}, Rules: 48},
			Packages: []Package{{Name: "lodash", Version: "4.17.15", Ecosystem: "npm", PURL: "pkg:npm/lodash@4.17.15", Licenses: []string{"MIT"}}},
		},
		VulnDB:    VulnDB{Available: true, Path: "/db", Version: 2, UpdatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		Evidence:  []Evidence{{Name: "verdict.json", Bucket: "local", Key: "scans/0193-test/verdict.json", VersionID: "abc", SHA256: "00ff"}},
		Timings:   map[string]float64{"fast": 0.03, "secrets": 0.005, "code": 0.012, "misconfig": 0.02, "total": 0.04},
		StartedAt: time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC), FinishedAt: time.Date(2026, 11, 22, 6, 0, 1, 0, time.UTC),
	}
}

func TestJSONGolden(t *testing.T) {
	b, err := json.MarshalIndent(fixture(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", "report.golden.json"), append(b, '\n'))
}

func TestSARIFGolden(t *testing.T) {
	b, err := SARIF(fixture(), "test")
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", "report.golden.sarif.json"), b)
	log, err := sarif.FromBytes(b)
	if err != nil {
		t.Fatalf("not a SARIF log: %v", err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) != 11 {
		t.Fatalf("version %s runs %d", log.Version, len(log.Runs))
	}
	sqli, err := log.Runs[0].GetRuleById("js-sql-injection")
	if err != nil {
		t.Fatal(err)
	}
	if tags, _ := sqli.Properties["tags"].([]any); !slices.Contains(tags, any("external/cwe/cwe-89")) || !slices.Contains(tags, any("security")) {
		t.Errorf("js-sql-injection tags %v, want security and external/cwe/cwe-89", sqli.Properties["tags"])
	}
	if sqli.HelpURI == nil || *sqli.HelpURI != "https://cwe.mitre.org/data/definitions/89.html" || sqli.Properties["security-severity"] != "8.0" {
		t.Errorf("js-sql-injection helpUri %v, properties %v", sqli.HelpURI, sqli.Properties)
	}
	// A misconfiguration's result points at its lines; one without lines at line 1.
	for _, res := range log.Runs[0].Results {
		if *res.RuleID != "AWS-0104" && *res.RuleID != "DS-0002" {
			continue
		}
		region := res.Locations[0].PhysicalLocation.Region
		want := map[string][2]int{"AWS-0104": {27, 27}, "DS-0002": {1, 1}}[*res.RuleID]
		if *region.StartLine != want[0] || *region.EndLine != want[1] {
			t.Errorf("%s: region %d-%d, want %v", *res.RuleID, *region.StartLine, *region.EndLine, want)
		}
	}
	// A taint weakness carries its fingerprint and its trace, source to
	// sink; a pattern weakness no code flow.
	for _, res := range log.Runs[0].Results {
		switch *res.RuleID {
		case "js-sql-injection":
			if res.PartialFingerprints["tollgateWeakness/v1"] != fixture().Weaknesses[0].Fingerprint {
				t.Errorf("partial fingerprints %v", res.PartialFingerprints)
			}
			if len(res.CodeFlows) != 1 || len(res.CodeFlows[0].ThreadFlows) != 1 || len(res.CodeFlows[0].ThreadFlows[0].Locations) != 3 {
				t.Fatalf("code flows %+v, want one thread flow of 3 steps", res.CodeFlows)
			}
			first := res.CodeFlows[0].ThreadFlows[0].Locations[0].Location
			if *first.Message.Text != "source: req.query.id" || *first.PhysicalLocation.Region.StartLine != 11 {
				t.Errorf("first step %s at %d", *first.Message.Text, *first.PhysicalLocation.Region.StartLine)
			}
		case "py-yaml-load":
			if len(res.CodeFlows) != 0 {
				t.Errorf("pattern weakness with code flows %+v", res.CodeFlows)
			}
		}
	}
}

func TestTableGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, fixture()); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", "report.golden.txt"), buf.Bytes())
}

func TestTableSaysWhenNoDB(t *testing.T) {
	r := fixture()
	r.VulnDB = VulnDB{Note: "no vulnerability DB at /x"}
	var buf bytes.Buffer
	WriteTable(&buf, r)
	if !bytes.Contains(buf.Bytes(), []byte("vulnerabilities were NOT checked: no vulnerability DB at /x")) {
		t.Fatalf("no warning in:\n%s", buf.String())
	}
}

func TestWorse(t *testing.T) {
	for _, c := range []struct{ a, b, want Verdict }{
		{VerdictPass, VerdictWarn, VerdictWarn}, {VerdictBlock, VerdictWarn, VerdictBlock},
		{VerdictReview, VerdictWarn, VerdictReview}, {"", VerdictPass, VerdictPass},
	} {
		if got := Worse(c.a, c.b); got != c.want {
			t.Errorf("Worse(%s,%s)=%s want %s", c.a, c.b, got, c.want)
		}
	}
}

// A report from before the code was scanned has no code section; one whose
// scan found nothing says so, with what it read.
func TestTableCodeWeaknessesOnlyWhenScanned(t *testing.T) {
	r := fixture()
	r.Weaknesses, r.CodeScan = nil, nil
	var buf bytes.Buffer
	WriteTable(&buf, r)
	if bytes.Contains(buf.Bytes(), []byte("Code weaknesses")) {
		t.Fatalf("code section in a report without a code scan:\n%s", buf.String())
	}
	r.Weaknesses, r.CodeScan = []Weakness{}, &CodeScan{Files: map[string]int{"go": 2}, Lines: map[string]int{"go": 80}, Rules: 40}
	buf.Reset()
	WriteTable(&buf, r)
	if want := "Code weaknesses (0)\n  scanned 2 files, 80 lines (go 2) with 40 rules; skipped 0 files\n\n"; !bytes.Contains(buf.Bytes(), []byte(want)) {
		t.Fatalf("want %q in:\n%s", want, buf.String())
	}
}

func TestMergeWeaknessesGivesListsNotNull(t *testing.T) {
	got := MergeWeaknesses(nil, []Weakness{{Rule: "go-tls-skip-verify"}})
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"cwe":[]`)) || !bytes.Contains(b, []byte(`"trace":[]`)) {
		t.Fatalf("got %s", b)
	}
	if b, _ := json.Marshal(MergeWeaknesses(nil, nil)); string(b) != "[]" {
		t.Fatalf("no weaknesses: %s, want []", b)
	}
}

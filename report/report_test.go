package report

import (
	"bytes"
	"encoding/json"
	"path/filepath"
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
			{Policy: "vulnerabilities.high", Message: "GHSA-35jh-r3h4-6jhm in lodash@4.17.15 is HIGH", Verdict: VerdictWarn},
		},
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
		Packages:  []Package{{Name: "lodash", Version: "4.17.15", Ecosystem: "npm", PURL: "pkg:npm/lodash@4.17.15", Licenses: []string{"MIT"}}},
		VulnDB:    VulnDB{Available: true, Path: "/db", Version: 2, UpdatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		Evidence:  []Evidence{{Name: "verdict.json", Bucket: "local", Key: "scans/0193-test/verdict.json", VersionID: "abc", SHA256: "00ff"}},
		Timings:   map[string]float64{"fast": 0.03, "secrets": 0.005, "misconfig": 0.02, "total": 0.04},
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
	if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) != 8 {
		t.Fatalf("version %s runs %d", log.Version, len(log.Runs))
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

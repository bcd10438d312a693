package report

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/owenrumney/go-sarif/v2/sarif"

	"github.com/tollgate/tollgate/internal/golden"
)

// baselineFixture is fixture() after a change: lodash upgraded (its advisory
// stays, so it is known), the secret and the SQL injection moved lines
// (known), a new HIGH advisory on a new package, a new misconfiguration in
// a new file, the yaml weakness and the golang.org/x/text advisory gone,
// and the baseline (fixture()) marked.
func baselineFixture() (base, next Report) {
	base, next = fixture(), fixture()
	next.ScanID = "0194-next"
	next.Secrets[0].Line = 17
	next.Weaknesses[0].Line, next.Weaknesses[0].EndLine = 20, 20
	next.Weaknesses = next.Weaknesses[:1]
	next.Vulnerabilities[0].Version = "4.17.20"
	next.Vulnerabilities[1] = Vulnerability{ID: "GHSA-h755-8qp9-cq85", Aliases: []string{"CVE-2025-7783"}, Package: "form-data", Version: "4.0.0",
		Ecosystem: "npm", PURL: "pkg:npm/form-data@4.0.0", Severity: "HIGH", FixedVersions: []string{"4.0.4"}, File: "package-lock.json"}
	next.Misconfigurations = append(next.Misconfigurations, Misconfiguration{ID: "KSV-0014", Title: "Root file system is not read-only", Severity: "HIGH",
		Type: "kubernetes", File: "deploy/web.yaml", StartLine: 20, EndLine: 40, Message: "Container 'web' should set readOnlyRootFilesystem", References: []string{}})
	next.Packages = []Package{
		{Name: "lodash", Version: "4.17.20", Ecosystem: "npm", PURL: "pkg:npm/lodash@4.17.20", Licenses: []string{"MIT"}},
		{Name: "form-data", Version: "4.0.0", Ecosystem: "npm", PURL: "pkg:npm/form-data@4.0.0", Licenses: []string{"MIT"}},
	}
	base.Packages = append(base.Packages,
		Package{Name: "left-pad", Version: "1.3.0", Ecosystem: "npm", PURL: "pkg:npm/left-pad@1.3.0", Licenses: []string{"WTFPL"}})
	next.Packages = append(next.Packages,
		Package{Name: "chalk", Version: "5.0.0", Ecosystem: "npm", PURL: "pkg:npm/chalk@5.0.0", Licenses: []string{"MIT"}})
	base.Packages = append(base.Packages, Package{Name: "chalk", Version: "5.0.0", Ecosystem: "npm", PURL: "pkg:npm/chalk@5.0.0", Licenses: []string{"ISC"}})
	next.Baseline = next.MarkBaseline(base.Findings, base.ScanID, "r1")
	return base, next
}

func TestMarkBaselineIgnoresLinesAndVersions(t *testing.T) {
	_, next := baselineFixture()
	if b := next.Baseline; b.ScanID != "0193-test" || b.ReleaseID != "r1" || b.New != 2 || b.Known != 5 {
		t.Fatalf("baseline %+v, want 2 new and 5 known", b)
	}
	states := map[string]string{}
	for _, v := range next.Vulnerabilities {
		states[v.ID] = v.Baseline
	}
	for _, m := range next.Misconfigurations {
		states[m.ID] = m.Baseline
	}
	states["secret"], states["sqli"] = next.Secrets[0].Baseline, next.Weaknesses[0].Baseline
	want := map[string]string{"GHSA-35jh-r3h4-6jhm": "known", "GHSA-h755-8qp9-cq85": "new", "DS-0002": "known", "AWS-0104": "known",
		"KSV-0014": "new", "secret": "known", "sqli": "known"}
	for k, w := range want {
		if states[k] != w {
			t.Errorf("%s is %q, want %q", k, states[k], w)
		}
	}
	// The same advisory on another package is another finding.
	f := Findings{Vulnerabilities: []Vulnerability{{ID: "GHSA-35jh-r3h4-6jhm", Package: "lodash-es"}}}
	if f.MarkBaseline(fixture().Findings, "s", ""); f.Vulnerabilities[0].Baseline != BaselineNew {
		t.Errorf("an advisory on another package is %q, want new", f.Vulnerabilities[0].Baseline)
	}
}

func TestBaselineGoldens(t *testing.T) {
	_, next := baselineFixture()
	var table bytes.Buffer
	if err := WriteTable(&table, next); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", "baseline.golden.txt"), table.Bytes())
	doc, err := SARIF(next, "test")
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", "baseline.golden.sarif.json"), doc)
	log, err := sarif.FromBytes(doc)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, res := range log.Runs[0].Results {
		if res.BaselineState != nil {
			got[*res.RuleID] = *res.BaselineState
		}
	}
	want := map[string]string{"secret/github-pat": "unchanged", "GHSA-35jh-r3h4-6jhm": "unchanged", "GHSA-h755-8qp9-cq85": "new",
		"DS-0002": "unchanged", "AWS-0104": "unchanged", "KSV-0014": "new", "js-sql-injection": "unchanged"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: baselineState %q, want %q", k, got[k], w)
		}
	}
	// A report without a baseline says nothing of it.
	plain, _ := SARIF(fixture(), "test")
	if bytes.Contains(plain, []byte("baselineState")) {
		t.Error("baselineState in a report without a baseline")
	}
}

func TestCompareGolden(t *testing.T) {
	base, next := baselineFixture()
	d := Compare(base, next)
	d.From.ReleaseID = "r1"
	if len(d.Vulnerabilities.New) != 1 || d.Vulnerabilities.New[0].ID != "GHSA-h755-8qp9-cq85" ||
		len(d.Vulnerabilities.Gone) != 1 || d.Vulnerabilities.Gone[0].ID != "GO-2022-1059" {
		t.Errorf("vulnerabilities %+v", d.Vulnerabilities)
	}
	if len(d.Secrets.New)+len(d.Secrets.Gone) != 0 || len(d.Misconfigurations.New) != 1 || len(d.Weaknesses.Gone) != 1 || len(d.Weaknesses.New) != 0 {
		t.Errorf("findings %+v %+v %+v", d.Secrets, d.Misconfigurations, d.Weaknesses)
	}
	if len(d.Packages.Added) != 1 || len(d.Packages.Removed) != 1 || len(d.Packages.Changed) != 1 || len(d.Licenses) != 1 ||
		!slices.Equal(d.Packages.Changed[0].To, []string{"4.17.20"}) || d.Licenses[0].Name != "chalk" {
		t.Errorf("packages %+v licences %+v", d.Packages, d.Licenses)
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", "diff.golden.json"), append(b, '\n'))
	var table bytes.Buffer
	if err := WriteDiffTable(&table, d); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", "diff.golden.txt"), table.Bytes())
	if same := Compare(next, next); !same.Empty() {
		t.Errorf("a scan differs from itself: %+v", same)
	}
}

package eval

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/golden"
	"github.com/tollgate/tollgate/report"
)

func TestTruthListLoadsAndNamesEveryKind(t *testing.T) {
	truth, err := LoadTruth("truth.yaml")
	if err != nil {
		t.Fatal(err)
	}
	langs := map[string]map[string]bool{}
	for _, a := range truth.Apps {
		if langs[a.Language] == nil {
			langs[a.Language] = map[string]bool{}
		}
		langs[a.Language][a.Kind] = true
	}
	// Issue 13: at least one vulnerable app and one control in JavaScript
	// and in Python.
	for _, lang := range []string{"javascript", "python"} {
		for _, kind := range []string{KindVulnerable, KindControl} {
			if !langs[lang][kind] {
				t.Errorf("truth list has no %s app in %s", kind, lang)
			}
		}
	}
	// Kept for an independent check (issue 13): never in this list.
	for _, a := range truth.Apps {
		for _, banned := range []string{"nodegoat", "juice-shop", "dvpwa"} {
			if strings.Contains(strings.ToLower(a.Repo), banned) {
				t.Errorf("app %s (%s) is kept for the independent check", a.Name, a.Repo)
			}
		}
	}
}

func TestIndependentListLoadsAndHoldsOnlyTheKeptApps(t *testing.T) {
	indep, err := LoadTruth("independent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var repos []string
	for _, a := range indep.Apps {
		if a.Kind != KindVulnerable {
			t.Errorf("app %s is %s; the independent check measures recall only", a.Name, a.Kind)
		}
		repos = append(repos, strings.ToLower(a.Repo))
	}
	if want := "owasp/nodegoat juice-shop/juice-shop anxolerd/dvpwa"; strings.Join(repos, " ") != want {
		t.Errorf("independent apps %v, want %s", repos, want)
	}
}

func TestValidateNamesEveryBadEntry(t *testing.T) {
	bad := Truth{Apps: []App{
		{Name: "a", Repo: "o/a", Commit: "abc", Language: "cobol", Kind: KindVulnerable,
			Flaws: []Flaw{{File: "../x.js", Line: 0, CWE: []string{"89"}, Family: "sqli"}}},
		{Name: "a", Repo: "o/b", Commit: strings.Repeat("a", 40), Language: "go", Kind: KindControl,
			Flaws: []Flaw{{File: "x.go", Line: 1, CWE: []string{"CWE-89"}, Family: "sql-injection", Source: "s"}}},
	}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("a bad truth list validated")
	}
	for _, want := range []string{
		"not a full commit id", `language "cobol"`, "clean relative path", "line must be positive",
		`CWE "89"`, `family "sqli"`, "no source", `name "a" is used twice`, "a control app lists flaws",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

func TestMatchesNeedsFileWindowAndFamily(t *testing.T) {
	flaw := Flaw{File: "app.js", Line: 10, CWE: []string{"CWE-328"}, Family: "weak-hash"}
	for _, tc := range []struct {
		name string
		w    Finding
		want bool
	}{
		{"same line, same CWE", Finding{File: "app.js", Line: 10, EndLine: 10, CWE: []string{"CWE-328"}}, true},
		{"same family, other CWE", Finding{File: "app.js", Line: 10, EndLine: 10, CWE: []string{"CWE-327"}}, true},
		{"two lines before", Finding{File: "app.js", Line: 12, EndLine: 12, CWE: []string{"CWE-328"}}, true},
		{"two lines after the span", Finding{File: "app.js", Line: 5, EndLine: 8, CWE: []string{"CWE-328"}}, true},
		{"span covers it", Finding{File: "app.js", Line: 3, EndLine: 20, CWE: []string{"CWE-328"}}, true},
		{"end line unset", Finding{File: "app.js", Line: 9, CWE: []string{"CWE-328"}}, true},
		{"three lines away", Finding{File: "app.js", Line: 13, EndLine: 13, CWE: []string{"CWE-328"}}, false},
		{"other family", Finding{File: "app.js", Line: 10, EndLine: 10, CWE: []string{"CWE-89"}}, false},
		{"other file", Finding{File: "lib/app.js", Line: 10, EndLine: 10, CWE: []string{"CWE-328"}}, false},
	} {
		if got := Matches(flaw, tc.w); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A documented line may also be seen at the sink it calls.
	flaw.Also = []Place{{File: "lib/hash.js", Line: 4}}
	if !Matches(flaw, Finding{File: "lib/hash.js", Line: 5, EndLine: 5, CWE: []string{"CWE-327"}}) {
		t.Error("a finding at an also place does not match")
	}
}

// fixtureTruth is a small truth list: one vulnerable app in and out of
// scope, one control.
func fixtureTruth() Truth {
	c := strings.Repeat("c", 40)
	return Truth{Apps: []App{
		{Name: "vuln", Repo: "o/vuln", Commit: c, Language: "javascript", Kind: KindVulnerable, HeldOut: true,
			Flaws: []Flaw{
				{File: "app.js", Line: 11, CWE: []string{"CWE-89"}, Family: "sql-injection", Source: "doc", Note: "query"},
				{File: "app.js", Line: 39, CWE: []string{"CWE-78"}, Family: "command-injection", Source: "doc", Note: "exec"},
				{File: "app.js", Line: 235, CWE: []string{"CWE-611"}, Family: "xxe", Source: "doc", Note: "libxmljs"},
			},
			Excluded: []Exclusion{{What: "XSS in a template", Why: "not source code"}}},
		{Name: "clean", Repo: "o/clean", Commit: c, Language: "python", Kind: KindControl},
	}}
}

// fixtureScanner returns fixed findings per app folder name.
type fixtureScanner map[string][]report.Weakness

func (f fixtureScanner) Scan(_ context.Context, dir string) ([]report.Weakness, report.CodeScan, error) {
	name := filepath.Base(dir)
	cs := report.CodeScan{Files: map[string]int{"javascript": 2}, Lines: map[string]int{"javascript": 2000}, Rules: 5}
	if name == "clean" {
		cs = report.CodeScan{Files: map[string]int{"python": 4}, Lines: map[string]int{"python": 4000}, Skipped: map[string]int{"vendored": 3}, Rules: 5}
	}
	return f[name], cs, nil
}

func TestRunMeasuresRecallAndFalsePositives(t *testing.T) {
	apps := t.TempDir()
	for _, n := range []string{"vuln", "clean"} {
		if err := os.Mkdir(filepath.Join(apps, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sc := fixtureScanner{
		"vuln": {
			{Rule: "js-sql-injection", CWE: []string{"CWE-89"}, Severity: "high", Confidence: "high", File: "app.js", Line: 11, EndLine: 13, Message: "SQL built from request data"},
			{Rule: "js-command-injection", CWE: []string{"CWE-78"}, Severity: "high", Confidence: "high", File: "app.js", Line: 44, EndLine: 44, Message: "shell command from request data"},
			{Rule: "js-open-redirect", CWE: []string{"CWE-601"}, Severity: "medium", Confidence: "medium", File: "app.js", Line: 188, EndLine: 188, Message: "redirect to request data"},
		},
		"clean": {
			{Rule: "py-weak-hash", CWE: []string{"CWE-328"}, Severity: "medium", Confidence: "high", File: "accounts/tokens.py", Line: 7, EndLine: 7, Message: "MD5 | used"},
			{Rule: "py-debug", CWE: []string{"CWE-489"}, Severity: "low", Confidence: "medium", File: "tests/settings.py", Line: 3, EndLine: 3, Message: "DEBUG on"},
		},
	}
	res, err := Run(t.Context(), slog.New(slog.DiscardHandler), sc, fixtureTruth(), apps, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Timings differ between runs; the table is compared without them.
	for i := range res.Apps {
		res.Apps[i].Seconds = 0
	}
	tot := res.Totals
	if tot.Documented != 3 || tot.Found != 1 || tot.InScope != 2 || tot.InScopeFound != 1 {
		t.Errorf("totals = %+v, want 1 of 3 found, 1 of 2 in scope", tot)
	}
	if tot.ControlFindings != 2 || tot.ControlHigh != 1 || tot.ControlHighPerKLOC != 0.25 || !tot.ControlAimMet {
		t.Errorf("control totals = %+v, want 2 findings, 1 high, 0.25 per KLOC", tot)
	}
	var md bytes.Buffer
	if err := res.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", "eval.golden.md"), md.Bytes())
	golden.AssertJSON(t, filepath.Join("testdata", "eval.golden.json"), res)
}

func TestMarkdownWithoutControlsClaimsNoControlAim(t *testing.T) {
	apps := t.TempDir()
	if err := os.Mkdir(filepath.Join(apps, "vuln"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := Run(t.Context(), slog.New(slog.DiscardHandler), fixtureScanner{}, fixtureTruth(), apps, []string{"vuln"})
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := res.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, want := range []string{"No control app in this list", "Aim: recall in scope NOT met (0%)."} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"on the controls NOT met", "False positives on the controls"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("table says %q with no control app", unwanted)
		}
	}
}

func TestInTestCodeKnowsTestFilesByPath(t *testing.T) {
	for file, want := range map[string]bool{
		"backend/app/rest/api/ssl_test.go":     true,
		"tests/common.py":                      true,
		"test/tools/nock-server-fixtures.js":   true,
		"src/components/__tests__/cart.tsx":    true,
		"accounts/test_views.py":               true,
		"web/app.spec.ts":                      true,
		"lib/user.test.mjs":                    true,
		"sast/testdata/x.js":                   true,
		"backend/app/rest/api/ssl.go":          false,
		"controllers/contest.js":               false,
		"docs/latest.py":                       false,
		"attestation/verify.go":                false,
		"introduction/templates/Lab/test.html": false,
	} {
		if got := InTestCode(file); got != want {
			t.Errorf("InTestCode(%q) = %v, want %v", file, got, want)
		}
	}
}

func TestRunNamesAMissingApp(t *testing.T) {
	_, err := Run(t.Context(), slog.New(slog.DiscardHandler), fixtureScanner{}, fixtureTruth(), t.TempDir(), []string{"vuln"})
	if err == nil || !strings.Contains(err.Error(), `app "vuln" is not exported`) {
		t.Errorf("err = %v, want it to name the unexported app", err)
	}
}

func TestEvaluateListsFindingsNearAMiss(t *testing.T) {
	app := fixtureTruth().Apps[0]
	ws := []report.Weakness{{Rule: "js-eval", CWE: []string{"CWE-95"}, Severity: "high", Confidence: "high", File: "app.js", Line: 41, EndLine: 41}}
	r := Evaluate(app, ws, report.CodeScan{}, time.Second)
	cmd := r.Flaws[1]
	if cmd.Found || len(cmd.Near) != 1 || cmd.Near[0].Rule != "js-eval" {
		t.Errorf("command-injection line: found=%v near=%v, want a miss with js-eval near", cmd.Found, cmd.Near)
	}
	if len(r.Other) != 1 {
		t.Errorf("other findings = %v, want the unmatched js-eval", r.Other)
	}
}

package eval

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/tollgate/tollgate/report"
)

// Window is how many lines a finding may sit before its start or after its
// end and still match a documented line.
const Window = 2

// nearLines is how far from a missed line a finding is still listed beside
// the miss, to show the rule writer what the engine saw there.
const nearLines = 5

// Scanner scans one application folder; *sast.Engine is one.
type Scanner interface {
	Scan(ctx context.Context, dir string) ([]report.Weakness, report.CodeScan, error)
}

// Finding is a weakness the engine reported, its file with forward
// slashes.
type Finding = report.Weakness

// FlawResult is one documented line and what the engine found there.
type FlawResult struct {
	Flaw
	Found bool `json:"found"`
	// Rules are the rules whose findings matched.
	Rules []string `json:"rules,omitempty"`
	// Near lists, for a miss, the findings within a few lines that did not
	// match (another family, or just outside the window).
	Near []Finding `json:"near,omitempty"`
}

// AppResult is one app's scan measured against the truth list.
type AppResult struct {
	Name     string         `json:"name"`
	Repo     string         `json:"repo"`
	Commit   string         `json:"commit"`
	Language string         `json:"language"`
	Kind     string         `json:"kind"`
	HeldOut  bool           `json:"held_out,omitempty"`
	Files    int            `json:"files"`
	Lines    int            `json:"lines"`
	Skipped  map[string]int `json:"skipped,omitempty"`
	Rules    int            `json:"rules"`
	Seconds  float64        `json:"seconds"`

	Findings int `json:"findings"`
	// HighConfidence counts findings of high confidence; Blocking those of
	// high or critical severity too (what the policy blocks on).
	HighConfidence int `json:"high_confidence"`
	Blocking       int `json:"blocking"`
	// InTests counts findings in test code (test folders and files named
	// as tests), which a rule or the engine may want to treat apart.
	InTests int `json:"in_tests"`

	// Vulnerable apps.
	Documented    int          `json:"documented,omitempty"`
	Found         int          `json:"found,omitempty"`
	Recall        float64      `json:"recall,omitempty"`
	InScope       int          `json:"in_scope,omitempty"`
	InScopeFound  int          `json:"in_scope_found,omitempty"`
	InScopeRecall float64      `json:"in_scope_recall,omitempty"`
	Flaws         []FlawResult `json:"flaws,omitempty"`
	Excluded      int          `json:"excluded,omitempty"`
	// Other are the findings on a vulnerable app that match no documented
	// line: neither hits nor false positives, listed for review.
	Other []Finding `json:"other,omitempty"`

	// Control apps: every finding is a false positive.
	PerKLOC               float64   `json:"per_kloc"`
	HighConfidencePerKLOC float64   `json:"high_confidence_per_kloc"`
	FalsePositives        []Finding `json:"false_positives,omitempty"`
}

// Evaluate measures one app's scan against its truth entry.
func Evaluate(app App, ws []report.Weakness, cs report.CodeScan, took time.Duration) AppResult {
	r := AppResult{
		Name: app.Name, Repo: app.Repo, Commit: app.Commit, Language: app.Language, Kind: app.Kind, HeldOut: app.HeldOut,
		Files: sum(cs.Files), Lines: sum(cs.Lines), Skipped: cs.Skipped, Rules: cs.Rules,
		Seconds: took.Seconds(), Findings: len(ws), Excluded: len(app.Excluded),
	}
	fs := make([]Finding, len(ws))
	for i, w := range ws {
		fs[i] = findingOf(w)
		if InTestCode(fs[i].File) {
			r.InTests++
		}
		if w.Confidence == "high" {
			r.HighConfidence++
			if w.Severity == "high" || w.Severity == "critical" {
				r.Blocking++
			}
		}
	}
	sortFindings(fs)
	if kloc := float64(r.Lines) / 1000; kloc > 0 {
		r.PerKLOC = float64(r.Findings) / kloc
		r.HighConfidencePerKLOC = float64(r.HighConfidence) / kloc
	}
	if app.Kind == KindControl {
		r.FalsePositives = fs
		return r
	}

	used := make([]bool, len(fs))
	for _, f := range app.Flaws {
		fr := FlawResult{Flaw: f}
		for i, w := range fs {
			if !Matches(f, w) {
				continue
			}
			used[i] = true
			fr.Found = true
			if !slices.Contains(fr.Rules, w.Rule) {
				fr.Rules = append(fr.Rules, w.Rule)
			}
		}
		if !fr.Found {
			for _, w := range fs {
				for _, p := range append([]Place{{f.File, f.Line}}, f.Also...) {
					if w.File == p.File && abs(w.Line-p.Line) <= nearLines {
						fr.Near = append(fr.Near, w)
						break
					}
				}
			}
		}
		r.Documented++
		inScope := InScope(f.Family)
		if inScope {
			r.InScope++
		}
		if fr.Found {
			r.Found++
			if inScope {
				r.InScopeFound++
			}
		}
		r.Flaws = append(r.Flaws, fr)
	}
	for i, w := range fs {
		if !used[i] {
			r.Other = append(r.Other, w)
		}
	}
	r.Recall = ratio(r.Found, r.Documented)
	r.InScopeRecall = ratio(r.InScopeFound, r.InScope)
	return r
}

// Matches reports whether finding w covers documented flaw f: the same
// file, the flaw's line (or one of its Also places) within Window lines of
// the finding's span, and a CWE in common or a family in common.
func Matches(f Flaw, w Finding) bool {
	near := func(p Place) bool {
		end := max(w.EndLine, w.Line)
		return w.File == p.File && p.Line >= w.Line-Window && p.Line <= end+Window
	}
	if !near(Place{f.File, f.Line}) && !slices.ContainsFunc(f.Also, near) {
		return false
	}
	for _, c := range w.CWE {
		if slices.Contains(f.CWE, c) {
			return true
		}
	}
	return slices.Contains(FamiliesOf(w.CWE), f.Family)
}

// Run scans every app of the truth list exported under appsDir (one
// folder per app name) and measures each. only, when not empty, names the
// apps to run.
func Run(ctx context.Context, log *slog.Logger, sc Scanner, t Truth, appsDir string, only []string) (Result, error) {
	var apps []AppResult
	for _, a := range t.Apps {
		if len(only) > 0 && !slices.Contains(only, a.Name) {
			continue
		}
		dir := filepath.Join(appsDir, a.Name)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return Result{}, fmt.Errorf("app %q is not exported at %q (run scripts/sast-eval.sh)", a.Name, dir)
		}
		start := time.Now()
		ws, cs, err := sc.Scan(ctx, dir)
		if err != nil {
			return Result{}, fmt.Errorf("scan app %q at %q: %w", a.Name, dir, err)
		}
		took := time.Since(start)
		log.InfoContext(ctx, "scanned app", "app", a.Name, "findings", len(ws), "lines", sum(cs.Lines), "seconds", took.Seconds())
		apps = append(apps, Evaluate(a, ws, cs, took))
	}
	for _, name := range only {
		if _, ok := t.App(name); !ok {
			return Result{}, fmt.Errorf("app %q is not in the truth list", name)
		}
	}
	return Summarize(apps), nil
}

var testPath = regexp.MustCompile(`(^|/)(tests?|__tests__|testdata|spec|fixtures)/|(^|/)test_[^/]*\.py$|_test\.(go|py)$|\.(test|spec)\.[cm]?[jt]sx?$`)

// InTestCode reports whether a file is test code by its path: a test,
// tests, __tests__, testdata, spec or fixtures folder, or a file named
// test_*.py, *_test.go, *_test.py, *.test.js or *.spec.ts and the like.
func InTestCode(file string) bool {
	return testPath.MatchString(file)
}

func findingOf(w report.Weakness) Finding {
	w.File = filepath.ToSlash(w.File)
	return w
}

func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Rule, b.Rule))
	})
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

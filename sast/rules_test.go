package sast

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// annotation marks a fixture line: "ruleid: ID" (the rule must match the
// next code line, or this one when code precedes the comment) and "ok: ID"
// (it must not), semgrep style. Several ids may be comma separated.
var annotation = regexp.MustCompile(`(?:#|//|/\*|\{/\*)\s*(ruleid|ok):\s*([a-z0-9, -]+)`)

type fixtureLines struct {
	want map[string]map[int]bool // rule -> lines that must match
	ok   map[string]map[int]bool // rule -> lines that must not
}

// parseFixture reads the annotations of one fixture.
func parseFixture(src string) fixtureLines {
	f := fixtureLines{want: map[string]map[int]bool{}, ok: map[string]map[int]bool{}}
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		m := annotation.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		target := i + 1 // 1-based line of this comment
		code := strings.TrimSpace(l[:strings.Index(l, m[0])])
		if code == "" {
			// The next line that is not itself a comment or blank.
			for j := i + 1; j < len(lines); j++ {
				t := strings.TrimSpace(lines[j])
				if t != "" && !annotation.MatchString(t) {
					target = j + 1
					break
				}
			}
		}
		into := f.want
		if m[1] == "ok" {
			into = f.ok
		}
		for _, id := range strings.Split(m[2], ",") {
			id = strings.TrimSpace(id)
			if id == "" {
				continue
			}
			if into[id] == nil {
				into[id] = map[int]bool{}
			}
			into[id][target] = true
		}
	}
	return f
}

type ruleScore struct{ tp, fp, fn, pos, neg int }

// TestRules runs every fixture of testdata/fixtures (<rule-id>[.x].<ext>)
// and fails on a missed ruleid line or a hit on an ok or unannotated line;
// it logs precision and recall per rule, and fails for a rule without both
// a positive and a negative annotation.
func TestRules(t *testing.T) {
	e := defaultEngine(t)
	files, err := filepath.Glob("testdata/fixtures/*")
	if err != nil {
		t.Fatal(err)
	}
	scores := map[string]*ruleScore{}
	for _, id := range e.RuleIDs() {
		scores[id] = &ruleScore{}
	}
	for _, file := range files {
		name := filepath.Base(file)
		owner := name[:strings.Index(name, ".")]
		if scores[owner] == nil {
			t.Errorf("fixture %s: no rule %q", file, owner)
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		ann := parseFixture(string(src))
		ws, err := e.ScanFile(context.Background(), name, src)
		if err != nil {
			t.Errorf("fixture %s: %v", file, err)
			continue
		}
		// The rules under test: the fixture's own and any it annotates.
		inScope := map[string]bool{owner: true}
		for id := range ann.want {
			inScope[id] = true
		}
		for id := range ann.ok {
			inScope[id] = true
		}
		hits := map[string]map[int]bool{}
		for _, w := range ws {
			if !inScope[w.Rule] {
				continue
			}
			if hits[w.Rule] == nil {
				hits[w.Rule] = map[int]bool{}
			}
			hits[w.Rule][w.Line] = true
		}
		for id := range inScope {
			sc := scores[id]
			if sc == nil {
				t.Errorf("fixture %s: annotation names unknown rule %q", file, id)
				continue
			}
			sc.pos += len(ann.want[id])
			sc.neg += len(ann.ok[id])
			for _, l := range sortedLines(ann.want[id]) {
				if hits[id][l] {
					sc.tp++
				} else {
					sc.fn++
					t.Errorf("%s:%d: %s missed (ruleid)", file, l, id)
				}
			}
			for _, l := range sortedLines(hits[id]) {
				switch {
				case ann.want[id][l]:
				case ann.ok[id][l]:
					sc.fp++
					t.Errorf("%s:%d: %s matched an ok line", file, l, id)
				default:
					sc.fp++
					t.Errorf("%s:%d: %s matched an unannotated line", file, l, id)
				}
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-36s %5s %5s %4s %4s %4s %9s %7s\n", "rule", "pos", "neg", "tp", "fp", "fn", "precision", "recall")
	for _, id := range e.RuleIDs() {
		sc := scores[id]
		fmt.Fprintf(&b, "%-36s %5d %5d %4d %4d %4d %9s %7s\n", id, sc.pos, sc.neg, sc.tp, sc.fp, sc.fn,
			ratio(sc.tp, sc.tp+sc.fp), ratio(sc.tp, sc.tp+sc.fn))
		if sc.pos == 0 || sc.neg == 0 {
			t.Errorf("rule %s: needs both a positive (ruleid) and a negative (ok) fixture line; has %d and %d", id, sc.pos, sc.neg)
		}
	}
	t.Log(b.String())
}

func ratio(a, b int) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(a)/float64(b))
}

func sortedLines(m map[int]bool) []int {
	var out []int
	for l := range m {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// sharedEngine is one engine with the embedded rules and default options,
// built once for the tests that need nothing else (building one compiles
// every query, which takes a while).
var sharedEngine = sync.OnceValues(func() (*Engine, error) { return New(Options{}) })

func defaultEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := sharedEngine()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newTestEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

package sast

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// scanWith scans one file with a rules folder holding the given rules.
func scanWith(t *testing.T, rules map[string]string, path, src string) []string {
	t.Helper()
	e := newTestEngine(t, Options{RulesDir: writeTree(t, rules)})
	ws, err := e.ScanFile(context.Background(), path, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range ws {
		got = append(got, fmt.Sprintf("%s:%02d:%s", w.Rule, w.Line, w.Confidence))
	}
	return got
}

const ruleHead = `languages: [python]
cwe: [CWE-295]
severity: high
confidence: high
message: m
fix: f
`

func TestPatternInsideAndNotInside(t *testing.T) {
	rules := map[string]string{
		"py/py-inside.yaml": "id: py-inside\n" + ruleHead + `pattern:
  queries:
    - '(keyword_argument name: (identifier) @k (#eq? @k "verify") value: (false)) @match'
  inside:
    - '(call function: (attribute object: (identifier) @o (#eq? @o "requests"))) @scope'
`,
		"py/py-not-inside.yaml": "id: py-not-inside\n" + ruleHead + `pattern:
  queries:
    - '(call function: (identifier) @f (#eq? @f "debug")) @match'
  not-inside:
    - '(if_statement condition: (identifier) @c (#eq? @c "TESTING")) @scope'
`,
	}
	src := `requests.get(url, verify=False)
session.get(url, verify=False)
debug()
if TESTING:
    debug()
`
	got := strings.Join(scanWith(t, rules, "a.py", src), " ")
	if want := "py-inside:01:high py-not-inside:03:high"; got != want {
		t.Fatalf("findings = %s, want %s", got, want)
	}
}

func TestTaintCallsModeDecidesUnknownCalls(t *testing.T) {
	rule := func(mode string) string {
		return "id: py-calls-" + mode + "\n" + ruleHead + `taint:
  sources: ['((identifier) @source (#eq? @source "request"))']
  sinks: ['(call function: (identifier) @f (#eq? @f "sink") arguments: (argument_list . (_) @sink)) @match']
  calls: ` + mode + "\n"
	}
	rules := map[string]string{
		"py/py-calls-lower.yaml": rule("lower"), "py/py-calls-keep.yaml": rule("keep"), "py/py-calls-stop.yaml": rule("stop"),
	}
	src := `def f():
    sink(request.args["a"])
    sink(helper(request.args["a"]))
`
	got := strings.Join(scanWith(t, rules, "a.py", src), " ")
	want := "py-calls-keep:02:high py-calls-lower:02:high py-calls-stop:02:high py-calls-keep:03:high py-calls-lower:03:medium"
	if got != want {
		t.Fatalf("findings = %s\nwant       %s", got, want)
	}
}

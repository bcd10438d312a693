package sast

import (
	sitter "github.com/tree-sitter/go-tree-sitter"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validRule = `id: js-test
languages: [javascript, typescript]
cwe: [CWE-95]
severity: high
confidence: medium
message: m
fix: f
pattern:
  queries:
    - |
      (call_expression function: (identifier) @f (#eq? @f "eval")) @match
`

// writeRules makes a rules folder holding one file.
func writeRules(t *testing.T, rel, body string) string {
	t.Helper()
	return writeTree(t, map[string]string{rel: body})
}

func TestRulesDirReplacesEmbeddedRules(t *testing.T) {
	e := newTestEngine(t, Options{RulesDir: writeRules(t, "js/js-test.yaml", validRule)})
	if ids := e.RuleIDs(); len(ids) != 1 || ids[0] != "js-test" {
		t.Fatalf("rules = %v, want [js-test]", ids)
	}
}

func TestNewRejectsBadRules(t *testing.T) {
	for _, tc := range []struct {
		name, file, body, want string
	}{
		{"bad yaml", "js/js-test.yaml", "id: [js-test\n", `rule "js/js-test.yaml"`},
		{"unknown field", "js/js-test.yaml", validRule + "colour: red\n", `unknown field "colour"`},
		{"unknown field in a query", "js/js-test.yaml", strings.Replace(validRule, "    - |\n", "    - querry: x\n      languages: [javascript]\n    - |\n", 1), `unknown field "querry"`},
		{"query does not compile", "js/js-test.yaml", strings.Replace(validRule, "(identifier)", "(no_such_node)", 1), "does not compile for language javascript"},
		{"query for a kind only typescript has", "js/js-test.yaml", strings.Replace(validRule, "(identifier) @f", "(required_parameter) @f", 1), "does not compile for language javascript"},
		{"unknown predicate", "js/js-test.yaml", strings.Replace(validRule, "#eq?", "#eqq?", 1), "unknown predicate #eqq?"},
		{"no @match capture", "js/js-test.yaml", strings.Replace(validRule, "@match", "@other", 1), "no @match capture"},
		{"id grammar", "js/js-Test.yaml", strings.Replace(validRule, "js-test", "js-Test", 1), `id "js-Test"`},
		{"id and file name differ", "js/js-other.yaml", validRule, "must be named js-test.yaml"},
		{"wrong folder", "py/js-test.yaml", validRule, `must start with "py-"`},
		{"unknown language", "js/js-test.yaml", strings.Replace(validRule, "typescript", "coffeescript", 1), `unknown language "coffeescript"`},
		{"language of another family", "js/js-test.yaml", strings.Replace(validRule, "typescript", "python", 1), `python rules live in folder "py"`},
		{"cwe", "js/js-test.yaml", strings.Replace(validRule, "CWE-95", "95", 1), `cwe "95"`},
		{"severity", "js/js-test.yaml", strings.Replace(validRule, "severity: high", "severity: urgent", 1), `severity "urgent"`},
		{"confidence", "js/js-test.yaml", strings.Replace(validRule, "confidence: medium", "confidence: sure", 1), `confidence "sure"`},
		{"empty message", "js/js-test.yaml", strings.Replace(validRule, "message: m", "message: ''", 1), "message: empty"},
		{"empty fix", "js/js-test.yaml", strings.Replace(validRule, "fix: f", "fix: ' '", 1), "fix: empty"},
		{"owasp", "js/js-test.yaml", validRule + "owasp: top1\n", `owasp "top1"`},
		{"neither pattern nor taint", "js/js-test.yaml", validRule[:strings.Index(validRule, "pattern:")], "exactly one of pattern and taint"},
		{"both pattern and taint", "js/js-test.yaml", validRule + "taint:\n  sources: [a1]\n  sinks: [b1]\n", "exactly one of pattern and taint"},
		{"unknown preset", "js/js-test.yaml", validRule[:strings.Index(validRule, "pattern:")] + "taint:\n  sources: [{preset: nope}]\n  sinks: ['(identifier) @sink']\n", `unknown preset "nope"`},
		{"taint without a sink for a language", "js/js-test.yaml", validRule[:strings.Index(validRule, "pattern:")] + "taint:\n  sources: ['(identifier) @source']\n  sinks: [{languages: [javascript], query: '(identifier) @sink'}]\n", "language typescript: taint rule needs"},
		{"calls mode", "js/js-test.yaml", validRule[:strings.Index(validRule, "pattern:")] + "taint:\n  sources: ['(identifier) @source']\n  sinks: ['(identifier) @sink']\n  calls: maybe\n", `taint.calls "maybe"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(Options{RulesDir: writeRules(t, tc.file, tc.body)})
			if err == nil {
				e.Close()
				t.Fatalf("New accepted the rule, want an error with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), filepath.ToSlash(tc.file)) {
				t.Fatalf("error = %v\nwant it to name the file %s", err, tc.file)
			}
		})
	}
}

func TestNewRejectsMissingRulesDir(t *testing.T) {
	if _, err := New(Options{RulesDir: filepath.Join(t.TempDir(), "none")}); err == nil {
		t.Fatal("New accepted a missing rules folder")
	}
}

func TestNewRejectsEmptyRulesDir(t *testing.T) {
	if _, err := New(Options{RulesDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no rule files") {
		t.Fatalf("error = %v, want no rule files", err)
	}
}

func TestDuplicateRuleIDsAreRejected(t *testing.T) {
	dir := writeRules(t, "js/js-test.yaml", validRule)
	if err := os.WriteFile(filepath.Join(dir, "js", "js-test.yml"), []byte(validRule), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{RulesDir: dir}); err == nil || !strings.Contains(err.Error(), "already defined") {
		t.Fatalf("error = %v, want already defined", err)
	}
}

// Every preset query compiles for the languages it names, and captures
// @source.
func TestPresetsCompile(t *testing.T) {
	presets, err := loadPresets(embedded)
	if err != nil {
		t.Fatal(err)
	}
	langs := newLanguages()
	for name, qs := range presets {
		for i, q := range qs {
			if !hasCapture(q.Query, "source") {
				t.Errorf("preset %s: queries[%d] has no @source", name, i)
			}
			for _, lang := range q.Languages {
				tq, err := sitter.NewQuery(langs[lang].grammar, q.Query)
				if err != nil {
					t.Errorf("preset %s: queries[%d] for %s: %v", name, i, lang, err)
					continue
				}
				tq.Close()
			}
		}
	}
}

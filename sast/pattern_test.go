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

func TestLLMOutputPresetTaintsModelResults(t *testing.T) {
	rules := map[string]string{
		"js/js-llm-eval.yaml": `id: js-llm-eval
languages: [javascript]
cwe: [CWE-95]
severity: high
confidence: high
message: m
fix: f
taint:
  sources: [{preset: llm-output}]
  sinks: ['(call_expression function: (identifier) @f (#eq? @f "eval") arguments: (arguments . (_) @sink)) @match']
`,
		"py/py-llm-exec.yaml": "id: py-llm-exec\n" + ruleHead + `taint:
  sources: [{preset: llm-output}]
  sinks: ['(call function: (identifier) @f (#eq? @f "exec") arguments: (argument_list . (_) @sink)) @match']
`,
		"go/go-llm-shell.yaml": `id: go-llm-shell
languages: [go]
cwe: [CWE-78]
severity: high
confidence: high
message: m
fix: f
taint:
  sources: [{preset: llm-output}]
  sinks: ['(call_expression function: (selector_expression field: (field_identifier) @f (#eq? @f "Command")) arguments: (argument_list . (_) . (_) . (_) @sink)) @match']
`,
	}
	for _, tc := range []struct{ path, src, want string }{
		{"a.js", `async function run(prompt) {
  const completion = await openai.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: prompt }] });
  const code = completion.choices[0].message.content;
  eval(code);
  const { text } = await generateText({ model, prompt });
  eval(text);
  eval(prompt);
}
`, "js-llm-eval:04:high js-llm-eval:06:high"},
		{"a.py", `def run(prompt):
    msg = client.messages.create(model="claude", max_tokens=100, messages=[{"role": "user", "content": prompt}])
    exec(msg.content[0].text)
    answer = chain.invoke({"q": prompt})
    exec(answer)
    exec(prompt)
`, "py-llm-exec:03:high py-llm-exec:05:high"},
		{"a.go", `package main

func run(ctx context.Context, prompt string) {
	resp, err := client.CreateChatCompletion(ctx, req)
	exec.Command("sh", "-c", resp.Choices[0].Message.Content).Run()
	exec.Command("sh", "-c", prompt).Run()
	_ = err
}
`, "go-llm-shell:05:high"},
	} {
		if got := strings.Join(scanWith(t, rules, tc.path, tc.src), " "); got != tc.want {
			t.Errorf("%s: findings = %s, want %s", tc.path, got, tc.want)
		}
	}
}

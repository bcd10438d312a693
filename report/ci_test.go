package report

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/golden"
)

// hostile is a report whose findings carry text an attacker controls (file
// names and messages from the scanned code) shaped to break out of each
// format: a new workflow command, a property, a Markdown link or image, a
// table cell, HTML, control characters.
func hostile() Report {
	r := fixture()
	evil := "x.js\n::error file=README.md::pwned %0A, title=y:z | <img src=x onerror=alert(1)> [click](javascript:alert(1)) ![i](https://t.example/p.png) \x1b[31m\r"
	r.Secrets = []Secret{{Rule: "generic-api-key", File: evil, Line: 3, Fingerprint: "tgfp1:00"}}
	r.Weaknesses = []Weakness{{Rule: "js-eval", CWE: []string{"CWE-95"}, Severity: "high", Confidence: "high", File: "src/a.js", Line: 2, EndLine: 2,
		Message: evil, Fingerprint: "tgw1:00", Trace: []TraceStep{}}}
	r.Reasons = []Reason{{Policy: "secrets.none", Message: evil, Verdict: VerdictBlock}}
	r.Vulnerabilities, r.Misconfigurations = nil, nil
	return r
}

func TestRenderGoldens(t *testing.T) {
	for format, file := range map[string]string{
		"github": "report.golden.github.txt", "junit": "report.golden.junit.xml", "markdown": "report.golden.md",
		"gitlab-sast": "report.golden.gitlab-sast.json", "gitlab-dependency-scanning": "report.golden.gitlab-dependency-scanning.json",
	} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, fixture(), format, "test"); err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, filepath.Join("testdata", file), buf.Bytes())
		})
	}
}

func TestRenderKnowsEveryFormat(t *testing.T) {
	for _, f := range Formats {
		if err := Render(&bytes.Buffer{}, fixture(), f, "test"); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := Render(&bytes.Buffer{}, fixture(), "yaml", "test"); err == nil {
		t.Error("an unknown format rendered")
	}
}

// TestGitHubAnnotationsAreOnTheLinesAtFault: each finding is one
// workflow command on its file and lines, at the level its severity asks.
func TestGitHubAnnotationsAreOnTheLinesAtFault(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteGitHub(&buf, fixture()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"::error file=src/config.js,line=15,title=tollgate secret github-pat::",
		"::error file=main.tf,line=27,title=tollgate AWS-0104 (CRITICAL)%3A ",
		"::error file=src/db.js,line=14,col=3,title=tollgate js-sql-injection::SQL query built from request data (CWE-89). Fix: ",
		"::warning file=worker/load.py,line=7,endLine=8,title=tollgate py-yaml-load::",
		"::error file=package-lock.json,title=tollgate GHSA-35jh-r3h4-6jhm::npm lodash@4.17.15 is affected by GHSA-35jh-r3h4-6jhm (HIGH); fixed in 4.17.21\n",
		"::notice file=go.mod,title=tollgate GO-2022-1059::",
		"::warning title=tollgate policy vulnerabilities.high::GHSA-35jh-r3h4-6jhm in lodash@4.17.15 is HIGH\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no %q in:\n%s", want, buf.String())
		}
	}
}

// TestGitHubAnnotationsEscapeUntrustedText: text from the scanned code
// stays inside its own command: one line per annotation, no second command,
// no property of its own, and it decodes back to what it was.
func TestGitHubAnnotationsEscapeUntrustedText(t *testing.T) {
	r := hostile()
	var buf bytes.Buffer
	if err := WriteGitHub(&buf, r); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if want := len(r.Secrets) + len(r.Weaknesses) + len(r.Reasons) + 1; len(lines) != want {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), want, buf.String())
	}
	unescape := strings.NewReplacer("%0D", "\r", "%0A", "\n", "%3A", ":", "%2C", ",", "%25", "%")
	for i, l := range lines {
		level, rest, _ := strings.Cut(strings.TrimPrefix(l, "::"), " ")
		if !strings.HasPrefix(l, "::") || (level != "error" && level != "warning" && level != "notice") {
			t.Errorf("line is not one annotation: %q", l)
		}
		props, _, ok := strings.Cut(rest, "::")
		if !ok {
			t.Errorf("no message in %q", l)
		}
		if strings.ContainsAny(l, "\r\x1b") {
			t.Errorf("raw control character in %q", l)
		}
		for _, p := range strings.Split(props, ",") {
			k, v, _ := strings.Cut(p, "=")
			if k != "file" && k != "line" && k != "endLine" && k != "col" && k != "title" {
				t.Errorf("property %q in %q", k, l)
			}
			if k == "file" && i == 0 && unescape.Replace(v) != strings.ReplaceAll(r.Secrets[0].File, "\x1b", "\uFFFD") {
				t.Errorf("file %q decodes to %q", v, unescape.Replace(v))
			}
		}
	}
}

// TestMarkdownEscapesUntrustedText: a finding's text adds no HTML, link,
// image or table cell to the summary.
func TestMarkdownEscapesUntrustedText(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf, hostile()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, bad := range []string{"<img", "\x1b", "\r", "\n::error"} {
		if strings.Contains(out, bad) {
			t.Errorf("summary holds %q:\n%s", bad, out)
		}
	}
	if m := regexp.MustCompile(`(^|[^\\])[][<>]`).FindString(out); m != "" {
		t.Errorf("summary holds an unescaped bracket %q:\n%s", m, out)
	}
	// Every row of a table has as many cells as its header.
	cells := 0
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "|") {
			cells = 0
			continue
		}
		n := strings.Count(l, "|") - strings.Count(l, `\|`)
		if cells == 0 {
			cells = n
		} else if n != cells {
			t.Errorf("row with %d pipes under a header of %d: %q", n, cells, l)
		}
	}
}

func TestMarkdownSaysHowManyMoreFindings(t *testing.T) {
	r := fixture()
	r.Secrets = nil
	for range markdownRows + 7 {
		r.Secrets = append(r.Secrets, Secret{Rule: "aws-access-token", File: "a.env", Line: 1})
	}
	var buf bytes.Buffer
	WriteMarkdown(&buf, r)
	if !strings.Contains(buf.String(), "… and 7 more") || strings.Count(buf.String(), "| aws-access-token |") != markdownRows {
		t.Fatalf("summary:\n%s", buf.String())
	}
}

// FuzzUntrustedTextStaysInPlace: whatever a finding's file and message
// hold, the annotations stay one command a line, and the summary adds no
// unescaped bracket or line.
func FuzzUntrustedTextStaysInPlace(f *testing.F) {
	f.Add("a.js", "msg")
	f.Add("x\n::error::y", "%0A\r\n| [a](b) <i>")
	f.Fuzz(func(t *testing.T, file, msg string) {
		r := Report{Verdict: VerdictBlock, VulnDB: VulnDB{Available: true}, Findings: Findings{
			Secrets:    []Secret{{Rule: msg, File: file, Line: 1}},
			Weaknesses: []Weakness{{Rule: "r", Severity: "high", File: file, Line: 2, Message: msg}},
		}}
		var buf bytes.Buffer
		WriteGitHub(&buf, r)
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("%d lines: %q", len(lines), buf.String())
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, "::error ") && !strings.HasPrefix(l, "::notice ") || strings.ContainsAny(l, "\r") {
				t.Fatalf("line %q", l)
			}
		}
		buf.Reset()
		WriteMarkdown(&buf, r)
		if m := regexp.MustCompile(`(^|[^\\])[][<>]`).FindString(buf.String()); m != "" {
			t.Fatalf("unescaped %q in:\n%s", m, buf.String())
		}
	})
}

package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteGitHub writes the report as GitHub Actions workflow commands: one
// annotation (::error, ::warning or ::notice) per finding, on the file and
// lines at fault, and one per policy reason. A finding's text comes from the
// scanned code (file names, rule messages) and is untrusted: every value is
// escaped as GitHub's toolkit escapes command data and properties, so no
// value can end the command, start a new line or inject a property.
//
// The levels follow severity: CRITICAL and HIGH are errors, MEDIUM a
// warning, the rest notices; a secret is an error. A reason is an error when
// it blocks and a warning otherwise.
func WriteGitHub(w io.Writer, r Report) error {
	ew := &errWriter{w: w}
	for _, s := range r.Secrets {
		ew.annotate("error", annotationAt{file: s.File, line: s.Line}, "tollgate secret "+s.Rule,
			fmt.Sprintf("Secret (%s) found in %s:%d. The value is redacted; rotate it and remove it from the code.", s.Rule, s.File, s.Line))
	}
	for _, v := range r.Vulnerabilities {
		msg := fmt.Sprintf("%s %s@%s is affected by %s (%s)", v.Ecosystem, v.Package, v.Version, v.ID, v.Severity)
		if len(v.FixedVersions) > 0 {
			msg += "; fixed in " + strings.Join(v.FixedVersions, ", ")
		}
		ew.annotate(githubLevel(v.Severity), annotationAt{file: v.File}, "tollgate "+v.ID, msg)
	}
	for _, m := range r.Misconfigurations {
		msg := m.Message
		if m.Resolution != "" {
			msg += ". Resolution: " + m.Resolution
		}
		ew.annotate(githubLevel(m.Severity), annotationAt{file: m.File, line: m.StartLine, endLine: m.EndLine},
			fmt.Sprintf("tollgate %s (%s): %s", m.ID, m.Severity, m.Title), msg)
	}
	for _, wk := range r.Weaknesses {
		msg := wk.Message
		if len(wk.CWE) > 0 {
			msg += " (" + strings.Join(wk.CWE, ", ") + ")"
		}
		if wk.Fix != "" {
			msg += ". Fix: " + wk.Fix
		}
		ew.annotate(githubLevel(strings.ToUpper(wk.Severity)), annotationAt{file: wk.File, line: wk.Line, endLine: wk.EndLine, col: wk.Column},
			"tollgate "+wk.Rule, msg)
	}
	for _, reason := range r.Reasons {
		level := "warning"
		if reason.Verdict == VerdictBlock {
			level = "error"
		}
		ew.annotate(level, annotationAt{}, "tollgate policy "+reason.Policy, reason.Message)
	}
	ew.printf("::notice title=%s::%s\n", escapeProperty("tollgate verdict"),
		escapeData(fmt.Sprintf("scan %s of %s: %s (decided in the %s stage)", r.ScanID, r.App, strings.ToUpper(string(r.Verdict)), r.Stage)))
	return ew.err
}

// annotationAt is where an annotation points; zero fields are left out.
type annotationAt struct {
	file               string
	line, endLine, col int
}

func (ew *errWriter) annotate(level string, at annotationAt, title, msg string) {
	var props []string
	if at.file != "" {
		props = append(props, "file="+escapeProperty(at.file))
		if at.line > 0 {
			props = append(props, "line="+strconv.Itoa(at.line))
			if at.endLine > at.line {
				props = append(props, "endLine="+strconv.Itoa(at.endLine))
			} else if at.col > 0 {
				props = append(props, "col="+strconv.Itoa(at.col))
			}
		}
	}
	props = append(props, "title="+escapeProperty(title))
	ew.printf("::%s %s::%s\n", level, strings.Join(props, ","), escapeData(msg))
}

// escapeData escapes a workflow command's message as @actions/core does
// (toCommandValue, escapeData): %, CR and LF. Other control characters are
// replaced, so that a finding cannot hide text from the log.
func escapeData(s string) string {
	return dataEscaper.Replace(stripControls(s))
}

// escapeProperty escapes a workflow command property value as @actions/core
// does (escapeProperty): escapeData's characters and ':' and ','.
func escapeProperty(s string) string {
	return propertyEscaper.Replace(stripControls(s))
}

var (
	dataEscaper     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	propertyEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

// stripControls replaces control characters other than CR and LF (which the
// escapers encode) with U+FFFD.
func stripControls(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return r
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// githubLevel is SARIF's level for severity, in GitHub's words ("notice"
// for SARIF's "note").
func githubLevel(severity string) string {
	if l := sarifLevel(severity); l != "note" {
		return l
	}
	return "notice"
}

package report

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/owenrumney/go-sarif/v2/sarif"
)

// SARIF renders the report's findings as a SARIF 2.1.0 log: secrets (gitleaks
// rules), vulnerabilities (advisories), misconfigurations (one rule per trivy
// check id), code weaknesses (one rule per SAST rule id, with its CWE tags
// and, for a taint finding, the trace as a code flow) and policy reasons
// (tollgate). Secrets carry their location, never their value.
func SARIF(r Report, toolVersion string) ([]byte, error) {
	log, err := sarif.New(sarif.Version210, true)
	if err != nil {
		return nil, fmt.Errorf("new sarif log: %w", err)
	}
	run := sarif.NewRunWithInformationURI("tollgate", "https://github.com/tollgate/tollgate")
	run.Tool.Driver.WithVersion(toolVersion)
	run.Properties = sarif.Properties{"scan_id": r.ScanID, "app": r.App, "verdict": string(r.Verdict), "stage": r.Stage}
	if r.Baseline != nil {
		// The results' baselineState compares them with this scan.
		run.Properties["baseline_scan_id"] = r.Baseline.ScanID
	}

	for _, s := range r.Secrets {
		id := "secret/" + s.Rule
		addRule(run, id, "Secret found by gitleaks rule "+s.Rule, "error")
		res := run.CreateResultForRule(id).
			WithLevel("error").
			WithMessage(sarif.NewTextMessage(fmt.Sprintf("Secret (%s) found in %s:%d. The value is redacted; rotate it and remove it from the code.", s.Rule, s.File, s.Line))).
			WithPartialFingerPrints(map[string]interface{}{"tollgateSecret/v1": s.Fingerprint})
		res.AddLocation(location(s.File, s.Line))
		withBaselineState(res, s.Baseline)
	}
	for _, v := range r.Vulnerabilities {
		level := sarifLevel(v.Severity)
		title := v.Title
		if title == "" {
			title = v.ID
		}
		rule := addRule(run, v.ID, title, level)
		rule.WithProperties(sarif.Properties{"security-severity": securitySeverity(v.Severity), "tags": []string{"security", "vulnerability", v.Ecosystem}})
		msg := fmt.Sprintf("%s %s@%s is affected by %s (%s)", v.Ecosystem, v.Package, v.Version, v.ID, v.Severity)
		if len(v.Aliases) > 0 {
			msg += ", also known as " + strings.Join(v.Aliases, ", ")
		}
		if len(v.FixedVersions) > 0 {
			msg += "; fixed in " + strings.Join(v.FixedVersions, ", ")
		}
		res := run.CreateResultForRule(v.ID).WithLevel(level).WithMessage(sarif.NewTextMessage(msg))
		res.AddLocation(location(v.File, 1))
		withBaselineState(res, v.Baseline)
	}
	for _, m := range r.Misconfigurations {
		level := sarifLevel(m.Severity)
		title := m.Title
		if title == "" {
			title = m.ID
		}
		rule := addRule(run, m.ID, title, level)
		rule.WithProperties(sarif.Properties{"security-severity": securitySeverity(m.Severity), "tags": []string{"security", "misconfiguration", m.Type}})
		if m.PrimaryURL != "" && rule.HelpURI == nil {
			rule.WithHelpURI(m.PrimaryURL)
		}
		msg := fmt.Sprintf("%s (%s, %s): %s", strings.TrimSuffix(title, "."), m.ID, m.Severity, strings.TrimSuffix(m.Message, "."))
		if m.Resolution != "" {
			msg += ". Resolution: " + m.Resolution
		}
		res := run.CreateResultForRule(m.ID).WithLevel(level).WithMessage(sarif.NewTextMessage(msg))
		res.AddLocation(regionLocation(m.File, m.StartLine, m.EndLine))
		withBaselineState(res, m.Baseline)
	}
	for _, w := range r.Weaknesses {
		addWeakness(run, w)
	}
	for _, reason := range r.Reasons {
		id := "policy/" + reason.Policy
		level := "warning"
		if reason.Verdict == VerdictBlock {
			level = "error"
		}
		addRule(run, id, "tollgate policy "+reason.Policy, level)
		run.CreateResultForRule(id).WithLevel(level).WithMessage(sarif.NewTextMessage(reason.Message))
	}
	log.AddRun(run)
	var buf bytes.Buffer
	if err := log.PrettyWrite(&buf); err != nil {
		return nil, fmt.Errorf("encode sarif: %w", err)
	}
	return buf.Bytes(), nil
}

// addWeakness adds a code weakness: its rule (once per rule id) with the
// CWE tags code scanning files it under, and a result whose partial
// fingerprint is the weakness fingerprint (stable when lines shift) and whose
// code flow is the taint trace, source to sink.
func addWeakness(run *sarif.Run, w Weakness) {
	severity := strings.ToUpper(w.Severity)
	level := sarifLevel(severity)
	if _, err := run.GetRuleById(w.Rule); err != nil {
		rule := addRule(run, w.Rule, w.Message, level)
		help := w.Message
		if w.Fix != "" {
			help += "\n\nFix: " + w.Fix
		}
		rule.WithTextHelp(help)
		if len(w.References) > 0 {
			rule.WithHelpURI(w.References[0])
		}
		tags := []string{"security"}
		for _, id := range w.CWE {
			tags = append(tags, "external/cwe/"+strings.ToLower(id))
		}
		props := sarif.Properties{"security-severity": securitySeverity(severity), "tags": tags, "precision": w.Confidence}
		if w.OWASP != "" {
			props["owasp"] = w.OWASP
		}
		rule.WithProperties(props)
	}
	msg := w.Message
	if len(w.CWE) > 0 {
		msg += " (" + strings.Join(w.CWE, ", ") + ")"
	}
	res := run.CreateResultForRule(w.Rule).WithLevel(level).WithMessage(sarif.NewTextMessage(msg)).
		WithPartialFingerPrints(map[string]interface{}{"tollgateWeakness/v1": w.Fingerprint})
	loc := regionLocation(w.File, w.Line, w.EndLine)
	if w.Column > 0 {
		loc.PhysicalLocation.Region.WithStartColumn(w.Column)
	}
	res.AddLocation(loc)
	withBaselineState(res, w.Baseline)
	if len(w.Trace) == 0 {
		return
	}
	flow := sarif.NewThreadFlow()
	for _, s := range w.Trace {
		flow.AddLocation(sarif.NewThreadFlowLocation().WithLocation(location(s.File, s.Line).WithMessage(sarif.NewTextMessage(s.Step))))
	}
	res.AddCodeFlow(sarif.NewCodeFlow().WithThreadFlows([]*sarif.ThreadFlow{flow}))
}

// withBaselineState sets a result's baselineState (new or unchanged) from
// its finding's state, when the scan had a baseline.
func withBaselineState(res *sarif.Result, state string) {
	if st := sarifBaselineState(state); st != "" {
		res.WithBaselineState(st)
	}
}

func addRule(run *sarif.Run, id, text, level string) *sarif.ReportingDescriptor {
	if r, err := run.GetRuleById(id); err == nil {
		return r
	}
	return run.AddRule(id).
		WithShortDescription(sarif.NewMultiformatMessageString(text)).
		WithDefaultConfiguration(sarif.NewReportingConfiguration().WithLevel(level))
}

func location(file string, line int) *sarif.Location { return regionLocation(file, line, line) }

// regionLocation is lines start to end of file; a finding about the whole
// file (no line) points at its first line.
func regionLocation(file string, start, end int) *sarif.Location {
	if file == "" {
		file = "."
	}
	start = max(start, 1)
	return sarif.NewLocationWithPhysicalLocation(sarif.NewPhysicalLocation().
		WithArtifactLocation(sarif.NewSimpleArtifactLocation(file).WithUriBaseId("%SRCROOT%")).
		WithRegion(sarif.NewSimpleRegion(start, max(end, start))))
}

func sarifLevel(severity string) string {
	switch severity {
	case "CRITICAL", "HIGH":
		return "error"
	case "MEDIUM":
		return "warning"
	default:
		return "note"
	}
}

// securitySeverity is the numeric score GitHub code scanning sorts by.
func securitySeverity(severity string) string {
	switch severity {
	case "CRITICAL":
		return "9.5"
	case "HIGH":
		return "8.0"
	case "MEDIUM":
		return "5.5"
	case "LOW":
		return "2.0"
	default:
		return "0.0"
	}
}

package eval

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Aims of issue 13's acceptance.
const (
	RecallAim          = 0.8 // on the documented lines in scope
	HighPerKLOCCeiling = 1.0 // high-confidence findings per KLOC on the controls
)

// Result is the whole evaluation: each app, recall per family and the
// totals, in the order of the truth list.
type Result struct {
	Apps     []AppResult    `json:"apps"`
	Families []FamilyResult `json:"families"`
	Totals   Totals         `json:"totals"`
}

// FamilyResult is recall on the documented lines of one family, over
// every vulnerable app.
type FamilyResult struct {
	Family     string  `json:"family"`
	InScope    bool    `json:"in_scope"`
	Documented int     `json:"documented"`
	Found      int     `json:"found"`
	Recall     float64 `json:"recall"`
	// Missed names each missed line as "app file:line".
	Missed []string `json:"missed,omitempty"`
}

// Totals sums the vulnerable apps and the controls.
type Totals struct {
	RecallCount
	RecallAimMet bool `json:"recall_aim_met"`
	// HeldOut sums the held-out vulnerable apps alone.
	HeldOut            RecallCount `json:"held_out"`
	ControlLines       int         `json:"control_lines"`
	ControlFindings    int         `json:"control_findings"`
	ControlHigh        int         `json:"control_high_confidence"`
	ControlBlocking    int         `json:"control_blocking"`
	ControlInTests     int         `json:"control_in_tests"`
	ControlPerKLOC     float64     `json:"control_per_kloc"`
	ControlHighPerKLOC float64     `json:"control_high_confidence_per_kloc"`
	ControlAimMet      bool        `json:"control_aim_met"`
}

// RecallCount counts documented lines and the ones found, in all and in
// scope.
type RecallCount struct {
	Documented    int     `json:"documented"`
	Found         int     `json:"found"`
	Recall        float64 `json:"recall"`
	InScope       int     `json:"in_scope"`
	InScopeFound  int     `json:"in_scope_found"`
	InScopeRecall float64 `json:"in_scope_recall"`
}

// Summarize adds recall per family and the totals to the apps' results.
func Summarize(apps []AppResult) Result {
	res := Result{Apps: apps}
	fams := map[string]*FamilyResult{}
	t := &res.Totals
	for _, a := range apps {
		if a.Kind == KindControl {
			t.ControlLines += a.Lines
			t.ControlFindings += a.Findings
			t.ControlHigh += a.HighConfidence
			t.ControlBlocking += a.Blocking
			t.ControlInTests += a.InTests
			continue
		}
		t.Documented += a.Documented
		t.Found += a.Found
		t.InScope += a.InScope
		t.InScopeFound += a.InScopeFound
		if a.HeldOut {
			h := &t.HeldOut
			h.Documented += a.Documented
			h.Found += a.Found
			h.InScope += a.InScope
			h.InScopeFound += a.InScopeFound
		}
		for _, f := range a.Flaws {
			fr := fams[f.Family]
			if fr == nil {
				fr = &FamilyResult{Family: f.Family, InScope: InScope(f.Family)}
				fams[f.Family] = fr
			}
			fr.Documented++
			if f.Found {
				fr.Found++
			} else {
				fr.Missed = append(fr.Missed, fmt.Sprintf("%s %s:%d", a.Name, f.File, f.Line))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(fams)) {
		fr := fams[name]
		fr.Recall = ratio(fr.Found, fr.Documented)
		res.Families = append(res.Families, *fr)
	}
	slices.SortStableFunc(res.Families, func(a, b FamilyResult) int {
		if a.InScope != b.InScope {
			if a.InScope {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Family, b.Family)
	})
	t.Recall = ratio(t.Found, t.Documented)
	t.InScopeRecall = ratio(t.InScopeFound, t.InScope)
	t.RecallAimMet = t.InScope > 0 && t.InScopeRecall >= RecallAim
	t.HeldOut.Recall = ratio(t.HeldOut.Found, t.HeldOut.Documented)
	t.HeldOut.InScopeRecall = ratio(t.HeldOut.InScopeFound, t.HeldOut.InScope)
	if kloc := float64(t.ControlLines) / 1000; kloc > 0 {
		t.ControlPerKLOC = float64(t.ControlFindings) / kloc
		t.ControlHighPerKLOC = float64(t.ControlHigh) / kloc
		t.ControlAimMet = t.ControlHighPerKLOC < HighPerKLOCCeiling
	}
	return res
}

// Markdown writes the evaluation as Markdown tables: recall per app and
// per family, findings per KLOC on the controls, then every miss (with the
// findings near it) and every false positive.
func (r Result) Markdown(w io.Writer) error {
	var b strings.Builder
	t := r.Totals
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("## SAST on real code no one here wrote\n\n")
	p("A finding matches a documented line when it is in the same file, its span covers the line or is within %d lines of it, and its rule shares a CWE or a family with the line. \"In scope\" leaves out the families issue 13 does not ask for (%s).\n\n", Window, strings.Join(outOfScope, ", "))

	p("### Vulnerable apps: recall on documented lines (aim: %.0f%% in scope)\n\n", RecallAim*100)
	p("| app | language | commit | documented | found | recall | in scope | found | recall | other findings | excluded flaws | lines | seconds |\n")
	p("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, a := range r.Apps {
		if a.Kind != KindVulnerable {
			continue
		}
		name := a.Name
		if a.HeldOut {
			name += " (held out)"
		}
		p("| %s | %s | %s | %d | %d | %s | %d | %d | %s | %d | %d | %d | %.2f |\n",
			name, a.Language, short(a.Commit), a.Documented, a.Found, pct(a.Recall),
			a.InScope, a.InScopeFound, pct(a.InScopeRecall), len(a.Other), a.Excluded, a.Lines, a.Seconds)
	}
	p("| **all** | | | %d | %d | **%s** | %d | %d | **%s** | | | | |\n",
		t.Documented, t.Found, pct(t.Recall), t.InScope, t.InScopeFound, pct(t.InScopeRecall))
	if h := t.HeldOut; h.Documented > 0 {
		p("| **held out** | | | %d | %d | **%s** | %d | %d | **%s** | | | | |\n",
			h.Documented, h.Found, pct(h.Recall), h.InScope, h.InScopeFound, pct(h.InScopeRecall))
	}
	p("\n")

	p("### Recall per family\n\n")
	p("| family | issue 13 scope | documented | found | recall | missed |\n|---|---|--:|--:|--:|---|\n")
	for _, f := range r.Families {
		p("| %s | %s | %d | %d | %s | %s |\n", f.Family, yesNo(f.InScope), f.Documented, f.Found, pct(f.Recall), strings.Join(f.Missed, "; "))
	}
	var untested []string
	for _, f := range Families() {
		if InScope(f) && !slices.ContainsFunc(r.Families, func(fr FamilyResult) bool { return fr.Family == f }) {
			untested = append(untested, f)
		}
	}
	if len(untested) > 0 {
		p("\nIn scope but with no documented line in these apps (recall not measured): %s.\n", strings.Join(untested, ", "))
	}
	p("\n")

	// The independent check (independent.yaml) lists vulnerable apps only.
	controls := slices.ContainsFunc(r.Apps, func(a AppResult) bool { return a.Kind == KindControl })
	if !controls {
		p("### Controls\n\nNo control app in this list: false positives are not measured.\n\n")
		p("Aim: recall in scope %s (%s).\n\n", met(t.RecallAimMet), pct(t.InScopeRecall))
	} else {
		p("### Controls: every finding is a false positive (aim: under %.0f high-confidence finding per KLOC)\n\n", HighPerKLOCCeiling)
		p("| app | language | commit | KLOC | findings | per KLOC | high confidence | per KLOC | blocking (high sev + high conf) | in test code | seconds |\n")
		p("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, a := range r.Apps {
			if a.Kind != KindControl {
				continue
			}
			p("| %s | %s | %s | %.1f | %d | %.2f | %d | %.2f | %d | %d | %.2f |\n",
				a.Name, a.Language, short(a.Commit), float64(a.Lines)/1000, a.Findings, a.PerKLOC,
				a.HighConfidence, a.HighConfidencePerKLOC, a.Blocking, a.InTests, a.Seconds)
		}
		p("| **all** | | | %.1f | %d | %.2f | %d | **%.2f** | %d | %d | |\n\n",
			float64(t.ControlLines)/1000, t.ControlFindings, t.ControlPerKLOC, t.ControlHigh, t.ControlHighPerKLOC, t.ControlBlocking, t.ControlInTests)

		p("Aims: recall in scope %s (%s), high-confidence findings per KLOC on the controls %s (%.2f).\n\n",
			met(t.RecallAimMet), pct(t.InScopeRecall), met(t.ControlAimMet), t.ControlHighPerKLOC)
	}

	p("### Misses\n\n")
	misses := 0
	for _, a := range r.Apps {
		for _, f := range a.Flaws {
			if f.Found {
				continue
			}
			misses++
			p("- %s `%s:%d` %s (%s): %s\n", a.Name, f.File, f.Line, f.Family, strings.Join(f.CWE, ", "), f.Note)
			for _, n := range f.Near {
				p("  - near: `%s` line %d-%d %s (%s, %s confidence)\n", n.Rule, n.Line, n.EndLine, strings.Join(n.CWE, ", "), n.Severity, n.Confidence)
			}
		}
	}
	if misses == 0 {
		p("None.\n")
	}
	p("\n")

	if controls {
		p("### False positives on the controls\n\n")
		fps := 0
		for _, a := range r.Apps {
			fps += len(a.FalsePositives)
		}
		if fps == 0 {
			p("None.\n\n")
		} else {
			p("| app | where | rule | CWE | severity | confidence | message |\n|---|---|---|---|---|---|---|\n")
			for _, a := range r.Apps {
				for _, f := range a.FalsePositives {
					p("| %s | `%s:%d` | %s | %s | %s | %s | %s |\n", a.Name, f.File, f.Line, f.Rule,
						strings.Join(f.CWE, ", "), f.Severity, f.Confidence, cell(f.Message))
				}
			}
			p("\n")
		}
	}

	p("### Other findings on the vulnerable apps (not counted)\n\n")
	perApp(&b, r.Apps, func(a AppResult) string { return ruleCounts(a.Other) })
	p("\n### Files skipped by the engine\n\n")
	perApp(&b, r.Apps, func(a AppResult) string {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(a.Skipped)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, a.Skipped[k]))
		}
		return strings.Join(parts, ", ")
	})
	_, err := io.WriteString(w, b.String())
	return err
}

// perApp writes a line "- app: text" for each app whose text is not
// empty, or "None.".
func perApp(b *strings.Builder, apps []AppResult, text func(AppResult) string) {
	n := 0
	for _, a := range apps {
		if t := text(a); t != "" {
			n++
			fmt.Fprintf(b, "- %s: %s\n", a.Name, t)
		}
	}
	if n == 0 {
		b.WriteString("None.\n")
	}
}

// ruleCounts lists how many findings each rule made, most first.
func ruleCounts(fs []Finding) string {
	n := map[string]int{}
	for _, f := range fs {
		n[f.Rule]++
	}
	rules := slices.Collect(maps.Keys(n))
	slices.SortFunc(rules, func(a, b string) int { return cmp.Or(cmp.Compare(n[b], n[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = fmt.Sprintf("%s ×%d", r, n[r])
	}
	return strings.Join(parts, ", ")
}

func short(commit string) string { return commit[:min(12, len(commit))] }

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func met(b bool) string {
	if b {
		return "met"
	}
	return "NOT met"
}

// cell keeps a message on one table row.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", `\|`)
	if r := []rune(s); len(r) > 140 {
		s = string(r[:137]) + "..."
	}
	return s
}

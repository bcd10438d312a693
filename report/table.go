package report

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the report for a person at a terminal.
func WriteTable(w io.Writer, r Report) error {
	ew := &errWriter{w: w}
	ew.printf("tollgate scan %s of %s: %s (decided in the %s stage)\n", r.ScanID, r.App, strings.ToUpper(string(r.Verdict)), r.Stage)
	if !r.VulnDB.Available {
		note := r.VulnDB.Note
		if note == "" {
			note = "no vulnerability DB"
		}
		ew.printf("\n!! vulnerabilities were NOT checked: %s\n", note)
	}
	if b := r.Baseline; b != nil {
		from := "scan " + b.ScanID
		if b.ReleaseID != "" {
			from = fmt.Sprintf("release %s (scan %s)", b.ReleaseID, b.ScanID)
		}
		ew.printf("\nBaseline: %s: %d new, %d known\n", from, b.New, b.Known)
	}
	if len(r.Reasons) > 0 {
		ew.printf("\nReasons\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		for _, reason := range r.Reasons {
			msg := reason.Message
			if reason.Baseline != "" {
				msg += " [" + reason.Baseline + "]"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", strings.ToUpper(string(reason.Verdict)), reason.Policy, msg)
		}
		tw.Flush()
	}
	if len(r.Exceptions) > 0 {
		ew.printf("\nExceptions applied\n")
		for _, e := range r.Exceptions {
			ew.printf("  %s  %v  until %s (approved by %s)\n", e.ID, e.Finding, e.ExpiresAt.Format("2006-01-02 15:04 MST"), e.Approver)
		}
	}
	if len(r.VEX) > 0 {
		ew.printf("\nVEX statements applied\n")
		for _, v := range r.VEX {
			ew.printf("  %s  %s in %s: %s %s (%s document, added by %s)\n", v.Record, v.Vulnerability, v.PURL, v.Status, v.Justification, v.Format, v.AddedBy)
		}
	}
	if m := r.Manifest; m != nil {
		switch {
		case !m.Present:
			ew.printf("\nPermission manifest: none\n")
		case m.Valid:
			ew.printf("\nPermission manifest: %s\n", m.File)
		default:
			ew.printf("\nPermission manifest: %s (does not match the schema)\n", m.File)
		}
	}
	if r.Review != nil {
		ew.printf("\nReview: %s by %s: %s\n", r.Review.Outcome, cmp.Or(r.Review.Reviewer, "nobody"), r.Review.Reason)
	}
	ew.printf("\nSecrets (%d)\n", len(r.Secrets))
	if len(r.Secrets) > 0 {
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  %sRULE\tFILE\tLINE\tFINGERPRINT\n", stateHeader(r))
		for _, s := range r.Secrets {
			fmt.Fprintf(tw, "  %s%s\t%s\t%d\t%s\n", stateCell(r, s.Baseline), s.Rule, s.File, s.Line, s.Fingerprint)
		}
		tw.Flush()
	}
	if len(r.Unscanned) > 0 {
		ew.printf("\nNot scanned (%d)\n", len(r.Unscanned))
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  FILE\tREASON\n")
		for _, s := range r.Unscanned {
			fmt.Fprintf(tw, "  %s\t%s\n", s.File, s.Reason)
		}
		tw.Flush()
	}
	ew.printf("\nVulnerabilities (%d)\n", len(r.Vulnerabilities))
	if len(r.Vulnerabilities) > 0 {
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  %sSEVERITY\tID\tPACKAGE\tVERSION\tFIXED IN\tALIASES\n", stateHeader(r))
		for _, v := range r.Vulnerabilities {
			fmt.Fprintf(tw, "  %s%s\t%s\t%s\t%s\t%s\t%s\n", stateCell(r, v.Baseline), v.Severity, v.ID, v.Package, v.Version,
				strings.Join(v.FixedVersions, ", "), strings.Join(v.Aliases, ", "))
		}
		tw.Flush()
	}
	ew.printf("\nMisconfigurations (%d)\n", len(r.Misconfigurations))
	if len(r.Misconfigurations) > 0 {
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  %sSEVERITY\tID\tTYPE\tFILE\tTITLE\n", stateHeader(r))
		for _, m := range r.Misconfigurations {
			where := m.File
			if m.StartLine > 0 {
				where = fmt.Sprintf("%s:%d", m.File, m.StartLine)
			}
			fmt.Fprintf(tw, "  %s%s\t%s\t%s\t%s\t%s\n", stateCell(r, m.Baseline), m.Severity, m.ID, m.Type, where, m.Title)
		}
		tw.Flush()
	}
	writeWeaknesses(ew, r)
	ecos := map[string]int{}
	var order []string
	for _, p := range r.Packages {
		if ecos[p.Ecosystem] == 0 {
			order = append(order, p.Ecosystem)
		}
		ecos[p.Ecosystem]++
	}
	parts := make([]string, 0, len(order))
	for _, e := range order {
		parts = append(parts, fmt.Sprintf("%s %d", e, ecos[e]))
	}
	ew.printf("\nPackages: %d", len(r.Packages))
	if len(parts) > 0 {
		ew.printf(" (%s)", strings.Join(parts, ", "))
	}
	ew.printf("\n")
	if len(r.Evidence) > 0 {
		ew.printf("\nEvidence\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		for _, e := range r.Evidence {
			fmt.Fprintf(tw, "  %s\t%s/%s\tsha256:%s\n", e.Name, e.Bucket, e.Key, e.SHA256)
		}
		tw.Flush()
	}
	if len(r.Timings) > 0 {
		ew.printf("\nTimings:")
		for _, k := range []string{"fast", "deep", "secrets", "code", "sbom", "vulnerabilities", "misconfig", "total"} {
			if v, ok := r.Timings[k]; ok {
				ew.printf(" %s %.3fs", k, v)
			}
		}
		ew.printf("\n")
	}
	return ew.err
}

// writeWeaknesses writes the code weaknesses, each taint finding's trace
// indented under it one step a line, and what the code scan read and
// skipped on one line.
func writeWeaknesses(ew *errWriter, r Report) {
	if r.CodeScan == nil && r.Weaknesses == nil {
		return // the code was not scanned (a report from before SAST)
	}
	ew.printf("\nCode weaknesses (%d)\n", len(r.Weaknesses))
	if cs := r.CodeScan; cs != nil {
		files, lines := 0, 0
		for _, n := range cs.Files {
			files += n
		}
		for _, n := range cs.Lines {
			lines += n
		}
		skipped := 0
		for _, n := range cs.Skipped {
			skipped += n
		}
		ew.printf("  scanned %d files, %d lines%s with %d rules; skipped %d files%s\n",
			files, lines, counts(cs.Files), cs.Rules, skipped, counts(cs.Skipped))
	}
	if len(r.Weaknesses) == 0 {
		return
	}
	// The rows are aligned on their own, then each trace goes under its
	// row: a trace line in the tabwriter would break the columns.
	var rows bytes.Buffer
	tw := tabwriter.NewWriter(&rows, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  %sSEVERITY\tCONFIDENCE\tRULE\tCWE\tWHERE\tMESSAGE\n", stateHeader(r))
	for _, w := range r.Weaknesses {
		fmt.Fprintf(tw, "  %s%s\t%s\t%s\t%s\t%s:%d\t%s\n", stateCell(r, w.Baseline), w.Severity, w.Confidence, w.Rule, strings.Join(w.CWE, ","), w.File, w.Line, w.Message)
	}
	tw.Flush()
	lines := strings.SplitAfter(rows.String(), "\n")
	ew.printf("%s", lines[0])
	for i, w := range r.Weaknesses {
		ew.printf("%s", lines[i+1])
		for _, s := range w.Trace {
			ew.printf("      -> %s:%d  %s\n", s.File, s.Line, s.Step)
		}
	}
}

// stateHeader and stateCell are the STATE column (new or known) of the
// finding tables, there only when the report has a baseline.
func stateHeader(r Report) string {
	if r.Baseline == nil {
		return ""
	}
	return "STATE\t"
}

func stateCell(r Report, state string) string {
	if r.Baseline == nil {
		return ""
	}
	return cmp.Or(state, "-") + "\t"
}

// counts is " (a 2, b 1)" for a map of counts, by name; "" for none.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

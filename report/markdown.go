package report

import (
	"io"
	"strconv"
	"strings"
)

// markdownRows is how many findings of each kind the Markdown summary
// lists; it says how many more there are. GitHub keeps at most 1 MiB of a
// step's summary.
const markdownRows = 50

// WriteMarkdown writes the report as a Markdown summary for a CI job page
// ($GITHUB_STEP_SUMMARY, a merge request note): the verdict, the reasons and
// a table per kind of finding. Text from the scanned code is escaped, so it
// cannot add links, images, HTML or table cells.
func WriteMarkdown(w io.Writer, r Report) error {
	ew := &errWriter{w: w}
	icon := map[Verdict]string{VerdictPass: "✅", VerdictWarn: "⚠️", VerdictBlock: "❌", VerdictReview: "⏸️"}[r.Verdict]
	ew.printf("## %s tollgate: %s\n\n", icon, strings.ToUpper(string(r.Verdict)))
	ew.printf("Scan %s of **%s**", md(r.ScanID), md(r.App))
	if r.Commit != "" {
		ew.printf(" at %s", md(r.Commit))
	}
	ew.printf(", decided in the %s stage.\n\n", md(r.Stage))
	if !r.VulnDB.Available {
		ew.printf("> [!WARNING]\n> Vulnerabilities were **not** checked: %s\n\n", md(r.VulnDB.Note))
	}
	ew.printf("| secrets | vulnerabilities | misconfigurations | code weaknesses | packages |\n|---:|---:|---:|---:|---:|\n")
	ew.printf("| %d | %d | %d | %d | %d |\n\n", len(r.Secrets), len(r.Vulnerabilities), len(r.Misconfigurations), len(r.Weaknesses), len(r.Packages))

	if len(r.Reasons) > 0 {
		rows := make([][]string, 0, len(r.Reasons))
		for _, reason := range r.Reasons {
			rows = append(rows, []string{strings.ToUpper(string(reason.Verdict)), reason.Policy, reason.Message})
		}
		ew.table("Reasons", []string{"verdict", "policy", "reason"}, rows)
	}
	if len(r.Exceptions) > 0 {
		rows := make([][]string, 0, len(r.Exceptions))
		for _, e := range r.Exceptions {
			rows = append(rows, []string{e.ID, e.Scope, e.ExpiresAt.UTC().Format("2006-01-02"), e.Approver})
		}
		ew.table("Exceptions applied", []string{"exception", "scope", "until", "approved by"}, rows)
	}
	var rows [][]string
	for _, s := range r.Secrets {
		rows = append(rows, []string{s.Rule, s.File + ":" + strconv.Itoa(s.Line)})
	}
	ew.table("Secrets", []string{"rule", "where"}, rows)
	rows = nil
	for _, v := range r.Vulnerabilities {
		rows = append(rows, []string{v.Severity, v.ID, v.Package + "@" + v.Version, strings.Join(v.FixedVersions, ", "), v.File})
	}
	ew.table("Vulnerabilities", []string{"severity", "advisory", "package", "fixed in", "file"}, rows)
	rows = nil
	for _, m := range r.Misconfigurations {
		rows = append(rows, []string{m.Severity, m.ID, m.File + lineSuffix(m.StartLine), m.Title})
	}
	ew.table("Misconfigurations", []string{"severity", "check", "where", "title"}, rows)
	rows = nil
	for _, wk := range r.Weaknesses {
		rows = append(rows, []string{strings.ToUpper(wk.Severity), wk.Rule, wk.File + lineSuffix(wk.Line), wk.Message + " (" + strings.Join(wk.CWE, ", ") + ")"})
	}
	ew.table("Code weaknesses", []string{"severity", "rule", "where", "message"}, rows)
	return ew.err
}

func lineSuffix(line int) string {
	if line <= 0 {
		return ""
	}
	return ":" + strconv.Itoa(line)
}

// table writes a titled table of up to markdownRows rows, every cell
// escaped; nothing when there are no rows.
func (ew *errWriter) table(title string, header []string, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	ew.printf("### %s (%d)\n\n| %s |\n|%s\n", title, len(rows), strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for i, row := range rows {
		if i == markdownRows {
			ew.printf("\n… and %d more: see the full report.\n", len(rows)-markdownRows)
			break
		}
		cells := make([]string, len(row))
		for j, c := range row {
			cells[j] = md(c)
		}
		ew.printf("| %s |\n", strings.Join(cells, " | "))
	}
	ew.printf("\n")
}

// md escapes untrusted text for a Markdown line or table cell (never at
// the start of a line): the characters that make links, images, emphasis,
// code, table cells, math and autolinks (: . @ for URLs, www. and
// mentions) are backslash-escaped, <, > and & become entities (no HTML),
// and line breaks and other control characters become spaces.
func md(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '&':
			b.WriteString("&amp;")
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029':
			b.WriteByte(' ')
		case strings.ContainsRune("\\`*_[]#!|~:.@$", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

package cli

import (
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// reportOut is one rendering of a scan's report: a format and the file it
// goes to ("" is stdout).
type reportOut struct{ format, file string }

// addReportFlags adds --format, --output and --report, the renderings scan
// and submit write, to f.
func addReportFlags(cmd *cobra.Command, format, output *string, reports *[]string, formatUsage string) {
	f := cmd.Flags()
	f.StringVarP(format, "format", "f", "table", formatUsage+": "+strings.Join(formats, ", "))
	f.StringVarP(output, "output", "o", "", "write the report to this file instead of stdout")
	f.StringArrayVar(reports, "report", nil, "also write the report in FORMAT to FILE, as FORMAT=FILE (repeatable; e.g. sarif=tollgate.sarif, markdown=summary.md)")
}

// reportOuts checks --format, --output and the --report FORMAT=FILE
// options and returns the renderings to write, --format first.
func reportOuts(format, output string, reports []string) ([]reportOut, error) {
	if !validFormat(format) {
		return nil, usageErrf("--format %q: want one of %s", format, strings.Join(formats, ", "))
	}
	outs := []reportOut{{format: format, file: output}}
	for _, spec := range reports {
		f, file, ok := strings.Cut(spec, "=")
		if !ok || file == "" {
			return nil, usageErrf("--report %q: want FORMAT=FILE", spec)
		}
		if !validFormat(f) {
			return nil, usageErrf("--report %q: format %q: want one of %s", spec, f, strings.Join(formats, ", "))
		}
		outs = append(outs, reportOut{format: f, file: file})
	}
	return outs, nil
}

// writeReports writes each rendering with render, to its file or to
// stdout.
func writeReports(g *globals, outs []reportOut, render func(w io.Writer, format string) error) error {
	for _, o := range outs {
		if err := writeReportTo(g, o, render); err != nil {
			return err
		}
	}
	return nil
}

func writeReportTo(g *globals, o reportOut, render func(w io.Writer, format string) error) error {
	if o.file == "" {
		return render(g.stdout, o.format)
	}
	f, err := os.Create(o.file)
	if err != nil {
		return usageErrf("write the %s report to %q: %w", o.format, o.file, err)
	}
	if err := render(f, o.format); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

package report

import (
	"encoding/json"
	"fmt"
	"io"
)

// Formats are the report formats Render writes.
var Formats = []string{"table", "json", "sarif", "github", "junit", "markdown", "gitlab-sast", "gitlab-dependency-scanning"}

// Render writes r in format (one of Formats); toolVersion names tollgate
// in the formats that carry it.
func Render(w io.Writer, r Report, format, toolVersion string) error {
	var data []byte
	var err error
	switch format {
	case "table":
		return WriteTable(w, r)
	case "github":
		return WriteGitHub(w, r)
	case "markdown":
		return WriteMarkdown(w, r)
	case "json":
		data, err = marshalIndent(r)
	case "sarif":
		data, err = SARIF(r, toolVersion)
	case "junit":
		data, err = JUnit(r, toolVersion)
	case "gitlab-sast":
		data, err = GitLabSAST(r, toolVersion)
	case "gitlab-dependency-scanning":
		data, err = GitLabDependencyScanning(r, toolVersion)
	default:
		return fmt.Errorf("render report: no format %q", format)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

func marshalIndent(r Report) ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return append(b, '\n'), nil
}

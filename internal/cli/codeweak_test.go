package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/golden"
	"github.com/tollgate/tollgate/report"
)

// TestScanPinsCodeWeaknesses: `tollgate scan` of the example with code
// weaknesses blocks on them, and the JSON report, the SARIF log and the
// table each carry the same findings, pinned in golden files (-update).
func TestScanPinsCodeWeaknesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the embedded stack")
	}
	app := filepath.Join("..", "..", "examples", "code-weak")
	dir := t.TempDir()
	outputs := map[string]string{}
	for _, format := range []string{"json", "sarif", "table"} {
		out := filepath.Join(dir, "report."+format)
		code, _, stderr := run(t, "scan", "-q", "--evidence", filepath.Join(dir, "evidence-"+format), "--format", format, "--output", out, app)
		if code != ExitBlocked {
			t.Fatalf("scan --format %s: exit %d, want %d (blocked by its weaknesses): %s", format, code, ExitBlocked, stderr)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		outputs[format] = string(data)
	}

	var r report.Report
	if err := json.Unmarshal([]byte(outputs["json"]), &r); err != nil {
		t.Fatal(err)
	}
	var fromJSON []string
	for _, w := range r.Weaknesses {
		steps := make([]string, 0, len(w.Trace))
		for _, s := range w.Trace {
			steps = append(steps, fmt.Sprintf("%d %s", s.Line, s.Step))
		}
		fromJSON = append(fromJSON, fmt.Sprintf("%s %v %s/%s %s:%d-%d %s [%s]", w.Rule, w.CWE, w.Severity, w.Confidence, w.File, w.Line, w.EndLine, w.Fingerprint, strings.Join(steps, "; ")))
	}
	golden.AssertJSON(t, filepath.Join("testdata", "code-weak.weaknesses.golden.json"), fromJSON)

	var log struct {
		Runs []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
						Region struct {
							StartLine int `json:"startLine"`
						} `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
				CodeFlows []json.RawMessage `json:"codeFlows"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(outputs["sarif"]), &log); err != nil || len(log.Runs) != 1 {
		t.Fatalf("SARIF: %v (%d runs)", err, len(log.Runs))
	}
	var fromSARIF []string
	for _, res := range log.Runs[0].Results {
		if !strings.HasPrefix(res.RuleID, "js-") || len(res.Locations) == 0 {
			continue
		}
		l := res.Locations[0].PhysicalLocation
		fromSARIF = append(fromSARIF, fmt.Sprintf("%s %s:%d codeFlows=%d", res.RuleID, l.ArtifactLocation.URI, l.Region.StartLine, len(res.CodeFlows)))
	}
	golden.AssertJSON(t, filepath.Join("testdata", "code-weak.sarif-results.golden.json"), fromSARIF)
	if len(fromSARIF) != len(r.Weaknesses) {
		t.Errorf("SARIF has %d weakness results, the report %d", len(fromSARIF), len(r.Weaknesses))
	}

	section, ok := tableSection(outputs["table"], "Code weaknesses")
	if !ok {
		t.Fatalf("table has no Code weaknesses section:\n%s", outputs["table"])
	}
	golden.Assert(t, filepath.Join("testdata", "code-weak.table.golden.txt"), []byte(section))
}

// tableSection returns the table's section that starts with title, up to
// the next blank line.
func tableSection(table, title string) (string, bool) {
	i := strings.Index(table, "\n"+title)
	if i < 0 {
		return "", false
	}
	rest := table[i+1:]
	if j := strings.Index(rest, "\n\n"); j >= 0 {
		rest = rest[:j+1]
	}
	return rest, true
}

package vex_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tollgate/tollgate/internal/golden"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/vex"
)

// checkSchema fails the test unless data is valid under the JSON schema
// at testdata/schema/name (the published one, see testdata/README.md).
func checkSchema(t testing.TB, name string, data []byte) {
	t.Helper()
	loc := filepath.Join("testdata", "schema", name)
	fh, err := os.Open(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	doc, err := jsonschema.UnmarshalJSON(fh)
	if err != nil {
		t.Fatalf("parse %s: %v", loc, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(loc, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		t.Fatalf("compile %s: %v", loc, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not JSON: %v\n%s", err, data)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("does not match %s: %v\n%s", name, err, data)
	}
}

// exportReport is a scan with one finding silenced by VEX, one accepted by
// an exception, one with a fix and one without.
func exportReport(t *testing.T) report.Report {
	docker := advisory(t, "GO-2024-2512", "v20.10.12+incompatible")
	old := advisory(t, "GO-2022-0390", "v20.10.12+incompatible")
	old.FixedVersions = []string{"20.10.14+incompatible"}
	circl := advisory(t, "GO-2023-1765", "v1.3.2")
	timing := advisory(t, "GO-2024-2453", "v1.3.2")
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	return report.Report{
		Schema: report.Schema, ScanID: "scan-0001", App: "gate", Commit: "0123abcd",
		Verdict: report.VerdictBlock, Stage: report.StageDeep,
		Findings:   report.Findings{Vulnerabilities: []report.Vulnerability{circl, timing, docker, old}},
		Exceptions: []report.AppliedException{{ID: "exc-00000000000000e1", Scope: "app", Finding: map[string]string{"vulnerability": "CVE-2023-1732", "package": "github.com/cloudflare/circl"}, ExpiresAt: at.AddDate(0, 1, 0), Approver: "sec@acme"}},
		VEX: []report.AppliedVEX{{
			Record: "vex-00000000000000a1", Format: vex.FormatOpenVEX, Vulnerability: docker.ID, Package: docker.Package, PURL: docker.PURL,
			Product: "pkg:golang/github.com/aquasecurity/trivy", Status: vex.StatusNotAffected, Justification: "vulnerable_code_not_present", AddedBy: "sec@acme", AddedAt: at,
		}},
		StartedAt: at, FinishedAt: at.Add(time.Minute),
	}
}

// TestExportIsValidOpenVEX: a scan's final status exported as OpenVEX
// matches the published OpenVEX schema, reads back with the parser, and is
// the golden file.
func TestExportIsValidOpenVEX(t *testing.T) {
	r := exportReport(t)
	out, err := vex.Export(r)
	if err != nil {
		t.Fatal(err)
	}
	checkSchema(t, "openvex_json_schema.json", out)
	golden.Assert(t, filepath.Join("testdata", "golden", "scan.openvex.json"), out)

	doc, err := vex.Parse(out)
	if err != nil {
		t.Fatalf("the export does not parse: %v", err)
	}
	status := map[string]string{}
	for _, s := range doc.Statements {
		status[s.Vulnerability] = s.Status
	}
	want := map[string]string{"GO-2024-2512": "not_affected", "GO-2022-0390": "affected", "GO-2023-1765": "affected", "GO-2024-2453": "affected"}
	for id, s := range want {
		if status[id] != s {
			t.Errorf("%s exported as %q, want %q", id, status[id], s)
		}
	}
	again, err := vex.Export(r)
	if err != nil || !bytes.Equal(again, out) {
		t.Error("the same report exports differently")
	}
}

package vex_test

import (
	"testing"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/vex"
)

// fuzzParse feeds documents to Parse and what it returns to Resolve: any
// input gives a document or an error, never a panic, and a statement
// resolves only against a finding it names.
func fuzzParse(f *testing.F, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	vulns := []report.Vulnerability{{ID: "GO-2024-2512", Aliases: []string{"CVE-2024-24557"}, Package: "github.com/docker/docker", Version: "v24.0.7", PURL: "pkg:golang/github.com/docker/docker@v24.0.7"}}
	pkgs := []report.Package{{Name: "github.com/aquasecurity/trivy", Version: "v0.58.1", PURL: "pkg:golang/github.com/aquasecurity/trivy@v0.58.1"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := vex.Parse(data)
		if err != nil {
			return
		}
		if doc.Format != vex.FormatOpenVEX && doc.Format != vex.FormatCycloneDX {
			t.Fatalf("format %q", doc.Format)
		}
		for _, m := range vex.Resolve([]vex.Record{{ID: "vex-0000000000000001", Statements: doc.Statements}}, vulns, pkgs) {
			if m.Vulnerability != "GO-2024-2512" || m.PURL != vulns[0].PURL {
				t.Fatalf("resolved to a finding it does not name: %+v", m)
			}
		}
	})
}

func FuzzParseOpenVEX(f *testing.F) {
	fuzzParse(f,
		read(f, "openvex/trivy.openvex.json"),
		[]byte(`{"@context":"https://openvex.dev/ns/v0.2.0","@id":"x","author":"a","timestamp":"2024-01-01T00:00:00Z","version":1,"statements":[{"vulnerability":{"name":"CVE-2024-24557"},"products":[{"@id":"pkg:golang/github.com/aquasecurity/trivy","subcomponents":[{"@id":"pkg:golang/github.com/docker/docker"}]}],"status":"not_affected","justification":"vulnerable_code_not_present"}]}`),
		[]byte(`{"@context":"https://openvex.dev/ns","statements":[{"vulnerability":"GO-2024-2512","products":["pkg:golang/github.com/docker/docker"],"status":"fixed"}]}`),
	)
}

func FuzzParseCycloneDXVEX(f *testing.F) {
	fuzzParse(f,
		read(f, "cyclonedx/commons-bcel.VEX.cyclonedx.xml"),
		[]byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","vulnerabilities":[{"id":"GO-2024-2512","analysis":{"state":"not_affected","justification":"code_not_reachable"},"affects":[{"ref":"urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#pkg:golang/github.com/docker/docker@v24.0.7"}]}]}`),
		[]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"bom-ref":"d","type":"library","name":"docker","purl":"pkg:golang/github.com/docker/docker"}],"vulnerabilities":[{"id":"CVE-2024-24557","analysis":{"state":"resolved"},"affects":[{"ref":"d","versions":[{"range":"vers:golang/>=24.0.0|<25","status":"unaffected"}]}]}]}`),
	)
}

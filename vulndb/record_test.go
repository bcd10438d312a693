package vulndb

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aquasecurity/trivy-db/pkg/types"
)

func TestConvertRecord(t *testing.T) {
	t.Parallel()
	rec, err := parseRecord([]byte(`{
		"id": "EXAMPLE-1",
		"modified": "not a date",
		"published": "2024-01-02T03:04:05Z",
		"aliases": ["CVE-2024-1", "EXAMPLE-1", "CVE-2024-1", "bad alias"],
		"upstream": ["GHSA-aaaa-bbbb-cccc"],
		"summary": "  Example  ",
		"details": "Details.",
		"severity": [],
		"affected": [
			{"package": {"ecosystem": "PyPI", "name": "Foo_Bar"},
			 "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
			 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]},
			{"package": {"ecosystem": "PyPI", "name": "foo-bar"},
			 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"fixed": "2.1"}]}]},
			{"package": {"ecosystem": "PyPI", "name": "no-ranges"}},
			{"package": {"ecosystem": "crates.io", "name": "foo"}},
			{"package": {"ecosystem": "Debian:12", "name": "foo"}},
			{"package": {"ecosystem": "Debian:11", "name": "foo"}},
			{"ranges": [{"type": "GIT", "repo": "https://example.com/foo", "events": [{"introduced": "0"}]}]}
		],
		"references": [{"type": "WEB", "url": "https://example.com/a"}, {"type": "ADVISORY", "url": "https://example.com/a"}, {"url": ""}],
		"database_specific": {"severity": "LOW"}
	}`))
	if err != nil {
		t.Fatalf("parseRecord: %v", err)
	}
	conv := convertRecord(rec)

	if want := []string{"CVE-2024-1", "GHSA-aaaa-bbbb-cccc"}; !reflect.DeepEqual(conv.aliases, want) {
		t.Errorf("aliases = %q, want %q", conv.aliases, want)
	}
	if len(conv.packages) != 1 {
		t.Fatalf("packages = %+v, want foo-bar only", conv.packages)
	}
	if p := conv.packages[0]; p.name != "foo-bar" || !reflect.DeepEqual(p.constraints, []string{"<1.0", ">=2.0, <2.1"}) {
		t.Errorf("package = %q %q, want foo-bar with both ranges merged", p.name, p.constraints)
	}
	if want := map[string]int{"crates.io": 1, "Debian": 2, unnamedEcosystem: 1}; !reflect.DeepEqual(conv.skipped, want) {
		t.Errorf("skipped = %v, want %v", conv.skipped, want)
	}
	if conv.unversioned != 1 {
		t.Errorf("unversioned = %d, want 1 (no-ranges)", conv.unversioned)
	}

	v := conv.vuln
	// The record has no top-level vector; the affected entry's wins over
	// database_specific.
	if v.Severity != "CRITICAL" || v.VendorSeverity[SourceID] != types.SeverityCritical {
		t.Errorf("severity = %q / %v, want CRITICAL from the affected entry's vector", v.Severity, v.VendorSeverity)
	}
	if v.Title != "Example" || v.Description != "Details." {
		t.Errorf("title, description = %q, %q", v.Title, v.Description)
	}
	if !reflect.DeepEqual(v.References, []string{"https://example.com/a"}) {
		t.Errorf("references = %q", v.References)
	}
	if v.PublishedDate == nil || v.PublishedDate.Format("2006-01-02") != "2024-01-02" || v.LastModifiedDate != nil {
		t.Errorf("dates = %v, %v; want published 2024-01-02 and no modified date", v.PublishedDate, v.LastModifiedDate)
	}
	if len(conv.notes) != 2 { // the bad alias and no-ranges
		t.Errorf("notes = %v, want 2", conv.notes)
	}
}

func TestParseRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		data    string
		errText string
	}{
		{"minimal", `{"id": "X-1"}`, ""},
		{"not json", `id: X-1`, "decode json"},
		{"trailing data", `{"id": "X-1"} {}`, "decode json"},
		{"no id", `{"summary": "x"}`, "id: empty"},
		{"id with space", `{"id": "X 1"}`, "id:"},
		{"id too long", `{"id": "` + strings.Repeat("X", maxIDBytes+1) + `"}`, "id: longer than"},
		{"supported package without name", `{"id": "X-1", "affected": [{"package": {"ecosystem": "npm"}}]}`, "affected[0] package name: empty"},
		{"unsupported package without name", `{"id": "X-1", "affected": [{"package": {"ecosystem": "NuGet"}}]}`, ""},
		{"too big", `{"id": "X-1", "details": "` + strings.Repeat("x", maxRecordBytes) + `"}`, "more than the"},
	}
	for _, tt := range tests {
		_, err := parseRecord([]byte(tt.data))
		switch {
		case tt.errText == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.errText != "" && (err == nil || !strings.Contains(err.Error(), tt.errText)):
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.errText)
		}
	}
}

// FuzzParseRecord feeds arbitrary bytes through the parser and the conversion, and
// checks that whatever comes out is safe to hand to trivy.
func FuzzParseRecord(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join(fixtureDir, "*", "*.json"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed records under %s: %v", fixtureDir, err)
	}
	for _, path := range seeds {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"X","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"fixed":"1 || >=0"}]}],"versions":["1,2"]}]}`))
	f.Add([]byte(`{"id":"X","severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N"},{"type":"CVSS_V2","score":"(AV:N/AC:L/Au:N/C:P/I:P/A:P)"}]}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := parseRecord(data)
		if err != nil {
			return
		}
		conv := convertRecord(rec)
		if conv.id != rec.ID || checkToken(conv.id, maxIDBytes) != nil {
			t.Fatalf("unusable id %q", conv.id)
		}
		for _, a := range conv.aliases {
			if a == conv.id || checkToken(a, maxIDBytes) != nil {
				t.Fatalf("unusable alias %q", a)
			}
		}
		for _, p := range conv.packages {
			if p.name == "" || len(p.constraints) == 0 {
				t.Fatalf("package %+v has no name or no constraint", p)
			}
			for _, c := range p.constraints {
				if c == allVersions {
					continue
				}
				if _, err := p.eco.compile(c); err != nil {
					t.Fatalf("%s constraint %q does not compile: %v", p.eco.name, c, err)
				}
				if strings.Contains(c, "||") {
					t.Fatalf("%s constraint %q holds an alternative of its own", p.eco.name, c)
				}
			}
		}
		if _, err := types.NewSeverity(conv.vuln.Severity); conv.vuln.Severity != "" && err != nil {
			t.Fatalf("severity %q", conv.vuln.Severity)
		}
	})
}

package vulndb

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/aquasecurity/trivy-db/pkg/types"
)

func TestSeverityFromCVSS(t *testing.T) {
	t.Parallel()
	const (
		v31Critical = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"                    // 9.8
		v30Medium   = "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N"                    // 6.5
		v31None     = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"                    // 0.0
		v3Low       = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N"                    // 3.1
		v4Critical  = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N" // 9.3
		v2High      = "AV:N/AC:L/Au:N/C:P/I:P/A:P"                                      // 7.5
	)
	tests := []struct {
		name      string
		list      []osvSeverity
		want      types.Severity
		wantScore types.CVSS
		wantNotes int
	}{
		{"v3.1", []osvSeverity{{"CVSS_V3", v31Critical}}, types.SeverityCritical,
			types.CVSS{V3Vector: v31Critical, V3Score: 9.8}, 0},
		{"v3.0", []osvSeverity{{"CVSS_V3", v30Medium}}, types.SeverityMedium,
			types.CVSS{V3Vector: v30Medium, V3Score: 6.5}, 0},
		{"v3 low", []osvSeverity{{"CVSS_V3", v3Low}}, types.SeverityLow,
			types.CVSS{V3Vector: v3Low, V3Score: 3.1}, 0},
		{"trailing slash", []osvSeverity{{"CVSS_V3", v30Medium + "/"}}, types.SeverityMedium,
			types.CVSS{V3Vector: v30Medium, V3Score: 6.5}, 0},
		{"v4 only", []osvSeverity{{"CVSS_V4", v4Critical}}, types.SeverityCritical,
			types.CVSS{V40Vector: v4Critical, V40Score: 9.3}, 0},
		{"v3 preferred to v4", []osvSeverity{{"CVSS_V4", v4Critical}, {"CVSS_V3", v30Medium}}, types.SeverityMedium,
			types.CVSS{V3Vector: v30Medium, V3Score: 6.5, V40Vector: v4Critical, V40Score: 9.3}, 0},
		{"v2 has no critical", []osvSeverity{{"CVSS_V2", v2High}}, types.SeverityHigh,
			types.CVSS{V2Vector: v2High, V2Score: 7.5}, 0},
		{"filed under the wrong type", []osvSeverity{{"CVSS_V4", v31Critical}}, types.SeverityCritical,
			types.CVSS{V3Vector: v31Critical, V3Score: 9.8}, 0},
		{"score 0 is unknown", []osvSeverity{{"CVSS_V3", v31None}}, types.SeverityUnknown,
			types.CVSS{V3Vector: v31None}, 0},
		{"bad vector", []osvSeverity{{"CVSS_V3", "CVSS:3.1/AV:X"}}, types.SeverityUnknown, types.CVSS{}, 1},
		{"vector without version", []osvSeverity{{"CVSS_V3", "AV:N/AC:L"}}, types.SeverityUnknown, types.CVSS{}, 1},
		{"other types ignored", []osvSeverity{{"Ubuntu", "high"}}, types.SeverityUnknown, types.CVSS{}, 0},
		{"none", nil, types.SeverityUnknown, types.CVSS{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, notes := parseCVSS(tt.list)
			if c != tt.wantScore {
				t.Errorf("parseCVSS = %+v, want %+v", c, tt.wantScore)
			}
			if len(notes) != tt.wantNotes {
				t.Errorf("notes = %v, want %d", notes, tt.wantNotes)
			}
			if got := severityFromCVSS(c); got != tt.want {
				t.Errorf("severity = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDatabaseSpecific(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw          string
		wantSeverity types.Severity
		wantCWEs     []string
	}{
		{`{"severity": "MODERATE", "cwe_ids": ["CWE-79", "NVD-CWE-Other"]}`, types.SeverityMedium, []string{"CWE-79"}},
		{`{"severity": "critical"}`, types.SeverityCritical, nil},
		{`{"severity": "LOW"}`, types.SeverityLow, nil},
		{`{"severity": "HIGH"}`, types.SeverityHigh, nil},
		{`{"severity": 7, "cwe_ids": "CWE-79"}`, types.SeverityUnknown, nil},
		{`{"severity": "UNKNOWN"}`, types.SeverityUnknown, nil},
		{`[]`, types.SeverityUnknown, nil},
		{``, types.SeverityUnknown, nil},
	}
	for _, tt := range tests {
		ds := parseDatabaseSpecific(json.RawMessage(tt.raw))
		if got := severityFromName(ds.severity); got != tt.wantSeverity {
			t.Errorf("%s: severity = %v, want %v", tt.raw, got, tt.wantSeverity)
		}
		if !reflect.DeepEqual(ds.cweIDs, tt.wantCWEs) {
			t.Errorf("%s: cwe ids = %v, want %v", tt.raw, ds.cweIDs, tt.wantCWEs)
		}
	}
}

package tasks

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tollgate/tollgate/report"
)

// A result's unscanned files travel as "unscanned" and its re-match flag as
// "skipped", though the report (and report.Findings) names the files
// "skipped".
func TestResultKeepsUnscannedAndSkippedApart(t *testing.T) {
	old := `{"kind":"secrets","secrets":[{"rule":"r","file":"a","line":1,"fingerprint":"f"}],"unscanned":[{"file":"z.jar","reason":"too large"}],"skipped":true}`
	var r Result
	if err := json.Unmarshal([]byte(old), &r); err != nil {
		t.Fatal(err)
	}
	want := Result{Kind: KindSecrets, Findings: report.Findings{
		Secrets:   []report.Secret{{Rule: "r", File: "a", Line: 1, Fingerprint: "f"}},
		Unscanned: []report.Skipped{{File: "z.jar", Reason: "too large"}},
	}, Skipped: true}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("decoded %+v, want %+v", r, want)
	}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, want) {
		t.Fatalf("%s decoded to %+v, want %+v", raw, back, want)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	if string(fields["skipped"]) != "true" || string(fields["unscanned"]) != `[{"file":"z.jar","reason":"too large"}]` {
		t.Fatalf("encoded %s", raw)
	}
}

package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// gitlabSchema compiles one of GitLab's published report schemas from
// testdata/gitlab (see its README), offline.
func gitlabSchema(t *testing.T, file string) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "gitlab", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("schema %s: %v", file, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(file, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(file)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return s
}

func validateGitLab(t *testing.T, schema *jsonschema.Schema, out []byte) map[string]any {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if err := schema.Validate(inst); err != nil {
		t.Fatalf("does not match the schema: %v\n%s", err, out)
	}
	var doc map[string]any
	json.Unmarshal(out, &doc)
	return doc
}

// TestGitLabReportsMatchTheirSchemas: the SAST and dependency scanning
// reports of the fixture, of a hostile report and of an empty one match
// GitLab's published schemas (v15.2.1).
func TestGitLabReportsMatchTheirSchemas(t *testing.T) {
	sast := gitlabSchema(t, "sast-report-format.json")
	deps := gitlabSchema(t, "dependency-scanning-report-format.json")
	long := fixture()
	long.Weaknesses[0].Message = strings.Repeat("é", 300)
	long.Weaknesses[0].Fix = strings.Repeat("x", 8000)
	long.Vulnerabilities[0].File = ""
	long.Misconfigurations[1].PrimaryURL = "javascript:alert(1)"
	empty := Report{Schema: Schema, ScanID: "s", App: "a", Verdict: VerdictPass}
	for name, r := range map[string]Report{"fixture": fixture(), "hostile": hostile(), "long": long, "empty": empty} {
		t.Run(name, func(t *testing.T) {
			out, err := GitLabSAST(r, "test")
			if err != nil {
				t.Fatal(err)
			}
			doc := validateGitLab(t, sast, out)
			if n := len(doc["vulnerabilities"].([]any)); n != len(r.Weaknesses)+len(r.Misconfigurations)+len(r.Secrets) {
				t.Errorf("sast: %d vulnerabilities", n)
			}
			out, err = GitLabDependencyScanning(r, "test")
			if err != nil {
				t.Fatal(err)
			}
			doc = validateGitLab(t, deps, out)
			if n := len(doc["vulnerabilities"].([]any)); n != len(r.Vulnerabilities) {
				t.Errorf("dependency scanning: %d vulnerabilities", n)
			}
		})
	}
}

// TestGitLabReportsAreRejectedWhenWrong: the schema checks can fail (a
// report without identifiers does not pass).
func TestGitLabReportsAreRejectedWhenWrong(t *testing.T) {
	sast := gitlabSchema(t, "sast-report-format.json")
	out, _ := GitLabSAST(fixture(), "test")
	broken := bytes.Replace(out, []byte(`"identifiers"`), []byte(`"identifierz"`), 1)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(broken))
	if err := sast.Validate(inst); err == nil {
		t.Fatal("a vulnerability without identifiers passed the schema")
	}
}

// TestGitLabIDsAreStable: a finding keeps its id across runs, and two
// findings never share one.
func TestGitLabIDsAreStable(t *testing.T) {
	a, _ := GitLabSAST(fixture(), "test")
	b, _ := GitLabSAST(fixture(), "other")
	var da, db struct{ Vulnerabilities []struct{ ID string } }
	json.Unmarshal(a, &da)
	json.Unmarshal(b, &db)
	seen := map[string]bool{}
	for i, v := range da.Vulnerabilities {
		if v.ID != db.Vulnerabilities[i].ID || seen[v.ID] {
			t.Errorf("vulnerability %d: id %s (other run %s), seen %v", i, v.ID, db.Vulnerabilities[i].ID, seen[v.ID])
		}
		seen[v.ID] = true
	}
}

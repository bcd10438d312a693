package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/report"
)

// viaJSON is the Rego value of x's JSON encoding, as OPA reads JSON.
func viaJSON(t testing.TB, x any) ast.Value {
	t.Helper()
	raw, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ast.ValueFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type zeroByMethod struct{ N int }

func (z zeroByMethod) IsZero() bool { return z.N < 0 }

type inner struct {
	A     string `json:"a"`
	Clash string `json:"clash"`
	Deep  string `json:"deep"`
}

type Other struct {
	Clash string `json:"clash"`
	B     int    `json:"b,omitempty"`
}

type outer struct {
	inner
	*Other
	Deep    string            `json:"deep"`
	Untag   string            // named by its Go name
	Skip    string            `json:"-"`
	private string            // left out
	When    time.Time         `json:"when"`
	Never   time.Time         `json:"never,omitzero"`
	Z       zeroByMethod      `json:"z,omitzero"`
	Ptr     *int              `json:"ptr"`
	PtrOmit *int              `json:"ptr_omit,omitempty"`
	Bytes   []byte            `json:"bytes"`
	IntKeys map[int]string    `json:"int_keys"`
	Any     any               `json:"any"`
	U       uint16            `json:"u"`
	Neg     int64             `json:"neg"`
	Arr     [2]bool           `json:"arr"`
	Strs    map[string]string `json:"strs,omitempty"`
}

// TestRegoValueIsItsJSON: a value converted directly is the value its JSON
// decodes to, for the shapes encoding/json gives meaning to.
func TestRegoValueIsItsJSON(t *testing.T) {
	seven := 7
	for i, x := range []any{
		nil, "s", true, 3, -4, 2.5, []string{}, []string(nil), map[string]int{"a": 1}, map[string]int(nil),
		outer{}, outer{inner: inner{A: "a", Clash: "x", Deep: "in"}, Other: &Other{Clash: "y", B: 2}, Deep: "out", Untag: "u", Skip: "s",
			When: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)), Z: zeroByMethod{N: -1}, Ptr: &seven, PtrOmit: &seven,
			Bytes: []byte("hi"), IntKeys: map[int]string{2: "b"}, Any: map[string]any{"k": []any{1.5, "v"}}, U: 9, Neg: -9, Arr: [2]bool{true, false},
			Strs: map[string]string{"k": "v"}},
		&outer{Z: zeroByMethod{N: 1}},
		report.Report{Findings: report.Findings{Secrets: []report.Secret{}}, VulnDB: report.VulnDB{UpdatedAt: time.Now()}},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got, err := regoValue(reflect.ValueOf(x))
			if err != nil {
				t.Fatal(err)
			}
			if want := viaJSON(t, x); got.Compare(want) != 0 {
				t.Fatalf("got %s, want %s", got, want)
			}
		})
	}
}

// benchInput is a deep stage's input of an app with n packages, a tenth of
// them vulnerable, and a few misconfigurations and exceptions.
func benchInput(n int) Input {
	in := Input{Stage: report.StageDeep, Scan: Scan{App: "shop", Commit: "abc", Labels: []string{"ci"}, Tenant: "acme"},
		VulnDB: report.VulnDB{Available: true, Path: "/db", Version: 2, UpdatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		Now:    "2026-11-22T06:00:00Z"}
	for i := range n {
		name := fmt.Sprintf("pkg-%d", i)
		in.Packages = append(in.Packages, report.Package{Name: name, Version: "1.2.3", Ecosystem: "npm", PURL: "pkg:npm/" + name + "@1.2.3",
			Licenses: []string{"MIT"}, Files: []string{"package-lock.json"}})
		if i%10 == 0 {
			in.Vulnerabilities = append(in.Vulnerabilities, report.Vulnerability{ID: "GHSA-" + name, Aliases: []string{"CVE-" + name}, Package: name,
				Version: "1.2.3", Ecosystem: "npm", PURL: "pkg:npm/" + name + "@1.2.3", Severity: "MEDIUM", FixedVersions: []string{"1.2.4"}, Title: "t"})
		}
	}
	for i := range 5 {
		in.Misconfigurations = append(in.Misconfigurations, report.Misconfiguration{ID: fmt.Sprintf("DS-%04d", i), Title: "t", Severity: "HIGH",
			Type: "dockerfile", File: "Dockerfile", StartLine: i, EndLine: i, Message: "m", References: []string{"https://x"}})
	}
	for i := range 3 {
		in.Exceptions = append(in.Exceptions, exceptions.Exception{ID: fmt.Sprint(i), Tenant: "acme", Scope: "app", App: "shop",
			Finding: exceptions.Finding{Vulnerability: "GHSA-pkg-0"}, CreatedAt: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
			ExpiresAt: time.Date(2027, 11, 1, 0, 0, 0, 0, time.UTC)})
	}
	return in
}

// viaRoundTrip is how Evaluate fed OPA before Input.Value: encode, decode
// into maps, and rego.EvalInput (which copies and converts them again).
func viaRoundTrip(ctx context.Context, q rego.PreparedEvalQuery, in Input) (rego.ResultSet, error) {
	raw, err := json.Marshal(in.document())
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	return q.Eval(ctx, rego.EvalInput(doc))
}

func TestValueDecidesAsTheRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := defaultEngine(t)
	in := benchInput(50)
	if got, want := must(t)(in.Value()), viaJSON(t, in.document()); got.Compare(want) != 0 {
		t.Fatalf("input differs:\n got %s\nwant %s", got, want)
	}
	rs, err := viaRoundTrip(ctx, e.queries[report.StageDeep], in)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Evaluate(ctx, report.StageDeep, in)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(rs[0].Expressions[0].Value)
	got, _ := json.Marshal(d)
	var a, c report.Decision
	_ = json.Unmarshal(want, &a)
	_ = json.Unmarshal(got, &c)
	if !reflect.DeepEqual(a.Reasons, c.Reasons) || a.Verdict != c.Verdict || len(c.Reasons) == 0 {
		t.Fatalf("decision %s, want %s", got, want)
	}
}

// defaultEngine is the embedded bundle, compiled.
func defaultEngine(tb testing.TB) *Engine {
	tb.Helper()
	bundle, err := Default()
	if err != nil {
		tb.Fatal(err)
	}
	e, err := NewEngine(context.Background(), bundle)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func must(t testing.TB) func(ast.Value, error) ast.Value {
	return func(v ast.Value, err error) ast.Value {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// BenchmarkPolicyInput compares the deep policy's input as OPA gets it:
// through JSON and maps (before) and converted directly (Input.Value); and
// a whole deep-stage evaluation each way.
func BenchmarkPolicyInput(b *testing.B) {
	ctx := context.Background()
	e := defaultEngine(b)
	q := e.queries[report.StageDeep]
	for _, n := range []int{20, 200, 1500} {
		in := benchInput(n)
		b.Run(fmt.Sprintf("packages=%d/input/roundtrip", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				raw, err := json.Marshal(in.document())
				if err != nil {
					b.Fatal(err)
				}
				var doc any
				if err := json.Unmarshal(raw, &doc); err != nil {
					b.Fatal(err)
				}
				// What rego.EvalInput does with it.
				if err := util.RoundTripFast(&doc); err != nil {
					b.Fatal(err)
				}
				if _, err := ast.InterfaceToValue(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("packages=%d/input/direct", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := in.Value(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("packages=%d/evaluate/roundtrip", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := viaRoundTrip(ctx, q, in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("packages=%d/evaluate/direct", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Evaluate(ctx, report.StageDeep, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

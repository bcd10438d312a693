package policies

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/tollgate/tollgate/health"
	"github.com/tollgate/tollgate/report"
)

// TestRego runs the bundle's own Rego tests (*_test.rego), one Go subtest each.
func TestRego(t *testing.T) {
	b, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	modules := map[string]*ast.Module{}
	for _, f := range []string{"authz/authz.rego", "authz/authz_test.rego"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Modules[f] = string(src)
	}
	for name, src := range b.Modules {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		modules[name] = m
	}
	ctx := context.Background()
	store := inmemStore(b.Data)
	ch, err := tester.NewRunner().SetStore(store).SetModules(modules).SetDefaultRegoVersion(ast.RegoV1).RaiseBuiltinErrors(true).RunTests(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := range ch {
		n++
		t.Run(r.Package+"."+r.Name, func(t *testing.T) {
			if r.Error != nil {
				t.Fatalf("error: %v", r.Error)
			}
			if r.Fail {
				t.Fatalf("failed: %s", r.String())
			}
		})
	}
	if n < 10 {
		t.Fatalf("ran %d rego tests, want the whole suite", n)
	}
}

func TestEngineDecides(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Stage: "deep", Scan: Scan{App: "todo"}, VulnDB: report.VulnDB{Available: true},
		Findings: report.Findings{Vulnerabilities: []report.Vulnerability{{ID: "GHSA-x", Package: "lodash", Version: "4.17.4", Severity: "HIGH"}}}}
	d, err := e.Evaluate(ctx, "deep", in)
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != report.VerdictWarn || len(d.Reasons) != 1 || d.Reasons[0].Policy != "vulnerabilities.high" {
		t.Fatalf("got %+v", d)
	}
	d, err = e.Evaluate(ctx, "fast", Input{Stage: "fast", Scan: Scan{App: "todo"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != report.VerdictPass || d.Reasons == nil {
		t.Fatalf("got %+v", d)
	}
}

func TestWithConfigOverridesDenyList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(ctx, b.WithConfig("license_deny", []string{"MIT"}))
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Scan: Scan{App: "todo"}, VulnDB: report.VulnDB{Available: true},
		Findings: report.Findings{Packages: []report.Package{{Name: "x", Version: "1", Licenses: []string{"MIT"}}}}}
	d, err := e.Evaluate(ctx, "deep", in)
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != report.VerdictBlock {
		t.Fatalf("got %+v", d)
	}
	// The original bundle is untouched.
	e2, _ := NewEngine(ctx, b)
	if d, _ := e2.Evaluate(ctx, "deep", in); d.Verdict != report.VerdictPass {
		t.Fatalf("default deny list changed: %+v", d)
	}
}

// TestBundleDigestNamesWhatDecides: the digest a VSA names changes with a
// module or the data (a config override too), not with a Rego test file,
// and is the same for the same bundle loaded twice.
func TestBundleDigestNamesWhatDecides(t *testing.T) {
	t.Parallel()
	digest := func(b Bundle) string {
		t.Helper()
		d, err := b.Digest()
		if err != nil || len(d) != 64 {
			t.Fatalf("digest %q: %v", d, err)
		}
		return d
	}
	a, _ := Default()
	b, _ := Default()
	base := digest(a)
	if digest(b) != base {
		t.Fatal("the same bundle has two digests")
	}
	if digest(a.WithConfig("license_deny", []string{"MIT"})) == base {
		t.Error("a config override did not change the digest")
	}
	b.Modules["extra_test.rego"] = "package tollgate.extra_test"
	if digest(b) != base {
		t.Error("a test module changed the digest")
	}
	b.Modules["extra.rego"] = "package tollgate.extra"
	if digest(b) == base {
		t.Error("a module did not change the digest")
	}
}

func TestLoadDirErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := LoadDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing dir loaded")
	}
	empty := t.TempDir()
	if _, err := LoadDir(empty); err == nil {
		t.Fatal("dir without rego loaded")
	}
	// A bundle that does not decide the deep stage fails at compile time of the
	// query? No: it compiles, and evaluation reports the missing decision.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "fast.rego"), []byte("package tollgate.fast\n\ndecision := {\"verdict\": \"pass\", \"reasons\": []}\n"), 0o644)
	b, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Evaluate(ctx, "deep", Input{}); err == nil {
		t.Fatal("undecided stage evaluated")
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "x.rego"), []byte("package tollgate.fast\n\ndecision := {"), 0o644)
	b, err = LoadDir(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewEngine(ctx, b); err == nil {
		t.Fatal("syntax error compiled")
	}
}

func TestAuthz(t *testing.T) {
	ctx := context.Background()
	a, err := NewAuthz(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var in AuthzInput
	in.Principal.Name, in.Principal.Tenant, in.Principal.Roles = "ci-a", "a", []string{"ci"}
	in.Action, in.Resource.Tenant = "scan.read", "b"
	d, err := a.Decide(ctx, in)
	if err != nil || d.Allow || d.Reason == "" {
		t.Fatalf("cross-tenant read: %+v %v", d, err)
	}
	in.Resource.Tenant = "a"
	if d, _ := a.Decide(ctx, in); !d.Allow {
		t.Fatalf("own-tenant read denied: %+v", d)
	}
}

// TestAuthzActionsNameEveryActionThePolicyDecides: the policy's actions set
// (what GET /v1/whoami asks about) holds every action its rules name, so a
// rule for a new action cannot be left out of it.
func TestAuthzActionsNameEveryActionThePolicyDecides(t *testing.T) {
	got, err := AuthzActions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("authz", "authz.rego"))
	if err != nil {
		t.Fatal(err)
	}
	var code strings.Builder
	for line := range strings.Lines(string(src)) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			code.WriteString(line)
		}
	}
	named := regexp.MustCompile(`"([a-z]+\.[a-z]+)"`).FindAllStringSubmatch(code.String(), -1)
	if len(named) == 0 {
		t.Fatal("no action found in authz.rego")
	}
	for _, m := range named {
		if !slices.Contains(got, m[1]) {
			t.Errorf("authz.rego names action %q, which its actions set lacks (%v)", m[1], got)
		}
	}
	if len(got) != 17 || !slices.IsSorted(got) {
		t.Errorf("actions %v: want the 17 actions, sorted", got)
	}
}

func TestGuardRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.GuardRules(ctx, "acme", "todo")
	if err != nil {
		t.Fatal(err)
	}
	if r.WithDefaults() != (health.Rules{}).WithDefaults() || r.ErrorWindow != 5*time.Minute {
		t.Fatalf("default rules %+v", r)
	}
	b = b.WithConfig("guard", map[string]any{
		"defaults": map[string]any{"error_rate": 0.03, "error_window": "5m"},
		"apps": map[string]any{"acme/todo": map[string]any{
			"error_window": "20s", "sample_interval": "1s", "latency_window": "10s", "known_good_after": "2s", "dry_run": true,
			"queries": map[string]any{"requests": "sum(x)"},
		}},
	})
	if e, err = NewEngine(ctx, b); err != nil {
		t.Fatal(err)
	}
	r, err = e.GuardRules(ctx, "acme", "todo")
	if err != nil || r.ErrorWindow != 20*time.Second || r.SampleInterval != time.Second || !r.DryRun || r.Queries.Requests != "sum(x)" || r.ErrorRate != 0.03 {
		t.Fatalf("app rules: %v %+v", err, r)
	}
	if r, err := e.GuardRules(ctx, "other", "todo"); err != nil || r.ErrorWindow != 5*time.Minute || r.DryRun {
		t.Fatalf("other tenant: %v %+v", err, r)
	}
	for name, bad := range map[string]any{
		"bad duration": map[string]any{"error_window": "soon"},
		"bad rate":     map[string]any{"error_rate": 3},
		"wrong type":   map[string]any{"error_rate": "high"},
	} {
		e, err := NewEngine(ctx, b.WithConfig("guard", map[string]any{"apps": map[string]any{"acme/todo": bad}}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.GuardRules(ctx, "acme", "todo"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The TTL's periods come from policy data, per tenant and app, with 30
// days and 7 days of grace by default; a bad duration is an error, not the
// default.
func TestTTLPeriodsFromPolicyData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := e.TTL(ctx, "acme", "todo"); err != nil || p != (TTL{IdleAfter: 30 * 24 * time.Hour, Grace: 7 * 24 * time.Hour}) {
		t.Fatalf("default periods %+v, %v", p, err)
	}
	e, err = NewEngine(ctx, b.WithConfig("ttl", map[string]any{
		"defaults": map[string]any{"idle_after": "720h"},
		"tenants":  map[string]any{"acme": map[string]any{"grace": "1h"}},
		"apps":     map[string]any{"acme/todo": map[string]any{"idle_after": "0s"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := e.TTL(ctx, "acme", "todo"); err != nil || p != (TTL{Grace: time.Hour}) {
		t.Fatalf("app periods %+v, %v", p, err)
	}
	if p, err := e.TTL(ctx, "other", "todo"); err != nil || p != (TTL{IdleAfter: 720 * time.Hour, Grace: DefaultGrace}) {
		t.Fatalf("other tenant's periods %+v, %v", p, err)
	}
	e, err = NewEngine(ctx, b.WithConfig("ttl", map[string]any{"defaults": map[string]any{"grace": "a week"}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.TTL(ctx, "acme", "todo"); err == nil {
		t.Fatal("a bad duration gave no error")
	}
}

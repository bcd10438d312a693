package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/embedded"
	"github.com/tollgate/tollgate/fleet"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/report"
)

// The advisories of the baseline test, both HIGH in testdata/osv: release
// 1 ships body-parser with the first, the next change adds path-to-regexp
// with the second.
const (
	knownHigh = "GHSA-qwcr-r2fm-qrc7" // body-parser@1.20.1
	newHigh   = "GHSA-9wv6-86v2-598j" // path-to-regexp@0.1.7
)

// lockedApp writes examples/clean-static with pkgs (name → version, MIT)
// added to its package.json and package-lock.json, and returns its folder.
func lockedApp(t *testing.T, pkgs map[string]string) string {
	t.Helper()
	src := filepath.Join("..", "..", "examples", "clean-static")
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	edit := func(name string, change func(map[string]any)) {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		change(doc)
		out, _ := json.MarshalIndent(doc, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, name), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit("package.json", func(doc map[string]any) {
		deps := doc["dependencies"].(map[string]any)
		for name, v := range pkgs {
			deps[name] = v
		}
	})
	edit("package-lock.json", func(doc map[string]any) {
		packages := doc["packages"].(map[string]any)
		root := packages[""].(map[string]any)
		for name, v := range pkgs {
			root["dependencies"].(map[string]any)[name] = v
			packages["node_modules/"+name] = map[string]any{"version": v, "license": "MIT"}
		}
	})
	return dir
}

// TestBaselineEndToEnd is issue 17's gate for CI: release 1 of the shop
// ships a known HIGH vulnerability and becomes known-good; the next change
// adds one new HIGH. The "new only" tenant (strict) blocks on the new one and
// lists the known one as known; the default tenant (plain) warns on both;
// and `tollgate diff` shows exactly the change. Both tenants run the same
// code on one real fleet, with the real vulnerability DB.
func TestBaselineEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	if code, _, stderr := run(t, "db", "import", "--osv", filepath.Join("..", "..", "testdata", "osv"), "--db", db); code != 0 {
		t.Fatalf("db import: %s", stderr)
	}
	const app = "shop"
	fast := map[string]any{"sample_interval": "1s", "error_window": "4s", "latency_window": "4s", "known_good_after": "2s", "dry_run": true}
	policy := policyWith(t, map[string]any{
		"guard":    map[string]any{"apps": map[string]any{"plain/" + app: fast, "strict/" + app: fast}},
		"baseline": map[string]any{"defaults": map[string]any{"block_new_only": false}, "tenants": map[string]any{"strict": map[string]any{"block_new_only": true}}},
	})
	d := &deployer{got: make(chan struct{}, 2)}
	ds := httptest.NewServer(d)
	t.Cleanup(ds.Close)
	st, err := embedded.Start(context.Background(), embedded.Config{
		Worker: fleet.Worker{DBDir: db}, EvidenceDir: filepath.Join(dir, "evidence"), Version: "test",
		Orchestrator: fleet.Orchestrator{PolicyDir: policy,
			DefaultTarget: &deployers.Target{Type: deployers.TypeWebhook, URL: ds.URL + "/deploy", Secret: deploySecret}},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	var tokens []api.Token
	for _, tenant := range []string{"plain", "strict"} {
		for _, role := range []string{api.RoleCI, api.RoleHealth, api.RoleOncall} {
			name := tenant + "-" + role
			tokens = append(tokens, api.Token{Name: name, SHA256: api.HashToken(name), Tenant: tenant, Roles: []string{role}})
		}
	}
	hs := serveAPI(t, api.Config{RatePerSecond: 1000, Burst: 1000, Tokens: tokens},
		api.Deps{Temporal: st.Client(), Inputs: st.Inputs(), Evidence: st.Evidence(),
			Releases: fleet.NewReleaseStore(st.Evidence()), Guards: &control.Guards{Temporal: st.Client()}})

	v1 := lockedApp(t, map[string]string{"body-parser": "1.20.1"})
	v2 := lockedApp(t, map[string]string{"body-parser": "1.20.1", "path-to-regexp": "0.1.7"})
	submit := func(t *testing.T, tenant, path string, wantCode int) report.Report {
		t.Helper()
		out := filepath.Join(t.TempDir(), "report.json")
		code, _, stderr := run(t, "submit", "--server", hs.URL, "--token", tenant+"-ci", "--app", app, "--wait",
			"--format", "json", "--output", out, path)
		if code != wantCode {
			t.Fatalf("submit %s as %s: exit %d, want %d: %s", path, tenant, code, wantCode, stderr)
		}
		var r report.Report
		raw, _ := os.ReadFile(out)
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		tenant string
		// want are the second scan's vulnerability reasons: advisory,
		// verdict, baseline state.
		want     []string
		verdict  report.Verdict
		exitCode int
	}{
		{"plain", []string{newHigh + " warn new", knownHigh + " warn known"}, report.VerdictWarn, 0},
		{"strict", []string{newHigh + " block new", knownHigh + " warn known"}, report.VerdictBlock, 1},
	} {
		t.Run(tc.tenant, func(t *testing.T) {
			t.Parallel()
			// Release 1: one HIGH, no baseline yet, so a warning for both
			// tenants; released, it turns known-good on healthy traffic.
			first := submit(t, tc.tenant, v1, 0)
			if first.Verdict != report.VerdictWarn || first.Baseline != nil || !slices.ContainsFunc(first.Vulnerabilities, func(v report.Vulnerability) bool { return v.ID == knownHigh }) {
				t.Fatalf("release 1's scan: verdict %s, baseline %+v, vulnerabilities %+v", first.Verdict, first.Baseline, first.Vulnerabilities)
			}
			code, stdout, stderr := run(t, "release", "record", "--server", hs.URL, "--token", tc.tenant+"-ci", "--app", app,
				"--artifact", "sha256:"+strings.Repeat("1", 64), "--scan", first.ScanID, "--json")
			if code != 0 {
				t.Fatalf("release record: exit %d: %s", code, stderr)
			}
			var r1 releases.Release
			if err := json.Unmarshal([]byte(stdout), &r1); err != nil {
				t.Fatal(err)
			}
			startPusher(t, hs.URL, tc.tenant+"-health", app).setErrPermille(5)
			status := func() control.GuardStatus { return guardStatus(t, hs.URL, tc.tenant+"-oncall", app) }
			waitGuard(t, st.Client(), tc.tenant, app, "release 1 known-good", 2*time.Minute, status, func(gs control.GuardStatus) bool {
				return gs.Guard.Release.ID == r1.ID && gs.Guard.KnownGood
			})

			// The change: its baseline is release 1's scan, found by
			// itself.
			second := submit(t, tc.tenant, v2, tc.exitCode)
			if second.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s", second.Verdict, tc.verdict)
			}
			if b := second.Baseline; b == nil || b.ScanID != first.ScanID || b.ReleaseID != r1.ID || b.New != 1 || b.Known != 1 {
				t.Errorf("baseline %+v, want scan %s of release %s, 1 new and 1 known", b, first.ScanID, r1.ID)
			}
			var got []string
			for _, r := range second.Reasons {
				if strings.HasPrefix(r.Policy, "vulnerabilities.") {
					id, _, _ := strings.Cut(r.Message, " ")
					got = append(got, fmt.Sprintf("%s %s %s", id, r.Verdict, r.Baseline))
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("vulnerability reasons %q, want %q", got, tc.want)
			}
			for _, v := range second.Vulnerabilities {
				want := map[string]string{knownHigh: report.BaselineKnown, newHigh: report.BaselineNew}[v.ID]
				if v.Baseline != want {
					t.Errorf("%s marked %q, want %q", v.ID, v.Baseline, want)
				}
			}

			// The diff from release 1 to the change: the package and
			// advisory it added, nothing else.
			code, stdout, stderr = run(t, "diff", r1.ID, second.ScanID, "--app", app, "--server", hs.URL, "--token", tc.tenant+"-ci", "--json")
			if code != 0 {
				t.Fatalf("diff: exit %d: %s", code, stderr)
			}
			var diff report.Diff
			if err := json.Unmarshal([]byte(stdout), &diff); err != nil {
				t.Fatal(err)
			}
			if diff.From.ScanID != first.ScanID || diff.From.ReleaseID != r1.ID || diff.To.ScanID != second.ScanID {
				t.Errorf("diff sides %+v → %+v", diff.From, diff.To)
			}
			var added []string
			for _, p := range diff.Packages.Added {
				added = append(added, p.Name+"@"+p.Version)
			}
			if !slices.Equal(added, []string{"path-to-regexp@0.1.7"}) || len(diff.Packages.Removed)+len(diff.Packages.Changed)+len(diff.Licenses) != 0 {
				t.Errorf("package changes %+v, licences %+v", diff.Packages, diff.Licenses)
			}
			if len(diff.Vulnerabilities.New) != 1 || diff.Vulnerabilities.New[0].ID != newHigh || len(diff.Vulnerabilities.Gone) != 0 {
				t.Errorf("vulnerability changes %+v", diff.Vulnerabilities)
			}
			if n := len(diff.Secrets.New) + len(diff.Secrets.Gone) + len(diff.Misconfigurations.New) + len(diff.Misconfigurations.Gone) +
				len(diff.Weaknesses.New) + len(diff.Weaknesses.Gone); n != 0 {
				t.Errorf("%d other findings changed: %+v", n, diff)
			}
			// The table says the same.
			code, stdout, _ = run(t, "diff", first.ScanID, second.ScanID, "--server", hs.URL, "--token", tc.tenant+"-ci")
			if code != 0 || !strings.Contains(stdout, newHigh) || !strings.Contains(stdout, "path-to-regexp") || strings.Contains(stdout, knownHigh) {
				t.Errorf("diff table (exit %d):\n%s", code, stdout)
			}
		})
	}
}

package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/embedded"
	"github.com/tollgate/tollgate/fleet"
	"github.com/tollgate/tollgate/report"
)

// trivyUser is a Go app built on trivy as a library (as tollgate is), with
// the dependency versions trivy's advisories name: docker/docker
// v20.10.7+incompatible (GO-2024-2512, which trivy's OpenVEX says trivy is
// not affected by, and GO-2022-0390, which it does not mention) and
// cloudflare/circl v1.3.2 (GO-2023-1765 and GO-2024-2453, both stated).
const trivyUser = `module example.com/scanner-portal

go 1.22

require (
	github.com/aquasecurity/trivy v0.50.0
	github.com/cloudflare/circl v1.3.2
	github.com/docker/docker v20.10.7+incompatible
)
`

// TestVEXEndToEnd: tenant alpha's security adds trivy's own OpenVEX
// document and Commons BCEL's CycloneDX VEX (both real, in vex/testdata)
// with `tollgate vex add`; a scan of an app that embeds trivy then has the
// three advisories trivy's document covers silenced, listed in the verdict
// with the document and who added it, and the fourth still reported; BCEL's
// document, about a package the app has not, silences nothing. Tenant
// bravo, with no VEX, sees all four. The scan's final status exports as
// OpenVEX with the silenced three not_affected and the fourth affected.
// Bravo then sends trivy's document with one scan (submit --vex): that
// scan has the three silenced; ci alone may not send one.
func TestVEXEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	if code, _, stderr := run(t, "db", "import", "--osv", filepath.Join("..", "..", "vex", "testdata", "osv"), "--db", db); code != 0 {
		t.Fatalf("db import: %s", stderr)
	}
	st, err := embedded.Start(context.Background(), embedded.Config{Worker: fleet.Worker{DBDir: db}, EvidenceDir: filepath.Join(dir, "evidence"), Version: "test",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	token := func(name, tenant, role string) api.Token {
		return api.Token{Name: name, SHA256: api.HashToken(name), Tenant: tenant, Roles: []string{role}}
	}
	hs := serveAPI(t, api.Config{Tokens: []api.Token{token("alpha-ci", tenantA, api.RoleCI), token("alpha-security", tenantA, api.RoleSecurity),
		token("bravo-ci", tenantB, api.RoleCI), {Name: "bravo-cisec", SHA256: api.HashToken("bravo-cisec"), Tenant: tenantB, Roles: []string{api.RoleCI, api.RoleSecurity}}}},
		api.Deps{Temporal: st.Client(), Inputs: st.Inputs(), Evidence: st.Evidence(), VEX: fleet.NewVEXStore(st.Evidence())})

	app := filepath.Join(t.TempDir(), "portal")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "go.mod"), []byte(trivyUser), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(app, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// ci may not add VEX; security may, and is recorded as who did.
	doc := filepath.Join("..", "..", "vex", "testdata", "openvex", "trivy.openvex.json")
	if code, _, stderr := run(t, "vex", "add", doc, "--server", hs.URL, "--token", "alpha-ci"); code != ExitBadInput || !strings.Contains(stderr, "403") {
		t.Errorf("vex add as ci: exit %d: %s", code, stderr)
	}
	var trivyDoc struct {
		ID      string `json:"id"`
		AddedBy string `json:"added_by"`
	}
	code, stdout, stderr := run(t, "vex", "add", doc, "--server", hs.URL, "--token", "alpha-security", "--json")
	if code != 0 || json.Unmarshal([]byte(stdout), &trivyDoc) != nil || trivyDoc.AddedBy != "alpha-security" {
		t.Fatalf("vex add: exit %d: %s %s", code, stdout, stderr)
	}
	bcel := filepath.Join("..", "..", "vex", "testdata", "cyclonedx", "commons-bcel.VEX.cyclonedx.xml")
	if code, _, stderr := run(t, "vex", "add", bcel, "--server", hs.URL, "--token", "alpha-security"); code != 0 {
		t.Fatalf("vex add %s: exit %d: %s", bcel, code, stderr)
	}
	if code, stdout, _ := run(t, "vex", "list", "--server", hs.URL, "--token", "alpha-ci"); code != 0 || strings.Count(stdout, "alpha-security") != 2 {
		t.Errorf("vex list (exit %d):\n%s", code, stdout)
	}
	if code, stdout, _ := run(t, "vex", "list", "--server", hs.URL, "--token", "bravo-ci", "--json"); code != 0 || strings.Contains(stdout, trivyDoc.ID) {
		t.Errorf("bravo's vex list (exit %d) shows alpha's:\n%s", code, stdout)
	}

	covered := []string{"GO-2023-1765", "GO-2024-2453", "GO-2024-2512"}
	all := []string{"GO-2022-0390", "GO-2023-1765", "GO-2024-2453", "GO-2024-2512"}
	scan := func(tenant string, extra ...string) (report.Report, []byte) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "report.json")
		openvex := filepath.Join(t.TempDir(), "status.openvex.json")
		tok := tenant + "-ci"
		if len(extra) > 0 {
			tok = tenant + "-cisec"
		}
		args := append([]string{"submit", "--server", hs.URL, "--token", tok, "--app", "portal", "--wait",
			"--format", "json", "--output", out, "--report", "openvex=" + openvex}, extra...)
		code, _, stderr := run(t, append(args, app)...)
		if code != 0 {
			t.Fatalf("submit as %s: exit %d: %s", tok, code, stderr)
		}
		var r report.Report
		raw, _ := os.ReadFile(out)
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, v := range r.Vulnerabilities {
			found = append(found, v.ID)
		}
		slices.Sort(found)
		if !slices.Equal(found, all) {
			t.Fatalf("%s's scan found %v, want %v (the findings stay; VEX changes the verdict)", tenant, found, all)
		}
		ovx, _ := os.ReadFile(openvex)
		return r, ovx
	}
	reasons := func(r report.Report) []string {
		var ids []string
		for _, reason := range r.Reasons {
			if strings.HasPrefix(reason.Policy, "vulnerabilities.") {
				id, _, _ := strings.Cut(reason.Message, " ")
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		return ids
	}

	alpha, exported := scan("alpha")
	if got := reasons(alpha); !slices.Equal(got, []string{"GO-2022-0390"}) {
		t.Errorf("alpha's vulnerability reasons %v: want only GO-2022-0390, which no statement covers", got)
	}
	var silenced []string
	for _, v := range alpha.VEX {
		silenced = append(silenced, v.Vulnerability)
		if v.Record != trivyDoc.ID || v.AddedBy != "alpha-security" || v.Status != "not_affected" || v.Justification == "" {
			t.Errorf("applied VEX %+v: want trivy's document, added by alpha-security, not_affected with its justification", v)
		}
	}
	slices.Sort(silenced)
	if !slices.Equal(silenced, covered) {
		t.Errorf("alpha's verdict applied VEX to %v, want %v", silenced, covered)
	}
	var status struct {
		Statements []struct {
			Vulnerability struct {
				Name string `json:"name"`
			} `json:"vulnerability"`
			Status string `json:"status"`
		} `json:"statements"`
	}
	if err := json.Unmarshal(exported, &status); err != nil {
		t.Fatalf("the OpenVEX export: %v\n%s", err, exported)
	}
	states := map[string]string{}
	for _, s := range status.Statements {
		states[s.Vulnerability.Name] = s.Status
	}
	want := map[string]string{"GO-2022-0390": "affected", "GO-2023-1765": "not_affected", "GO-2024-2453": "not_affected", "GO-2024-2512": "not_affected"}
	for id, s := range want {
		if states[id] != s {
			t.Errorf("exported %s as %q, want %q (all: %v)", id, states[id], s, states)
		}
	}

	bravo, _ := scan("bravo")
	if got := reasons(bravo); !slices.Equal(got, all) || len(bravo.VEX) != 0 {
		t.Errorf("bravo (no VEX): reasons %v, applied VEX %+v; want every advisory and none applied", got, bravo.VEX)
	}

	// A document uploaded with one scan (submit --vex) applies to that scan
	// alone, and needs the right to add VEX: ci alone is refused.
	if code, _, stderr := run(t, "submit", "--server", hs.URL, "--token", "bravo-ci", "--app", "portal", "--vex", doc, app); code != ExitBadInput || !strings.Contains(stderr, "403") {
		t.Errorf("submit --vex as ci: exit %d: %s", code, stderr)
	}
	own, _ := scan("bravo", "--vex", doc)
	silenced = nil
	for _, v := range own.VEX {
		silenced = append(silenced, v.Vulnerability)
		if v.AddedBy != "bravo-cisec" {
			t.Errorf("applied VEX %+v: want it added by bravo-cisec", v)
		}
	}
	slices.Sort(silenced)
	if got := reasons(own); !slices.Equal(got, []string{"GO-2022-0390"}) || !slices.Equal(silenced, covered) {
		t.Errorf("bravo's scan with its own VEX: reasons %v, silenced %v; want only GO-2022-0390 and %v", got, silenced, covered)
	}
	if own.ScanID == bravo.ScanID {
		t.Error("the same archive with a VEX document was deduplicated to the scan without it")
	}
	if code, stdout, _ := run(t, "vex", "list", "--server", hs.URL, "--token", "bravo-ci", "--json"); code != 0 || strings.Contains(stdout, "bravo-cisec") {
		t.Errorf("a scan's own VEX shows as the tenant's (exit %d):\n%s", code, stdout)
	}
}

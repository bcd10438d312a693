package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/console"
	"github.com/tollgate/tollgate/embedded"
	"github.com/tollgate/tollgate/fleet"
)

// browser is a cookie-keeping client of the console, as a user's browser.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{Jar: jar}}
}

// get answers the page's status and body.
func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// post submits a form of the page at from (its csrf field included), as
// the browser does, and answers the status and body where it lands.
func (b *browser) post(from, action string, form url.Values) (int, string) {
	b.t.Helper()
	_, page := b.get(from)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("%s has no csrf field:\n%s", from, page)
	}
	form.Set("csrf", m[1])
	req, _ := http.NewRequest(http.MethodPost, b.base+action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browser) signin(token string) {
	b.t.Helper()
	if code, body := b.post("/console/signin", "/console/signin", url.Values{"token": {token}}); code != http.StatusOK || !strings.Contains(body, `id="whoami"`) {
		b.t.Fatalf("sign-in: %d\n%s", code, body)
	}
}

func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

// TestConsoleOverTheRealAPI drives the console as `tollgate dev` mounts it,
// over the real API and an embedded stack (Temporal, NATS, workers, signed
// evidence): the apps list, a scan's page with its evidence verified, the
// review queue, and a reviewer's decision going through the API.
func TestConsoleOverTheRealAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "signing.pem")
	if _, err := attest.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	orch := fleet.Orchestrator{SigningKey: key}
	st, err := embedded.Start(context.Background(), embedded.Config{Orchestrator: orch, EvidenceDir: filepath.Join(dir, "evidence"), Version: "test", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	srv, err := fleet.NewAPI(fleet.Config{Version: "test", Orchestrator: orch, API: fleet.API{Full: true, Tokens: []api.Token{
		{Name: "sam", SHA256: api.HashToken("tok-sam"), Tenant: "acme", Person: "sam@example.com",
			Roles: []string{api.RoleCI, api.RoleSRE, api.RoleOncall, api.RoleAdmin}},
		{Name: "rita", SHA256: api.HashToken("tok-rita"), Tenant: "acme", Person: "rita@example.com", Roles: []string{api.RoleReviewer}},
	}}}, fleet.Clients{Temporal: st.Client(), JetStream: st.JetStream(), Evidence: st.Evidence(), Inputs: st.Inputs()},
		fleet.Observability{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	h, err := withConsole(t.Context(), console.Config{AllowTokenSignin: true, Logger: logger}, srv.Handler())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)

	src := filepath.Join(dir, "shop")
	if err := os.MkdirAll(filepath.Join(src, "src", "auth"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "src", "auth", "login.js"), []byte("export function login(u, p) { return u === p }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	submit := func(args ...string) api.ScanStatus {
		t.Helper()
		code, stdout, stderr := run(t, append([]string{"submit", src, "--server", hs.URL, "--token", "tok-sam", "--app", "shop", "-f", "json"}, args...)...)
		if code != 0 && code != 1 { // 1: a warn or block verdict
			t.Fatalf("submit %v: exit %d: %s", args, code, stderr)
		}
		var out api.ScanStatus
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("submit %v: %v\n%s", args, err, stdout)
		}
		return out
	}
	scanID := submit("--wait").ScanID
	submitted := submit("--label", "ai-generated")
	pending := submitted.ScanID
	if scanID == "" || pending == "" {
		t.Fatalf("no scan ids: %q %+v", scanID, submitted)
	}
	// The review queue lists the scan once it waits for a review.
	if st, ok := awaitReview(t, hs.URL, submitted, "tok-sam"); !ok {
		t.Fatalf("the ai-generated change never waited for a review: %+v", st)
	}
	if code, out, stderr := run(t, "release", "record", "--server", hs.URL, "--token", "tok-sam", "--app", "shop",
		"--artifact", "sha256:"+strings.Repeat("a", 64), "--scan", scanID, "--id", "r1"); code != 0 {
		t.Fatalf("release record: %d %s %s", code, out, stderr)
	}

	sam := newBrowser(t, hs.URL)
	sam.signin("tok-sam")
	code, page := sam.get("/console/apps")
	if code != http.StatusOK {
		t.Fatalf("apps: %d\n%s", code, page)
	}
	mustContain(t, "apps", page, `id="apps"`, `class="app" data-app="shop"`, `sam <span class="tenant">(acme)</span>`)
	_, page = sam.get("/console/apps/shop")
	mustContain(t, "app page", page, `data-release="r1"`, `id="guard-state"`, `id="health-chart"`, `id="rollback-form"`, `id="freeze-form"`)
	_, page = sam.get("/console/scans")
	mustContain(t, "scans", page, `data-scan="`+scanID+`"`, `data-scan="`+pending+`"`)
	_, page = sam.get("/console/scans/" + scanID)
	mustContain(t, "scan page", page, `id="verdict"`, `id="verify-result" data-ok="true"`, `data-kind="secrets"`, `data-format="spdx"`)
	_, page = sam.get("/console/review")
	mustContain(t, "review queue", page, `class="review" data-scan="`+pending+`"`, "src/auth/login.js")
	// sam submitted it: the buttons are there, disabled, and say why.
	_, page = sam.get("/console/scans/" + pending)
	mustContain(t, "pending scan for its submitter", page, `id="review-form"`, `id="review-disabled-why"`)

	rita := newBrowser(t, hs.URL)
	rita.signin("tok-rita")
	if code, page := rita.get("/console/pools"); code != http.StatusForbidden || !strings.Contains(page, `id="error"`) {
		t.Errorf("pools for a reviewer: %d, want the API's 403 with #error\n%s", code, page)
	}
	if _, page := rita.get("/console/apps/shop"); !strings.Contains(page, `id="releases"`) || strings.Contains(page, `id="rollback-form"`) {
		t.Errorf("a reviewer's app page: want the releases and no rollback form\n%s", page)
	}
	_, page = rita.get("/console/scans/" + pending)
	if strings.Contains(page, `id="review-disabled-why"`) {
		t.Fatalf("the reviewer's buttons are disabled:\n%s", page)
	}
	if code, page := rita.post("/console/scans/"+pending, "/console/scans/"+pending+"/review",
		url.Values{"decision": {"approve"}, "reason": {"looked at the login change"}}); code != http.StatusOK {
		t.Fatalf("approve: %d\n%s", code, page)
	}
	// The approved scan finishes: wait for it through the API.
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/v1/scans/"+pending+"?wait=60s", nil)
	req.Header.Set("Authorization", "Bearer tok-sam")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var status struct{ Status string }
	json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	if status.Status != "completed" {
		t.Fatalf("the approved scan is %q, want completed", status.Status)
	}
	_, page = sam.get("/console/review")
	if strings.Contains(page, `data-scan="`+pending+`"`) {
		t.Errorf("the approved scan is still in the review queue:\n%s", page)
	}
}

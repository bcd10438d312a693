package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/embedded"
	"github.com/tollgate/tollgate/fleet"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/workers/scanners"
)

// apiEnv is the API over a real embedded stack: real Temporal, NATS, workers
// and scanners, and the same DB as the scan tests.
type apiEnv struct {
	stack *embedded.Stack
	db    string
	dir   string
	// metrics serves the /metrics of the last server made, apart from the API.
	metrics *httptest.Server
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	if code, _, stderr := run(t, "db", "import", "--osv", filepath.Join("..", "..", "testdata", "osv"), "--db", db); code != 0 {
		t.Fatalf("db import: %s", stderr)
	}
	st, err := embedded.Start(context.Background(), embedded.Config{Worker: fleet.Worker{DBDir: db}, EvidenceDir: filepath.Join(dir, "evidence"), Version: "test",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &apiEnv{stack: st, db: db, dir: dir}
}

func (e *apiEnv) server(t *testing.T, cfg api.Config) *httptest.Server {
	t.Helper()
	if cfg.Tokens == nil {
		cfg.Tokens = []api.Token{
			{Name: "ci-a", SHA256: api.HashToken("token-a"), Tenant: "a", Roles: []string{api.RoleCI}},
			{Name: "ci-b", SHA256: api.HashToken("token-b"), Tenant: "b", Roles: []string{api.RoleCI}},
			{Name: "sre-a", SHA256: api.HashToken("token-sre"), Tenant: "a", Roles: []string{api.RoleSRE}},
		}
	}
	cfg.Full = true
	redactor, err := scanners.NewSecrets()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(cfg, api.Deps{Temporal: e.stack.Client(), Inputs: e.stack.Inputs(), Evidence: e.stack.Evidence(), Redactor: redactor})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	e.metrics = httptest.NewServer(srv.MetricsHandler())
	t.Cleanup(e.metrics.Close)
	return hs
}

// serveAPI serves the API with deps (the workers' gitleaks rules as its
// redactor when deps has none) until the test ends.
func serveAPI(t *testing.T, cfg api.Config, deps api.Deps) *httptest.Server {
	t.Helper()
	if deps.Redactor == nil {
		redactor, err := scanners.NewSecrets()
		if err != nil {
			t.Fatal(err)
		}
		deps.Redactor = redactor
	}
	srv, err := api.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs
}

func findingsSets(r report.Report) []string {
	var out []string
	// A secret by its place: its fingerprint is keyed per fleet and per
	// tenant, so a local scan and the API's tenant name one secret apart.
	for _, s := range r.Secrets {
		out = append(out, fmt.Sprintf("secret %s %s:%d", s.Rule, s.File, s.Line))
	}
	for _, v := range r.Vulnerabilities {
		out = append(out, "vuln "+v.ID+" "+v.Package+"@"+v.Version+" "+v.Severity)
	}
	for _, p := range r.Packages {
		out = append(out, "pkg "+p.Name+"@"+p.Version+" "+strings.Join(p.Licenses, ","))
	}
	for _, w := range r.Weaknesses {
		out = append(out, fmt.Sprintf("weakness %s %s:%d %s", w.Rule, w.File, w.Line, w.Fingerprint))
	}
	slices.Sort(out)
	return out
}

// TestSubmitMatchesScan: `tollgate submit --wait` through the API returns
// the same verdict, exit code and findings as `tollgate scan --full`.
func TestSubmitMatchesScan(t *testing.T) {
	apps := []string{"node-todo", "py-notes", "clean-static", "code-weak"}
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	if !testing.Short() {
		if code, _, stderr := run(t, "db", "import", "--osv", filepath.Join("..", "..", "testdata", "osv"), "--db", db); code != 0 {
			t.Fatalf("db import: %s", stderr)
		}
	}
	// The scans first: each starts and stops its own embedded stack.
	scanned := map[string]int{}
	for _, app := range apps {
		if testing.Short() {
			break
		}
		code, _, stderr := run(t, "scan", "-q", "--full", "--db", db, "--evidence", filepath.Join(dir, "evidence-scan"), "--format", "json",
			"--output", filepath.Join(dir, app+"-scan.json"), filepath.Join("..", "..", "examples", app))
		if code > ExitBlocked {
			t.Fatalf("scan %s: exit %d: %s", app, code, stderr)
		}
		scanned[app] = code
	}
	e := newAPIEnv(t)
	hs := e.server(t, api.Config{})
	for _, app := range apps {
		t.Run(app, func(t *testing.T) {
			src := filepath.Join("..", "..", "examples", app)
			viaAPI := filepath.Join(dir, app+"-api.json")
			code, _, stderr := run(t, "submit", "--server", hs.URL, "--token", "token-a", "--app", app, "--wait", "--format", "json", "--output", viaAPI, src)
			if code != scanned[app] {
				t.Fatalf("submit exit %d, scan exit %d\nsubmit: %s", code, scanned[app], stderr)
			}
			var a, b report.Report
			for path, r := range map[string]*report.Report{viaAPI: &a, filepath.Join(dir, app+"-scan.json"): &b} {
				raw, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(raw, r); err != nil {
					t.Fatal(err)
				}
			}
			if a.Verdict != b.Verdict || a.Stage != b.Stage || !slices.Equal(findingsSets(a), findingsSets(b)) {
				t.Fatalf("submit and scan differ:\nsubmit %s/%s %v\nscan   %s/%s %v", a.Verdict, a.Stage, findingsSets(a), b.Verdict, b.Stage, findingsSets(b))
			}
		})
	}
}

func post(t *testing.T, url, token string, meta string, archiveBytes []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if meta != "" {
		w, _ := mw.CreateFormField("metadata")
		io.WriteString(w, meta)
	}
	if archiveBytes != nil {
		w, _ := mw.CreateFormFile("archive", "src.tgz")
		w.Write(archiveBytes)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/scans", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func get(t *testing.T, url, token string) (*http.Response, []byte) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

func packed(t *testing.T, app string) []byte {
	var buf bytes.Buffer
	if err := archive.Pack(context.Background(), filepath.Join("..", "..", "examples", app), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func wantProblem(t *testing.T, resp *http.Response, body []byte, status int, kind string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	var p api.Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Status != status || !strings.HasSuffix(p.Type, "/"+kind) || p.Title == "" {
		t.Fatalf("problem %+v (%v), want type .../%s", p, err, kind)
	}
}

// TestAPIRefusals: every refusal is problem+json with the right status.
func TestAPIRefusals(t *testing.T) {
	e := newAPIEnv(t)
	hs := e.server(t, api.Config{MaxArchiveBytes: 1 << 20})
	meta := `{"app":"clean-static"}`
	src := packed(t, "clean-static")

	t.Run("unauthenticated", func(t *testing.T) {
		resp, body := post(t, hs.URL, "", meta, src, nil)
		wantProblem(t, resp, body, http.StatusUnauthorized, "unauthenticated")
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Error("no WWW-Authenticate header")
		}
		resp, body = get(t, hs.URL+"/v1/scans/00000000-0000-0000-0000-000000000000", "wrong-token")
		wantProblem(t, resp, body, http.StatusUnauthorized, "unauthenticated")
	})
	t.Run("role", func(t *testing.T) {
		resp, body := post(t, hs.URL, "token-sre", meta, src, nil)
		wantProblem(t, resp, body, http.StatusForbidden, "forbidden")
	})
	t.Run("other tenant's scan is 404", func(t *testing.T) {
		resp, body := post(t, hs.URL, "token-a", meta, src, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("submit: %d %s", resp.StatusCode, body)
		}
		var st api.ScanStatus
		json.Unmarshal(body, &st)
		resp, body = get(t, hs.URL+st.StatusURL, "token-b")
		wantProblem(t, resp, body, http.StatusNotFound, "not-found")
		resp, body = get(t, hs.URL+st.ReportURL, "token-b")
		wantProblem(t, resp, body, http.StatusNotFound, "not-found")
		resp, body = get(t, hs.URL+st.StatusURL+"?wait=30s", "token-a")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("own scan: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("hostile archive", func(t *testing.T) {
		var buf bytes.Buffer
		writeTarGzTo(t, &buf, []entry{{name: "../../evil", body: "x"}})
		resp, body := post(t, hs.URL, "token-a", meta, buf.Bytes(), nil)
		wantProblem(t, resp, body, http.StatusBadRequest, "archive-rejected")
		// The problem names the entry, not where the server spooled it.
		if !strings.Contains(string(body), "../../evil") || strings.Contains(string(body), "tollgate-upload") {
			t.Errorf("rejection %s: want the entry named and no server path", body)
		}
	})
	t.Run("too large", func(t *testing.T) {
		resp, body := post(t, hs.URL, "token-a", meta, bytes.Repeat([]byte("x"), 2<<20), nil)
		wantProblem(t, resp, body, http.StatusRequestEntityTooLarge, "too-large")
	})
	t.Run("bad metadata", func(t *testing.T) {
		for _, m := range []string{`{"app":"../x"}`, `{"app":"ok","extra":1}`, `not json`, ``} {
			resp, body := post(t, hs.URL, "token-a", m, src, nil)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("metadata %q: %d %s", m, resp.StatusCode, body)
			}
		}
		resp, body := post(t, hs.URL, "token-a", meta, nil, nil)
		wantProblem(t, resp, body, http.StatusBadRequest, "bad-request")
	})
	t.Run("not multipart", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/scans", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer token-a")
		resp, body := do(t, req)
		wantProblem(t, resp, body, http.StatusBadRequest, "bad-request")
	})
	t.Run("unknown scan", func(t *testing.T) {
		resp, body := get(t, hs.URL+"/v1/scans/not-a-uuid", "token-a")
		wantProblem(t, resp, body, http.StatusNotFound, "not-found")
	})
	t.Run("metrics are not on the API listener", func(t *testing.T) {
		// They name tenants and have no authentication.
		resp, body := get(t, hs.URL+"/metrics", "")
		wantProblem(t, resp, body, http.StatusNotFound, "not-found")
		resp, body = get(t, e.metrics.URL+"/metrics", "")
		for _, want := range []string{`tollgate_api_requests_total{code="401",route="POST /v1/scans"}`, `tollgate_scans_submitted_total{tenant="a"}`, "go_goroutines"} {
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
				t.Fatalf("/metrics has no %s (status %d)", want, resp.StatusCode)
			}
		}
	})
	t.Run("openapi", func(t *testing.T) {
		resp, body := get(t, hs.URL+"/v1/openapi.json", "")
		var doc map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &doc) != nil || doc["openapi"] != "3.1.0" {
			t.Fatalf("openapi: %d", resp.StatusCode)
		}
	})
}

func TestAPIRateLimit(t *testing.T) {
	e := newAPIEnv(t)
	hs := e.server(t, api.Config{RatePerSecond: 0.001, Burst: 2})
	var last *http.Response
	var body []byte
	for range 3 {
		last, body = get(t, hs.URL+"/v1/scans/00000000-0000-0000-0000-000000000000", "token-a")
	}
	wantProblem(t, last, body, http.StatusTooManyRequests, "rate-limited")
	if last.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// Another principal has its own budget.
	if resp, _ := get(t, hs.URL+"/v1/scans/00000000-0000-0000-0000-000000000000", "token-b"); resp.StatusCode == http.StatusTooManyRequests {
		t.Fatal("rate limit shared across principals")
	}
}

func TestAPIDeduplicates(t *testing.T) {
	e := newAPIEnv(t)
	hs := e.server(t, api.Config{})
	src := packed(t, "clean-static")
	ids := map[string]bool{}
	for _, h := range []map[string]string{nil, nil, {"Idempotency-Key": "build-42"}, {"Idempotency-Key": "build-42"}} {
		resp, body := post(t, hs.URL, "token-a", `{"app":"clean-static","commit":"0123abc"}`, src, h)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var st api.ScanStatus
		json.Unmarshal(body, &st)
		ids[st.ScanID] = true
	}
	if len(ids) != 2 {
		t.Fatalf("got %d distinct scans, want 2 (one per dedupe rule)", len(ids))
	}
	// The same archive from another tenant is another scan.
	resp, body := post(t, hs.URL, "token-b", `{"app":"clean-static","commit":"0123abc"}`, src, nil)
	var st api.ScanStatus
	json.Unmarshal(body, &st)
	if resp.StatusCode != http.StatusAccepted || ids[st.ScanID] {
		t.Fatalf("tenant b got %d %s", resp.StatusCode, st.ScanID)
	}
}

// TestAPIListsOwnTenantsScans: GET /v1/scans lists a tenant's scans with
// their verdicts, filters by app and verdict, and hides other tenants'.
func TestAPIListsOwnTenantsScans(t *testing.T) {
	e := newAPIEnv(t)
	hs := e.server(t, api.Config{})
	for _, c := range []struct{ token, app string }{{"token-a", "clean-static"}, {"token-a", "node-todo"}, {"token-b", "py-notes"}} {
		resp, body := post(t, hs.URL, c.token, `{"app":"`+c.app+`"}`, packed(t, c.app), nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var st api.ScanStatus
		json.Unmarshal(body, &st)
		for st.Status != "completed" {
			_, b := get(t, hs.URL+st.StatusURL+"?wait=30s", c.token)
			json.Unmarshal(b, &st)
			if st.Status == "failed" {
				t.Fatalf("scan failed: %+v", st)
			}
		}
	}
	list := func(token, query string) []api.ScanSummary {
		resp, body := get(t, hs.URL+"/v1/scans"+query, token)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list %s: %d %s", query, resp.StatusCode, body)
		}
		var l api.ScanList
		json.Unmarshal(body, &l)
		return l.Scans
	}
	// Visibility is updated shortly after a workflow closes: wait for it.
	deadline := time.Now().Add(20 * time.Second)
	for got := list("token-a", "?verdict=block"); len(got) != 1 || len(list("token-b", "?verdict=warn")) != 1; got = list("token-a", "?verdict=block") {
		if time.Now().After(deadline) {
			t.Fatalf("the verdicts never reached the listing: %+v", list("token-a", ""))
		}
		select {
		case <-time.After(100 * time.Millisecond):
		}
	}
	if got := list("token-a", ""); len(got) != 2 {
		t.Fatalf("tenant a sees %d scans, want 2: %+v", len(got), got)
	}
	if got := list("token-b", ""); len(got) != 1 || got[0].App != "py-notes" || got[0].Verdict != "warn" {
		t.Fatalf("tenant b sees %+v", got)
	}
	if got := list("token-a", "?verdict=block"); len(got) != 1 || got[0].App != "node-todo" {
		t.Fatalf("verdict filter: %+v", got)
	}
	if got := list("token-a", "?app=clean-static&since=2020-01-01T00:00:00Z"); len(got) != 1 || got[0].Status != "completed" {
		t.Fatalf("app filter: %+v", got)
	}
	if resp, body := get(t, hs.URL+"/v1/scans?since=yesterday", "token-a"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad since: %d %s", resp.StatusCode, body)
	}
}

// TestAPIRedactsProvenance: a secret in a submitted prompt never reaches the
// evidence store; the redacted record is part of the scan's evidence.
func TestAPIRedactsProvenance(t *testing.T) {
	e := newAPIEnv(t)
	hs := e.server(t, api.Config{})
	secret := "ghp_" + strings.Repeat("aB3dE5gH7j", 3) + "K9mN0p"
	// gitleaks reports the encoded ones by their decoded value, which is
	// not in the prompt: only their span takes them out.
	assign := `GITHUB_TOKEN="` + secret + `"`
	b64 := base64.StdEncoding.EncodeToString([]byte(assign))
	hexed := hex.EncodeToString([]byte(assign))
	pct := ""
	for _, c := range []byte(assign) {
		pct += fmt.Sprintf("%%%02X", c)
	}
	nested := base64.StdEncoding.EncodeToString([]byte(hexed))
	meta := `{"app":"clean-static","provenance":{"model":"gpt-x","temperature":0.2,"user":"dev@example.com",` +
		`"prompt":"build me a static site; deploy with token ` + secret + ` please\nconfig: ` + b64 + `\nenv: ` + hexed +
		`\nurl: ` + pct + `\nnested: ` + nested + `","prompt_template":"build {{thing}}"}}`
	resp, body := post(t, hs.URL, "token-a", meta, packed(t, "clean-static"), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var st api.ScanStatus
	json.Unmarshal(body, &st)
	for st.Status != "completed" {
		_, b := get(t, hs.URL+st.StatusURL+"?wait=30s", "token-a")
		json.Unmarshal(b, &st)
		if st.Status == "failed" {
			t.Fatalf("scan failed: %+v", st)
		}
	}
	_, raw := get(t, hs.URL+st.ReportURL, "token-a")
	var r report.Report
	json.Unmarshal(raw, &r)
	var key string
	for _, ev := range r.Evidence {
		if ev.Name == "provenance.json" {
			key = ev.Key
		}
	}
	if key == "" {
		t.Fatalf("no provenance.json in the report's evidence: %+v", r.Evidence)
	}
	data, _, err := e.stack.Evidence().Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), secret) || !strings.Contains(string(data), "[REDACTED:github-pat]") {
		t.Fatalf("provenance not redacted:\n%s", data)
	}
	for name, enc := range map[string]string{"base64": b64, "hex": hexed, "percent": pct, "hex in base64": nested} {
		if strings.Contains(string(data), enc) {
			t.Errorf("provenance keeps the %s-encoded secret:\n%s", name, data)
		}
	}
	// Nothing else the stack stored holds the secret either.
	filepath.WalkDir(filepath.Join(e.dir, "evidence"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(path); strings.Contains(string(b), secret) {
				t.Errorf("%s holds the secret", path)
			}
		}
		return nil
	})
}

package console

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI answers the API routes the console calls, for a few tokens, and
// records what it was asked.
type fakeAPI struct {
	mu     sync.Mutex
	tokens map[string]whoami
	posts  []string // "POST path body"
	bearer []string
	mux    *http.ServeMux
}

func problemJSON(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":"about:blank","title":%q,"status":%d,"detail":%q}`, http.StatusText(status), status, detail)
}

func who(name, tenant, person string, can ...string) whoami {
	var w whoami
	w.Principal.Name, w.Principal.Tenant, w.Principal.Person = name, tenant, person
	w.Can = map[string]bool{}
	for _, a := range can {
		w.Can[a] = true
	}
	return w
}

func newFakeAPI() *fakeAPI {
	f := &fakeAPI{tokens: map[string]whoami{
		"tok-oncall":   who("oncall-bot", "acme", "", "app.read", "rollback.create", "guard.freeze", "scan.read", "scan.list"),
		"tok-ci":       who("ci-bot", "acme", "", "app.read", "scan.create", "scan.read", "scan.list"),
		"tok-reviewer": who("rita", "acme", "rita@example.com", "scan.read", "scan.list", "review.decide"),
		"tok-submit":   who("sam", "acme", "sam@example.com", "scan.read", "scan.list", "review.decide"),
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(f.principal(r))
	})
	mux.HandleFunc("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"apps":[{"app":"shop","release":{"id":"r2","artifact":"shop:2","scan_id":"s2","verdict":"pass","recorded_at":"2026-12-06T06:00:00Z"},"known_good":"r1","state":"breached","last_scan":{"scan_id":"s2","verdict":"warn","at":"2026-12-06T05:00:00Z"}},
			{"app":"old","release":null,"known_good":"","state":"archived","since":"2026-11-06T05:00:00Z","last_scan":null}]}`)
	})
	mux.HandleFunc("GET /v1/apps/{app}/releases", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"app":"shop","releases":[{"id":"r1","artifact":"shop:1","scan_id":"s1","verdict":"pass","recorded_at":"2026-12-05T06:00:00Z","known_good":{"at":"2026-12-05T07:00:00Z"}},{"id":"r2","artifact":"shop:2","scan_id":"s2","verdict":"pass","recorded_at":"2026-12-06T06:00:00Z"}]}`)
	})
	mux.HandleFunc("GET /v1/apps/{app}/guard", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("app") != "shop" {
			problemJSON(w, http.StatusNotFound, "app has no guard: record a release first")
			return
		}
		io.WriteString(w, `{"guard":{"release":{"id":"r2"},"rules":{"error_rate":0.05},"breaches":2,
			"samples":[{"at":"2026-12-06T06:01:00Z","requests":100,"errors":1},{"at":"2026-12-06T06:02:00Z","requests":100,"errors":30}],
			"current":[{"signal":"error_rate","value":0.3,"threshold":0.05,"window":60000000000,"outcome":"breach","reason":"over"}],
			"decisions":[{"at":"2026-12-06T06:02:00Z","action":"rollback","reason":"error rate over threshold","measurements":[{"signal":"error_rate","value":0.3,"threshold":0.05,"window":60000000000}]}]},
			"rollback":{"rollback_id":"rb1","phase":"deploying","target":{"release":{"id":"r1","scan_id":"s1"},"known_good":true}},"rollback_running":true}`)
	})
	for _, action := range []string{"rollback", "freeze", "unfreeze"} {
		mux.HandleFunc("POST /v1/apps/{app}/"+action, func(w http.ResponseWriter, r *http.Request) {
			if !f.principal(r).Can["rollback.create"] {
				problemJSON(w, http.StatusForbidden, "ci-bot may not "+action+" in tenant acme")
				return
			}
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"rollback_id":"rb1"}`)
		})
	}
	mux.HandleFunc("GET /v1/scans", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("review") != "pending" || r.URL.Query().Get("order") != "oldest" {
			problemJSON(w, http.StatusBadRequest, "the queue asks for review=pending&order=oldest")
			return
		}
		io.WriteString(w, `{"scans":[{"scan_id":"s9","app":"shop","status":"running","verdict":"review","started_at":"2026-12-06T05:00:00Z"}]}`)
	})
	mux.HandleFunc("GET /v1/scans/done", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"scan_id":"done","app":"shop","status":"completed","stage":"deep","verdict":"pass"}`)
	})
	mux.HandleFunc("GET /v1/scans/done/report", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"verdict":"pass","reasons":[],"secrets":[{"rule":"aws-key","file":"a.js","line":3,"fingerprint":"tgfp1:x"}]}`)
	})
	mux.HandleFunc("GET /v1/scans/done/verify", func(w http.ResponseWriter, r *http.Request) {
		problemJSON(w, http.StatusNotImplemented, "this server has no key to verify attestations with")
	})
	mux.HandleFunc("GET /v1/scans/{id}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"scan_id":"`+r.PathValue("id")+`","app":"shop","status":"running","stage":"deep","verdict":"review","waiting":"review",
			"review":{"reasons":[{"policy":"ai","message":"AI-generated change touches auth","verdict":"review"}],"submitter":"sam","submitter_person":"sam@example.com","outcome":""}}`)
	})
	mux.HandleFunc("POST /v1/scans/{id}/review", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{}`)
	})
	f.mux = mux
	return f
}

func (f *fakeAPI) principal(r *http.Request) whoami {
	return f.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	_, ok := f.tokens[tok]
	f.bearer = append(f.bearer, tok)
	if r.Method == http.MethodPost {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		f.posts = append(f.posts, "POST "+r.URL.Path+" "+string(b))
	}
	f.mu.Unlock()
	if !ok {
		problemJSON(w, http.StatusUnauthorized, "invalid or missing bearer token")
		return
	}
	f.mux.ServeHTTP(w, r)
}

func (f *fakeAPI) postCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.posts)
}

type testBundle struct {
	api     *fakeAPI
	console *Console
}

func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	b := &testBundle{api: newFakeAPI()}
	c, err := New(t.Context(), cfg, b.api)
	if err != nil {
		t.Fatal(err)
	}
	b.console = c
	return b
}

// client is one browser: its cookies and address.
type client struct {
	t       *testing.T
	h       http.Handler
	remote  string
	cookies map[string]*http.Cookie
}

func (b *testBundle) browser(t *testing.T) *client {
	return &client{t: t, h: b.console, remote: "127.0.0.1:50000", cookies: map[string]*http.Cookie{}}
}

func (c *client) do(method, target string, form url.Values) *httptest.ResponseRecorder {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	r.RemoteAddr = c.remote
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, ck := range c.cookies {
		r.AddCookie(ck)
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	for _, ck := range w.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	return w
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func formCSRF(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in:\n%s", body)
	}
	return m[1]
}

// signIn signs the browser in with a static token and answers the session's CSRF token.
func (c *client) signIn(token string) string {
	c.t.Helper()
	page := c.do("GET", "/console/signin", nil)
	w := c.do("POST", "/console/signin", url.Values{"csrf": {formCSRF(c.t, page.Body.String())}, "token": {token}})
	if w.Code != http.StatusSeeOther {
		c.t.Fatalf("sign in: %d %s", w.Code, w.Body)
	}
	apps := c.do("GET", "/console/apps", nil)
	if apps.Code != http.StatusOK {
		c.t.Fatalf("apps after sign-in: %d %s", apps.Code, apps.Body)
	}
	return formCSRF(c.t, apps.Body.String())
}

func tokenConfig() Config { return Config{AllowTokenSignin: true} }

func TestEveryResponseCarriesTheStrictHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, tokenConfig())
	br := b.browser(t)
	for _, path := range []string{"/console/signin", "/console/static/console.css", "/console/static/vendor/htmx.min.js", "/console/apps", "/console/nowhere"} {
		w := br.do("GET", path, nil)
		h := w.Header()
		if got := h.Get("Content-Security-Policy"); got != contentSecurityPolicy {
			t.Errorf("%s: CSP %q", path, got)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
	if !strings.Contains(contentSecurityPolicy, "script-src 'self';") || strings.Contains(contentSecurityPolicy, "unsafe") {
		t.Errorf("CSP is not strict: %s", contentSecurityPolicy)
	}
}

func TestPagesHaveNoInlineScriptOrStyle(t *testing.T) {
	t.Parallel()
	b := setup(t, tokenConfig())
	br := b.browser(t)
	br.signIn("tok-oncall")
	inline := regexp.MustCompile(`(?i)\sstyle=|<style|\son[a-z]+=|javascript:`)
	scripts := regexp.MustCompile(`(?is)<script[^>]*>.*?</script>`)
	external := regexp.MustCompile(`^<script src="/console/static/[^"]+"( defer)?></script>$`)
	for _, path := range []string{"/console/signin", "/console/apps", "/console/apps/shop", "/console/scans/s9", "/console/nowhere"} {
		body := br.do("GET", path, nil).Body.String()
		if m := inline.FindString(body); m != "" {
			t.Errorf("%s has an inline style or handler %q", path, m)
		}
		for _, tag := range scripts.FindAllString(body, -1) {
			if !external.MatchString(tag) {
				t.Errorf("%s has a script that is not the console's own file: %s", path, tag)
			}
		}
	}
}

func TestTokenSigninSessionCookieFlags(t *testing.T) {
	t.Parallel()
	b := setup(t, tokenConfig())
	for _, tc := range []struct {
		remote string
		secure bool
	}{{"127.0.0.1:5000", false}, {"[::1]:5000", false}, {"203.0.113.7:5000", true}} {
		br := b.browser(t)
		br.remote = tc.remote
		br.signIn("tok-oncall")
		ck := br.cookies[sessionCookie]
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure != tc.secure || ck.Path != "/console/" {
			t.Errorf("from %s: session cookie %+v, want HttpOnly, SameSite=Lax, Secure=%v", tc.remote, ck, tc.secure)
		}
		if len(ck.Value) < 43 || strings.Contains(ck.Value, "tok-oncall") {
			t.Errorf("session id %q: want 256 random bits, never the token", ck.Value)
		}
	}
}

func TestTokenTheAPIRefusesIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, tokenConfig())
	br := b.browser(t)
	page := br.do("GET", "/console/signin", nil)
	w := br.do("POST", "/console/signin", url.Values{"csrf": {formCSRF(t, page.Body.String())}, "token": {"tok-stolen"}})
	if w.Code != http.StatusUnauthorized || br.cookies[sessionCookie] != nil {
		t.Fatalf("refused token: %d, cookie %v", w.Code, br.cookies[sessionCookie])
	}
	if b.console.sessions.len() != 0 {
		t.Error("a session was kept for a refused token")
	}
}

func TestTokenSigninOffUnlessAllowed(t *testing.T) {
	t.Parallel()
	if _, err := New(t.Context(), Config{}, newFakeAPI()); err == nil {
		t.Fatal("a console nobody can sign in to was built")
	}
}

func TestPostWithoutTheSessionCSRFIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, tokenConfig())
	br := b.browser(t)
	br.signIn("tok-oncall")
	for name, form := range map[string]url.Values{
		"missing": {"reason": {"x"}},
		"wrong":   {"reason": {"x"}, "csrf": {"AAAA"}},
	} {
		w := br.do("POST", "/console/apps/shop/rollback", form)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `id="error"`) {
			t.Errorf("%s csrf: %d", name, w.Code)
		}
	}
	if n := b.api.postCount(); n != 0 {
		t.Errorf("the API got %d posts without a valid CSRF token", n)
	}
}

func TestCrossOriginPostIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, tokenConfig())
	br := b.browser(t)
	csrf := br.signIn("tok-oncall")
	r := httptest.NewRequest("POST", "/console/apps/shop/rollback", strings.NewReader(url.Values{"csrf": {csrf}, "reason": {"x"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.AddCookie(br.cookies[sessionCookie])
	w := httptest.NewRecorder()
	b.console.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || b.api.postCount() != 0 {
		t.Fatalf("cross-site post: %d, API posts %d", w.Code, b.api.postCount())
	}
}

func TestRollbackGoesThroughTheAPIWithTheSessionBearer(t *testing.T) {
	t.Parallel()
	b := setup(t, tokenConfig())
	br := b.browser(t)
	csrf := br.signIn("tok-oncall")
	w := br.do("POST", "/console/apps/shop/rollback", url.Values{"csrf": {csrf}, "to": {""}, "reason": {"5xx after deploy"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("rollback: %d %s", w.Code, w.Body)
	}
	if got := b.api.posts; len(got) != 1 || got[0] != `POST /v1/apps/shop/rollback {"reason":"5xx after deploy"}` {
		t.Errorf("API posts %q", got)
	}
	page := br.do("GET", "/console/apps/shop", nil).Body.String()
	for _, want := range []string{`id="rollback-outcome" data-status="running"`, `hx-trigger="every 2s"`, `id="rollback-evidence"`, `href="/console/scans/s1"`,
		`class="release known-good" data-release="r1"`, `id="health-chart"`, `class="dot breach"`, `id="guard-state"`, "rolling_back"} {
		if !strings.Contains(page, want) {
			t.Errorf("app page lacks %q", want)
		}
	}
}

func TestAppWithoutAGuardIsUnguarded(t *testing.T) {
	t.Parallel()
	b := setup(t, tokenConfig())
	br := b.browser(t)
	br.signIn("tok-oncall")
	w := br.do("GET", "/console/apps/new", nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="guard-state" class="badge state-unguarded"`) || strings.Contains(w.Body.String(), `id="rollback-outcome"`) {
		t.Fatalf("app without a guard: %d\n%s", w.Code, w.Body)
	}
}

func TestAPIRefusalRendersWithItsStatus(t *testing.T) {
	t.Parallel()
	b := setup(t, tokenConfig())
	br := b.browser(t)
	csrf := br.signIn("tok-ci")
	w := br.do("POST", "/console/apps/shop/rollback", url.Values{"csrf": {csrf}, "reason": {"let me"}})
	if w.Code != http.StatusForbidden {
		t.Fatalf("ci rollback: %d, want the API's 403", w.Code)
	}
	if !regexp.MustCompile(`id="error"[^>]*>ci-bot may not rollback in tenant acme<`).MatchString(w.Body.String()) {
		t.Errorf("#error does not hold the problem detail:\n%s", w.Body)
	}
}

func TestActionsShownOnlyToRolesThatMay(t *testing.T) {
	t.Parallel()
	b := setup(t, tokenConfig())
	for token, want := range map[string]bool{"tok-oncall": true, "tok-ci": false} {
		br := b.browser(t)
		br.signIn(token)
		page := br.do("GET", "/console/apps/shop", nil).Body.String()
		for _, id := range []string{`id="rollback-form"`, `id="freeze-form"`} {
			if strings.Contains(page, id) != want {
				t.Errorf("%s: %s shown = %v, want %v", token, id, !want, want)
			}
		}
	}
}

func TestReviewButtonsDisabledForTheSubmitter(t *testing.T) {
	t.Parallel()
	b := setup(t, tokenConfig())
	for token, why := range map[string]string{"tok-reviewer": "", "tok-submit": "You submitted this scan", "tok-ci": "may not decide reviews"} {
		br := b.browser(t)
		br.signIn(token)
		page := br.do("GET", "/console/scans/s9", nil).Body.String()
		disabled := strings.Contains(page, `id="review-approve" type="submit" name="decision" value="approve" disabled`)
		if disabled != (why != "") || !strings.Contains(page, why) {
			t.Errorf("%s: approve disabled = %v, want %v (%q)", token, disabled, why != "", why)
		}
		if why != "" && !strings.Contains(page, `id="review-disabled-why"`) {
			t.Errorf("%s: no #review-disabled-why", token)
		}
	}
}

func TestSignoutDeletesTheSession(t *testing.T) {
	t.Parallel()
	b := setup(t, tokenConfig())
	br := b.browser(t)
	csrf := br.signIn("tok-oncall")
	id := br.cookies[sessionCookie].Value
	w := br.do("POST", "/console/signout", url.Values{"csrf": {csrf}})
	if w.Code != http.StatusSeeOther || br.cookies[sessionCookie] != nil {
		t.Fatalf("sign out: %d, cookie %v", w.Code, br.cookies[sessionCookie])
	}
	if _, ok := b.console.sessions.get(id); ok {
		t.Fatal("the session outlived sign-out")
	}
	br.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: id}
	if w := br.do("GET", "/console/apps", nil); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/signin" {
		t.Errorf("old cookie after sign-out: %d %s", w.Code, w.Header().Get("Location"))
	}
}

func TestSessionsAreBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	s := newSessions(2, func() time.Time { return now })
	first := s.add("a", now.Add(time.Minute), whoami{})
	s.add("b", now.Add(time.Hour), whoami{})
	s.add("c", now.Add(time.Hour), whoami{})
	if s.len() != 2 {
		t.Fatalf("%d sessions, want at most 2", s.len())
	}
	if _, ok := s.get(first.id); ok {
		t.Error("the session closest to expiry was not the one dropped")
	}
}

func TestVendoredHTMXMatchesChecksum(t *testing.T) {
	t.Parallel()
	sum, err := os.ReadFile("static/vendor/htmx.min.js.sha256")
	if err != nil {
		t.Fatal(err)
	}
	js, err := assets.ReadFile("static/vendor/htmx.min.js")
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := strings.Cut(string(sum), " ")
	if got := sha256.Sum256(js); hex.EncodeToString(got[:]) != want {
		t.Fatalf("static/vendor/htmx.min.js is not what scripts/vendor-js.sh installed (sha256 %x, want %s)", got, want)
	}
}

// signedInPage signs a new browser in with token and answers path's page,
// which must be a 200 holding every want.
func signedInPage(t *testing.T, token, path string, wants ...string) string {
	t.Helper()
	br := setup(t, tokenConfig()).browser(t)
	br.signIn(token)
	w := br.do("GET", path, nil)
	page := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("%s: %d\n%s", path, w.Code, page)
	}
	for _, want := range wants {
		if !strings.Contains(page, want) {
			t.Errorf("%s lacks %q:\n%s", path, want, page)
		}
	}
	return page
}

func TestReviewQueueShowsEachScansReview(t *testing.T) {
	t.Parallel()
	signedInPage(t, "tok-reviewer", "/console/review", `class="review" data-scan="s9"`, "AI-generated change touches auth", "ai: 1")
}

func TestUnavailableEvidenceCheckKeepsTheScanPage(t *testing.T) {
	t.Parallel()
	page := signedInPage(t, "tok-reviewer", "/console/scans/done",
		`id="verify-result" data-ok="false"`, "no key to verify attestations", `data-kind="secrets"`, "aws-key in a.js:3")
	if strings.Contains(page, "tgfp1:") {
		t.Error("the scan page shows a secret's fingerprint")
	}
}

func TestAppsListShowsStateAndLastVerdict(t *testing.T) {
	t.Parallel()
	page := signedInPage(t, "tok-oncall", "/console/apps")
	row := regexp.MustCompile(`(?s)<tr class="app" data-app="shop">.*?</tr>`).FindString(page)
	for _, want := range []string{`<td class="state"><span class="badge state-breached">breached</span>`, `<span class="badge verdict-warn">warn</span>`, `<td class="known-good">r1</td>`} {
		if !strings.Contains(row, want) {
			t.Errorf("the shop row lacks %q:\n%s", want, row)
		}
	}
}

// The idle-app TTL's states are in the state filter, and an idle or
// archived app shows since when.
func TestAppsListShowsIdleAndArchivedSince(t *testing.T) {
	t.Parallel()
	page := signedInPage(t, "tok-oncall", "/console/apps", `href="/console/apps?state=idle"`, `href="/console/apps?state=archived"`)
	row := regexp.MustCompile(`(?s)<tr class="app" data-app="old">.*?</tr>`).FindString(page)
	if !regexp.MustCompile(`<span class="badge state-archived">archived</span> <span class="muted since">\d+d ago</span>`).MatchString(row) {
		t.Errorf("the archived row lacks its state and since:\n%s", row)
	}
}

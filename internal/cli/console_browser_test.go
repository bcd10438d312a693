package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/console"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/embedded"
	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/fleet"
	"github.com/tollgate/tollgate/internal/browsertest"
	"github.com/tollgate/tollgate/internal/oidctest"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers/scanners"
	"github.com/tollgate/tollgate/workflows"
)

// The console's world: tenant alpha's apps, and tenant bravo, which has
// nothing and must see nothing of alpha's.
const (
	consoleShop  = "alpha-shop"  // two releases; the second turns unhealthy
	consoleTodo  = "alpha-todo"  // a scan blocked for a planted secret
	consoleLogin = "alpha-login" // an AI-generated change waiting for a review
)

// consoleWorld is the whole fleet in one process behind the API, with the
// console mounted beside it on one loopback listener as `tollgate serve`
// mounts it (withConsole), a test IdP the API trusts and the console signs
// in with, and a real HTTP deployer.
type consoleWorld struct {
	*crossEnv
	idp      *oidctest.IdP
	deployer *deployer
	pusher   *pusher

	blocked api.ScanStatus // alpha-todo's scan, blocked
	waiting api.ScanStatus // alpha-login's scan, waiting for a review; submitted by dana
	r1, r2  releases.Release
	secret  string // the planted token of the blocked scan
}

// The IdP's role values and the tollgate roles the API maps them to.
var consoleRoleMap = map[string][]string{
	"tg-oncall":   {api.RoleOncall},
	"tg-reviewer": {api.RoleReviewer},
	"tg-ci":       {api.RoleCI},
}

func newConsoleWorld(t *testing.T) *consoleWorld {
	t.Helper()
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	d := &deployer{got: make(chan struct{}, 1)}
	ds := httptest.NewServer(d)
	t.Cleanup(ds.Close)
	// Fast rules, and a dry run: the guard records the breach of the
	// second release and leaves the rollback to on-call, in the browser.
	// known_good_after is the time the test has, once the guard watches the
	// second release, to turn its traffic bad before that release counts as
	// known-good: 2s was too short on a loaded CI machine (clone31).
	rules := map[string]any{"alpha/" + consoleShop: map[string]any{
		"sample_interval": "1s", "error_window": "4s", "latency_window": "4s", "known_good_after": "8s", "dry_run": true}}
	dir := t.TempDir()
	key := filepath.Join(dir, "tollgate.key")
	signer, err := attest.GenerateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := attest.NewVerifier(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	st, err := embedded.Start(context.Background(), embedded.Config{
		EvidenceDir: filepath.Join(dir, "evidence"), Version: "test",
		Orchestrator: fleet.Orchestrator{PolicyDir: guardPolicy(t, rules), SigningKey: key,
			DefaultTarget: &deployers.Target{Type: deployers.TypeWebhook, URL: ds.URL + "/deploy", Secret: deploySecret}},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	redactor, err := scanners.NewSecrets()
	if err != nil {
		t.Fatal(err)
	}
	idp := oidctest.Start(t)
	token := func(name, tenant, person string, roles ...string) api.Token {
		return api.Token{Name: name, SHA256: api.HashToken(name), Tenant: tenant, Roles: roles, Person: person}
	}
	// The browser and the pusher share one address: the limits are not
	// under test here.
	srv, err := api.New(api.Config{RatePerSecond: 1000, Burst: 1000, IPRatePerSecond: 1000, IPBurst: 1000,
		Tokens: []api.Token{
			token("alpha-ci", tenantA, "", api.RoleCI),
			token("alpha-dana", tenantA, "dana@example.com", api.RoleCI, api.RoleReviewer),
			token("alpha-oncall", tenantA, "", api.RoleOncall),
			token("alpha-security", tenantA, "", api.RoleSecurity),
			token("alpha-health", tenantA, "", api.RoleHealth),
			token("alpha-sre", tenantA, "", api.RoleSRE),
			token("bravo-all", tenantB, "bea@example.com", api.Roles...),
		},
		OIDC: api.OIDC{Issuer: idp.Issuer(), Audience: idp.ClientID(), RoleMap: consoleRoleMap}},
		api.Deps{Temporal: st.Client(), Inputs: st.Inputs(), Evidence: st.Evidence(), Redactor: redactor,
			Releases: fleet.NewReleaseStore(st.Evidence()), Exceptions: fleet.NewExceptionStore(st.Evidence()),
			Guards: &control.Guards{Temporal: st.Client()}, Pools: tasks.Pools{JS: st.JetStream()}, Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	// The redirect URL names the listener, so it is opened first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	h, err := withConsole(context.Background(), console.Config{Issuer: idp.Issuer(), Audience: idp.ClientID(),
		ClientSecret: idp.ClientSecret(), RedirectURL: base + "/console/auth/callback", AllowTokenSignin: true}, srv.Handler())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(h)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	w := &consoleWorld{crossEnv: &crossEnv{stack: st, api: hs}, idp: idp, deployer: d}
	w.populate(t)
	return w
}

// populate makes alpha's things through the API: the three scans at once
// (the blocked one, the one waiting for dana's reviewer, the clean one of
// the shop), an exception, and the shop's two releases, the first
// known-good, the second breaching its error rate.
func (w *consoleWorld) populate(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "node-todo", "src", "config.js"))
	if err != nil {
		t.Fatal(err)
	}
	if w.secret = regexp.MustCompile(`ghp_[A-Za-z0-9]+`).FindString(string(raw)); w.secret == "" {
		t.Fatal("examples/node-todo has no planted GitHub token")
	}
	var wg sync.WaitGroup
	var clean api.ScanStatus
	wg.Go(func() { w.blocked = w.submitWait(t, "alpha-ci", consoleTodo, "node-todo", nil) })
	wg.Go(func() { clean = w.submitWait(t, "alpha-ci", consoleShop, "clean-static", nil) })
	wg.Go(func() { w.waiting = w.submitForReview(t) })
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if w.blocked.Verdict != report.VerdictBlock || clean.Verdict == report.VerdictBlock {
		t.Fatalf("verdicts: %s's %s, %s's %s", consoleTodo, w.blocked.Verdict, consoleShop, clean.Verdict)
	}
	code, body := w.call(t, http.MethodPost, "/v1/exceptions", "alpha-security", api.ExceptionRequest{
		Scope: exceptions.ScopeApp, App: consoleShop, Finding: exceptions.Finding{Rule: "licenses.denied"},
		Reason: "alpha's accepted risk", ExpiresAt: time.Now().Add(72 * time.Hour).UTC()})
	if code != http.StatusCreated {
		t.Fatalf("alpha's exception: %d %s", code, body)
	}

	w.pusher = startPusher(t, w.api.URL, "alpha-health", consoleShop)
	w.pusher.setErrPermille(5) // 0.5%
	w.r1 = w.release(t, clean.ScanID, "1")
	w.waitGuard(t, "release 1 known-good", func(st control.GuardStatus) bool {
		return st.Guard.Release.ID == w.r1.ID && st.Guard.KnownGood
	})
	w.r2 = w.release(t, clean.ScanID, "2")
	w.waitGuard(t, "release 2 watched", func(st control.GuardStatus) bool { return st.Guard.Release.ID == w.r2.ID })
	w.pusher.setErrPermille(80) // 8%, over the 3% threshold
	w.waitGuard(t, "release 2 breached", func(st control.GuardStatus) bool {
		return slices.ContainsFunc(st.Guard.Decisions, func(d workflows.Decision) bool { return d.Action == workflows.ActionDryRunRollback })
	})
	// The release rolled back to is healthy: once the deployer has the
	// rollback, the traffic recovers.
	go func() {
		<-w.deployer.got
		w.pusher.setErrPermille(5)
	}()
}

// submitForReview submits the AI-generated change to authentication as
// dana and waits until it waits for a review.
func (w *consoleWorld) submitForReview(t *testing.T) api.ScanStatus {
	resp, body := post(t, w.api.URL, "alpha-dana", `{"app":"`+consoleLogin+`","labels":["ai-generated"]}`, packed(t, filepath.Join("..", "testdata", "review-app")), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("submit for review: %d %s", resp.StatusCode, body)
		return api.ScanStatus{}
	}
	var st api.ScanStatus
	json.Unmarshal(body, &st)
	st, ok := awaitReview(t, w.api.URL, st, "alpha-dana")
	if !ok {
		t.Errorf("the scan never waited for a review: %+v", st)
	}
	return st
}

// awaitReview follows the scan st (as submitted) on the API at base until
// it waits for a review. ok is false when it stops running first, or after
// two minutes.
func awaitReview(t *testing.T, base string, st api.ScanStatus, token string) (api.ScanStatus, bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for st.Verdict != report.VerdictReview {
		if st.Status != "running" || time.Now().After(deadline) {
			return st, false
		}
		_, b := get(t, base+st.StatusURL+"?wait=2s", token)
		json.Unmarshal(b, &st)
	}
	return st, true
}

func (w *consoleWorld) release(t *testing.T, scanID, n string) releases.Release {
	t.Helper()
	var rel releases.Release
	code, body := w.call(t, http.MethodPost, "/v1/apps/"+consoleShop+"/releases", "alpha-ci",
		api.ReleaseRequest{Artifact: "sha256:" + strings.Repeat(n, 64), ScanID: scanID})
	if code != http.StatusCreated || json.Unmarshal(body, &rel) != nil {
		t.Fatalf("release %s: %d %s", n, code, body)
	}
	return rel
}

func (w *consoleWorld) guard(t *testing.T) control.GuardStatus {
	t.Helper()
	var st control.GuardStatus
	code, body := w.call(t, http.MethodGet, "/v1/apps/"+consoleShop+"/guard", "alpha-oncall", nil)
	if code != http.StatusOK || json.Unmarshal(body, &st) != nil {
		t.Fatalf("guard: %d %s", code, body)
	}
	return st
}

func (w *consoleWorld) waitGuard(t *testing.T, what string, cond func(control.GuardStatus) bool) control.GuardStatus {
	t.Helper()
	return waitGuard(t, w.stack.Client(), tenantA, consoleShop, what, time.Minute, func() control.GuardStatus { return w.guard(t) }, cond)
}

// signIn signs a window in with a static token.
func (w *consoleWorld) signIn(t *testing.T, win *browsertest.Window, token string) {
	t.Helper()
	if code := win.Open(w.api.URL + "/console/signin"); code != http.StatusOK {
		t.Fatalf("sign-in page: %d", code)
	}
	win.Fill("#signin-token-form input[name=token]", token)
	if code := win.Submit("#signin-token-submit"); code != http.StatusOK {
		t.Fatalf("sign in as %s: %d: %s", token, code, win.Text("#main"))
	}
	if who := win.Text("#whoami"); !strings.Contains(who, token) {
		t.Fatalf("signed in as %s, the page says %q", token, who)
	}
}

// TestConsoleInABrowser is issue 16's acceptance, in headless Chromium
// against the real stack: sign-in through the IdP and with a token; a
// blocked scan's reasons and findings; a review decided by a reviewer and
// refused to its submitter (buttons disabled, a forced POST refused by the
// API); on-call rolling the unhealthy release back from the app page, and
// the outcome and its evidence; a ci principal without the rollback form
// and refused when it posts it anyway; and tenant bravo seeing none of
// alpha's things. Each page is screenshotted at desktop and phone width
// (docs/screenshots with -update-screenshots).
func TestConsoleInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers, the scanners and a browser")
	}
	b := browsertest.Start(t) // first: without a browser, skip before the stack starts
	w := newConsoleWorld(t)
	url := func(path string) string { return w.api.URL + path }
	page := func(t *testing.T, win *browsertest.Window, path string) {
		t.Helper()
		if code := win.Open(url(path)); code != http.StatusOK {
			t.Fatalf("%s: %d: %s", path, code, win.Text("#main"))
		}
	}

	oncall := b.Window(t)
	t.Run("sign in with a token", func(t *testing.T) {
		page(t, oncall, "/console/signin")
		oncall.WaitFor("#signin-oidc")
		oncall.Screenshot("signin")
		w.signIn(t, oncall, "alpha-oncall")
		if !strings.HasSuffix(oncall.Location(), "/console/apps") || !strings.Contains(oncall.Text("#whoami"), tenantA) {
			t.Fatalf("after sign-in: %s, %q", oncall.Location(), oncall.Text("#whoami"))
		}
	})

	// rita is a reviewer of alpha at the IdP.
	reviewer := b.Window(t)
	t.Run("sign in with OIDC", func(t *testing.T) {
		w.idp.QueueUser(oidctest.User{Subject: "rita", Email: "rita@example.com", Tenant: tenantA, Roles: []string{"tg-reviewer"}})
		page(t, reviewer, "/console/signin")
		if code := reviewer.Click("#signin-oidc"); code != http.StatusOK {
			t.Fatalf("OIDC sign-in: %d: %s", code, reviewer.Text("#main"))
		}
		if who := reviewer.Text("#whoami"); !strings.Contains(who, "rita") || !strings.Contains(who, tenantA) {
			t.Fatalf("signed in through the IdP as %q", who)
		}
		// Nothing of the session reaches page scripts.
		if n := reviewer.Count("#signin-oidc"); n != 0 {
			t.Fatal("still on the sign-in page")
		}
	})

	ci := b.Window(t)
	w.signIn(t, ci, "alpha-ci")
	t.Run("a blocked scan shows its reasons and findings", func(t *testing.T) {
		page(t, ci, "/console/scans")
		ci.WaitFor("tr.scan[data-scan='" + w.blocked.ScanID + "']")
		ci.Screenshot("scans")
		page(t, ci, "/console/scans/"+w.blocked.ScanID)
		if v := ci.Text("#verdict"); v != string(report.VerdictBlock) {
			t.Errorf("verdict %q", v)
		}
		reasons := ci.Texts("#reasons li")
		if !slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, "secret") }) {
			t.Errorf("reasons %q name no secret", reasons)
		}
		secrets := ci.Texts("section.findings[data-kind=secrets] .finding")
		if len(secrets) == 0 || !strings.Contains(strings.Join(secrets, "\n"), "config.js") {
			t.Errorf("secret findings %q", secrets)
		}
		if html := ci.Text("body"); strings.Contains(html, w.secret) {
			t.Error("the page shows the secret's value")
		}
		if got := ci.Attrs("a.download", "data-format"); !slices.Contains(got, "sarif") || !slices.Contains(got, "cyclonedx") {
			t.Errorf("downloads %q", got)
		}
		ci.WaitPresent("#verify-result")
		if ok, _ := ci.Attr("#verify-result", "data-ok"); ok != "true" {
			t.Errorf("evidence check data-ok=%q: %s", ok, ci.Text("#verify-result"))
		}
		ci.Screenshot("scan")
	})

	t.Run("a reviewer approves; the submitter cannot", func(t *testing.T) {
		id := w.waiting.ScanID
		dana := b.Window(t)
		w.signIn(t, dana, "alpha-dana")
		page(t, dana, "/console/scans/"+id)
		dana.WaitPresent("#review-form")
		for _, sel := range []string{"#review-approve", "#review-reject"} {
			if _, disabled := dana.Attr(sel, "disabled"); !disabled {
				t.Errorf("%s is enabled for the submitter", sel)
			}
		}
		if why := dana.Text("#review-disabled-why"); !strings.Contains(why, "submit") {
			t.Errorf("#review-disabled-why %q", why)
		}
		csrf, _ := dana.Attr("#review-form input[name=csrf]", "value")
		if code := dana.Post("/console/scans/"+id+"/review", map[string]string{"csrf": csrf, "decision": "approve", "reason": "mine, fine"}); code != http.StatusForbidden {
			t.Fatalf("the submitter's forced approval: %d, want 403", code)
		}
		if msg := dana.Text("#error"); !strings.Contains(msg, "submitter") {
			t.Errorf("refusal says %q", msg)
		}

		page(t, reviewer, "/console/review")
		reviewer.WaitFor("tr.review[data-scan='" + id + "']")
		if touched := reviewer.Text("tr.review[data-scan='" + id + "'] .touched"); !strings.Contains(touched, "login.js") {
			t.Errorf("queue's touched files %q", touched)
		}
		reviewer.Screenshot("review")
		page(t, reviewer, "/console/scans/"+id)
		if _, disabled := reviewer.Attr("#review-approve", "disabled"); disabled {
			t.Fatalf("approve is disabled for the reviewer: %s", reviewer.Text("#review-form"))
		}
		// Until it is decided the scan has no report: the review's reasons
		// name the sensitive files it touches.
		if reasons := reviewer.Texts("#reasons li"); !slices.ContainsFunc(reasons, func(s string) bool { return strings.Contains(s, "login.js") }) {
			t.Errorf("reasons %q name no touched file", reasons)
		}
		reviewer.Fill("#review-form textarea[name=reason]", "token signing checked")
		if code := reviewer.Submit("#review-approve"); code != http.StatusOK {
			t.Fatalf("approve: %d: %s", code, reviewer.Text("#main"))
		}
		// The scan finishes with the approval: wait for it through the API,
		// then the page shows its verdict and no review form.
		var st api.ScanStatus
		for st.Status != "completed" {
			_, body := get(t, w.api.URL+w.waiting.StatusURL+"?wait=30s", "alpha-ci")
			json.Unmarshal(body, &st)
			if st.Status == "failed" {
				t.Fatalf("scan failed: %+v", st)
			}
		}
		page(t, reviewer, "/console/scans/"+id)
		if v := reviewer.Text("#verdict"); v == string(report.VerdictReview) || v == string(report.VerdictBlock) || reviewer.Count("#review-form") != 0 {
			t.Fatalf("after approval: verdict %q, review forms %d", v, reviewer.Count("#review-form"))
		}
	})

	t.Run("on-call rolls the unhealthy release back", func(t *testing.T) {
		page(t, oncall, "/console/apps")
		row := "tr.app[data-app='" + consoleShop + "']"
		oncall.WaitFor(row)
		if state := oncall.Text(row + " td.state"); state != "breached" {
			t.Errorf("%s's state %q, want breached", consoleShop, state)
		}
		oncall.Screenshot("apps")
		page(t, oncall, "/console/apps/"+consoleShop)
		if got := oncall.Attrs("tr.release", "data-release"); len(got) != 2 || !slices.Contains(got, w.r1.ID) || !slices.Contains(got, w.r2.ID) {
			t.Errorf("releases %q", got)
		}
		if good := oncall.Attrs("tr.release.known-good", "data-release"); !slices.Equal(good, []string{w.r1.ID}) {
			t.Errorf("known-good rows %q, want %s", good, w.r1.ID)
		}
		oncall.WaitPresent("#health-chart")
		if n := oncall.Count("#decisions li"); n == 0 {
			t.Error("no decisions")
		}
		oncall.Screenshot("app")
		before := len(w.deployer.requestsFor(consoleShop))
		oncall.Fill("#rollback-form textarea[name=reason]", "error rate over 3% since release 2")
		if code := oncall.Submit("#rollback-submit"); code != http.StatusOK {
			t.Fatalf("roll back: %d: %s", code, oncall.Text("#main"))
		}
		oncall.WaitPresent("#rollback-outcome")
		// The section polls itself while the rollback runs.
		oncall.Wait("#rollback-outcome[data-status=succeeded]", time.Minute)
		if from, _ := oncall.Attr("#rollback-outcome", "data-from"); from != w.r2.ID {
			t.Errorf("rolled back from %q, want %s", from, w.r2.ID)
		}
		if to, _ := oncall.Attr("#rollback-outcome", "data-to"); to != w.r1.ID {
			t.Errorf("rolled back to %q, want %s", to, w.r1.ID)
		}
		if n := oncall.Count("#rollback-evidence a"); n == 0 {
			t.Errorf("no evidence links: %s", oncall.Text("#rollback-outcome"))
		}
		got := w.deployer.requestsFor(consoleShop)
		if len(got) != before+1 || got[len(got)-1].ReleaseID != w.r1.ID || got[len(got)-1].Trigger != "alpha-oncall" {
			t.Fatalf("deployer got %+v", got)
		}
		oncall.Screenshot("app-rollback")
	})

	t.Run("ci sees no rollback and is refused when it posts one", func(t *testing.T) {
		page(t, ci, "/console/scans")
		csrf, ok := ci.Attr("input[name=csrf]", "value")
		if !ok || csrf == "" {
			t.Fatal("no csrf token on the scans page")
		}
		page(t, ci, "/console/apps/"+consoleShop)
		ci.WaitPresent("#releases")
		if n := ci.Count("#rollback-form"); n != 0 {
			t.Fatalf("ci sees %d rollback forms", n)
		}
		before := len(w.deployer.requestsFor(consoleShop))
		if code := ci.Post("/console/apps/"+consoleShop+"/rollback", map[string]string{"csrf": csrf, "to": "", "reason": "ci wants it"}); code != http.StatusForbidden {
			t.Fatalf("ci's forced rollback: %d, want 403", code)
		}
		if ci.Count("#error") != 1 {
			t.Errorf("the refusal shows no #error: %s", ci.Text("#main"))
		}
		if st := w.guard(t); st.RollbackRunning || len(w.deployer.requestsFor(consoleShop)) != before {
			t.Fatalf("ci's post started a rollback: %+v", st.Rollback)
		}
	})

	t.Run("security's exceptions and the pools", func(t *testing.T) {
		sec := b.Window(t)
		w.signIn(t, sec, "alpha-security")
		page(t, sec, "/console/exceptions")
		sec.WaitPresent("#exceptions-expiring")
		if got := sec.Text("#exceptions-expiring"); !strings.Contains(got, "alpha's accepted risk") {
			t.Errorf("expiring exceptions %q", got)
		}
		if sec.Count("#exception-form") != 1 || sec.Count("button.revoke") == 0 {
			t.Errorf("security sees %d exception forms, %d revoke buttons", sec.Count("#exception-form"), sec.Count("button.revoke"))
		}
		sec.Screenshot("exceptions")
		// The pools are SRE's: security's role does not read them.
		sre := b.Window(t)
		w.signIn(t, sre, "alpha-sre")
		page(t, sre, "/console/pools")
		sre.WaitPresent("#pools")
		sre.Screenshot("pools")
	})

	t.Run("bravo sees none of alpha's things", func(t *testing.T) {
		bravo := b.Window(t)
		w.signIn(t, bravo, "bravo-all")
		alpha := []string{w.blocked.ScanID, w.waiting.ScanID, w.r1.ID, w.r2.ID, consoleShop, consoleTodo, consoleLogin, "alpha's accepted risk"}
		for _, list := range []struct{ path, rows string }{
			{"/console/apps", "tr.app"}, {"/console/scans", "tr.scan"}, {"/console/review", "tr.review"},
			{"/console/exceptions", "tr.exception"},
		} {
			page(t, bravo, list.path)
			if n := bravo.Count(list.rows); n != 0 {
				t.Errorf("%s: bravo sees %d rows", list.path, n)
			}
			text := bravo.Text("body")
			for _, s := range alpha {
				if strings.Contains(text, s) {
					t.Errorf("%s shows alpha's %q", list.path, s)
				}
			}
		}
		shows := func(path string) {
			t.Helper()
			text := bravo.Text("body")
			for _, s := range alpha {
				if !strings.Contains(path, s) && strings.Contains(text, s) {
					t.Errorf("%s shows alpha's %q", path, s)
				}
			}
		}
		for _, path := range []string{"/console/scans/" + w.blocked.ScanID, "/console/scans/" + w.waiting.ScanID,
			"/console/scans/" + w.blocked.ScanID + "/report?format=json"} {
			if code := bravo.Open(url(path)); code != http.StatusNotFound && code != http.StatusForbidden {
				t.Errorf("%s: %d, want 404 or 403", path, code)
			}
			shows(path)
		}
		// App names are per tenant: alpha-shop in bravo's namespace is an
		// app bravo never released, refused, or shown with no release,
		// guard or rollback form target.
		path := "/console/apps/" + consoleShop
		switch code := bravo.Open(url(path)); code {
		case http.StatusNotFound, http.StatusForbidden:
		case http.StatusOK:
			n := bravo.Count("tr.release") + bravo.Count("#decisions li")
			for _, state := range bravo.Texts("#guard-state") {
				if state != api.StateUnguarded {
					t.Errorf("%s: bravo sees guard state %q", path, state)
				}
			}
			if n != 0 {
				t.Errorf("%s: bravo sees %d of alpha's releases, guard and decisions", path, n)
			}
		default:
			t.Errorf("%s: %d", path, code)
		}
		shows(path)
	})
}

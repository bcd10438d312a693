package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tollgate/tollgate/activities/deployers"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tollgate/tollgate/activities/healthpull"
	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/embedded"
	"github.com/tollgate/tollgate/fleet"
	"github.com/tollgate/tollgate/internal/golden"
	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/telemetry"
	"github.com/tollgate/tollgate/workers/scanners"
	"github.com/tollgate/tollgate/workflows"
)

var updateHistory = flag.Bool("update-history", false, "save the guard's and the rollback's histories for the workflows' replay tests")

const deploySecret = "e2e-deploy-secret-0123456789abcdef0123456789"

// deployer is a real HTTP deployer: it checks each webhook's HMAC signature
// and keeps the rollbacks it was asked for.
type deployer struct {
	mu       sync.Mutex
	received []deployers.Request
	at       []time.Time
	bad      atomic.Int32
	got      chan struct{}
}

func (d *deployer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := deployers.VerifySignature([]byte(deploySecret), r.Header, body, time.Now(), time.Minute); err != nil {
		d.bad.Add(1)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var req deployers.Request
	if err := json.Unmarshal(body, &req); err != nil {
		d.bad.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	for _, prev := range d.received {
		if prev.RollbackID == req.RollbackID {
			d.mu.Unlock()
			w.WriteHeader(http.StatusConflict) // already applied
			return
		}
	}
	d.received = append(d.received, req)
	d.at = append(d.at, time.Now())
	d.mu.Unlock()
	select {
	case d.got <- struct{}{}:
	default:
	}
	fmt.Fprintln(w, "switched")
}

func (d *deployer) requestsFor(app string) []deployers.Request {
	var out []deployers.Request
	for _, r := range d.requests() {
		if r.App == app {
			out = append(out, r)
		}
	}
	return out
}

func (d *deployer) requests() []deployers.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]deployers.Request(nil), d.received...)
}

// guardPolicy writes the default policy bundle with guard rules for apps.
func guardPolicy(t *testing.T, apps map[string]any) string {
	t.Helper()
	return policyWith(t, map[string]any{"guard": map[string]any{"apps": apps}})
}

// policyWith writes the default policy bundle with config's entries in its
// data's config, and returns its directory.
func policyWith(t *testing.T, config map[string]any) string {
	t.Helper()
	b, err := policies.Default()
	if err != nil {
		t.Fatal(err)
	}
	for key, value := range config {
		b = b.WithConfig(key, value)
	}
	dir := t.TempDir()
	for name, src := range b.Modules {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := json.Marshal(b.Data)
	if err := os.WriteFile(filepath.Join(dir, "data.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// guardEnv is the whole fleet in one process (real Temporal dev server,
// NATS, workers and scanners) with the API, and a real HTTP deployer.
type guardEnv struct {
	stack   *embedded.Stack
	metrics *telemetry.Metrics
	api     *httptest.Server
	// metricsSrv serves the API's /metrics, apart from the API.
	metricsSrv *httptest.Server
	deployer   *deployer
}

func newGuardEnv(t *testing.T, rules map[string]any, health func(*embedded.Config)) *guardEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	d := &deployer{got: make(chan struct{}, 1)}
	ds := httptest.NewServer(d)
	t.Cleanup(ds.Close)
	dir := t.TempDir()
	cfg := embedded.Config{
		EvidenceDir: filepath.Join(dir, "evidence"), Version: "test",
		Orchestrator: fleet.Orchestrator{PolicyDir: guardPolicy(t, rules),
			DefaultTarget: &deployers.Target{Type: deployers.TypeWebhook, URL: ds.URL + "/deploy", Secret: deploySecret}},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if health != nil {
		health(&cfg)
	}
	metrics, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = metrics
	st, err := embedded.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := fleet.ObservePools(metrics.Meter("tollgate/api"), tasks.Pools{JS: st.JetStream()}); err != nil {
		t.Fatal(err)
	}
	redactor, err := scanners.NewSecrets()
	if err != nil {
		t.Fatal(err)
	}
	// The test polls the guard's status: the rate limit is not under test.
	srv, err := api.New(api.Config{RatePerSecond: 1000, Burst: 1000, Tokens: []api.Token{
		{Name: "ci-a", SHA256: api.HashToken("token-ci"), Tenant: "a", Roles: []string{api.RoleCI}},
		{Name: "alice", SHA256: api.HashToken("token-oncall"), Tenant: "a", Roles: []string{api.RoleOncall}},
		{Name: "dana", SHA256: api.HashToken("token-dana"), Tenant: "a", Roles: []string{api.RoleCI, api.RoleReviewer}, Person: "dana@example.com"},
		{Name: "dana-reviewer", SHA256: api.HashToken("token-dana-reviewer"), Tenant: "a", Roles: []string{api.RoleReviewer}, Person: "Dana@Example.com"},
		{Name: "rita", SHA256: api.HashToken("token-reviewer"), Tenant: "a", Roles: []string{api.RoleReviewer}, Person: "rita@example.com"},
		{Name: "ada", SHA256: api.HashToken("token-ada"), Tenant: "a", Roles: []string{api.RoleReviewer}, Person: "ada@example.com"},
		{Name: "review-bot", SHA256: api.HashToken("token-review-bot"), Tenant: "a", Roles: []string{api.RoleReviewer}},
		{Name: "exporter-a", SHA256: api.HashToken("token-health"), Tenant: "a", Roles: []string{api.RoleHealth}},
		{Name: "sam", SHA256: api.HashToken("token-security"), Tenant: "a", Roles: []string{api.RoleSecurity}},
	}}, api.Deps{Temporal: st.Client(), Inputs: st.Inputs(), Evidence: st.Evidence(), Redactor: redactor,
		Releases: fleet.NewReleaseStore(st.Evidence()), Exceptions: fleet.NewExceptionStore(st.Evidence()), Guards: &control.Guards{Temporal: st.Client()}, Metrics: metrics.Gatherer()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	ms := httptest.NewServer(srv.MetricsHandler())
	t.Cleanup(ms.Close)
	return &guardEnv{stack: st, api: hs, metricsSrv: ms, deployer: d, metrics: metrics}
}

// scan submits an example app through the API and returns its scan id.
func (e *guardEnv) scan(t *testing.T, app, example string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	code, _, stderr := run(t, "submit", "--server", e.api.URL, "--token", "token-ci", "--app", app, "--wait", "--format", "json", "--output", out,
		filepath.Join("..", "..", "examples", example))
	if code != 0 {
		t.Fatalf("submit %s: exit %d: %s", example, code, stderr)
	}
	var r report.Report
	raw, _ := os.ReadFile(out)
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r.ScanID
}

func (e *guardEnv) record(t *testing.T, app, scanID, artifact string) releases.Release {
	t.Helper()
	code, stdout, stderr := run(t, "release", "record", "--server", e.api.URL, "--token", "token-ci", "--app", app,
		"--artifact", artifact, "--scan", scanID, "--json")
	if code != 0 {
		t.Fatalf("release record: exit %d: %s", code, stderr)
	}
	var rel releases.Release
	if err := json.Unmarshal([]byte(stdout), &rel); err != nil {
		t.Fatalf("release record printed %q: %v", stdout, err)
	}
	return rel
}

func (e *guardEnv) status(t *testing.T, app string) control.GuardStatus {
	t.Helper()
	return guardStatus(t, e.api.URL, "token-oncall", app)
}

// guardStatus is `tollgate guard status --json` of app, as token.
func guardStatus(t *testing.T, server, token, app string) control.GuardStatus {
	t.Helper()
	code, stdout, stderr := run(t, "guard", "status", "--server", server, "--token", token, "--app", app, "--json")
	if code != 0 {
		t.Fatalf("guard status: exit %d: %s", code, stderr)
	}
	var st control.GuardStatus
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// waitFor checks the guard's status each time the guard's history grows (a
// timer fired, a signal or an activity landed), until cond holds or within
// runs out: it waits on the guard's own events, not on a clock.
func (e *guardEnv) waitFor(t *testing.T, app, what string, within time.Duration, cond func(control.GuardStatus) bool) control.GuardStatus {
	t.Helper()
	return waitGuard(t, e.stack.Client(), "a", app, what, within, func() control.GuardStatus { return e.status(t, app) }, cond)
}

// waitGuard reads the guard of tenant's app with status each time its
// history grows, until cond holds or within runs out.
func waitGuard(t *testing.T, c client.Client, tenant, app, what string, within time.Duration, status func() control.GuardStatus, cond func(control.GuardStatus) bool) control.GuardStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	events := c.GetWorkflowHistory(ctx, workflows.GuardWorkflowID(tenant, app), "", true, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for {
		st := status()
		if cond(st) {
			return st
		}
		// Block until the guard's run has its next event (a long poll on
		// its history), or the wait or the run ends.
		err := errors.New("the guard's run ended")
		if events.HasNext() {
			_, err = events.Next()
		}
		if err != nil {
			raw, _ := json.MarshalIndent(status(), "", "  ")
			t.Fatalf("%s: not within %s (%v); status:\n%s", what, within, err, raw)
		}
	}
}

// pusher sends one health sample every 250ms, with the error share set by
// errPermille, like an app's sidecar would.
type pusher struct {
	errPermille atomic.Int64
	firstBadAt  atomic.Pointer[time.Time]
	stop        context.CancelFunc
	done        chan struct{}
}

func startPusher(t *testing.T, url, token, app string) *pusher {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pusher{stop: cancel, done: make(chan struct{})}
	t.Cleanup(func() { cancel(); <-p.done })
	go func() {
		defer close(p.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			now := time.Now().UTC()
			errs := p.errPermille.Load()
			if errs > 30 && p.firstBadAt.Load() == nil {
				p.firstBadAt.Store(&now)
			}
			body, _ := json.Marshal(api.HealthPush{Samples: []api.HealthSampleIn{{At: now, Requests: 1000, Errors: errs, P95Seconds: 0.05}}})
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/apps/"+app+"/health", strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer "+token)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	return p
}

// traffic is an app's load as the guard sees it: pushed samples or a
// Prometheus target.
type traffic interface {
	setErrPermille(int64)
	firstBad() time.Time
}

func (p *pusher) setErrPermille(v int64) { p.errPermille.Store(v) }
func (p *pusher) firstBad() time.Time    { return *p.firstBadAt.Load() }

// promTraffic serves http_requests_total{app,code} for Prometheus to scrape,
// adding 1000 requests every 250ms with the set share of 500s.
type promTraffic struct {
	errPermille atomic.Int64
	firstBadAt  atomic.Pointer[time.Time]
}

func (p *promTraffic) setErrPermille(v int64) { p.errPermille.Store(v) }
func (p *promTraffic) firstBad() time.Time    { return *p.firstBadAt.Load() }

func startPromTraffic(t *testing.T, app string) (*promTraffic, string) {
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "requests"}, []string{"app", "code"})
	reg.MustRegister(reqs)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	p := &promTraffic{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			errs := p.errPermille.Load()
			if now := time.Now(); errs > 30 && p.firstBadAt.Load() == nil {
				p.firstBadAt.Store(&now)
			}
			reqs.WithLabelValues(app, "200").Add(float64(1000 - errs))
			reqs.WithLabelValues(app, "500").Add(float64(errs))
		}
	}()
	return p, srv.Listener.Addr().String()
}

// The acceptance run, once with pushed samples and once with samples pulled
// from a real Prometheus: two passing releases, healthy traffic, then an
// error rate over the threshold. The deployer gets exactly one rollback, to
// the first release, and the evidence holds the values that caused it.
func TestGuardRollsBackEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	prom, notes := startPromTraffic(t, "notes")
	ctx := context.Background()
	ps, err := stack.StartPrometheus(ctx, stack.PrometheusOptions{DataDir: t.TempDir(), ScrapeTargets: []string{notes}, ScrapeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ps.Stop)
	fast := map[string]any{"sample_interval": "1s", "error_window": "4s", "latency_window": "4s", "known_good_after": "2s"}
	pulled := map[string]any{"queries": map[string]any{
		"requests": `sum(increase(http_requests_total{app="notes"}[3s]))`,
		"errors":   `sum(increase(http_requests_total{app="notes",code=~"5.."}[3s])) or vector(0)`,
	}}
	for k, v := range fast {
		pulled[k] = v
	}
	e := newGuardEnv(t, map[string]any{"a/todo": fast, "a/notes": pulled}, func(cfg *embedded.Config) {
		puller, err := healthpull.NewPuller(ps.URL, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		// One scrape behind: every query of a sample sees the same scrapes,
		// and the sample is still fresh for a 1s interval (under 2 intervals).
		cfg.Orchestrator.Health, cfg.Orchestrator.HealthLag = puller, time.Second
	})

	push := startPusher(t, e.api.URL, "token-health", "todo")
	r1 := e.rollbackFlow(t, "todo", push)
	t.Run("pulled", func(t *testing.T) { e.rollbackFlow(t, "notes", prom) })
	t.Run("refusals", func(t *testing.T) { e.refusals(t, r1) })
	t.Run("on-call", func(t *testing.T) { e.onCall(t, r1) })
}

// rollbackFlow records two passing releases of app, sends healthy then
// breaching traffic, and checks the one rollback it causes: to the first
// release, recorded with the values behind it. How long after the breach
// filled the window it was decided is measured and logged, not asserted:
// speed goes into reports, not into timed assertions.
func (e *guardEnv) rollbackFlow(t *testing.T, app string, load traffic) releases.Release {
	const interval, window = time.Second, 4 * time.Second
	ctx := context.Background()
	s1 := e.scan(t, app, "clean-static")
	s2 := e.scan(t, app, "clean-static")
	load.setErrPermille(5) // 0.5%
	r1 := e.record(t, app, s1, "sha256:"+strings.Repeat("1", 64))
	e.waitFor(t, app, "release 1 known-good", time.Minute, func(st control.GuardStatus) bool {
		return st.Guard.Release.ID == r1.ID && st.Guard.KnownGood
	})
	r2 := e.record(t, app, s2, "sha256:"+strings.Repeat("2", 64))
	if r1.ID == r2.ID {
		t.Fatalf("two releases with one id %s", r1.ID)
	}
	e.waitFor(t, app, "release 2 judged healthy", time.Minute, func(st control.GuardStatus) bool {
		return st.Guard.Release.ID == r2.ID && len(st.Guard.Current) > 0 && st.Guard.Current[0].Outcome == workflows.OutcomeHealthy
	})

	load.setErrPermille(80) // 8%, over the 3% threshold
	deadline := time.After(time.Minute)
	for len(e.deployer.requestsFor(app)) == 0 {
		select {
		case <-e.deployer.got:
		case <-deadline:
			t.Fatalf("no rollback of %s within a minute; status %+v", app, e.status(t, app))
		}
	}
	// The release rolled back to is healthy: the rollback confirms it.
	load.setErrPermille(5)
	st := e.waitFor(t, app, "rollback finished", time.Minute, func(st control.GuardStatus) bool {
		return st.Rollback != nil && st.Rollback.Phase == workflows.PhaseDone
	})
	if st.Rollback.Outcome != workflows.OutcomeRecovered || st.Guard.Release.ID != r1.ID {
		t.Fatalf("rollback %+v, guard on %s; want recovered on %s", st.Rollback, st.Guard.Release.ID, r1.ID)
	}
	got := e.deployer.requestsFor(app)
	if len(got) != 1 || e.deployer.bad.Load() != 0 {
		t.Fatalf("deployer got %d rollbacks of %s (%d refused), want exactly 1: %+v", len(got), app, e.deployer.bad.Load(), got)
	}
	if d := got[0]; d.ReleaseID != r1.ID || d.Artifact != r1.Artifact || d.FromRelease != r2.ID || d.Trigger != workflows.TriggerGuard || d.Tenant != "a" {
		t.Fatalf("deploy request %+v", d)
	}

	// The evidence: the values against the thresholds, the windows, the
	// releases and the trigger.
	raw, _, err := e.stack.Evidence().Get(ctx, st.Rollback.Evidence.Key)
	if err != nil {
		t.Fatal(err)
	}
	var rec workflows.RollbackRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	req := rec.Requests[0]
	if rec.Outcome != workflows.OutcomeRecovered || rec.From != r2.ID || rec.Target.Release.ID != r1.ID || !rec.Target.KnownGood ||
		req.Trigger != workflows.TriggerGuard || len(req.Measurements) != 1 || req.Rules == nil || rec.Deploy.Status != http.StatusOK {
		t.Fatalf("rollback record %s", raw)
	}
	m := req.Measurements[0]
	if m.Signal != workflows.SignalErrorRate || m.Value <= 0.03 || m.Threshold != 0.03 || m.Window != window {
		t.Fatalf("measurement %+v, want error_rate over 0.03 across 4s", m)
	}
	// The first bad sample covers the interval before it, so the breach
	// fills the window at firstBad - interval + window. Pushes and
	// evaluations are real-time: allow one push period of skew.
	full := load.firstBad().Add(window - interval)
	late := req.RequestedAt.Sub(full)
	t.Logf("%s: breach filled the window at %s; rollback decided %s later, deployed %s later (interval %s)",
		app, full.Format(time.StampMilli), late, rec.DeployedAt.Sub(full), interval)
	if *updateHistory && app == "todo" {
		e.saveHistories(t, "a", app)
	}
	if app != "todo" {
		return r1
	}
	// The metrics: the rollback by app and reason, and the time from breach
	// to rollback. (Inconclusive windows are counted too; this run has none.)
	_, body := get(t, e.metricsSrv.URL+"/metrics", "")
	for _, want := range []string{
		`# TYPE tollgate_rollbacks_total counter`,
		`outcome="recovered",reason="error_rate",task_queue="tollgate-orchestrator",trigger="guard",worker_type="none",workflow_type="RollbackWorkflow"} 1`,
		`tollgate_rollback_breach_to_deploy_seconds_count{activity_type="none",app="todo"`,
		// The scan of this test (its two submissions are one scan: same
		// archive, app and commit; "warn": this stack has no DB), and the
		// queues (issue 6's metrics).
		`tollgate_scans_total{otel_scope_name="tollgate/orchestrator",otel_scope_schema_url="",otel_scope_version="",stage="deep",verdict="warn"} 1`,
		`tollgate_stage_duration_seconds_count{otel_scope_name="tollgate/orchestrator",otel_scope_schema_url="",otel_scope_version="",stage="fast"} 1`,
		`tollgate_pool_pending{otel_scope_name="tollgate/api",otel_scope_schema_url="",otel_scope_version="",pool="deep"} 0`,
		`tollgate_pool_oldest_task_age_seconds{otel_scope_name="tollgate/api",otel_scope_schema_url="",otel_scope_version="",pool="fast"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(string(body), "\n") {
			if strings.Contains(l, "tollgate_") {
				t.Log(l)
			}
		}
	}
	return r1
}

// refusals are the bad requests to the apps endpoints, each with its answer.
func (e *guardEnv) refusals(t *testing.T, r1 releases.Release) {
	blocked := func() string {
		out := filepath.Join(t.TempDir(), "r.json")
		code, _, stderr := run(t, "submit", "--server", e.api.URL, "--token", "token-ci", "--app", "todo", "--wait", "--format", "json", "--output", out,
			filepath.Join("..", "..", "examples", "node-todo"))
		if code != ExitBlocked {
			t.Fatalf("submit node-todo: exit %d: %s", code, stderr)
		}
		var r report.Report
		raw, _ := os.ReadFile(out)
		json.Unmarshal(raw, &r)
		return r.ScanID
	}()
	digest := "sha256:" + strings.Repeat("3", 64)
	at := time.Now().UTC().Format(time.RFC3339)
	ahead := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		kind                            string
	}{
		{"no token", "POST", "/v1/apps/todo/releases", "", `{}`, 401, "unauthenticated"},
		{"bad app", "POST", "/v1/apps/Todo!/releases", "token-ci", `{}`, 400, "bad-request"},
		{"unknown field", "POST", "/v1/apps/todo/releases", "token-ci", `{"artifact":"` + digest + `","scan_id":"` + r1.ScanID + `","colour":"red"}`, 400, "bad-request"},
		{"trailing data", "POST", "/v1/apps/todo/releases", "token-ci", `{"artifact":"` + digest + `","scan_id":"` + r1.ScanID + `"} {}`, 400, "bad-request"},
		{"not json", "POST", "/v1/apps/todo/releases", "token-ci", `artifact=x`, 400, "bad-request"},
		{"tag, not digest", "POST", "/v1/apps/todo/releases", "token-ci", `{"artifact":"todo:latest","scan_id":"` + r1.ScanID + `"}`, 400, "bad-request"},
		{"unknown scan", "POST", "/v1/apps/todo/releases", "token-ci", `{"artifact":"` + digest + `","scan_id":"00000000-0000-4000-8000-000000000000"}`, 422, "unknown-scan"},
		{"scan of another app", "POST", "/v1/apps/notes/releases", "token-ci", `{"artifact":"` + digest + `","scan_id":"` + r1.ScanID + `"}`, 400, "bad-request"},
		{"blocked scan", "POST", "/v1/apps/todo/releases", "token-ci", `{"artifact":"` + digest + `","scan_id":"` + blocked + `"}`, 409, "scan-blocked"},
		{"on-call records", "POST", "/v1/apps/todo/releases", "token-oncall", `{"artifact":"` + digest + `","scan_id":"` + r1.ScanID + `"}`, 403, "forbidden"},
		{"no samples", "POST", "/v1/apps/todo/health", "token-health", `{"samples":[]}`, 400, "bad-request"},
		{"more errors than requests", "POST", "/v1/apps/todo/health", "token-health", `{"samples":[{"at":"` + at + `","requests":1,"errors":2}]}`, 400, "bad-request"},
		{"negative latency", "POST", "/v1/apps/todo/health", "token-health", `{"samples":[{"at":"` + at + `","requests":1,"p95_seconds":-1}]}`, 400, "bad-request"},
		{"no time", "POST", "/v1/apps/todo/health", "token-health", `{"samples":[{"requests":1}]}`, 400, "bad-request"},
		{"no guard", "POST", "/v1/apps/ghost/health", "token-health", `{"samples":[{"at":"` + at + `","requests":1}]}`, 404, "no-guard"},
		{"ci pushes health", "POST", "/v1/apps/todo/health", "token-ci", `{"samples":[{"at":"` + at + `","requests":1}]}`, 403, "forbidden"},
		{"health dated ahead", "POST", "/v1/apps/todo/health", "token-health", `{"samples":[{"at":"` + ahead + `","requests":1}]}`, 400, "bad-request"},
		{"ci rolls back", "POST", "/v1/apps/todo/rollback", "token-ci", `{"reason":"x"}`, 403, "forbidden"},
		{"rollback without reason", "POST", "/v1/apps/todo/rollback", "token-oncall", `{"reason":"  "}`, 400, "bad-request"},
		{"freeze without reason", "POST", "/v1/apps/todo/freeze", "token-oncall", `{}`, 400, "bad-request"},
		{"ci freezes", "POST", "/v1/apps/todo/freeze", "token-ci", `{"reason":"x"}`, 403, "forbidden"},
		{"unfreeze unguarded", "POST", "/v1/apps/ghost/unfreeze", "token-oncall", `{}`, 404, "no-guard"},
		{"status unguarded", "GET", "/v1/apps/ghost/guard", "token-oncall", ``, 404, "no-guard"},
		{"huge body", "POST", "/v1/apps/todo/health", "token-health", `{"samples":[` + strings.Repeat(`{"at":"`+at+`","requests":1},`, 10000) + `{}]}`, 413, "too-large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.api.URL+tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, body := do(t, req)
			wantProblem(t, resp, body, tc.status, tc.kind)
		})
	}
}

// onCall freezes, unfreezes and rolls back by hand through the CLI.
func (e *guardEnv) onCall(t *testing.T, r1 releases.Release) {
	oncall := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := run(t, append(args, "--server", e.api.URL, "--token", "token-oncall", "--app", "todo")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		return stdout
	}
	oncall("freeze", "--reason", "irreversible migration")
	st := e.waitFor(t, "todo", "frozen", 30*time.Second, func(st control.GuardStatus) bool { return st.Guard.Frozen })
	if !strings.Contains(st.Guard.FreezeReason, "irreversible migration (by alice)") {
		t.Errorf("freeze reason %q", st.Guard.FreezeReason)
	}
	if out := oncall("guard", "status"); !strings.Contains(out, "FROZEN since") || !strings.Contains(out, "error_rate") {
		t.Errorf("guard status:\n%s", out)
	}
	oncall("unfreeze")
	e.waitFor(t, "todo", "unfrozen", 30*time.Second, func(st control.GuardStatus) bool { return !st.Guard.Frozen })

	// The fast path to a release that does not exist: the rollback starts,
	// fails to pick, deploys nothing, and the guard watches r1 again.
	before := len(e.deployer.requests())
	out := oncall("rollback", "--to", "no-such-release", "--reason", "pager")
	if !strings.Contains(out, "started rollback rollback/a/todo") {
		t.Fatalf("rollback printed %q", out)
	}
	st = e.waitFor(t, "todo", "manual rollback finished", 30*time.Second, func(st control.GuardStatus) bool {
		return st.Rollback != nil && st.Rollback.Phase == workflows.PhaseDone && !st.RollbackRunning
	})
	if st.Rollback.Outcome != workflows.OutcomeFailed || len(e.deployer.requests()) != before {
		t.Fatalf("rollback %+v, deployer got %d more", st.Rollback, len(e.deployer.requests())-before)
	}
	e.waitFor(t, "todo", "watching r1 again", 30*time.Second, func(st control.GuardStatus) bool {
		return !st.Guard.AwaitingRelease && st.Guard.Release.ID == r1.ID
	})
}

// saveHistories stops the app's guard and writes its history and its
// rollback's for the replay tests in package workflows.
func (e *guardEnv) saveHistories(t *testing.T, tenant, app string) {
	t.Helper()
	ctx := context.Background()
	c := e.stack.Client()
	gid := workflows.GuardWorkflowID(tenant, app)
	if err := c.SignalWorkflow(ctx, gid, "", workflows.SignalStop, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.GetWorkflow(ctx, gid, "").Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for id, name := range map[string]string{gid: "guard_history.json", workflows.RollbackWorkflowID(tenant, app): "rollback_history.json"} {
		golden.WriteHistory(ctx, t, c, id, filepath.Join("..", "..", "workflows", "testdata", name))
	}
}

package healthpull

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tollgate/tollgate/health"
	"github.com/tollgate/tollgate/stack"
)

var record = flag.Bool("record", false, "rewrite testdata/*.json with the responses of the real Prometheus TestPullFromPrometheus starts")

// TestPullFromPrometheus pulls the recordings' scenario from a real
// Prometheus scraping a real /metrics, and with -record saves its responses.
func TestPullFromPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that starts a Prometheus server")
	}
	if _, err := stack.FindPrometheus(""); errors.Is(err, stack.ErrNoPrometheus) {
		t.Fatalf("this test runs a real Prometheus server (skip it with -short): %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	app := newApp()
	target := httptest.NewServer(app)
	t.Cleanup(target.Close)
	prom, err := stack.StartPrometheus(ctx, stack.PrometheusOptions{
		DataDir:        t.TempDir(),
		ScrapeTargets:  []string{target.Listener.Addr().String()},
		ScrapeInterval: time.Second,
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prom.Stop)
	b := newBundle(t, prom.URL, nil)

	// Two scrapes of the zeros make increase() answer, with 0: the traffic
	// that follows is all inside the window.
	counts := health.Queries{Requests: qRequests, Errors: qErrors}
	waitPull(ctx, t, b.puller, counts, func(s health.Sample, missing []string) bool {
		return len(missing) == 0
	})
	app.serve(900, 100)
	waitPull(ctx, t, b.puller, counts, func(s health.Sample, missing []string) bool {
		return s.Requests > 0
	})

	at := time.Now().Add(-settle)
	checkPulls(ctx, t, b, at)
	if *record {
		recordResponses(ctx, t, prom.URL, at)
	}
}

// settle is how far in the past the test pulls: twice the scrape timeout
// (1s), after which every scrape stamped earlier is in the TSDB. At "now" a
// scrape can land between the requests and the errors query.
const settle = 2 * time.Second

// app is a /metrics target whose traffic lands between two scrapes.
type app struct {
	mu       sync.Mutex
	metrics  http.Handler
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newApp() *app {
	reg := prometheus.NewRegistry()
	a := &app{
		metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "Requests served, by status code.",
		}, []string{"code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "Time to serve a request.", Buckets: prometheus.DefBuckets,
		}, []string{"path"}),
	}
	reg.MustRegister(a.requests, a.latency)
	// Every series exists, at zero, from the first scrape on.
	a.requests.WithLabelValues("200")
	a.requests.WithLabelValues("500")
	a.latency.WithLabelValues("/work")
	a.latency.WithLabelValues("/idle").Observe(0.01)
	return a
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.metrics.ServeHTTP(w, r)
}

// serve counts ok requests taking 40ms and failed ones taking 300ms.
func (a *app) serve(ok, failed int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range ok {
		a.requests.WithLabelValues("200").Inc()
		a.latency.WithLabelValues("/work").Observe(0.04)
	}
	for range failed {
		a.requests.WithLabelValues("500").Inc()
		a.latency.WithLabelValues("/work").Observe(0.3)
	}
}

// waitPull pulls until done says the sample is the one awaited.
func waitPull(ctx context.Context, t *testing.T, p *Puller, q health.Queries, done func(health.Sample, []string) bool) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		s, missing, err := p.Pull(ctx, q, time.Now().Add(-settle))
		if err != nil {
			t.Fatal(err)
		}
		if done(s, missing) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no sample before the deadline; last %+v, missing %v", s, missing)
		case <-tick.C:
		}
	}
}

// recordResponses saves the server's answer to every recorded query at `at`.
func recordResponses(ctx context.Context, t *testing.T, address string, at time.Time) {
	t.Helper()
	ts := strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)
	for _, r := range recordings {
		u := address + "/api/v1/query?" + url.Values{"query": {r.query}, "time": {ts}}.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != r.status {
			t.Fatalf("record %s: %s, want %d: %s", r.name, resp.Status, r.status, body)
		}
		// An empty vector would pass for NaN or +Inf in checkPulls.
		if want := map[string]string{"nan": `"NaN"`, "warning_inf": `"+Inf"`}[r.name]; !strings.Contains(string(body), want) {
			t.Fatalf("record %s: no %s in %s", r.name, want, body)
		}
		name := filepath.Join("testdata", r.name+".json")
		if err := os.WriteFile(name, body, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s: %s", name, body)
	}
}

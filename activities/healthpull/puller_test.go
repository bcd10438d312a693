package healthpull

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/tollgate/tollgate/activities"
	"github.com/tollgate/tollgate/health"
	"github.com/tollgate/tollgate/internal/syncbuf"
)

// The guard's activities pull through a Puller.
var _ activities.HealthPuller = (*Puller)(nil)

// A recording is one query's response, saved in testdata/<name>.json from a
// real Prometheus (stack.PrometheusVersion) by the end-to-end test:
//
//	go test ./health -run TestPullFromPrometheus -record
//
// It scrapes a target that counted 900 requests with code 200 taking 40ms
// and 100 with code 500 taking 300ms, all landing between two scrapes, and
// one request to /idle before the first scrape. The replayed responses and
// the live server must give the same answers (checkPulls).
type recording struct {
	name   string // testdata/<name>.json
	query  string
	status int
}

const (
	qRequests = `sum(increase(http_requests_total[1m]))`
	qErrors   = `sum(increase(http_requests_total{code=~"5.."}[1m]))`
	qP50      = `histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{path="/work"}[1m])))`
	qP95      = `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{path="/work"}[1m])))`
	qP99      = `histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{path="/work"}[1m])))`
	qScalar   = `scalar(sum(increase(http_requests_total[1m])))`
	qEmpty    = `sum(increase(http_requests_total{code="418"}[1m]))`
	qMulti    = `sum by (code) (increase(http_requests_total[1m]))`
	// No requests to /idle since the first scrape: every bucket's rate is 0.
	qNaN     = `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{path="/idle"}[1m])))`
	qRange   = `http_requests_total[1m]`
	qWarnInf = `quantile(2, sum(increase(http_requests_total[1m])))`
	qBadData = `sum(increase(http_requests_total[1m])`
	// qUnavailable is answered with testdata/unavailable.txt and a 503: what
	// Prometheus serves while it starts or stops (web/web.go, testReady).
	// Written by hand: the real one cannot be caught reliably.
	qUnavailable = `up`
)

var recordings = []recording{
	{"requests", qRequests, http.StatusOK},
	{"errors", qErrors, http.StatusOK},
	{"p50", qP50, http.StatusOK},
	{"p95", qP95, http.StatusOK},
	{"p99", qP99, http.StatusOK},
	{"scalar", qScalar, http.StatusOK},
	{"empty", qEmpty, http.StatusOK},
	{"multi_series", qMulti, http.StatusOK},
	{"nan", qNaN, http.StatusOK},
	{"range", qRange, http.StatusOK},
	{"warning_inf", qWarnInf, http.StatusOK},
	{"bad_data", qBadData, http.StatusBadRequest},
}

var scenario = health.Queries{Requests: qRequests, Errors: qErrors, P50: qP50, P95: qP95, P99: qP99}

// testBundle is a Puller and what it logged.
type testBundle struct {
	puller *Puller
	logs   *syncbuf.Buffer
}

func newBundle(t *testing.T, address string, rt http.RoundTripper) *testBundle {
	t.Helper()
	logs := &syncbuf.Buffer{}
	p, err := NewPuller(address, rt, slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{puller: p, logs: logs}
}

// replay serves the recorded responses, by query, as Prometheus did.
func replay(t *testing.T) (server *httptest.Server, timeouts func() []string) {
	t.Helper()
	bodies := map[string]recording{}
	for _, r := range recordings {
		bodies[r.query] = r
	}
	var mu sync.Mutex
	var seen []string
	server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		query := r.FormValue("query")
		mu.Lock()
		seen = append(seen, r.FormValue("timeout"))
		mu.Unlock()
		if query == qUnavailable {
			w.Header().Set("X-Prometheus-Stopping", "false")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write(readTestdata(t, "unavailable.txt"))
			return
		}
		rec, ok := bodies[query]
		if !ok {
			t.Errorf("replay: no recording of query %q", query)
			http.Error(w, "no recording", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.status)
		w.Write(readTestdata(t, rec.name+".json"))
	}))
	t.Cleanup(server.Close)
	return server, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPullRecorded(t *testing.T) {
	t.Parallel()
	server, _ := replay(t)
	b := newBundle(t, server.URL, nil)
	checkPulls(t.Context(), t, b, time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC))

	// A server that is not ready says so.
	q := scenario
	q.P99 = qUnavailable
	_, _, err := b.puller.Pull(t.Context(), q, time.Now())
	if err == nil || !strings.Contains(err.Error(), "server error: 503") || !strings.Contains(err.Error(), "Service Unavailable") ||
		!strings.Contains(err.Error(), server.URL) {
		t.Errorf("503: %v", err)
	}
}

// checkPulls pulls the scenario's samples through b, from a live Prometheus
// or the recorded responses, at `at`.
func checkPulls(ctx context.Context, t *testing.T, b *testBundle, at time.Time) {
	t.Helper()
	p := b.puller
	s, missing, err := p.Pull(ctx, scenario, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 0 {
		t.Errorf("missing %v", missing)
	}
	// increase() extrapolates to the end of the window, by up to half a
	// scrape past the last of at least three.
	if s.Requests < 1000 || s.Requests > 1500 || !s.At.Equal(at) {
		t.Errorf("sample %+v, want 1000 to 1500 requests at %s", s, at)
	}
	if rate := float64(s.Errors) / float64(s.Requests); math.Abs(rate-0.1) > 0.001 {
		t.Errorf("error rate %g (%d of %d), want 0.1", rate, s.Errors, s.Requests)
	}
	// 900 requests in the (25ms, 50ms] bucket, 100 in (250ms, 500ms];
	// histogram_quantile interpolates linearly within a bucket.
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"p50", s.P50, 25*time.Millisecond + 25*time.Millisecond*500/900},
		{"p95", s.P95, 375 * time.Millisecond},
		{"p99", s.P99, 475 * time.Millisecond},
	} {
		if (c.got - c.want).Abs() > time.Microsecond {
			t.Errorf("%s %s, want %s", c.name, c.got, c.want)
		}
	}

	t.Run("scalar", func(t *testing.T) {
		q := scenario
		q.Requests = qScalar
		got, _, err := p.Pull(ctx, q, at)
		if err != nil || got != s {
			t.Errorf("got %+v, %v; want %+v", got, err, s)
		}
	})
	t.Run("empty", func(t *testing.T) {
		q := scenario
		q.Errors = qEmpty
		got, missing, err := p.Pull(ctx, q, at)
		if err != nil || !slices.Equal(missing, []string{SignalErrors}) || got.Errors != 0 || got.Requests != s.Requests {
			t.Errorf("got %+v, missing %v, %v", got, missing, err)
		}
	})
	t.Run("nan", func(t *testing.T) {
		q := scenario
		q.P95 = qNaN
		got, missing, err := p.Pull(ctx, q, at)
		if err != nil || !slices.Equal(missing, []string{SignalP95}) || got.P95 != 0 || got.P99 != s.P99 {
			t.Errorf("got %+v, missing %v, %v", got, missing, err)
		}
	})
	t.Run("warning and inf", func(t *testing.T) {
		q := scenario
		q.P99 = qWarnInf
		got, missing, err := p.Pull(ctx, q, at)
		if err != nil || !slices.Equal(missing, []string{SignalP99}) || got.P99 != 0 {
			t.Errorf("got %+v, missing %v, %v", got, missing, err)
		}
		if logs := b.logs.String(); !strings.Contains(logs, "prometheus warned") || !strings.Contains(logs, "quantile value should be between 0 and 1") {
			t.Errorf("warning not logged:\n%s", logs)
		}
	})
	t.Run("many series", func(t *testing.T) {
		q := scenario
		q.Errors = qMulti
		_, _, err := p.Pull(ctx, q, at)
		if err == nil || !strings.Contains(err.Error(), "2 series") || !strings.Contains(err.Error(), qMulti) || !strings.Contains(err.Error(), p.address) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("range vector", func(t *testing.T) {
		q := scenario
		q.Requests = qRange
		_, _, err := p.Pull(ctx, q, at)
		if err == nil || !strings.Contains(err.Error(), "a matrix, want an instant vector") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("bad query", func(t *testing.T) {
		q := scenario
		q.P50 = qBadData
		_, _, err := p.Pull(ctx, q, at)
		var apiErr *promv1.Error
		if !errors.As(err, &apiErr) || apiErr.Type != promv1.ErrBadData || !strings.Contains(err.Error(), "pull p50 from "+p.address) || !strings.Contains(err.Error(), qBadData) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("more errors than requests", func(t *testing.T) {
		q := scenario
		q.Requests, q.Errors = qErrors, qRequests
		_, _, err := p.Pull(ctx, q, at)
		if err == nil || !strings.Contains(err.Error(), "disagree") {
			t.Errorf("got %v", err)
		}
	})
}

func TestPullTimeout(t *testing.T) {
	t.Parallel()
	server, timeouts := replay(t)
	b := newBundle(t, server.URL, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if _, _, err := b.puller.Pull(ctx, health.Queries{Requests: qRequests, Errors: qErrors}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, got := range timeouts() {
		if d, err := time.ParseDuration(got); err != nil || d < 80*time.Second || d > 90*time.Second || strings.Contains(got, ".") {
			t.Errorf("timeout parameter %q", got)
		}
	}

	ended, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	if _, _, err := b.puller.Pull(ended, scenario, time.Now()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("pull after the deadline: %v", err)
	}
}

func TestPullRefuses(t *testing.T) {
	t.Parallel()
	b := newBundle(t, "http://127.0.0.1:1", roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("no request expected")
	}))
	if _, _, err := b.puller.Pull(t.Context(), health.Queries{Errors: qErrors}, time.Now()); err == nil || !strings.Contains(err.Error(), "no requests query") {
		t.Errorf("errors without requests: %v", err)
	}
	if _, _, err := b.puller.Pull(t.Context(), scenario, time.Time{}); err == nil || !strings.Contains(err.Error(), "no time") {
		t.Errorf("no time: %v", err)
	}
	for _, bad := range []string{"", "prometheus:9090", "ftp://x", "http://", "://x"} {
		if _, err := NewPuller(bad, nil, nil); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
			t.Errorf("address %q: %v", bad, err)
		}
	}
}

func TestValidateQueries(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		q    health.Queries
		want string // in the error; empty for valid
	}{
		{health.Queries{}, "none set"},
		{health.Queries{P95: qP95}, "no requests query"},
		{health.Queries{Errors: qErrors}, "no requests query"},
		{health.Queries{Requests: qRequests}, "no errors query"},
		{health.Queries{Requests: qRequests, Errors: qErrors}, ""},
		{scenario, ""},
	} {
		err := ValidateQueries(c.q)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.q, err, c.want)
		}
	}
}

func TestQueryTimeout(t *testing.T) {
	t.Parallel()
	for in, want := range map[time.Duration]string{
		90*time.Second + 999*time.Millisecond: "1m30s",
		time.Second + time.Nanosecond:         "1s",
		999*time.Millisecond + 999:            "999ms",
		999 * time.Microsecond:                "0s",
	} {
		if got := queryTimeout(in).String(); got != want {
			t.Errorf("queryTimeout(%s) = %s, want %s", in, got, want)
		}
	}
}

// FuzzDecode feeds arbitrary responses to Pull: whatever a server answers,
// Pull returns a valid sample or an error, and never panics.
func FuzzDecode(f *testing.F) {
	for _, r := range recordings {
		f.Add(r.status, readTestdata(f, r.name+".json"))
	}
	f.Add(http.StatusServiceUnavailable, readTestdata(f, "unavailable.txt"))
	f.Add(http.StatusOK, []byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"-1"]}]}}`))
	f.Add(http.StatusOK, []byte(`{"status":"success","data":{"resultType":"scalar","result":[1,"1e300"]}}`))
	f.Add(http.StatusOK, []byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{"count":"1","sum":"1","buckets":[[0,"0","1","1"]]}]}]}}`))
	f.Add(http.StatusOK, []byte(`{"status":"success","data":{"resultType":"string","result":[1,"x"]}}`))
	f.Add(http.StatusUnprocessableEntity, []byte(`{"status":"error","errorType":"execution","error":"x"}`))

	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		p, err := NewPuller("http://prometheus.test", roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: status, Body: io.NopCloser(bytes.NewReader(body)), Header: http.Header{}, Request: r}, nil
		}), nil)
		if err != nil {
			t.Fatal(err)
		}
		s, missing, err := p.Pull(context.Background(), scenario, at)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil || !s.At.Equal(at) {
			t.Fatalf("sample %+v: %v", s, err)
		}
		for _, m := range missing {
			if !slices.Contains([]string{SignalRequests, SignalErrors, SignalP50, SignalP95, SignalP99}, m) {
				t.Fatalf("missing %q", m)
			}
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

package stack

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
)

func TestFindPrometheusExplicit(t *testing.T) {
	t.Setenv("TOLLGATE_PROMETHEUS", "")
	if _, err := FindPrometheus(filepath.Join(t.TempDir(), "no-such-prometheus")); err == nil || !strings.Contains(err.Error(), "no-such-prometheus") {
		t.Fatalf("missing explicit binary: %v", err)
	}
	t.Setenv("TOLLGATE_PROMETHEUS", filepath.Join(t.TempDir(), "from-env"))
	if _, err := FindPrometheus(""); err == nil || !strings.Contains(err.Error(), "from-env") {
		t.Fatalf("missing $TOLLGATE_PROMETHEUS binary: %v", err)
	}
}

func TestPrometheusConfig(t *testing.T) {
	got, err := prometheusConfig([]string{"127.0.0.1:9100", "[::1]:80"}, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	want := `global:
  scrape_interval: 1500ms
  scrape_timeout: 1500ms
scrape_configs:
  - job_name: tollgate
    static_configs:
      - targets: ["127.0.0.1:9100", "[::1]:80"]
`
	if string(got) != want {
		t.Errorf("config:\n%s\nwant:\n%s", got, want)
	}
	for _, bad := range []string{"no-port", ":80", `a"b:80`, "http://x:80", "a:80\n- evil"} {
		if _, err := prometheusConfig([]string{bad}, time.Second); err == nil || !strings.Contains(err.Error(), "not host:port") {
			t.Errorf("target %q: %v", bad, err)
		}
	}
	if _, err := prometheusConfig(nil, 0); err == nil {
		t.Error("zero interval accepted")
	}
}

func TestStartPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that starts a Prometheus server")
	}
	if _, err := FindPrometheus(""); errors.Is(err, ErrNoPrometheus) {
		t.Fatalf("this test runs a real Prometheus server (skip it with -short): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := StartPrometheus(ctx, PrometheusOptions{}); err == nil || !strings.Contains(err.Error(), "no data dir") {
		t.Fatalf("start without a data dir: %v", err)
	}

	reg := prometheus.NewRegistry()
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_stack_probe", Help: "A value the test sets."})
	probe.Set(42)
	reg.MustRegister(probe)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(target.Close)

	dir := filepath.Join(t.TempDir(), "data")
	p, err := StartPrometheus(ctx, PrometheusOptions{
		DataDir:        dir,
		ScrapeTargets:  []string{target.Listener.Addr().String()},
		ScrapeInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	client, err := api.NewClient(api.Config{Address: p.URL})
	if err != nil {
		t.Fatal(err)
	}
	query := promv1.NewAPI(client)
	if got := waitForValue(ctx, t, query, "tollgate_stack_probe"); got != 42 {
		t.Fatalf("scraped %v, want 42", got)
	}

	// The remote-write receiver is on: an empty write is a bad request,
	// where a server without it answers 404.
	resp, err := http.Post(p.URL+"/api/v1/write", "application/x-protobuf", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Errorf("remote write: %s", resp.Status)
	}

	// A second server on the same port fails, and says why.
	_, err = StartPrometheus(ctx, PrometheusOptions{DataDir: filepath.Join(t.TempDir(), "other"), Port: p.Port})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second server on a used port: got %v, want the server's complaint", err)
	}

	// Stop, then a restart on the same data dir and port keeps the samples.
	p.Stop()
	if conn, err := net.Dial("tcp", p.Addr); err == nil {
		conn.Close()
		t.Fatal("the server still listens after Stop")
	}
	p2, err := StartPrometheus(ctx, PrometheusOptions{DataDir: dir, Port: p.Port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p2.Stop)
	if got := waitForValue(ctx, t, query, "last_over_time(tollgate_stack_probe[10m])"); got != 42 {
		t.Fatalf("after restart %v, want 42", got)
	}
}

// waitForValue polls an instant query until it returns one sample.
func waitForValue(ctx context.Context, t *testing.T, query promv1.API, expr string) model.SampleValue {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		v, _, err := query.Query(ctx, expr, time.Time{})
		if vec, ok := v.(model.Vector); ok && err == nil && len(vec) == 1 {
			return vec[0].Value
		}
		select {
		case <-ctx.Done():
			t.Fatalf("query %q: no sample before the deadline (last: %v, %v)", expr, v, err)
		case <-tick.C:
		}
	}
}

package stack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// PrometheusVersion is the Prometheus server the project pins and
// scripts/tools.sh builds: the Go module version of Prometheus 3.15.0.
// Prometheus is Apache-2.0; tollgate runs it as a separate process.
const PrometheusVersion = "v0.315.0"

// ErrNoPrometheus is returned when no Prometheus server binary can be found.
var ErrNoPrometheus = errors.New("prometheus not found: run `scripts/tools.sh prometheus`, or set TOLLGATE_PROMETHEUS")

// PrometheusOptions configure the Prometheus server child process.
type PrometheusOptions struct {
	// Binary is the prometheus server (default: $TOLLGATE_PROMETHEUS, then
	// `prometheus` on PATH, then the project's tool cache).
	Binary string
	// DataDir holds the configuration and the TSDB (required); a restart on
	// the same directory keeps the samples.
	DataDir string
	// Port for the HTTP API on 127.0.0.1 (default: a free port).
	Port int
	// ScrapeTargets are host:port addresses whose /metrics the server
	// scrapes, as job "tollgate".
	ScrapeTargets []string
	// ScrapeInterval is how often each target is scraped (default 5s); the
	// scrape timeout is the same.
	ScrapeInterval time.Duration
	// StartTimeout bounds the wait for the server to be ready (default 30s).
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// Prometheus is a running Prometheus server. It also accepts remote writes
// at URL + "/api/v1/write".
type Prometheus struct {
	// Addr is the HTTP API's host:port.
	Addr string
	// URL is the HTTP API's base URL, http://Addr.
	URL string
	// Port is the HTTP API's port, to start the server again on the same one.
	Port int
	child
}

// FindPrometheus returns the path of the prometheus server to run: explicit,
// else $TOLLGATE_PROMETHEUS, else `prometheus` on PATH, else the tool cache.
func FindPrometheus(explicit string) (string, error) {
	return findTool(explicit, "TOLLGATE_PROMETHEUS", "prometheus", PrometheusVersion, ErrNoPrometheus)
}

// StartPrometheus writes a configuration that scrapes opts.ScrapeTargets,
// starts Prometheus on loopback with it, and waits until /-/ready answers.
func StartPrometheus(ctx context.Context, opts PrometheusOptions) (*Prometheus, error) {
	bin, err := FindPrometheus(opts.Binary)
	if err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		return nil, fmt.Errorf("start prometheus: no data dir")
	}
	logger := cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	interval := cmp.Or(opts.ScrapeInterval, 5*time.Second)
	config, err := prometheusConfig(opts.ScrapeTargets, interval)
	if err != nil {
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	port := opts.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, fmt.Errorf("start prometheus: %w", err)
		}
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("start prometheus: create data dir %q: %w", opts.DataDir, err)
	}
	configFile := filepath.Join(opts.DataDir, "prometheus.yml")
	if err := os.WriteFile(configFile, config, 0o600); err != nil {
		return nil, fmt.Errorf("start prometheus: write config %q: %w", configFile, err)
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := &Prometheus{Addr: addr, URL: "http://" + addr, Port: port}
	tsdbDir := filepath.Join(opts.DataDir, "tsdb")
	cmd := exec.Command(bin,
		"--config.file="+configFile,
		"--storage.tsdb.path="+tsdbDir,
		"--web.listen-address="+addr,
		"--web.enable-remote-write-receiver",
		"--log.format=json")
	var tail lastLines
	if err := p.startLogged(cmd, logger, "prometheus", &tail); err != nil {
		return nil, fmt.Errorf("start prometheus %q: %w", bin, err)
	}

	timeout := cmp.Or(opts.StartTimeout, 30*time.Second)
	if err := p.waitReady(ctx, timeout, tsdbDir); err != nil {
		p.Kill()
		return nil, fmt.Errorf("start prometheus on %s with data dir %q: %w%s", addr, opts.DataDir, err, tail.String())
	}
	logger.DebugContext(ctx, "prometheus ready", "url", p.URL, "data_dir", opts.DataDir, "targets", opts.ScrapeTargets, "pid", cmd.Process.Pid)
	return p, nil
}

// prometheusConfig is a prometheus.yml with one static scrape job. Targets
// are checked here so that a bad one fails with its name, not as YAML.
func prometheusConfig(targets []string, interval time.Duration) ([]byte, error) {
	if interval < time.Millisecond {
		return nil, fmt.Errorf("scrape interval %s is under a millisecond", interval)
	}
	quoted := make([]string, 0, len(targets))
	for _, t := range targets {
		host, port, err := net.SplitHostPort(t)
		if err != nil || host == "" || port == "" || strings.ContainsAny(t, "\"\\\n/") {
			return nil, fmt.Errorf("scrape target %q is not host:port", t)
		}
		quoted = append(quoted, strconv.Quote(t))
	}
	iv := strconv.FormatInt(interval.Milliseconds(), 10) + "ms"
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n", iv, iv)
	fmt.Fprintf(&b, "scrape_configs:\n  - job_name: tollgate\n    static_configs:\n      - targets: [%s]\n", strings.Join(quoted, ", "))
	return []byte(b.String()), nil
}

// waitReady waits for /-/ready, which answers 503 until the TSDB is open,
// from the server that stores in tsdbDir: another one on the port would
// answer too, while ours fails to listen.
func (p *Prometheus) waitReady(ctx context.Context, timeout time.Duration, tsdbDir string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	delay := 20 * time.Millisecond
	for {
		err := probeReady(ctx, hc, p.URL+"/-/ready")
		if err == nil {
			err = p.checkTSDBPath(ctx, hc, tsdbDir)
			if err == nil {
				return nil
			}
		}
		select {
		case <-p.exited:
			return p.exitErr()
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// checkTSDBPath asks the server on p.Addr for its storage.tsdb.path flag.
func (p *Prometheus) checkTSDBPath(ctx context.Context, hc *http.Client, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/status/flags", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var flags struct {
		Data map[string]string `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&flags); err != nil {
		return fmt.Errorf("read flags: %s: %w", resp.Status, err)
	}
	if got := flags.Data["storage.tsdb.path"]; got != want {
		return fmt.Errorf("the server on %s stores in %q, not %q", p.Addr, got, want)
	}
	return nil
}

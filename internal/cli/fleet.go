package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/orchestrator"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/telemetry"
	"github.com/tollgate/tollgate/vulndb"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workers/sandbox"
	"github.com/tollgate/tollgate/workers/scanners"
)

const fleetLong = `Configuration comes from --config FILE (YAML; $TOLLGATE_CONFIG) and these
environment variables over it: `

// withConns loads the configuration, connects, runs fn and disconnects.
func withConns(ctx context.Context, g *globals, cfgPath string, fn func(Config, *conns) error) error {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	c, err := connect(ctx, g, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(cfg, c)
}

func newServeCmd(g *globals) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP API (/v1)",
		Long:  "serve runs the HTTP API that CI submits scans to.\n\n" + fleetLong + envNames() + ".",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withConns(cmd.Context(), g, cfgPath, func(cfg Config, c *conns) error {
				return serve(cmd.Context(), g, cfg, c)
			})
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file ($TOLLGATE_CONFIG)")
	return cmd
}

func serve(ctx context.Context, g *globals, cfg Config, c *conns) error {
	redactor, err := scanners.NewSecrets()
	if err != nil {
		return err
	}
	if err := observePools(c.metrics.Meter("tollgate/api"), tasks.Pools{JS: c.js, Config: c.stream}); err != nil {
		return err
	}
	srv, err := api.New(api.Config{Tokens: cfg.API.Tokens, MaxArchiveBytes: cfg.API.MaxArchiveBytes,
		RatePerSecond: cfg.API.RatePerSecond, Burst: cfg.API.Burst, Full: cfg.API.Full, Version: Version, OIDC: cfg.API.OIDC},
		api.Deps{Temporal: c.temporal, Inputs: c.inputs, Evidence: c.evidence, Logger: g.logger, Ready: readiness(c), Redactor: redactor,
			Releases: newReleaseStore(c.evidence), Exceptions: newExceptionStore(c.evidence), Guards: &control.Guards{Temporal: c.temporal}, Metrics: c.metrics.Gatherer(),
			Pools: tasks.Pools{JS: c.js, Config: c.stream}, TracerProvider: tracerProvider(c.tracing)})
	if err != nil {
		return usageErr(err)
	}
	return serveHTTP(ctx, g, endpoint{"API", cfg.API.Listen, srv.Handler()},
		endpoint{"metrics", cmp.Or(cfg.MetricsListen, defaultAPIMetricsListen), srv.MetricsHandler()})
}

// defaultAPIMetricsListen is where `serve` and `dev` serve /metrics when
// TOLLGATE_METRICS_LISTEN is not set: loopback, because the metrics name
// tenants and have no authentication. They are never on the API's listener.
const defaultAPIMetricsListen = "127.0.0.1:9464"

func readiness(c *conns) []api.Checker {
	return []api.Checker{
		{Name: "temporal", Check: func(ctx context.Context) error {
			_, err := c.temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}},
		{Name: "nats", Check: func(ctx context.Context) error { _, err := c.js.AccountInfo(ctx); return err }},
		{Name: "evidence", Check: func(ctx context.Context) error {
			_, _, err := c.evidence.Get(ctx, "readyz-probe")
			if err == nil || errors.Is(err, storage.ErrNotFound) {
				return nil
			}
			return err
		}},
	}
}

// endpoint is one HTTP listener of a process.
type endpoint struct {
	name, addr string
	handler    http.Handler
}

// newHTTPServer bounds how long a client may take: to send its headers
// (slow-loris), its whole request (a 64 MiB archive at 0.5 MB/s fits in
// ReadTimeout), and to keep an idle connection. There is no WriteTimeout:
// GET /v1/scans/{id}?wait= holds a response open for up to a minute.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute}
}

// serveHTTP listens on every endpoint (failing if any address cannot be
// had), serves them until ctx ends or one fails, and shuts them all down.
func serveHTTP(ctx context.Context, g *globals, eps ...endpoint) error {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for _, ep := range eps {
		ln, err := net.Listen("tcp", ep.addr)
		if err != nil {
			return usageErrf("%s: listen on %q: %w", ep.name, ep.addr, err)
		}
		lns = append(lns, ln)
	}
	errc := make(chan error, len(eps))
	var servers []*http.Server
	for i, ep := range eps {
		hs := newHTTPServer(ep.handler)
		servers = append(servers, hs)
		g.logger.InfoContext(ctx, ep.name+" listening", "addr", lns[i].Addr().String())
		fmt.Fprintf(g.stderr, "tollgate: %s listening on http://%s\n", ep.name, lns[i].Addr())
		go func() {
			if err := hs.Serve(lns[i]); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", ep.name, err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, hs := range servers {
		err = cmp.Or(err, hs.Shutdown(sctx))
	}
	return err
}

func newOrchestratorCmd(g *globals) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "orchestrator",
		Short: "Run the Temporal worker for the workflows and orchestration activities",
		Long: "orchestrator runs ScanWorkflow and its dispatch, policy and finalize activities, and the\n" +
			"guards and rollbacks of released apps (GuardWorkflow, RollbackWorkflow).\n\n" + fleetLong + envNames() + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return withConns(ctx, g, cfgPath, func(cfg Config, c *conns) error {
				pull, lag, err := guardHealth(cfg, g.logger)
				if err != nil {
					return err
				}
				every, err := cfg.rematchInterval()
				if err != nil {
					return err
				}
				w, err := orchestrator.Start(ctx, orchestrator.Config{PolicyDir: cfg.PolicyDir, SigningKey: cfg.SigningKey, Version: Version,
					Stream: c.stream, Targets: cfg.Guard.Targets, DefaultTarget: cfg.Guard.DefaultTarget, RematchInterval: every,
					EventsWebhookURL: cfg.Rematch.WebhookURL, EventsWebhookSecret: os.Getenv("TOLLGATE_EVENTS_WEBHOOK_SECRET"), Health: pull, HealthLag: lag},
					orchestrator.Deps{Temporal: c.temporal, Publisher: c.js, Evidence: c.evidence, Meter: c.metrics.Meter("tollgate/orchestrator"), Logger: g.logger})
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stderr, "tollgate: orchestrator running (Temporal %s, NATS %s)\n", cfg.Temporal.Address, cfg.NATS.URL)
				serveMetrics(ctx, g, cfg, c)
				<-ctx.Done()
				w.Stop()
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file ($TOLLGATE_CONFIG)")
	return cmd
}

func newWorkerCmd(g *globals) *cobra.Command {
	var cfgPath, pool string
	var concurrency int
	cmd := &cobra.Command{
		Use:   "worker --pool fast|deep [--concurrency N]",
		Short: "Run scanner tasks from a pool's JetStream consumer",
		Long: "worker pulls its pool's tasks, runs the scanners in one sandboxed child process per slot (loaded\n" +
			"once, without credentials or network) and completes the activities. SIGTERM drains running tasks.\n\n" + fleetLong + envNames() + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := tasks.ValidPool(pool); err != nil {
				return usageErr(err)
			}
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("concurrency") {
				cfg.Worker.Concurrency = concurrency
			}
			c, err := connect(ctx, g, cfg)
			if err != nil {
				return err
			}
			defer c.Close()
			if len(cfg.Worker.SecretFingerprintKey) < scanners.MinFingerprintKeyBytes {
				return usageErrf("worker: $TOLLGATE_SECRET_FINGERPRINT_KEY (worker.secret_fingerprint_key) must be at least %d bytes, the same in every worker", scanners.MinFingerprintKeyBytes)
			}
			sb, err := startSandbox(ctx, g, cfg, pool)
			if err != nil {
				if ctx.Err() != nil {
					// Stopped (SIGTERM) while the scanners were loading:
					// no task was taken, so there is nothing to drain.
					fmt.Fprintf(g.stderr, "tollgate: %s worker stopped before it started\n", pool)
					return nil
				}
				return err
			}
			defer sb.Close()
			meter := c.metrics.Meter("tollgate/worker")
			w, err := workers.New(workers.Config{Pool: pool, Concurrency: cfg.Worker.Concurrency, Stream: c.stream},
				workers.Deps{JetStream: c.js, Temporal: c.temporal, Evidence: c.evidence, Inputs: c.inputs, Sandbox: sb, Meter: meter, Tracer: c.tracing.Tracer("tollgate/worker"), Logger: g.logger})
			if err != nil {
				return usageErr(err)
			}
			if err := observeDBAge(meter, cfg.Worker.DBDir); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "tollgate: %s worker running (NATS %s, Temporal %s)\n", pool, cfg.NATS.URL, cfg.Temporal.Address)
			serveMetrics(ctx, g, cfg, c)
			return w.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "configuration file ($TOLLGATE_CONFIG)")
	cmd.Flags().StringVar(&pool, "pool", "", "pool: fast or deep")
	cmd.Flags().IntVar(&concurrency, "concurrency", 0, "tasks at once (default: the number of CPUs; $TOLLGATE_WORKER_CONCURRENCY)")
	return cmd
}

// startSandbox starts a worker's sandboxed scanner processes, one per slot.
func startSandbox(ctx context.Context, g *globals, cfg Config, pool string) (*sandbox.Pool, error) {
	var timeout time.Duration
	if cfg.Worker.TaskTimeout != "" {
		d, err := time.ParseDuration(cfg.Worker.TaskTimeout)
		if err != nil || d <= 0 {
			return nil, usageErrf("worker.task_timeout %q: want a positive Go duration", cfg.Worker.TaskTimeout)
		}
		timeout = d
	}
	if cfg.Worker.TaskMemoryMiB < 0 {
		return nil, usageErrf("worker.task_memory_mib %d must not be negative", cfg.Worker.TaskMemoryMiB)
	}
	rules, err := rulesDir(cfg.Worker.RulesDir)
	if err != nil {
		return nil, err
	}
	return sandbox.Start(ctx, sandbox.Config{Slots: cmp.Or(cfg.Worker.Concurrency, runtime.NumCPU()), Name: pool, DBDir: cfg.Worker.DBDir, RulesDir: rules, Version: Version,
		TaskMemory: int64(cfg.Worker.TaskMemoryMiB) << 20, TaskTimeout: timeout, LogLevel: g.logLevel,
		SecretFingerprintKey: []byte(cfg.Worker.SecretFingerprintKey)}, g.logger)
}

// newReleaseStore is the API's release record over the evidence store.
func newReleaseStore(ev storage.Evidence) *releases.Store {
	lister, _ := ev.(storage.Lister)
	return &releases.Store{Evidence: ev, Lister: lister}
}

func newExceptionStore(ev storage.Evidence) *exceptions.Store {
	lister, _ := ev.(storage.Lister)
	return &exceptions.Store{Evidence: ev, Lister: lister}
}

// serveMetrics serves the process's /metrics on TOLLGATE_METRICS_LISTEN, if
// set, until ctx ends.
func serveMetrics(ctx context.Context, g *globals, cfg Config, c *conns) {
	if cfg.MetricsListen == "" {
		return
	}
	go func() {
		if err := serveHTTP(ctx, g, endpoint{"metrics", cfg.MetricsListen, c.metrics.Handler()}); err != nil {
			g.logger.ErrorContext(ctx, "metrics endpoint stopped", "err", err)
		}
	}()
}

// observeDBAge reports the age of the worker's vulnerability DB
// (tollgate.vulndb.age, seconds since it was built or downloaded; no value
// without a DB).
func observeDBAge(meter metric.Meter, dir string) error {
	_, err := meter.Float64ObservableGauge("tollgate.vulndb.age", metric.WithUnit("s"),
		metric.WithDescription("Seconds since the worker's vulnerability DB was updated."),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			if info, err := vulndb.ReadInfo(dir); err == nil && !info.UpdatedAt.IsZero() {
				o.Observe(time.Since(info.UpdatedAt).Seconds())
			}
			return nil
		}))
	return err
}

// observePools reports each pool's queue on every scrape: tasks pending, in
// progress and redelivered, and the oldest task's age.
func observePools(meter metric.Meter, pools tasks.Pools) error {
	pending, err := meter.Int64ObservableGauge("tollgate.pool.pending", metric.WithDescription("Tasks waiting for a worker."))
	if err != nil {
		return err
	}
	running, err := meter.Int64ObservableGauge("tollgate.pool.in_progress", metric.WithDescription("Tasks a worker holds."))
	if err != nil {
		return err
	}
	redelivered, err := meter.Int64ObservableGauge("tollgate.pool.redelivered", metric.WithDescription("Tasks delivered more than once and not yet done."))
	if err != nil {
		return err
	}
	oldest, err := meter.Float64ObservableGauge("tollgate.pool.oldest_task_age", metric.WithUnit("s"), metric.WithDescription("Age of the oldest task not yet done."))
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		st, err := pools.Status(ctx)
		if err != nil {
			return nil // NATS away: no values this scrape
		}
		for _, p := range st {
			attrs := metric.WithAttributes(attribute.String("pool", p.Pool))
			o.ObserveInt64(pending, int64(p.Pending), attrs)
			o.ObserveInt64(running, int64(p.AckPending), attrs)
			o.ObserveInt64(redelivered, int64(p.Redelivered), attrs)
			age := 0.0
			if !p.Oldest.IsZero() {
				age = time.Since(p.Oldest).Seconds()
			}
			o.ObserveFloat64(oldest, age, attrs)
		}
		return nil
	}, pending, running, redelivered, oldest)
	return err
}

// tracerProvider is t's provider, or nil without tracing.
func tracerProvider(t *telemetry.Tracing) trace.TracerProvider {
	if t == nil {
		return nil
	}
	return t.Provider
}

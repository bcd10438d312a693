package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/metric"

	"github.com/tollgate/tollgate/fleet"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/vulndb"
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
		Short: "Run the HTTP API (/v1) and, when enabled, the web console (/console/)",
		Long: "serve runs the HTTP API that CI submits scans to and, with console.enabled ($TOLLGATE_CONSOLE=true),\n" +
			"the web console at /console/ on the same listener: OIDC sign-in against api.oidc.issuer as the\n" +
			"client console.client_id (which must equal api.oidc.audience), console.redirect_url\n" +
			"(https://HOST/console/auth/callback), the client secret from $TOLLGATE_CONSOLE_CLIENT_SECRET or\n" +
			"$TOLLGATE_CONSOLE_CLIENT_SECRET_FILE; static-token sign-in only with console.allow_token_signin\n" +
			"($TOLLGATE_CONSOLE_TOKEN_SIGNIN=true).\n\n" + fleetLong + envNames() + ".",
		Args: cobra.NoArgs,
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
	srv, err := fleet.NewAPI(c.fleet, c.clients(), c.observability(g))
	if err != nil {
		return fleetErr(err)
	}
	h := srv.Handler()
	if cfg.Console.Enabled {
		if h, err = withConsole(ctx, cfg.consoleConfig(g), h); err != nil {
			return err
		}
	}
	return serveHTTP(ctx, g, endpoint{"API", cfg.API.Listen, h},
		endpoint{"metrics", cmp.Or(cfg.MetricsListen, defaultAPIMetricsListen), srv.MetricsHandler()})
}

// defaultAPIMetricsListen is where `serve` and `dev` serve /metrics when
// TOLLGATE_METRICS_LISTEN is not set: loopback, because the metrics name
// tenants and have no authentication. They are never on the API's listener.
const defaultAPIMetricsListen = "127.0.0.1:9464"

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
				w, err := fleet.StartOrchestrator(ctx, c.fleet, c.clients(), c.observability(g))
				if err != nil {
					return fleetErr(err)
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
			// The worker's settings are checked before anything is dialled.
			fcfg, err := cfg.fleet()
			if err != nil {
				return err
			}
			if fcfg.Worker.RulesDir, err = rulesDir(fcfg.Worker.RulesDir); err != nil {
				return err
			}
			fcfg.Worker.LogLevel = g.logLevel
			if err := fcfg.ValidateWorker(); err != nil {
				return usageErr(err)
			}
			c, err := connect(ctx, g, cfg)
			if err != nil {
				return err
			}
			defer c.Close()
			sb, err := fleet.StartSandbox(ctx, fcfg, pool, g.logger)
			if err != nil {
				if ctx.Err() != nil {
					// Stopped (SIGTERM) while the scanners were loading:
					// no task was taken, so there is nothing to drain.
					fmt.Fprintf(g.stderr, "tollgate: %s worker stopped before it started\n", pool)
					return nil
				}
				return fleetErr(err)
			}
			defer sb.Close()
			meter := c.metrics.Meter("tollgate/worker")
			w, err := fleet.NewWorker(fcfg, pool, c.clients(), sb, c.observability(g))
			if err != nil {
				return fleetErr(err)
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

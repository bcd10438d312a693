package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/console"
	"github.com/tollgate/tollgate/embedded"
	"github.com/tollgate/tollgate/fleet"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/telemetry"
	"github.com/tollgate/tollgate/vulndb"
)

type devOptions struct {
	listen, metricsListen, db, policy, rules, evidence, state, temporalCLI, token string
	full                                                                          bool
}

func newDevCmd(g *globals) *cobra.Command {
	o := &devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole stack in one process (embedded NATS, Temporal dev server, workers, API) for local use",
		Long: `dev starts what tollgate scan starts, plus the HTTP API, and runs until
interrupted. It prints the API address and a bearer token (tenant "dev", every
role); point tollgate submit at it. The web console is at /console/ on the
same address: sign in with the token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDev(cmd.Context(), g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", envOr("TOLLGATE_LISTEN", "127.0.0.1:8080"), "API listen address ($TOLLGATE_LISTEN)")
	f.StringVar(&o.metricsListen, "metrics-listen", envOr("TOLLGATE_METRICS_LISTEN", defaultAPIMetricsListen), "/metrics listen address, never the API's ($TOLLGATE_METRICS_LISTEN)")
	f.StringVar(&o.db, "db", vulndb.DefaultDir(), "vulnerability DB directory ($TOLLGATE_DB_DIR)")
	f.StringVar(&o.policy, "policy", os.Getenv("TOLLGATE_POLICY_DIR"), "policy bundle directory ($TOLLGATE_POLICY_DIR)")
	f.StringVar(&o.rules, "rules", os.Getenv("TOLLGATE_SAST_RULES_DIR"), "SAST rules directory replacing the embedded rules ($TOLLGATE_SAST_RULES_DIR)")
	f.StringVar(&o.evidence, "evidence", defaultEvidenceDir(), "local write-once evidence store ($TOLLGATE_EVIDENCE_DIR)")
	f.StringVar(&o.state, "state", defaultDevStateDir(), "folder for NATS's streams, submitted archives and Temporal's history, kept across restarts ($TOLLGATE_DEV_STATE_DIR)")
	f.StringVar(&o.temporalCLI, "temporal-cli", "", "temporal CLI binary ($TOLLGATE_TEMPORAL_CLI)")
	f.StringVar(&o.token, "token", os.Getenv("TOLLGATE_DEV_TOKEN"), "bearer token to accept (default: a random one, printed) ($TOLLGATE_DEV_TOKEN)")
	f.BoolVar(&o.full, "full", false, "run the deep stage even when the fast stage blocks")
	return cmd
}

func runDev(ctx context.Context, g *globals, o *devOptions) error {
	token := o.token
	if token == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		token = "tg_dev_" + hex.EncodeToString(b)
	}
	// MinIO when TOLLGATE_MINIO_* (or a config file) says so; else local stores.
	cfg, err := loadConfig("")
	if err != nil {
		return err
	}
	rules, err := rulesDir(o.rules)
	if err != nil {
		return err
	}
	fcfg, err := cfg.fleet()
	if err != nil {
		return err
	}
	metrics, err := telemetry.NewMetrics()
	if err != nil {
		return err
	}
	tracing, err := telemetry.NewOTLPTracing(ctx, cfg.OTLPEndpoint, "tollgate-dev")
	if err != nil {
		return usageErr(err)
	}
	defer tracing.Shutdown(context.Background())
	ecfg := o.stackConfig(rules, fcfg)
	ecfg.Logger, ecfg.Metrics, ecfg.Tracing = g.logger, metrics, tracing
	where := o.evidence
	if cfg.MinIO.Endpoint != "" {
		m, err := storage.OpenMinIO(ctx, cfg.MinIO, g.logger)
		if err != nil {
			return err
		}
		ecfg.Store = m
		where = "minio://" + cfg.MinIO.Endpoint + "/" + m.Config().EvidenceBucket
	}
	st, err := embedded.Start(ctx, ecfg)
	if err != nil {
		return fleetErr(fmt.Errorf("start embedded stack: %w", err))
	}
	defer st.Close()
	srv, err := newDevAPI(st, token, o.full, fcfg.Orchestrator.SigningKey, fleet.Observability{Logger: g.logger, Metrics: metrics, Tracing: tracing})
	if err != nil {
		return err
	}
	h, err := withConsole(ctx, console.Config{AllowTokenSignin: true, Logger: g.logger}, srv.Handler())
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "tollgate dev is up\n  API:      http://%s\n  console:  http://%s/console/ (sign in with the token)\n  metrics:  http://%s/metrics\n  token:    %s\n  NATS:     %s\n  Temporal: %s\n  evidence: %s\n  state:    %s\n",
		o.listen, localAddr(o.listen), o.metricsListen, token, st.NATSURL(), st.TemporalAddr(), where, o.state)
	fmt.Fprintf(g.stdout, "  try:      tollgate submit --server http://%s --token %s --app NAME --wait DIR\n", o.listen, token)
	// tollgate scan finds this dev by its link in the state folder (and
	// checks that it answers before it uses it).
	unlink, err := writeDevLink(o.state, devLink{API: "http://" + localAddr(o.listen), Token: token, Full: o.full, PID: os.Getpid(), Version: Version})
	if err != nil {
		g.logger.WarnContext(ctx, "tollgate scan will not find this dev", "err", err)
	} else {
		defer unlink()
	}
	return serveHTTP(ctx, g, endpoint{"API", o.listen, h}, endpoint{"metrics", o.metricsListen, srv.MetricsHandler()})
}

// localAddr is a listen address as a client on this machine dials it: an
// empty or unspecified host is the loopback.
func localAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// stackConfig is the embedded stack dev runs: the orchestrator as the
// configuration (f) says, its policy from the flag; workers with the
// flags' DB and rules and the configuration's secret fingerprint key.
// NATS's streams, submitted archives and Temporal's history live in the
// state folder and outlive a restart, as the evidence does: Temporal runs
// on a file there, tuned as in the load test, never in memory.
func (o *devOptions) stackConfig(rules string, f fleet.Config) embedded.Config {
	orch := f.Orchestrator
	orch.PolicyDir = o.policy
	return embedded.Config{Orchestrator: orch,
		Worker:      fleet.Worker{DBDir: o.db, RulesDir: rules, SecretFingerprintKey: f.Worker.SecretFingerprintKey},
		EvidenceDir: o.evidence, StateDir: o.state, TemporalDBFile: filepath.Join(o.state, "temporal.db"), TemporalCLI: o.temporalCLI, Version: Version}
}

// defaultDevStateDir is $TOLLGATE_DEV_STATE_DIR, else tollgate/dev in the
// XDG state home ($XDG_STATE_HOME, else ~/.local/state).
func defaultDevStateDir() string {
	return xdgDir("TOLLGATE_DEV_STATE_DIR", "XDG_STATE_HOME", filepath.Join(".local", "state"), "dev")
}

// newDevAPI builds the API over an embedded stack with one all-roles token,
// wired as serve wires it; with the stack's signing key it verifies scans'
// attestations (GET /v1/scans/{id}/verify).
func newDevAPI(st *embedded.Stack, token string, full bool, signingKey string, o fleet.Observability) (*api.Server, error) {
	return fleet.NewAPI(fleet.Config{Version: Version, Orchestrator: fleet.Orchestrator{SigningKey: signingKey}, API: fleet.API{
		Tokens: []api.Token{{Name: "dev", SHA256: api.HashToken(token), Tenant: "dev", Roles: []string{api.RoleCI, api.RoleSRE, api.RoleOncall, api.RoleAdmin}}},
		Full:   full,
	}}, fleet.Clients{Temporal: st.Client(), JetStream: st.JetStream(), Evidence: st.Evidence(), Inputs: st.Inputs()}, o)
}

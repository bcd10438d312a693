package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/client"
	"sigs.k8s.io/yaml"

	"github.com/tollgate/tollgate/activities"
	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/fleet"
	"github.com/tollgate/tollgate/orchestrator"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/telemetry"
	"github.com/tollgate/tollgate/vulndb"
)

// Config is the fleet's configuration: one YAML file (--config or
// $TOLLGATE_CONFIG) with environment variables over it. Every process reads
// the parts it needs. The defaults fit servers on this host.
type Config struct {
	NATS struct {
		// URL of the NATS servers, comma-separated (default nats://127.0.0.1:4222).
		URL string `json:"url"`
		// Creds is a NATS credentials file (optional).
		Creds string `json:"creds"`
		// CAFile verifies the servers' TLS certificates (optional).
		CAFile string `json:"ca_file"`
		// TenantMaxPending caps one tenant's tasks not yet done in one pool
		// at one priority (default 256). Every process sets up the stream
		// with it, so give them all the same value.
		TenantMaxPending int `json:"tenant_max_pending"`
		// Replicas of tollgate's streams (tasks, events, dead letters) in a
		// clustered JetStream: 3 on a three-node cluster (default 1, at
		// most 5). Every process sets up the streams with it, so give them
		// all the same value.
		Replicas int `json:"replicas"`
	} `json:"nats"`
	Temporal struct {
		// Address of the frontend (default 127.0.0.1:7233).
		Address   string `json:"address"`
		Namespace string `json:"namespace"`
		// CAFile, CertFile and KeyFile enable TLS (and mTLS with a client cert).
		CAFile   string `json:"ca_file"`
		CertFile string `json:"cert_file"`
		KeyFile  string `json:"key_file"`
	} `json:"temporal"`
	// MinIO holds evidence and inputs when Endpoint is set; otherwise
	// EvidenceDir and InputsDir do (one host only).
	MinIO       storage.MinIOConfig `json:"minio"`
	EvidenceDir string              `json:"evidence_dir"`
	InputsDir   string              `json:"inputs_dir"`
	API         struct {
		Listen          string      `json:"listen"`
		Tokens          []api.Token `json:"tokens"`
		MaxArchiveBytes int64       `json:"max_archive_bytes"`
		RatePerSecond   float64     `json:"rate_per_second"`
		Burst           int         `json:"burst"`
		Full            bool        `json:"full"`
		OIDC            api.OIDC    `json:"oidc"`
	} `json:"api"`
	Worker struct {
		Concurrency int    `json:"concurrency"`
		DBDir       string `json:"db_dir"`
		// SecretFingerprintKey keys the fingerprints of secrets in reports
		// (at least 32 bytes, the same in every worker; required by workers).
		SecretFingerprintKey string `json:"secret_fingerprint_key"`
		// RulesDir is a folder of SAST rule files replacing the embedded
		// ones (fast workers; default: the embedded rules).
		RulesDir string `json:"rules_dir"`
		// TaskMemoryMiB is the memory one task's sandboxed scanners may
		// use above their warm state (default 1024); TaskTimeout one
		// task's deadline (a Go duration, default 10m). A task over either
		// blocks its scan (see workers/sandbox).
		TaskMemoryMiB int    `json:"task_memory_mib"`
		TaskTimeout   string `json:"task_timeout"`
	} `json:"worker"`
	PolicyDir string `json:"policy_dir"`
	// SigningKey signs the in-toto attestation of every scan (orchestrator).
	SigningKey string `json:"signing_key"`
	// MetricsListen is where a process serves /metrics: the orchestrator and
	// workers only when set; the API (serve, dev) always, on 127.0.0.1:9464
	// when unset, and never on its API listener (the metrics name tenants).
	MetricsListen string `json:"metrics_listen"`
	// OTLPEndpoint receives every process's traces over OTLP/gRPC
	// (host:port, plaintext; or an https:// URL); empty traces nothing.
	OTLPEndpoint string `json:"otlp_endpoint"`
	// Guard configures what the orchestrator's guards and rollbacks reach.
	Guard struct {
		// PrometheusURL is the Prometheus-compatible API guards pull
		// samples from when their rules have queries; PrometheusLag is how
		// far behind now they pull (a Go duration, default 15s: one scrape
		// interval, so that the queries of a sample see the same scrapes;
		// keep it under the guards' sample interval, or every pulled sample
		// is already stale).
		PrometheusURL string `json:"prometheus_url"`
		PrometheusLag string `json:"prometheus_lag"`
		// Targets are the deploy targets of rollbacks, keyed "tenant/app"
		// only: a bare app or "*" is refused, since it would serve every
		// tenant's app of that name.
		Targets map[string]deployers.Target `json:"targets"`
		// DefaultTarget is the operator's deploy target for every app of
		// every tenant without its own entry in Targets (optional; the
		// request names the tenant, and a flagd flag key derived for it
		// carries the tenant). $TOLLGATE_DEPLOY_WEBHOOK_URL sets it.
		DefaultTarget *deployers.Target `json:"default_target"`
	} `json:"guard"`
	// Rematch configures the re-matching of live releases' SBOMs.
	Rematch struct {
		// Interval is how often (a Go duration, default 1h; "off" never).
		Interval string `json:"interval"`
		// WebhookURL receives each verdict event, signed with the secret
		// in $TOLLGATE_EVENTS_WEBHOOK_SECRET (at least 32 bytes; required
		// when the URL is set).
		WebhookURL string `json:"webhook_url"`
	} `json:"rematch"`
	// TTL configures the idle-app TTL's sweep; its periods are policy data
	// (data.tollgate.config.ttl).
	TTL struct {
		// Interval is how often it sweeps (a Go duration, default 1h;
		// "off" never).
		Interval string `json:"interval"`
	} `json:"ttl"`
	// Console is the web console `serve` mounts at /console/ on the API's
	// listener (see console.Config).
	Console struct {
		Enabled bool `json:"enabled"`
		// ClientID is the console's OIDC client at api.oidc.issuer. It
		// must equal api.oidc.audience (its default): the ID token the
		// console receives is the bearer it sends the API, which accepts
		// only that audience.
		ClientID string `json:"client_id"`
		// ClientSecret is the client's secret at the issuer (empty for a
		// public client; PKCE protects the code either way). Better from
		// $TOLLGATE_CONSOLE_CLIENT_SECRET or the file named by
		// $TOLLGATE_CONSOLE_CLIENT_SECRET_FILE than in this file.
		ClientSecret string `json:"client_secret"`
		// RedirectURL is https://HOST/console/auth/callback as the browser
		// reaches it (required with an issuer).
		RedirectURL string `json:"redirect_url"`
		// AllowTokenSignin lets a static API token sign in (off: OIDC only).
		AllowTokenSignin bool `json:"allow_token_signin"`
	} `json:"console"`
}

// natsPingInterval is how often a tollgate process pings its NATS server.
const natsPingInterval = 3 * time.Second

// env lists every environment variable and the field it sets; the README's
// configuration table is made from the same names.
func (c *Config) env() map[string]*string {
	return map[string]*string{
		"TOLLGATE_NATS_URL":               &c.NATS.URL,
		"TOLLGATE_NATS_CREDS":             &c.NATS.Creds,
		"TOLLGATE_NATS_CA_FILE":           &c.NATS.CAFile,
		"TOLLGATE_TEMPORAL_ADDRESS":       &c.Temporal.Address,
		"TOLLGATE_TEMPORAL_NAMESPACE":     &c.Temporal.Namespace,
		"TOLLGATE_TEMPORAL_CA_FILE":       &c.Temporal.CAFile,
		"TOLLGATE_TEMPORAL_CERT_FILE":     &c.Temporal.CertFile,
		"TOLLGATE_TEMPORAL_KEY_FILE":      &c.Temporal.KeyFile,
		"TOLLGATE_MINIO_ENDPOINT":         &c.MinIO.Endpoint,
		"TOLLGATE_MINIO_ACCESS_KEY":       &c.MinIO.AccessKey,
		"TOLLGATE_MINIO_SECRET_KEY":       &c.MinIO.SecretKey,
		"TOLLGATE_MINIO_REGION":           &c.MinIO.Region,
		"TOLLGATE_EVIDENCE_BUCKET":        &c.MinIO.EvidenceBucket,
		"TOLLGATE_INPUTS_BUCKET":          &c.MinIO.InputsBucket,
		"TOLLGATE_RETENTION_MODE":         &c.MinIO.RetentionMode,
		"TOLLGATE_EVIDENCE_DIR":           &c.EvidenceDir,
		"TOLLGATE_INPUTS_DIR":             &c.InputsDir,
		"TOLLGATE_LISTEN":                 &c.API.Listen,
		"TOLLGATE_OIDC_ISSUER":            &c.API.OIDC.Issuer,
		"TOLLGATE_OIDC_AUDIENCE":          &c.API.OIDC.Audience,
		"TOLLGATE_OIDC_JWKS_URL":          &c.API.OIDC.JWKSURL,
		"TOLLGATE_DB_DIR":                 &c.Worker.DBDir,
		"TOLLGATE_SECRET_FINGERPRINT_KEY": &c.Worker.SecretFingerprintKey,
		"TOLLGATE_POLICY_DIR":             &c.PolicyDir,
		"TOLLGATE_SAST_RULES_DIR":         &c.Worker.RulesDir,
		"TOLLGATE_SIGNING_KEY":            &c.SigningKey,
		"TOLLGATE_PROMETHEUS_URL":         &c.Guard.PrometheusURL,
		"TOLLGATE_PROMETHEUS_LAG":         &c.Guard.PrometheusLag,
		"TOLLGATE_METRICS_LISTEN":         &c.MetricsListen,
		"TOLLGATE_OTLP_ENDPOINT":          &c.OTLPEndpoint,
		"TOLLGATE_REMATCH_INTERVAL":       &c.Rematch.Interval,
		"TOLLGATE_TTL_INTERVAL":           &c.TTL.Interval,
		"TOLLGATE_EVENTS_WEBHOOK_URL":     &c.Rematch.WebhookURL,
		"TOLLGATE_WORKER_TASK_TIMEOUT":    &c.Worker.TaskTimeout,
		"TOLLGATE_CONSOLE_CLIENT_ID":      &c.Console.ClientID,
		"TOLLGATE_CONSOLE_CLIENT_SECRET":  &c.Console.ClientSecret,
		"TOLLGATE_CONSOLE_REDIRECT_URL":   &c.Console.RedirectURL,
	}
}

// loadConfig reads the file (if any), then the environment, then defaults.
func loadConfig(path string) (Config, error) {
	var c Config
	path = cmp.Or(path, os.Getenv("TOLLGATE_CONFIG"))
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return Config{}, usageErrf("read config %q: %w", path, err)
		}
		if err := yaml.UnmarshalStrict(raw, &c); err != nil {
			return Config{}, usageErrf("config %q: %w", path, err)
		}
	}
	for name, field := range c.env() {
		if v, ok := os.LookupEnv(name); ok {
			*field = v
		}
	}
	ints := map[string]*int{"TOLLGATE_RETENTION_DAYS": &c.MinIO.RetentionDays, "TOLLGATE_WORKER_CONCURRENCY": &c.Worker.Concurrency,
		"TOLLGATE_WORKER_TASK_MEMORY_MIB": &c.Worker.TaskMemoryMiB,
		"TOLLGATE_TENANT_MAX_PENDING":     &c.NATS.TenantMaxPending, "TOLLGATE_NATS_REPLICAS": &c.NATS.Replicas}
	for name, field := range ints {
		if v, ok := os.LookupEnv(name); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return Config{}, usageErrf("$%s=%q: not a number", name, v)
			}
			*field = n
		}
	}
	bools := map[string]*bool{"TOLLGATE_MINIO_TLS": &c.MinIO.UseTLS, "TOLLGATE_SCAN_FULL": &c.API.Full,
		"TOLLGATE_CONSOLE": &c.Console.Enabled, "TOLLGATE_CONSOLE_TOKEN_SIGNIN": &c.Console.AllowTokenSignin}
	for name, field := range bools {
		if v, ok := os.LookupEnv(name); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, usageErrf("$%s=%q: want true or false", name, v)
			}
			*field = b
		}
	}
	// One webhook for every app: the quick way to point rollbacks somewhere.
	if v := os.Getenv("TOLLGATE_DEPLOY_WEBHOOK_URL"); v != "" {
		c.Guard.DefaultTarget = &deployers.Target{Type: deployers.TypeWebhook, URL: v, SecretEnv: "TOLLGATE_DEPLOY_WEBHOOK_SECRET"}
	}
	if err := orchestrator.ValidateTargets(c.Guard.Targets); err != nil {
		return Config{}, usageErrf("guard.targets: %w", err)
	}
	if v := os.Getenv("TOLLGATE_OIDC_ROLE_MAP"); v != "" {
		c.API.OIDC.RoleMap = nil
		if err := yaml.UnmarshalStrict([]byte(v), &c.API.OIDC.RoleMap); err != nil {
			return Config{}, usageErrf(`$TOLLGATE_OIDC_ROLE_MAP: want a map like {"tollgate-ci": ["ci"]}: %w`, err)
		}
	}
	if err := c.API.OIDC.Validate(); err != nil {
		return Config{}, usageErr(err)
	}
	if v := os.Getenv("TOLLGATE_TOKENS_FILE"); v != "" {
		raw, err := os.ReadFile(v)
		if err != nil {
			return Config{}, usageErrf("read tokens file %q: %w", v, err)
		}
		if err := yaml.UnmarshalStrict(raw, &c.API.Tokens); err != nil {
			return Config{}, usageErrf("tokens file %q: %w", v, err)
		}
	}
	if v := os.Getenv("TOLLGATE_CONSOLE_CLIENT_SECRET_FILE"); v != "" {
		raw, err := os.ReadFile(v)
		if err != nil {
			return Config{}, usageErrf("read console client secret file %q: %w", v, err)
		}
		c.Console.ClientSecret = strings.TrimSpace(string(raw))
	}
	if c.NATS.TenantMaxPending < 0 {
		return Config{}, usageErrf("nats.tenant_max_pending %d must not be negative", c.NATS.TenantMaxPending)
	}
	if c.NATS.Replicas < 0 || c.NATS.Replicas > 5 {
		return Config{}, usageErrf("nats.replicas %d: want 1 to 5 (JetStream's limit)", c.NATS.Replicas)
	}
	if err := activities.ValidateEventsWebhook(c.Rematch.WebhookURL, []byte(os.Getenv("TOLLGATE_EVENTS_WEBHOOK_SECRET"))); err != nil {
		return Config{}, usageErrf("rematch.webhook_url with $TOLLGATE_EVENTS_WEBHOOK_SECRET: %w", err)
	}
	c.NATS.URL = cmp.Or(c.NATS.URL, nats.DefaultURL)
	c.Temporal.Address = cmp.Or(c.Temporal.Address, "127.0.0.1:7233")
	c.Temporal.Namespace = cmp.Or(c.Temporal.Namespace, "default")
	c.API.Listen = cmp.Or(c.API.Listen, "127.0.0.1:8080")
	c.Worker.DBDir = cmp.Or(c.Worker.DBDir, vulndb.DefaultDir())
	c.EvidenceDir = cmp.Or(c.EvidenceDir, defaultEvidenceDir())
	c.InputsDir = cmp.Or(c.InputsDir, filepath.Join(filepath.Dir(c.EvidenceDir), "inputs"))
	return c, nil
}

// conns are the clients a fleet process holds.
type conns struct {
	temporal client.Client
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   tasks.StreamConfig
	evidence storage.Evidence
	inputs   interface {
		api.Inputs
		FetchTo(ctx context.Context, key, path string) error
	}
	metrics *telemetry.Metrics
	tracing *telemetry.Tracing
	// fleet is the configuration the process's roles are wired from.
	fleet   fleet.Config
	closers []func()
}

// fleet is the configuration in the typed form the fleet package wires
// processes from: this is where the file's and the environment's text
// (durations, MiB, keys) is parsed; fleet.Config.Validate checks the
// values. SAST rules directories are resolved by the commands that load
// them (rulesDir).
func (c Config) fleet() (fleet.Config, error) {
	lag, err := c.prometheusLag()
	if err != nil {
		return fleet.Config{}, err
	}
	every, err := interval("rematch.interval", c.Rematch.Interval)
	if err != nil {
		return fleet.Config{}, err
	}
	ttlEvery, err := interval("ttl.interval", c.TTL.Interval)
	if err != nil {
		return fleet.Config{}, err
	}
	timeout, err := c.taskTimeout()
	if err != nil {
		return fleet.Config{}, err
	}
	return fleet.Config{Version: Version,
		Temporal: fleet.Temporal{Address: c.Temporal.Address, Namespace: c.Temporal.Namespace,
			CAFile: c.Temporal.CAFile, CertFile: c.Temporal.CertFile, KeyFile: c.Temporal.KeyFile},
		API: fleet.API{Tokens: c.API.Tokens, MaxArchiveBytes: c.API.MaxArchiveBytes, RatePerSecond: c.API.RatePerSecond,
			Burst: c.API.Burst, Full: c.API.Full, OIDC: c.API.OIDC},
		Orchestrator: fleet.Orchestrator{PolicyDir: c.PolicyDir, SigningKey: c.SigningKey,
			Targets: c.Guard.Targets, DefaultTarget: c.Guard.DefaultTarget, RematchInterval: every, TTLInterval: ttlEvery,
			EventsWebhookURL: c.Rematch.WebhookURL, EventsWebhookSecret: os.Getenv("TOLLGATE_EVENTS_WEBHOOK_SECRET"),
			PrometheusURL: c.Guard.PrometheusURL, HealthLag: lag},
		Worker: fleet.Worker{Concurrency: c.Worker.Concurrency, DBDir: c.Worker.DBDir, RulesDir: c.Worker.RulesDir,
			SecretFingerprintKey: []byte(c.Worker.SecretFingerprintKey),
			TaskMemory:           int64(c.Worker.TaskMemoryMiB) << 20, TaskTimeout: timeout},
	}, nil
}

// fleetErr is err, as a usage error when the configuration is at fault.
func fleetErr(err error) error {
	if errors.Is(err, fleet.ErrConfig) {
		return usageErr(err)
	}
	return err
}

// clients are the process's connections and stores, for the fleet package.
func (c *conns) clients() fleet.Clients {
	return fleet.Clients{Temporal: c.temporal, JetStream: c.js, Stream: c.stream, Evidence: c.evidence, Inputs: c.inputs}
}

// observability is what the process reports through.
func (c *conns) observability(g *globals) fleet.Observability {
	return fleet.Observability{Logger: g.logger, Metrics: c.metrics, Tracing: c.tracing}
}

func (c *conns) Close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}

// connect dials Temporal and NATS and opens the stores. Temporal and NATS
// are retried for a while, so the processes of a stack may start in any order.
func connect(ctx context.Context, g *globals, cfg Config) (_ *conns, err error) {
	c := &conns{stream: tasks.StreamConfig{MaxPendingPerTenant: int64(cfg.NATS.TenantMaxPending), Replicas: cfg.NATS.Replicas}}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.metrics, err = telemetry.NewMetrics(); err != nil {
		return nil, err
	}
	if c.tracing, err = telemetry.NewOTLPTracing(ctx, cfg.OTLPEndpoint, processName()); err != nil {
		return nil, usageErr(err)
	}
	if c.tracing != nil {
		tr := c.tracing
		c.closers = append(c.closers, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tr.Shutdown(sctx)
		})
	}
	if c.fleet, err = cfg.fleet(); err != nil {
		return nil, err
	}
	if err := c.fleet.Validate(); err != nil {
		return nil, usageErr(err)
	}
	copts, err := fleet.TemporalOptions(c.fleet.Temporal, c.observability(g))
	if err != nil {
		return nil, fleetErr(err)
	}
	if c.temporal, err = dialTemporal(ctx, copts); err != nil {
		return nil, err
	}
	c.closers = append(c.closers, c.temporal.Close)

	// Pings every 3 s, two unanswered: a connection to a node cut off from
	// the network (the partition drill) moves to another URL in about 9 s.
	// nats.go's defaults (2 minutes, two) took 6 minutes, every JetStream
	// call on it timing out meanwhile.
	nopts := []nats.Option{nats.Name("tollgate"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true), nats.ReconnectWait(time.Second),
		nats.PingInterval(natsPingInterval), nats.MaxPingsOutstanding(2)}
	if cfg.NATS.Creds != "" {
		nopts = append(nopts, nats.UserCredentials(cfg.NATS.Creds))
	}
	if cfg.NATS.CAFile != "" {
		nopts = append(nopts, nats.RootCAs(cfg.NATS.CAFile))
	}
	if c.nc, err = nats.Connect(cfg.NATS.URL, nopts...); err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", cfg.NATS.URL, err)
	}
	c.closers = append(c.closers, c.nc.Close)
	if c.js, err = jetstream.New(c.nc); err != nil {
		return nil, fmt.Errorf("open JetStream: %w", err)
	}
	if err := retry(ctx, "create JetStream stream", func() error { return tasks.EnsureStream(ctx, c.js, c.stream) }); err != nil {
		return nil, err
	}

	if cfg.MinIO.Endpoint != "" {
		m, err := storage.OpenMinIO(ctx, cfg.MinIO, g.logger)
		if err != nil {
			return nil, err
		}
		c.evidence, c.inputs = m, m
		return c, nil
	}
	local, err := storage.OpenLocal(cfg.EvidenceDir)
	if err != nil {
		return nil, err
	}
	c.closers = append(c.closers, func() { local.Close() })
	inputs, err := storage.OpenLocalInputs(cfg.InputsDir)
	if err != nil {
		return nil, err
	}
	c.evidence, c.inputs = local, inputs
	return c, nil
}

func dialTemporal(ctx context.Context, opts client.Options) (client.Client, error) {
	var c client.Client
	err := retry(ctx, "connect to Temporal at "+opts.HostPort, func() error {
		var err error
		c, err = client.DialContext(ctx, opts)
		return err
	})
	return c, err
}

// retry runs fn until it succeeds, for up to a minute, backing off.
func retry(ctx context.Context, what string, fn func() error) error {
	deadline := time.Now().Add(time.Minute)
	delay := 200 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, errors.Join(ctx.Err(), err))
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// envNames lists the variables, for help texts.
func envNames() string {
	var c Config
	names := make([]string, 0, 24)
	for n := range c.env() {
		names = append(names, n)
	}
	names = append(names, "TOLLGATE_RETENTION_DAYS", "TOLLGATE_WORKER_CONCURRENCY", "TOLLGATE_WORKER_TASK_MEMORY_MIB", "TOLLGATE_NATS_REPLICAS", "TOLLGATE_MINIO_TLS", "TOLLGATE_SCAN_FULL", "TOLLGATE_DEPLOY_WEBHOOK_URL", "TOLLGATE_DEPLOY_WEBHOOK_SECRET", "TOLLGATE_TOKENS_FILE", "TOLLGATE_OIDC_ROLE_MAP", "TOLLGATE_CONFIG",
		"TOLLGATE_CONSOLE", "TOLLGATE_CONSOLE_TOKEN_SIGNIN", "TOLLGATE_CONSOLE_CLIENT_SECRET_FILE")
	return strings.Join(slices.Sorted(slices.Values(names)), ", ")
}

// prometheusLag reads guard.prometheus_lag: a Go duration, or empty for
// the default, 15s.
func (c Config) prometheusLag() (time.Duration, error) {
	if c.Guard.PrometheusLag == "" {
		return 15 * time.Second, nil
	}
	d, err := time.ParseDuration(c.Guard.PrometheusLag)
	if err != nil || d < 0 {
		return 0, usageErrf("guard.prometheus_lag %q: want a duration like 15s", c.Guard.PrometheusLag)
	}
	return d, nil
}

// taskTimeout reads worker.task_timeout: a positive Go duration, or empty
// for the default.
func (c Config) taskTimeout() (time.Duration, error) {
	if c.Worker.TaskTimeout == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(c.Worker.TaskTimeout)
	if err != nil || d <= 0 {
		return 0, usageErrf("worker.task_timeout %q: want a positive Go duration", c.Worker.TaskTimeout)
	}
	return d, nil
}

// processName is the service name of this process's traces: tollgate-serve,
// tollgate-orchestrator, tollgate-worker...
func processName() string {
	if len(os.Args) > 1 {
		return "tollgate-" + os.Args[1]
	}
	return "tollgate"
}

// interval reads a schedule's interval setting (rematch.interval,
// ttl.interval): a Go duration of at least a minute, "off", or empty for the
// default.
func interval(name, value string) (time.Duration, error) {
	switch value {
	case "":
		return 0, nil
	case "off":
		return -1, nil
	}
	d, err := time.ParseDuration(value)
	if err != nil || d < time.Minute {
		return 0, usageErrf("%s %q: want a duration of at least 1m, or \"off\"", name, value)
	}
	return d, nil
}

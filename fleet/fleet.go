// Package fleet wires tollgate's processes: the Temporal client every role
// dials, the API server, the orchestrator, and the workers with their
// sandboxed scanners, over the fleet's clients and stores. The
// commands (internal/cli: serve, orchestrator, worker, dev) and the
// embedded stack build them here, so that client options and the API's
// dependencies are written once; internal/cli keeps the commands, their
// flags, the configuration file and its environment variables, and output.
package fleet

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/tollgate/tollgate/activities"
	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/activities/healthpull"
	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/orchestrator"
	"github.com/tollgate/tollgate/telemetry"
	"github.com/tollgate/tollgate/workers/scanners"
)

// ErrConfig marks errors of the configuration itself (a field out of range,
// a file it names that cannot be read): the operator's to fix, not a
// server's to come back.
var ErrConfig = errors.New("fleet configuration")

// configError is an error of the configuration: it says what is wrong,
// and errors.Is finds ErrConfig in it.
type configError struct{ error }

func (e configError) Is(target error) bool { return target == ErrConfig }
func (e configError) Unwrap() error        { return e.error }

func configErrorf(format string, args ...any) error {
	return configError{fmt.Errorf(format, args...)}
}

// Config is what the wiring needs, whichever command starts the process.
// Zero fields take the documented defaults. Its errors name the fields as
// the configuration file spells them (worker.task_timeout).
type Config struct {
	Temporal     Temporal
	API          API
	Orchestrator Orchestrator
	Worker       Worker
	// Version is tollgate's version, written into SBOMs and SARIF.
	Version string
}

// Temporal is how a process reaches Temporal.
type Temporal struct {
	// Address of the frontend (default 127.0.0.1:7233).
	Address string
	// Namespace (default "default").
	Namespace string
	// CAFile verifies the frontend's certificate; CertFile and KeyFile,
	// given together, are the client's certificate (mTLS). Any of them
	// turns TLS on.
	CAFile, CertFile, KeyFile string
}

// API is the API server's part (see api.Config for the defaults).
type API struct {
	Tokens          []api.Token
	MaxArchiveBytes int64
	RatePerSecond   float64
	Burst           int
	// Full makes every scan run the deep stage even after a fast-stage block.
	Full bool
	OIDC api.OIDC
}

// Orchestrator is the orchestrator role's part (see orchestrator.Config).
type Orchestrator struct {
	// PolicyDir replaces the embedded policy bundle when set.
	PolicyDir string
	// LicenseDeny replaces the bundle's licence deny list when not nil.
	LicenseDeny []string
	// SigningKey is the PEM private key that signs each scan's in-toto
	// attestation (empty: unsigned).
	SigningKey string
	// Targets are the deploy targets of rollbacks, keyed "tenant/app"
	// only; DefaultTarget serves every app without its own entry.
	Targets       map[string]deployers.Target
	DefaultTarget *deployers.Target
	// RematchInterval is how often live releases are matched again
	// (0: the default, 1h; negative: never; else at least a minute).
	RematchInterval time.Duration
	// TTLInterval is how often the idle-app TTL sweeps the apps (0: the
	// default, 1h; negative: never; else at least a minute).
	TTLInterval time.Duration
	// EventsWebhookURL receives each verdict event, signed with
	// EventsWebhookSecret (at least 32 bytes; required with the URL).
	EventsWebhookURL    string
	EventsWebhookSecret string
	// PrometheusURL is the Prometheus-compatible API guards pull samples
	// from (empty: no pulling); Health, when set, pulls instead of it.
	PrometheusURL string
	Health        activities.HealthPuller
	// HealthLag is how far behind now samples are pulled (see
	// activities.Guard.PullLag; the commands default it to 15s).
	HealthLag time.Duration
}

// Worker is the workers' part: the pool's worker and its sandboxed
// scanners (see workers.Config and sandbox.Config).
type Worker struct {
	// Concurrency is how many tasks run at once, one sandboxed scanner
	// process per slot (default: the number of CPUs).
	Concurrency int
	// DBDir is the vulnerability DB the scanners load.
	DBDir string
	// RulesDir replaces the SAST engine's embedded rules when set.
	RulesDir string
	// SecretFingerprintKey keys the fingerprints of secrets in reports: at
	// least scanners.MinFingerprintKeyBytes, the same in every worker
	// (ValidateWorker requires it).
	SecretFingerprintKey []byte
	// TaskMemory (bytes) and TaskTimeout bound one task's sandboxed
	// scanners (defaults: sandbox.Config's, 1 GiB and 10m).
	TaskMemory  int64
	TaskTimeout time.Duration

	// The rest is the process's, not the configuration file's.

	// Name identifies a worker in results and logs, followed by its pool
	// (default: host-pid).
	Name string
	// ShutdownGrace is how long running tasks may finish once the worker
	// stops (default: workers.Config's, 30s).
	ShutdownGrace time.Duration
	// SandboxCommand starts a sandboxed scanner process (default: this
	// executable's sandbox-child); ReadRoots are the directories the
	// scanners may read besides their tree (embedded scans of a
	// directory); LogLevel is the children's.
	SandboxCommand []string
	ReadRoots      []string
	LogLevel       string
}

// Validate checks what can be checked without dialling anything. Each
// error names its field, and errors.Is(err, ErrConfig) holds. A worker's
// secret fingerprint key is checked by ValidateWorker.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, err error) { errs = append(errs, configErrorf("%s: %w", field, err)) }
	if (c.Temporal.CertFile == "") != (c.Temporal.KeyFile == "") {
		bad("temporal.cert_file, temporal.key_file", errors.New("give both or neither"))
	}
	if c.API.MaxArchiveBytes < 0 {
		bad("api.max_archive_bytes", fmt.Errorf("%d must not be negative", c.API.MaxArchiveBytes))
	}
	if c.API.RatePerSecond < 0 {
		bad("api.rate_per_second", fmt.Errorf("%g must not be negative", c.API.RatePerSecond))
	}
	if c.API.Burst < 0 {
		bad("api.burst", fmt.Errorf("%d must not be negative", c.API.Burst))
	}
	for i, t := range c.API.Tokens {
		if err := t.Validate(); err != nil {
			bad(fmt.Sprintf("api.tokens[%d]", i), err)
		}
	}
	if err := c.API.OIDC.Validate(); err != nil {
		bad("api.oidc", err)
	}
	o := c.Orchestrator
	if err := orchestrator.ValidateTargets(o.Targets); err != nil {
		bad("guard.targets", err)
	}
	if o.RematchInterval > 0 && o.RematchInterval < time.Minute {
		bad("rematch.interval", fmt.Errorf("%s: want at least 1m, or never", o.RematchInterval))
	}
	if o.TTLInterval > 0 && o.TTLInterval < time.Minute {
		bad("ttl.interval", fmt.Errorf("%s: want at least 1m, or never", o.TTLInterval))
	}
	if err := activities.ValidateEventsWebhook(o.EventsWebhookURL, []byte(o.EventsWebhookSecret)); err != nil {
		bad("rematch.webhook_url", err)
	}
	if o.PrometheusURL != "" {
		if _, err := healthpull.NewPuller(o.PrometheusURL, nil, nil); err != nil {
			bad("guard.prometheus_url", err)
		}
	}
	if o.HealthLag < 0 {
		bad("guard.prometheus_lag", fmt.Errorf("%s must not be negative", o.HealthLag))
	}
	w := c.Worker
	if w.Concurrency < 0 {
		bad("worker.concurrency", fmt.Errorf("%d must not be negative", w.Concurrency))
	}
	if w.TaskMemory < 0 {
		bad("worker.task_memory_mib", errors.New("must not be negative"))
	}
	if w.TaskTimeout < 0 {
		bad("worker.task_timeout", fmt.Errorf("%s: want a positive duration", w.TaskTimeout))
	}
	return errors.Join(errs...)
}

// ValidateWorker is Validate for a process that runs workers: every
// worker's secret fingerprint key must also be set, long enough.
func (c Config) ValidateWorker() error {
	var keyErr error
	if n := len(c.Worker.SecretFingerprintKey); n < scanners.MinFingerprintKeyBytes {
		keyErr = configErrorf("worker.secret_fingerprint_key ($TOLLGATE_SECRET_FINGERPRINT_KEY): %d bytes, want at least %d, the same in every worker", n, scanners.MinFingerprintKeyBytes)
	}
	return errors.Join(c.Validate(), keyErr)
}

// Observability is what a process reports through; each part may be nil.
type Observability struct {
	Logger  *slog.Logger
	Metrics *telemetry.Metrics
	Tracing *telemetry.Tracing
}

// TemporalOptions are the Temporal client options of every process: the
// address and namespace (defaults as Temporal says), TLS when configured,
// Temporal's logs into the process's logger, the SDK's metrics and the
// trace interceptor that carries a scan's trace through its workflow.
func TemporalOptions(t Temporal, o Observability) (client.Options, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := client.Options{HostPort: t.Address, Namespace: t.Namespace,
		Logger: tlog.NewStructuredLogger(logger.With("component", "temporal"))}
	if o.Metrics != nil {
		opts.MetricsHandler = o.Metrics.Temporal()
	}
	if o.Tracing != nil {
		ti, err := o.Tracing.TemporalInterceptor()
		if err != nil {
			return client.Options{}, fmt.Errorf("temporal trace interceptor: %w", err)
		}
		opts.Interceptors = append(opts.Interceptors, ti)
	}
	if t.CAFile != "" || t.CertFile != "" {
		tc, err := tlsConfig(t.CAFile, t.CertFile, t.KeyFile)
		if err != nil {
			return client.Options{}, err
		}
		opts.ConnectionOptions.TLS = tc
	}
	return opts, nil
}

// tlsConfig loads a CA file and a client certificate.
func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, configErrorf("read CA file %q: %w", caFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configErrorf("CA file %q has no PEM certificates", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, configErrorf("load client certificate %q: %w", certFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Package fleet wires tollgate's processes: the Temporal client every role
// dials, and the API server over the fleet's clients and stores. The
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

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/telemetry"
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
// Zero fields take the documented defaults.
type Config struct {
	Temporal Temporal
	API      API
	// Version is tollgate's version, written into SARIF.
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

// Validate checks what can be checked without dialling anything. Each
// error names its field, and errors.Is(err, ErrConfig) holds.
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
	return errors.Join(errs...)
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

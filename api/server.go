// Package api is tollgate's HTTP API (/v1): CI submits scans and reads
// verdicts and reports. Errors are application/problem+json; the OpenAPI
// document is served at /v1/openapi.json.
package api

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	"golang.org/x/time/rate"

	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/telemetry"
)

//go:embed openapi.json
var openapiDoc embed.FS

// Config of the API server. Zero fields take the documented defaults.
type Config struct {
	// Tokens are the static API tokens (hashes only).
	Tokens []Token
	// MaxArchiveBytes caps an uploaded archive (default 64 MiB).
	MaxArchiveBytes int64
	// DedupeWindow: the same archive, app and commit from one tenant within
	// this window is the same scan (default 10 minutes).
	DedupeWindow time.Duration
	// RatePerSecond and Burst limit each principal (defaults 5/s, burst 20).
	RatePerSecond float64
	Burst         int
	// Limits bound the edge's archive check.
	Limits archive.Limits
	// WorkDir holds uploads while they are checked (default os.TempDir()).
	WorkDir string
	// Full makes every scan run the deep stage even after a fast-stage block.
	Full bool
	// Version is tollgate's version, written into SARIF.
	Version string
	// OIDC accepts JWTs from an OpenID Connect issuer besides static tokens.
	OIDC OIDC
	// HealthClock bounds the times of pushed health samples (defaults: 2
	// minutes ahead, 15 minutes behind the server's clock).
	HealthClock HealthClock
}

func (c Config) withDefaults() Config {
	c.MaxArchiveBytes = cmp.Or(c.MaxArchiveBytes, 64<<20)
	c.DedupeWindow = cmp.Or(c.DedupeWindow, 10*time.Minute)
	c.RatePerSecond = cmp.Or(c.RatePerSecond, 5)
	c.Burst = cmp.Or(c.Burst, 20)
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if len(c.Tokens) == 0 && c.OIDC.Issuer == "" {
		return errors.New("api: no tokens and no OIDC issuer configured: nobody could authenticate")
	}
	if err := c.OIDC.Validate(); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	for _, t := range c.Tokens {
		if err := t.Validate(); err != nil {
			return fmt.Errorf("api: %w", err)
		}
	}
	if c.MaxArchiveBytes < 0 || c.RatePerSecond < 0 || c.Burst < 0 {
		return errors.New("api: limits must not be negative")
	}
	return c.Limits.Validate()
}

// Inputs stores uploaded archives by digest.
type Inputs interface {
	PutInput(ctx context.Context, r io.Reader, size int64) (storage.Object, error)
}

// Checker is one readiness check (NATS, Temporal, the store).
type Checker struct {
	Name  string
	Check func(ctx context.Context) error
}

// Deps are the server's clients.
type Deps struct {
	Temporal client.Client
	Inputs   Inputs
	Evidence storage.Evidence
	Ready    []Checker
	// Authorizer decides access (default: the embedded OPA policy).
	Authorizer Authorizer
	// Redactor removes secrets from submitted prompts; without one, a
	// submission with provenance is refused.
	Redactor Redactor
	// Releases and Guards serve the apps endpoints (releases, health,
	// rollback, freeze, guard status); without them those answer 501.
	Releases Releases
	Guards   Guards
	// Exceptions keeps the tenants' accepted risks (/v1/exceptions);
	// without it those answer 501.
	Exceptions Exceptions
	// Pools reads the worker pools' queues for GET /v1/pools (role sre);
	// without it that answers 501.
	Pools interface {
		Status(ctx context.Context) ([]tasks.PoolStatus, error)
	}
	// Tracer provider traces each request (none when nil); the Temporal
	// client carries the trace into the workflow.
	TracerProvider trace.TracerProvider
	// Metrics are served on /metrics beside the API's own (the Temporal
	// SDK's and, in one-process mode, the orchestrator's).
	Metrics prometheus.Gatherer
	Logger  *slog.Logger
}

// Server serves the API.
type Server struct {
	cfg  Config
	deps Deps
	oidc *oidcVerifier
	met  *metrics
	mu   sync.Mutex
	lim  map[string]*rate.Limiter
}

// New checks the configuration and builds a server.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Temporal == nil || deps.Inputs == nil || deps.Evidence == nil {
		return nil, errors.New("api: needs Temporal, an inputs store and an evidence store")
	}
	deps.Logger = cmp.Or(deps.Logger, slog.New(slog.DiscardHandler))
	if deps.Authorizer == nil {
		a, err := policies.NewAuthz(context.Background())
		if err != nil {
			return nil, err
		}
		deps.Authorizer = a
	}
	ov, err := newOIDCVerifier(context.Background(), cfg.OIDC)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg.withDefaults(), deps: deps, oidc: ov, met: newMetrics(deps.Metrics), lim: map[string]*rate.Limiter{}}, nil
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.Handler { return s.authenticate(h) }
	mux.Handle("POST /v1/scans", auth(s.createScan))
	mux.Handle("GET /v1/scans", auth(s.listScans))
	mux.Handle("GET /v1/scans/{id}", auth(s.getScan))
	mux.Handle("GET /v1/scans/{id}/report", auth(s.getReport))
	mux.Handle("POST /v1/scans/{id}/review", auth(s.reviewScan))
	mux.Handle("POST /v1/apps/{app}/releases", auth(s.createRelease))
	mux.Handle("GET /v1/apps/{app}/releases", auth(s.listReleases))
	mux.Handle("POST /v1/apps/{app}/health", auth(s.pushHealth))
	mux.Handle("POST /v1/apps/{app}/rollback", auth(s.rollback))
	mux.Handle("POST /v1/apps/{app}/freeze", auth(s.freeze))
	mux.Handle("POST /v1/apps/{app}/unfreeze", auth(s.unfreeze))
	mux.Handle("GET /v1/apps/{app}/guard", auth(s.guardStatus))
	mux.Handle("GET /v1/pools", auth(s.pools))
	mux.Handle("POST /v1/rematch", auth(s.triggerRematch))
	mux.Handle("POST /v1/exceptions", auth(s.createException))
	mux.Handle("GET /v1/exceptions", auth(s.listExceptions))
	mux.Handle("POST /v1/exceptions/{id}/revoke", auth(s.revokeException))
	mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		b, _ := openapiDoc.ReadFile("openapi.json")
		w.Write(b)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", s.met.handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	h := s.recoverer(s.met.instrument(mux))
	if s.deps.TracerProvider != nil {
		h = otelhttp.NewHandler(h, "tollgate-api", otelhttp.WithTracerProvider(s.deps.TracerProvider), otelhttp.WithPropagators(telemetry.Propagator))
	}
	return h
}

func (s *Server) allow(p Principal) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.lim[p.Name]
	if !ok {
		l = rate.NewLimiter(rate.Limit(s.cfg.RatePerSecond), s.cfg.Burst)
		s.lim[p.Name] = l
	}
	return l.Allow()
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	status := map[string]string{}
	ok := true
	for _, c := range s.deps.Ready {
		if err := c.Check(ctx); err != nil {
			status[c.Name] = err.Error()
			ok = false
		} else {
			status[c.Name] = "ok"
		}
	}
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, status)
		return
	}
	writeJSON(w, http.StatusOK, status)
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				s.deps.Logger.ErrorContext(r.Context(), "panic in handler", "path", r.URL.Path, "panic", v)
				writeProblem(w, r, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

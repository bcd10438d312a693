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
	"net/netip"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"

	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/control"
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
	// RatePerSecond and Burst limit each principal, keyed by tenant and
	// principal (defaults 5/s, burst 20).
	RatePerSecond float64
	Burst         int
	// IPRatePerSecond and IPBurst limit each client address before its
	// token is looked at (defaults 100/s, burst 200: many CI runners can
	// share one NAT address). An IPv6 client is keyed by its /64.
	IPRatePerSecond float64
	IPBurst         int
	// AuthFailureRate and AuthFailureBurst limit the invalid tokens one
	// address may send (defaults 1/s, burst 10): past them, its requests are
	// refused before any token is hashed or verified, so that a flood of
	// bad tokens (a JWT with an unknown key id makes the OIDC verifier fetch
	// the issuer's keys) does no work.
	AuthFailureRate  float64
	AuthFailureBurst int
	// TrustedProxies are the proxies whose X-Forwarded-For is believed: a
	// request from one of them is keyed by the right-most address in that
	// header that is not itself a trusted proxy. Empty (the default): the
	// connection's own address, always.
	TrustedProxies []netip.Prefix
	// MaxLimiterKeys bounds each rate limiter's table of clients
	// (default 10000): the least recently seen client is forgotten first.
	MaxLimiterKeys int
	// MaxConcurrentChecks bounds the archive checks (archive.Check) running
	// at once (default: the number of CPUs); CheckQueueWait is how long a
	// submission waits for a free slot before it is answered 503 with
	// Retry-After (default 10s).
	MaxConcurrentChecks int
	CheckQueueWait      time.Duration
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
	c.IPRatePerSecond = cmp.Or(c.IPRatePerSecond, 100)
	c.IPBurst = cmp.Or(c.IPBurst, 200)
	c.AuthFailureRate = cmp.Or(c.AuthFailureRate, 1)
	c.AuthFailureBurst = cmp.Or(c.AuthFailureBurst, 10)
	c.MaxLimiterKeys = cmp.Or(c.MaxLimiterKeys, 10000)
	c.MaxConcurrentChecks = cmp.Or(c.MaxConcurrentChecks, runtime.NumCPU())
	c.CheckQueueWait = cmp.Or(c.CheckQueueWait, 10*time.Second)
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
	if c.MaxArchiveBytes < 0 || c.RatePerSecond < 0 || c.Burst < 0 || c.IPRatePerSecond < 0 || c.IPBurst < 0 ||
		c.AuthFailureRate < 0 || c.AuthFailureBurst < 0 ||
		c.MaxLimiterKeys < 0 || c.MaxConcurrentChecks < 0 || c.CheckQueueWait < 0 {
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
	// Verifier checks scans' signed attestations for GET
	// /v1/scans/{id}/verify; without one that answers 501.
	Verifier *attest.Verifier
	// Exceptions keeps the tenants' accepted risks (/v1/exceptions);
	// without it those answer 501.
	Exceptions Exceptions
	// VEX keeps the tenants' VEX documents (/v1/vex); without it those
	// answer 501.
	VEX VEXDocuments
	// Pools reads the worker pools' queues for GET /v1/pools (role sre);
	// without it that answers 501.
	Pools interface {
		Status(ctx context.Context) ([]tasks.PoolStatus, error)
	}
	// Tracer provider traces each request (none when nil); the Temporal
	// client carries the trace into the workflow.
	TracerProvider trace.TracerProvider
	// Metrics are served by MetricsHandler beside the API's own (the
	// Temporal SDK's and, in one-process mode, the orchestrator's).
	Metrics prometheus.Gatherer
	Logger  *slog.Logger
}

// Server serves the API.
type Server struct {
	cfg   Config
	deps  Deps
	scans *control.Scans
	oidc  *oidcVerifier
	met   *metrics
	edge  *edge
	// actions are the authorization policy's actions, which GET /v1/whoami
	// asks the Authorizer about.
	actions []string
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
	actions, err := policies.AuthzActions(context.Background())
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Server{cfg: cfg, deps: deps, scans: &control.Scans{Temporal: deps.Temporal}, oidc: ov, met: newMetrics(deps.Metrics), edge: newEdge(cfg),
		actions: actions}, nil
}

// Route is one endpoint of the API: a method and a net/http pattern.
// Public routes answer without a token.
type Route struct {
	Method  string
	Pattern string
	Public  bool
}

// String is the route as net/http registers it ("GET /v1/scans").
func (r Route) String() string { return r.Method + " " + r.Pattern }

type route struct {
	Route
	handle func(*Server, http.ResponseWriter, *http.Request)
}

// routes is the one table of endpoints: Handler registers exactly these,
// and Routes lists them for the tests that must cover every one (the
// cross-tenant matrix, the OpenAPI document).
var routes = []route{
	{Route{Method: http.MethodPost, Pattern: "/v1/scans"}, (*Server).createScan},
	{Route{Method: http.MethodGet, Pattern: "/v1/scans"}, (*Server).listScans},
	{Route{Method: http.MethodGet, Pattern: "/v1/scans/{id}"}, (*Server).getScan},
	{Route{Method: http.MethodGet, Pattern: "/v1/scans/{id}/report"}, (*Server).getReport},
	{Route{Method: http.MethodGet, Pattern: "/v1/scans/{id}/verify"}, (*Server).verifyScan},
	{Route{Method: http.MethodPost, Pattern: "/v1/scans/{id}/review"}, (*Server).reviewScan},
	{Route{Method: http.MethodGet, Pattern: "/v1/scans/{id}/diff/{other}"}, (*Server).diffScans},
	{Route{Method: http.MethodPost, Pattern: "/v1/apps/{app}/releases"}, (*Server).createRelease},
	{Route{Method: http.MethodGet, Pattern: "/v1/apps/{app}/releases"}, (*Server).listReleases},
	{Route{Method: http.MethodPost, Pattern: "/v1/apps/{app}/health"}, (*Server).pushHealth},
	{Route{Method: http.MethodPost, Pattern: "/v1/apps/{app}/rollback"}, (*Server).rollback},
	{Route{Method: http.MethodPost, Pattern: "/v1/apps/{app}/freeze"}, (*Server).freeze},
	{Route{Method: http.MethodPost, Pattern: "/v1/apps/{app}/unfreeze"}, (*Server).unfreeze},
	{Route{Method: http.MethodGet, Pattern: "/v1/apps/{app}/guard"}, (*Server).guardStatus},
	{Route{Method: http.MethodPost, Pattern: "/v1/apps/{app}/revive"}, (*Server).revive},
	{Route{Method: http.MethodGet, Pattern: "/v1/apps"}, (*Server).listApps},
	{Route{Method: http.MethodGet, Pattern: "/v1/whoami"}, (*Server).whoami},
	{Route{Method: http.MethodGet, Pattern: "/v1/pools"}, (*Server).pools},
	{Route{Method: http.MethodPost, Pattern: "/v1/rematch"}, (*Server).triggerRematch},
	{Route{Method: http.MethodPost, Pattern: "/v1/exceptions"}, (*Server).createException},
	{Route{Method: http.MethodGet, Pattern: "/v1/exceptions"}, (*Server).listExceptions},
	{Route{Method: http.MethodPost, Pattern: "/v1/exceptions/{id}/revoke"}, (*Server).revokeException},
	{Route{Method: http.MethodPost, Pattern: "/v1/vex"}, (*Server).addVEX},
	{Route{Method: http.MethodGet, Pattern: "/v1/vex"}, (*Server).listVEX},
	{Route{Method: http.MethodGet, Pattern: "/v1/openapi.json", Public: true}, (*Server).openapi},
	{Route{Method: http.MethodGet, Pattern: "/healthz", Public: true}, (*Server).healthz},
	{Route{Method: http.MethodGet, Pattern: "/readyz", Public: true}, (*Server).ready},
}

// Routes lists every endpoint Handler serves.
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, r := range routes {
		out[i] = r.Route
	}
	return out
}

// Handler returns the routes. Metrics are not among them: they carry
// tenant labels and are served by MetricsHandler on a listener of their own.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rt.handle(s, w, r) })
		if !rt.Public {
			h = s.authenticate(h)
		}
		mux.Handle(rt.String(), s.limitAddress(h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	h := s.recoverer(s.met.instrument(mux))
	if s.deps.TracerProvider != nil {
		h = otelhttp.NewHandler(h, "tollgate-api", otelhttp.WithTracerProvider(s.deps.TracerProvider), otelhttp.WithPropagators(telemetry.Propagator))
	}
	return h
}

// MetricsHandler serves the API's Prometheus metrics and Deps.Metrics. It
// has no authentication and its series name tenants: serve it on a
// listener only the monitoring system reaches, never beside Handler.
func (s *Server) MetricsHandler() http.Handler { return s.met.handler() }

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	b, _ := openapiDoc.ReadFile("openapi.json")
	w.Write(b)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
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

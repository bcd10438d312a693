package fleet

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/client"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/vex"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workers/scanners"
)

// Clients are the connections and stores a process of the fleet holds:
// the fleet's own (serve) or an embedded stack's (dev).
type Clients struct {
	Temporal  client.Client
	JetStream jetstream.JetStream
	Stream    tasks.StreamConfig
	Evidence  storage.Evidence
	Inputs    Inputs
}

// Inputs keeps submitted archives: the API puts them, workers fetch them.
type Inputs interface {
	api.Inputs
	workers.ArchiveSource
}

// NewAPI builds the API server over the fleet's clients: scans and the
// guard client through Temporal, releases and exceptions in the evidence
// store, the orchestrator's signing key's public half to verify scans with, the pools' queues, the workers' gitleaks rules as the redactor of
// submitted prompts, readiness checks of Temporal, NATS and the evidence
// store, and the process's metrics (the pools' queues among them) and
// traces.
func NewAPI(cfg Config, c Clients, o Observability) (*api.Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	redactor, err := scanners.NewSecrets()
	if err != nil {
		return nil, err
	}
	pools := tasks.Pools{JS: c.JetStream, Config: c.Stream}
	deps := api.Deps{Temporal: c.Temporal, Inputs: c.Inputs, Evidence: c.Evidence, Logger: o.Logger, Ready: Readiness(c), Redactor: redactor,
		Releases: NewReleaseStore(c.Evidence), Exceptions: NewExceptionStore(c.Evidence), VEX: NewVEXStore(c.Evidence), Guards: &control.Guards{Temporal: c.Temporal},
		Pools: pools}
	if cfg.Orchestrator.SigningKey != "" {
		// The API verifies attestations with the key the orchestrator signs with.
		signer, err := attest.LoadSigner(cfg.Orchestrator.SigningKey)
		if err != nil {
			return nil, configError{err}
		}
		if deps.Verifier, err = attest.NewVerifier(signer.Public()); err != nil {
			return nil, configError{err}
		}
	}
	if o.Metrics != nil {
		if err := ObservePools(o.Metrics.Meter("tollgate/api"), pools); err != nil {
			return nil, err
		}
		deps.Metrics = o.Metrics.Gatherer()
	}
	if o.Tracing != nil {
		deps.TracerProvider = o.Tracing.Provider
	}
	srv, err := api.New(api.Config{Tokens: cfg.API.Tokens, MaxArchiveBytes: cfg.API.MaxArchiveBytes, RatePerSecond: cfg.API.RatePerSecond,
		Burst: cfg.API.Burst, Full: cfg.API.Full, Version: cfg.Version, OIDC: cfg.API.OIDC}, deps)
	if err != nil {
		return nil, configError{err}
	}
	return srv, nil
}

// Readiness is the API's /readyz: Temporal, NATS and the evidence store.
func Readiness(c Clients) []api.Checker {
	return []api.Checker{
		{Name: "temporal", Check: func(ctx context.Context) error {
			_, err := c.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}},
		{Name: "nats", Check: func(ctx context.Context) error { _, err := c.JetStream.AccountInfo(ctx); return err }},
		{Name: "evidence", Check: func(ctx context.Context) error {
			_, _, err := c.Evidence.Get(ctx, "readyz-probe")
			if err == nil || errors.Is(err, storage.ErrNotFound) {
				return nil
			}
			return err
		}},
	}
}

// NewReleaseStore is the release record over the evidence store.
func NewReleaseStore(ev storage.Evidence) *releases.Store {
	lister, _ := ev.(storage.Lister)
	return &releases.Store{Evidence: ev, Lister: lister}
}

// NewExceptionStore is the tenants' accepted risks over the evidence store.
func NewExceptionStore(ev storage.Evidence) *exceptions.Store {
	lister, _ := ev.(storage.Lister)
	return &exceptions.Store{Evidence: ev, Lister: lister}
}

// NewVEXStore is the tenants' VEX documents over the evidence store.
func NewVEXStore(ev storage.Evidence) *vex.Store {
	lister, _ := ev.(storage.Lister)
	return &vex.Store{Evidence: ev, Lister: lister}
}

// ObservePools reports each pool's queue on every scrape: tasks pending, in
// progress and redelivered, and the oldest task's age.
func ObservePools(meter metric.Meter, pools tasks.Pools) error {
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

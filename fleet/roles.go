package fleet

import (
	"cmp"
	"context"
	"log/slog"
	"runtime"

	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/worker"

	"github.com/tollgate/tollgate/activities/healthpull"
	"github.com/tollgate/tollgate/orchestrator"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workers/sandbox"
)

// meter is o's meter of the given name, or nil without metrics.
func (o Observability) meter(name string) metric.Meter {
	if o.Metrics == nil {
		return nil
	}
	return o.Metrics.Meter(name)
}

// StartOrchestrator starts the orchestrator role (see orchestrator.Start)
// of cfg over the fleet's clients: tasks go to c's stream, guards pull
// cfg.Orchestrator's Prometheus, scan metrics go to the process's meter.
// Stop the returned worker to shut it down.
func StartOrchestrator(ctx context.Context, cfg Config, c Clients, o Observability) (worker.Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	oc := cfg.Orchestrator
	health := oc.Health
	if health == nil && oc.PrometheusURL != "" {
		p, err := healthpull.NewPuller(oc.PrometheusURL, nil, o.Logger)
		if err != nil {
			return nil, configError{err}
		}
		health = p
	}
	return orchestrator.Start(ctx, orchestrator.Config{PolicyDir: oc.PolicyDir, LicenseDeny: oc.LicenseDeny, Stream: c.Stream,
		SigningKey: oc.SigningKey, Version: cfg.Version, Targets: oc.Targets, DefaultTarget: oc.DefaultTarget,
		Health: health, HealthLag: oc.HealthLag, RematchInterval: oc.RematchInterval, TTLInterval: oc.TTLInterval,
		EventsWebhookURL: oc.EventsWebhookURL, EventsWebhookSecret: oc.EventsWebhookSecret},
		orchestrator.Deps{Temporal: c.Temporal, Publisher: c.JetStream, Evidence: c.Evidence,
			Meter: o.meter("tollgate/orchestrator"), Logger: o.Logger})
}

// StartSandbox starts one pool's sandboxed scanner processes, one per
// worker slot, as cfg.Worker says. It needs the secret fingerprint key
// (ValidateWorker).
func StartSandbox(ctx context.Context, cfg Config, pool string, logger *slog.Logger) (*sandbox.Pool, error) {
	if err := cfg.ValidateWorker(); err != nil {
		return nil, err
	}
	w := cfg.Worker
	return sandbox.Start(ctx, sandbox.Config{Command: w.SandboxCommand, Slots: cmp.Or(w.Concurrency, runtime.NumCPU()), Name: pool,
		Kinds: tasks.PoolKinds(pool), DBDir: w.DBDir, RulesDir: w.RulesDir, Version: cfg.Version, ReadRoots: w.ReadRoots, TaskMemory: w.TaskMemory,
		TaskTimeout: w.TaskTimeout, LogLevel: w.LogLevel, SecretFingerprintKey: w.SecretFingerprintKey}, logger)
}

// NewWorker builds one pool's worker (see workers.New) of cfg over the
// fleet's clients, running its scanners in sb (see StartSandbox).
func NewWorker(cfg Config, pool string, c Clients, sb workers.Sandbox, o Observability) (*workers.Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := cfg.Worker
	name := ""
	if w.Name != "" {
		name = w.Name + "-" + pool
	}
	wc := workers.Config{Pool: pool, Concurrency: w.Concurrency, Name: name, ShutdownGrace: w.ShutdownGrace, Stream: c.Stream}
	if err := wc.Validate(); err != nil {
		return nil, configError{err}
	}
	return workers.New(wc, workers.Deps{JetStream: c.JetStream, Temporal: c.Temporal, Evidence: c.Evidence, Inputs: c.Inputs, Sandbox: sb,
		Meter: o.meter("tollgate/worker"), Tracer: o.Tracing.Tracer("tollgate/worker"), Logger: o.Logger})
}

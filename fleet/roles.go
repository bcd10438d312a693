package fleet

import (
	"context"

	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/worker"

	"github.com/tollgate/tollgate/orchestrator"
	"github.com/tollgate/tollgate/workers"
)

// meter is o's meter of the given name, or nil without metrics.
func (o Observability) meter(name string) metric.Meter {
	if o.Metrics == nil {
		return nil
	}
	return o.Metrics.Meter(name)
}

// StartOrchestrator starts the orchestrator role (see orchestrator.Start)
// over the fleet's clients: tasks go to c's stream, scan metrics to the
// process's meter. Stop the returned worker to shut it down.
func StartOrchestrator(ctx context.Context, cfg orchestrator.Config, c Clients, o Observability) (worker.Worker, error) {
	cfg.Stream = c.Stream
	return orchestrator.Start(ctx, cfg, orchestrator.Deps{Temporal: c.Temporal, Publisher: c.JetStream, Evidence: c.Evidence,
		Meter: o.meter("tollgate/orchestrator"), Logger: o.Logger})
}

// NewWorker builds one pool's worker (see workers.New) over the fleet's
// clients, running its scanners in sb.
func NewWorker(cfg workers.Config, c Clients, sb workers.Sandbox, o Observability) (*workers.Worker, error) {
	cfg.Stream = c.Stream
	return workers.New(cfg, workers.Deps{JetStream: c.JetStream, Temporal: c.Temporal, Evidence: c.Evidence, Inputs: c.Inputs, Sandbox: sb,
		Meter: o.meter("tollgate/worker"), Tracer: o.Tracing.Tracer("tollgate/worker"), Logger: o.Logger})
}

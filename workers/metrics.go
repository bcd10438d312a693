package workers

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Task outcomes, the "outcome" attribute of tollgate.worker.tasks.
const (
	outcomeOK         = "ok"
	outcomeFailed     = "failed"
	outcomeBadInput   = "bad_input"
	outcomeHandedBack = "handed_back" // the worker stopped, or Temporal was unreachable
	outcomeStale      = "stale"       // the activity no longer waited for it
	outcomeLimit      = "limit"       // the sandbox stopped the scanner on this input again: the scan is blocked
)

// instruments are the worker's OpenTelemetry metrics.
type instruments struct {
	tasks        metric.Int64Counter
	redelivered  metric.Int64Counter
	scanner      metric.Float64Histogram
	evidence     metric.Float64Histogram
	evidenceFail metric.Int64Counter
	pool         attribute.KeyValue
}

// newInstruments makes the instruments on meter (a no-op meter when nil), and
// the busy and slots gauges read from w.
func newInstruments(meter metric.Meter, w *Worker) (*instruments, error) {
	if meter == nil {
		meter = noop.NewMeterProvider().Meter("")
	}
	in := &instruments{pool: attribute.String("pool", w.cfg.Pool)}
	var err error
	if in.tasks, err = meter.Int64Counter("tollgate.worker.tasks", metric.WithDescription("Tasks a worker handled, by pool, kind and outcome.")); err != nil {
		return nil, err
	}
	if in.redelivered, err = meter.Int64Counter("tollgate.worker.redeliveries", metric.WithDescription("Tasks that reached a worker more than once.")); err != nil {
		return nil, err
	}
	if in.scanner, err = meter.Float64Histogram("tollgate.scanner.duration", metric.WithUnit("s"), metric.WithDescription("Time each scanner took on one task.")); err != nil {
		return nil, err
	}
	if in.evidence, err = meter.Float64Histogram("tollgate.evidence.write.duration", metric.WithUnit("s"), metric.WithDescription("Evidence writes from workers, by outcome.")); err != nil {
		return nil, err
	}
	if in.evidenceFail, err = meter.Int64Counter("tollgate.evidence.write.failures", metric.WithDescription("Evidence writes that failed.")); err != nil {
		return nil, err
	}
	busy, err := meter.Int64ObservableGauge("tollgate.worker.busy", metric.WithDescription("Tasks running now; busy below slots is idle capacity."))
	if err != nil {
		return nil, err
	}
	slots, err := meter.Int64ObservableGauge("tollgate.worker.slots", metric.WithDescription("Tasks a worker runs at once."))
	if err != nil {
		return nil, err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(busy, w.busy.Load(), metric.WithAttributes(in.pool))
		o.ObserveInt64(slots, int64(w.cfg.Concurrency), metric.WithAttributes(in.pool))
		return nil
	}, busy, slots)
	return in, err
}

func (in *instruments) task(ctx context.Context, kind, outcome string) {
	in.tasks.Add(ctx, 1, metric.WithAttributes(in.pool, attribute.String("kind", kind), attribute.String("outcome", outcome)))
}

func (in *instruments) scanners(ctx context.Context, timings map[string]float64) {
	for name, s := range timings {
		in.scanner.Record(ctx, s, metric.WithAttributes(attribute.String("scanner", name)))
	}
}

func (in *instruments) evidenceWrite(ctx context.Context, began time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
		in.evidenceFail.Add(ctx, 1)
	}
	in.evidence.Record(ctx, time.Since(began).Seconds(), metric.WithAttributes(attribute.String("outcome", outcome)))
}

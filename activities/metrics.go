package activities

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/tollgate/tollgate/report"
)

// scanInstruments count finished scans; Finalize records them once per
// scan (a retried Finalize may count one twice, never none).
type scanInstruments struct {
	scans metric.Int64Counter
	stage metric.Float64Histogram
}

func (a *Activities) instruments() *scanInstruments {
	a.metOnce.Do(func() {
		meter := a.Meter
		if meter == nil {
			meter = noop.NewMeterProvider().Meter("")
		}
		in := &scanInstruments{}
		in.scans, _ = meter.Int64Counter("tollgate.scans", metric.WithDescription("Finished scans by verdict and the stage that decided it."))
		in.stage, _ = meter.Float64Histogram("tollgate.stage.duration", metric.WithUnit("s"), metric.WithDescription("Time of each scan stage, dispatch to decision."))
		a.met = in
	})
	return a.met
}

func (in *scanInstruments) finished(ctx context.Context, r report.Report) {
	in.scans.Add(ctx, 1, metric.WithAttributes(attribute.String("verdict", string(r.Verdict)), attribute.String("stage", r.Stage)))
	for _, stage := range []string{report.StageFast, report.StageDeep, "total"} {
		if s, ok := r.Timings[stage]; ok {
			in.stage.Record(ctx, s, metric.WithAttributes(attribute.String("stage", stage)))
		}
	}
}

// Package telemetry sets up tollgate's metrics: an OpenTelemetry meter
// provider exported in the Prometheus format, and the Temporal SDK's metrics
// handler over it (which is how workflows count things without counting them
// again on replay).
package telemetry

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// secondsBuckets suit what tollgate times: from API calls (milliseconds) to
// the time from a breach to its rollback (minutes).
var secondsBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}

// Metrics is one process's metrics.
type Metrics struct {
	registry *prometheus.Registry
	provider *sdkmetric.MeterProvider
}

// NewMetrics builds a meter provider that the returned Metrics serves in the
// Prometheus text format.
func NewMetrics() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("metrics: prometheus exporter: %w", err)
	}
	seconds := sdkmetric.NewView(
		sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: secondsBuckets}},
	)
	return &Metrics{registry: reg, provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithView(seconds))}, nil
}

// Temporal is the Temporal SDK metrics handler to put in client.Options.
func (m *Metrics) Temporal() client.MetricsHandler {
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter: m.provider.Meter("tollgate/temporal"),
		// Counters only go up: export them as counters, not gauges.
		UseMonotonicCounters: true,
		OnError:              func(error) {}, // a bad instrument is dropped, never a panic in a workflow
	})
}

// Meter is a meter of the provider, for a component's own instruments.
func (m *Metrics) Meter(name string) metric.Meter { return m.provider.Meter(name) }

// Gatherer is the registry, for serving beside other registries.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.registry }

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Shutdown flushes and stops the meter provider.
func (m *Metrics) Shutdown(ctx context.Context) error { return m.provider.Shutdown(ctx) }

package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// Propagator carries trace context between processes: W3C traceparent and
// baggage, in HTTP headers, Temporal headers and NATS message headers.
var Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Tracing is a process's tracer provider.
type Tracing struct {
	Provider trace.TracerProvider
}

// NewTracing exports the spans of this process through exp (an OTLP
// exporter in the fleet, an in-memory one in tests), as service.
func NewTracing(exp sdktrace.SpanExporter, service string) *Tracing {
	res := resource.NewSchemaless(attribute.String("service.name", service))
	return &Tracing{Provider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))}
}

// NewOTLPTracing exports spans over OTLP/gRPC to endpoint (host:port;
// insecure unless the scheme is https), or returns nil tracing when endpoint
// is empty.
func NewOTLPTracing(ctx context.Context, endpoint, service string) (*Tracing, error) {
	if endpoint == "" {
		return nil, nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(endpoint)}
	if !strings.Contains(endpoint, "://") {
		opts = []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure()}
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter for %s: %w", endpoint, err)
	}
	return NewTracing(exp, service), nil
}

// Tracer is a tracer of the provider; without tracing, a no-op one.
func (t *Tracing) Tracer(name string) trace.Tracer {
	if t == nil || t.Provider == nil {
		return noop.NewTracerProvider().Tracer(name)
	}
	return t.Provider.Tracer(name)
}

// TemporalInterceptor traces Temporal calls: starting a workflow from the
// API, and running workflows and activities in the orchestrator, all in the
// caller's trace.
func (t *Tracing) TemporalInterceptor() (interceptor.Interceptor, error) {
	return opentelemetry.NewTracingInterceptor(opentelemetry.TracerOptions{Tracer: t.Tracer("tollgate/temporal"), TextMapPropagator: Propagator})
}

// Shutdown flushes the spans not yet exported.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if p, ok := t.Provider.(*sdktrace.TracerProvider); ok {
		return p.Shutdown(ctx)
	}
	return nil
}

// InjectNATS writes ctx's trace context into a NATS message's headers.
func InjectNATS(ctx context.Context, msg *nats.Msg) {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	Propagator.Inject(ctx, propagation.HeaderCarrier(http.Header(msg.Header)))
}

// ExtractNATS returns ctx with the trace context of a message's headers.
func ExtractNATS(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return Propagator.Extract(ctx, propagation.HeaderCarrier(http.Header(h)))
}

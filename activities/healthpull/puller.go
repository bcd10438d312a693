package healthpull

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/tollgate/tollgate/health"
)

// Puller reads HealthSamples from a Prometheus-compatible query API
// (Prometheus, Thanos, Mimir, VictoriaMetrics). It is safe for concurrent
// use.
type Puller struct {
	api     promv1.API
	address string
	logger  *slog.Logger
}

// NewPuller returns a Puller for the query API at address, the server's base
// URL (http://prometheus:9090, or a path prefix such as
// https://mimir/prometheus). rt carries the requests (nil: client_golang's
// default transport); authentication goes there. A nil logger logs nothing.
func NewPuller(address string, rt http.RoundTripper, logger *slog.Logger) (*Puller, error) {
	u, err := url.Parse(address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("new health puller: address %q is not an http(s) URL", address)
	}
	client, err := api.NewClient(api.Config{Address: address, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("new health puller for %q: %w", address, err)
	}
	return &Puller{
		api:     promv1.NewAPI(client),
		address: address,
		logger:  cmp.Or(logger, slog.New(slog.DiscardHandler)),
	}, nil
}

// Pull evaluates each of q's queries as an instant query at `at` and returns
// one sample stamped `at`.
//
// A signal without data, a query that returns an empty vector, NaN or ±Inf
// (histogram_quantile without traffic, 0/0), stays zero in the sample and is
// named in missing (SignalRequests, ...). The guard counts missing data as
// inconclusive, never healthy, so where absence means zero, say so in the
// query: `sum(increase(http_requests_total{code=~"5.."}[30s])) or vector(0)`.
//
// It fails when the queries are invalid (ValidateQueries), a query fails,
// returns more than one series (it must aggregate, e.g. with sum), a range
// vector or a native histogram, a count or latency is negative, or the
// values make no sample (more errors than requests). Counts are rounded:
// increase() extrapolates. Each query's server-side timeout is what is left
// of ctx's deadline. Warnings from the server are logged.
//
// The queries run one after another, each seeing what the server has stored
// by then. Near "now" a scrape stamped before `at` can land between two of
// them, and Errors count traffic that Requests did not. Pull at least one
// scrape timeout in the past to read a settled sample.
func (p *Puller) Pull(ctx context.Context, q health.Queries, at time.Time) (s health.Sample, missing []string, err error) {
	if err := ValidateQueries(q); err != nil {
		return health.Sample{}, nil, fmt.Errorf("pull health from %s: %w", p.address, err)
	}
	if at.IsZero() {
		return health.Sample{}, nil, fmt.Errorf("pull health from %s: no time to evaluate the queries at", p.address)
	}
	s.At = at
	for _, sg := range signals(q) {
		v, ok, err := p.query(ctx, sg.expr, at)
		if err == nil && ok {
			err = sg.set(&s, v)
		}
		if err != nil {
			return health.Sample{}, nil, fmt.Errorf("pull %s from %s: query %q at %s: %w", sg.name, p.address, sg.expr, at.UTC().Format(time.RFC3339), err)
		}
		if !ok {
			missing = append(missing, sg.name)
		}
	}
	if err := s.Validate(); err != nil {
		return health.Sample{}, nil, fmt.Errorf("pull health from %s: queries %q and %q disagree: %w", p.address, q.Requests, q.Errors, err)
	}
	p.logger.DebugContext(ctx, "pulled health sample", "address", p.address, "at", at,
		"requests", s.Requests, "errors", s.Errors, "p50", s.P50, "p95", s.P95, "p99", s.P99, "missing", missing)
	return s, missing, nil
}

// query runs one instant query; ok is false when it found no data.
func (p *Puller) query(ctx context.Context, expr string, at time.Time) (v float64, ok bool, err error) {
	var opts []promv1.Option
	if deadline, has := ctx.Deadline(); has {
		timeout := queryTimeout(time.Until(deadline))
		if timeout <= 0 {
			return 0, false, cmp.Or(ctx.Err(), context.DeadlineExceeded)
		}
		opts = append(opts, promv1.WithTimeout(timeout))
	}
	res, warnings, err := p.api.Query(ctx, expr, at, opts...)
	if len(warnings) > 0 {
		p.logger.WarnContext(ctx, "prometheus warned about a health query", "address", p.address, "query", expr, "warnings", []string(warnings))
	}
	if err != nil {
		return 0, false, describe(err)
	}
	return value(res)
}

// queryTimeout is d as Prometheus's timeout parameter can read it: whole
// seconds, or whole milliseconds under a second. Its duration syntax has no
// fractions ("1.5s"), and the rest of a second is better left to the client.
func queryTimeout(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Truncate(time.Second)
	}
	return d.Truncate(time.Millisecond)
}

// describe adds the body of a non-API error response (a proxy's 502, a
// 503 from a server that is starting) to client_golang's "server error: 503".
func describe(err error) error {
	var apiErr *promv1.Error
	if errors.As(err, &apiErr) && apiErr.Detail != "" {
		detail := apiErr.Detail
		if len(detail) > 200 {
			detail = detail[:200] + "..."
		}
		return fmt.Errorf("%w (%q)", err, detail)
	}
	return err
}

// value is the one number an instant query returned; ok is false for no
// data: an empty vector, NaN or ±Inf.
func value(res model.Value) (v float64, ok bool, err error) {
	switch r := res.(type) {
	case model.Vector:
		switch {
		case len(r) == 0:
			return 0, false, nil
		case len(r) > 1:
			return 0, false, fmt.Errorf("%d series, want one: aggregate them, e.g. with sum()", len(r))
		case r[0].Histogram != nil:
			return 0, false, errors.New("a native histogram, want a number: use histogram_quantile or histogram_count")
		}
		v = float64(r[0].Value)
	case *model.Scalar:
		v = float64(r.Value)
	case nil:
		return 0, false, errors.New("no result")
	default:
		return 0, false, fmt.Errorf("a %s, want an instant vector or a scalar", res.Type())
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, nil
	}
	return v, true, nil
}

// count rounds a request or error count.
func count(v float64) (int64, error) {
	switch {
	case v < 0:
		return 0, fmt.Errorf("negative count %g", v)
	case v >= math.MaxInt64:
		return 0, fmt.Errorf("count %g is too large", v)
	}
	return int64(math.Round(v)), nil
}

// seconds turns a latency in seconds into a Duration, to the nanosecond.
func seconds(v float64) (time.Duration, error) {
	switch {
	case v < 0:
		return 0, fmt.Errorf("negative latency %gs", v)
	case v*float64(time.Second) >= math.MaxInt64:
		return 0, fmt.Errorf("latency %gs is too large", v)
	}
	return time.Duration(math.Round(v * float64(time.Second))), nil
}

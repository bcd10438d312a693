// Package health reads an app's HealthSamples from a Prometheus-compatible
// query API: one PromQL instant query per signal, evaluated at the sample's
// time. It is the pull side of the guard; samples can also be pushed over
// HTTP.
package healthpull

import (
	"errors"

	"github.com/tollgate/tollgate/health"
)

// Signal names, as Pull reports missing ones; they are the JSON names of
// the health.Queries fields.
const (
	SignalRequests = "requests"
	SignalErrors   = "errors"
	SignalP50      = "p50"
	SignalP95      = "p95"
	SignalP99      = "p99"
)

// signal is one query of a health.Queries and the sample field its
// value goes to.
type signal struct {
	name string
	expr string
	set  func(*health.Sample, float64) error
}

// signals lists q's non-empty queries in field order.
func signals(q health.Queries) []signal {
	all := []signal{
		{SignalRequests, q.Requests, func(s *health.Sample, v float64) (err error) { s.Requests, err = count(v); return }},
		{SignalErrors, q.Errors, func(s *health.Sample, v float64) (err error) { s.Errors, err = count(v); return }},
		{SignalP50, q.P50, func(s *health.Sample, v float64) (err error) { s.P50, err = seconds(v); return }},
		{SignalP95, q.P95, func(s *health.Sample, v float64) (err error) { s.P95, err = seconds(v); return }},
		{SignalP99, q.P99, func(s *health.Sample, v float64) (err error) { s.P99, err = seconds(v); return }},
	}
	var out []signal
	for _, sg := range all {
		if sg.expr != "" {
			out = append(out, sg)
		}
	}
	return out
}

// ValidateQueries rejects queries that cannot make a sample the guard can
// judge. Requests and Errors are required: without Errors every sample reads
// as error-free, and without Requests the guard ignores the sample. The
// percentiles are optional. The expressions are not parsed here; Prometheus
// rejects a bad one with the query's error.
func ValidateQueries(q health.Queries) error {
	switch {
	case q.IsZero():
		return errors.New("health queries: none set")
	case q.Requests == "":
		return errors.New("health queries: no requests query (the guard ignores samples without traffic)")
	case q.Errors == "":
		return errors.New("health queries: no errors query (every sample would read as error-free)")
	}
	return nil
}

// Package health is the release guard's domain: the health samples an app's
// traffic gives, the rules that judge them (error rate, p95 latency against
// a baseline, over windows), the PromQL queries samples are pulled with, and
// the release being judged. It is plain, deterministic code: the guard and
// rollback workflows, the policies that set the rules, the releases store
// and the Prometheus puller all import it, and it imports none of them.
package health

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Sample is one period of an app's traffic, ending at At: how many
// requests it served, how many failed, and its latency percentiles.
type Sample struct {
	At       time.Time     `json:"at"`
	Requests int64         `json:"requests"`
	Errors   int64         `json:"errors"`
	P50      time.Duration `json:"p50"`
	P95      time.Duration `json:"p95"`
	P99      time.Duration `json:"p99"`
	// Source is SourcePull for a sample the guard pulled, empty for a
	// pushed one; the guard sets it, whatever a pusher sends.
	Source string `json:"source,omitempty"`
}

// Validate rejects samples that cannot describe real traffic.
func (s Sample) Validate() error {
	switch {
	case s.At.IsZero():
		return errors.New("health sample has no time")
	case s.Requests < 0 || s.Errors < 0:
		return fmt.Errorf("health sample at %s: negative counts (requests %d, errors %d)", s.At.Format(time.RFC3339), s.Requests, s.Errors)
	case s.Errors > s.Requests:
		return fmt.Errorf("health sample at %s: %d errors out of %d requests", s.At.Format(time.RFC3339), s.Errors, s.Requests)
	case s.P50 < 0 || s.P95 < 0 || s.P99 < 0:
		return fmt.Errorf("health sample at %s: negative latency", s.At.Format(time.RFC3339))
	}
	return nil
}

// Rules say when a release is unhealthy. A rule breaches when every sample in
// its window is over the threshold and the samples cover the whole window:
// "error rate above 3% for 5 minutes" means five minutes of it, not a spike
// that lifts a five-minute average. Zero values take the defaults below.
type Rules struct {
	// ErrorRate is the highest healthy error rate, a fraction (default 0.03).
	ErrorRate float64 `json:"error_rate,omitempty"`
	// ErrorWindow is how long the error rate must stay above ErrorRate
	// (default 5m).
	ErrorWindow time.Duration `json:"error_window,omitempty"`
	// LatencyFactor times the release's baseline p95 is the highest healthy
	// p95 (default 2.0). A release without a baseline is guarded on its error
	// rate only.
	LatencyFactor float64 `json:"latency_factor,omitempty"`
	// LatencyWindow is how long p95 must stay above the limit (default 3m).
	LatencyWindow time.Duration `json:"latency_window,omitempty"`
	// ConsecutiveBreaches is how many evaluations in a row must find a breach
	// before the guard acts (default 1).
	ConsecutiveBreaches int `json:"consecutive_breaches,omitempty"`
	// SampleInterval is how often the guard evaluates, and the cadence it
	// expects samples at (default 30s). A gap of more than two intervals
	// between samples is missing data.
	SampleInterval time.Duration `json:"sample_interval,omitempty"`
	// MinRequests is the fewest requests a window needs to be judged at all
	// (default 1); below it the window is inconclusive.
	MinRequests int64 `json:"min_requests,omitempty"`
	// DryRun records the rollbacks the guard would start, and starts none.
	DryRun bool `json:"dry_run,omitempty"`
	// KnownGoodAfter is how long a release must be judged healthy without a
	// break before it is marked known-good, a release to roll back to
	// (default 30m).
	KnownGoodAfter time.Duration `json:"known_good_after,omitempty"`
	// Queries pull a sample from Prometheus every interval, besides the
	// pushed ones; empty pulls nothing.
	Queries Queries `json:"queries,omitzero"`
}

// WithDefaults returns the rules with every zero value replaced by its default.
func (r Rules) WithDefaults() Rules {
	r.ErrorRate = cmp.Or(r.ErrorRate, 0.03)
	r.ErrorWindow = cmp.Or(r.ErrorWindow, 5*time.Minute)
	r.LatencyFactor = cmp.Or(r.LatencyFactor, 2.0)
	r.LatencyWindow = cmp.Or(r.LatencyWindow, 3*time.Minute)
	r.ConsecutiveBreaches = cmp.Or(r.ConsecutiveBreaches, 1)
	r.SampleInterval = cmp.Or(r.SampleInterval, 30*time.Second)
	r.MinRequests = cmp.Or(r.MinRequests, 1)
	r.KnownGoodAfter = cmp.Or(r.KnownGoodAfter, 30*time.Minute)
	return r
}

// Validate checks rules that already have their defaults.
func (r Rules) Validate() error {
	switch {
	case r.ErrorRate <= 0 || r.ErrorRate >= 1:
		return fmt.Errorf("rules: error rate %g is not between 0 and 1", r.ErrorRate)
	case r.LatencyFactor <= 1:
		return fmt.Errorf("rules: latency factor %g is not above 1", r.LatencyFactor)
	case r.ConsecutiveBreaches < 1:
		return fmt.Errorf("rules: consecutive breaches %d is below 1", r.ConsecutiveBreaches)
	case r.MinRequests < 1:
		return fmt.Errorf("rules: min requests %d is below 1", r.MinRequests)
	case r.SampleInterval < time.Second:
		return fmt.Errorf("rules: sample interval %s is under a second", r.SampleInterval)
	case r.KnownGoodAfter < r.SampleInterval:
		return fmt.Errorf("rules: known-good-after %s is under the sample interval %s", r.KnownGoodAfter, r.SampleInterval)
	case r.Queries.Errors != "" && r.Queries.Requests == "":
		return errors.New("rules: an errors query needs a requests query to be a rate")
	case r.ErrorWindow < r.SampleInterval || r.LatencyWindow < r.SampleInterval:
		return fmt.Errorf("rules: windows (error %s, latency %s) must be at least the sample interval %s", r.ErrorWindow, r.LatencyWindow, r.SampleInterval)
	}
	return nil
}

// LongestWindow is how much sample history the guard keeps.
func (r Rules) LongestWindow() time.Duration { return max(r.ErrorWindow, r.LatencyWindow) }

// MaxGap is the longest stretch without a sample that still counts as data.
func (r Rules) MaxGap() time.Duration { return 2 * r.SampleInterval }

// Signals the rules measure.
const (
	SignalErrorRate  = "error_rate"  // a fraction of requests
	SignalP95Latency = "p95_latency" // seconds
)

// Measurement is a measured value against its threshold, over a window.
type Measurement struct {
	Signal    string        `json:"signal"`
	Value     float64       `json:"value"`
	Threshold float64       `json:"threshold"`
	Window    time.Duration `json:"window"`
}

// Outcome is what one rule concluded about one window.
type Outcome string

const (
	OutcomeHealthy Outcome = "healthy"
	OutcomeBreach  Outcome = "breach"
	// OutcomeInconclusive is missing data: no samples, too few requests, a
	// stale or gappy window. It is never healthy and never a breach.
	OutcomeInconclusive Outcome = "inconclusive"
)

// Evaluation is one rule's verdict on one window. Value is the error rate of
// all requests in the window, or the request-weighted mean p95; it is zero
// when there was nothing to measure.
type Evaluation struct {
	Measurement
	Outcome  Outcome `json:"outcome"`
	Reason   string  `json:"reason"`
	Samples  int     `json:"samples"`
	Requests int64   `json:"requests"`
}

// Evaluate applies every rule that can apply to the samples at now: the error
// rate always, the latency rule when the release has a baseline p95.
func Evaluate(samples []Sample, now time.Time, r Rules, baselineP95 time.Duration) []Evaluation {
	out := []Evaluation{EvaluateErrorRate(samples, now, r)}
	if baselineP95 > 0 {
		out = append(out, EvaluateLatency(samples, now, r, baselineP95))
	}
	return out
}

// EvaluateErrorRate judges the error rate over r.ErrorWindow ending at now.
func EvaluateErrorRate(samples []Sample, now time.Time, r Rules) Evaluation {
	return evaluate(samples, now, r, Measurement{Signal: SignalErrorRate, Threshold: r.ErrorRate, Window: r.ErrorWindow},
		func(s Sample) float64 { return float64(s.Errors) / float64(s.Requests) },
		func(in []Sample) float64 {
			var reqs, errs int64
			for _, s := range in {
				reqs, errs = reqs+s.Requests, errs+s.Errors
			}
			return float64(errs) / float64(reqs)
		})
}

// EvaluateLatency judges p95 over r.LatencyWindow ending at now, against
// r.LatencyFactor times the baseline.
func EvaluateLatency(samples []Sample, now time.Time, r Rules, baselineP95 time.Duration) Evaluation {
	limit := time.Duration(float64(baselineP95) * r.LatencyFactor)
	return evaluate(samples, now, r, Measurement{Signal: SignalP95Latency, Threshold: limit.Seconds(), Window: r.LatencyWindow},
		func(s Sample) float64 { return s.P95.Seconds() },
		func(in []Sample) float64 {
			var reqs int64
			var sum float64
			for _, s := range in {
				reqs += s.Requests
				sum += s.P95.Seconds() * float64(s.Requests)
			}
			return sum / float64(reqs)
		})
}

// evaluate is the shape both rules share. m carries the signal, threshold and
// window; of is a sample's own value, over the window's.
func evaluate(samples []Sample, now time.Time, r Rules, m Measurement, of func(Sample) float64, over func([]Sample) float64) Evaluation {
	start := now.Add(-m.Window)
	// Samples stamped after now (clock skew between the app and Temporal)
	// still count. Samples without traffic say nothing about either rule.
	var in []Sample
	var reqs int64
	for _, s := range samples {
		if s.At.After(start) && s.Requests > 0 {
			in = append(in, s)
			reqs += s.Requests
		}
	}
	slices.SortStableFunc(in, func(a, b Sample) int { return a.At.Compare(b.At) })
	ev := Evaluation{Measurement: m, Outcome: OutcomeInconclusive, Samples: len(in), Requests: reqs}
	win := m.Window.String()
	if len(in) == 0 {
		ev.Reason = fmt.Sprintf("%s: no samples with traffic in the last %s", m.Signal, win)
		return ev
	}
	if reqs < r.MinRequests {
		ev.Reason = fmt.Sprintf("%s: %d requests in the last %s, fewer than the %d needed", m.Signal, reqs, win, r.MinRequests)
		return ev
	}
	ev.Value = over(in)
	last := in[len(in)-1].At
	if age := now.Sub(last); age > r.MaxGap() {
		ev.Reason = fmt.Sprintf("%s: no sample for %s", m.Signal, age)
		return ev
	}
	above := 0
	for _, s := range in {
		if of(s) > m.Threshold {
			above++
		}
	}
	if above < len(in) {
		ev.Outcome = OutcomeHealthy
		ev.Reason = fmt.Sprintf("%s %.4g over %s against %.4g; %d of %d samples above", m.Signal, ev.Value, win, m.Threshold, above, len(in))
		return ev
	}
	// Every sample is above: a breach only if they span the whole window. A
	// sample covers the interval before its time, so the first must come
	// within one interval of the window's start; later gaps may be up to
	// MaxGap (one lost sample).
	prev, allowed := start, r.SampleInterval
	for _, s := range in {
		if gap := s.At.Sub(prev); gap > allowed {
			ev.Reason = fmt.Sprintf("%s %.4g above %.4g, but the samples of the last %s have a gap of %s", m.Signal, ev.Value, m.Threshold, win, gap)
			return ev
		}
		prev, allowed = s.At, r.MaxGap()
	}
	ev.Outcome = OutcomeBreach
	ev.Reason = fmt.Sprintf("%s %.4g over %s above %.4g", m.Signal, ev.Value, win, m.Threshold)
	return ev
}

package health

import (
	"math"
	"strings"
	"testing"
	"time"
)

var ruleNow = time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)

// series returns one sample every 30s, the last at ruleNow-lastAgo, covering
// span before it.
func series(span, lastAgo time.Duration, s Sample) []Sample {
	var out []Sample
	for ago := lastAgo + span - 30*time.Second; ago >= lastAgo; ago -= 30 * time.Second {
		x := s
		x.At = ruleNow.Add(-ago)
		out = append(out, x)
	}
	return out
}

var (
	good = Sample{Requests: 100, Errors: 1, P95: 150 * time.Millisecond}
	bad  = Sample{Requests: 100, Errors: 5, P95: 150 * time.Millisecond}
	slow = Sample{Requests: 100, Errors: 1, P95: 900 * time.Millisecond}
)

func join(parts ...[]Sample) []Sample {
	var out []Sample
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestEvaluateErrorRate(t *testing.T) {
	t.Parallel()
	rules := Rules{}.WithDefaults()
	tests := []struct {
		name    string
		samples []Sample
		rules   Rules
		want    Outcome
		value   float64
		reason  string
	}{
		{name: "healthy window", samples: series(5*time.Minute, 0, good), want: OutcomeHealthy, value: 0.01},
		{name: "breach over the whole window", samples: series(5*time.Minute, 0, bad), want: OutcomeBreach, value: 0.05, reason: "error_rate 0.05 over 5m0s above 0.03"},
		{name: "breach after healthy samples", samples: join(series(3*time.Minute, 5*time.Minute, good), series(5*time.Minute, 0, bad)), want: OutcomeBreach, value: 0.05},
		{name: "breach shorter than the window", samples: join(series(2*time.Minute, 4*time.Minute, good), series(4*time.Minute, 0, bad)), want: OutcomeHealthy},
		{name: "spike inside the window", samples: join(series(2*time.Minute, 3*time.Minute, good), series(time.Minute, 2*time.Minute, Sample{Requests: 100, Errors: 50}), series(2*time.Minute, 0, good)), want: OutcomeHealthy},
		{name: "no samples", want: OutcomeInconclusive, reason: "no samples"},
		{name: "only samples older than the window", samples: series(5*time.Minute, 6*time.Minute, bad), want: OutcomeInconclusive, reason: "no samples"},
		{name: "samples without traffic", samples: series(5*time.Minute, 0, Sample{}), want: OutcomeInconclusive, reason: "no samples"},
		{name: "too few requests", samples: series(5*time.Minute, 0, Sample{Requests: 2, Errors: 2}), rules: Rules{MinRequests: 100}, want: OutcomeInconclusive, value: 0, reason: "fewer than the 100 needed"},
		{name: "stale samples", samples: series(4*time.Minute, time.Minute+time.Second, bad), want: OutcomeInconclusive, reason: "no sample for"},
		{name: "breaching but not yet for the whole window", samples: series(3*time.Minute, 0, bad), want: OutcomeInconclusive, reason: "gap"},
		{name: "breaching with a hole", samples: join(series(2*time.Minute, 3*time.Minute, bad), series(90*time.Second, 0, bad)), want: OutcomeInconclusive, reason: "gap of 2m0s"},
		{name: "one lost sample is no hole", samples: join(series(150*time.Second, 150*time.Second, bad), series(2*time.Minute, 0, bad)), want: OutcomeBreach},
		{name: "samples from the future count", samples: append(series(5*time.Minute, 0, bad), Sample{At: ruleNow.Add(5 * time.Second), Requests: 100, Errors: 5}), want: OutcomeBreach, value: 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := rules
			if tt.rules != (Rules{}) {
				r = tt.rules.WithDefaults()
			}
			ev := EvaluateErrorRate(tt.samples, ruleNow, r)
			if ev.Outcome != tt.want {
				t.Fatalf("outcome %s (%s), want %s", ev.Outcome, ev.Reason, tt.want)
			}
			if tt.value != 0 && math.Abs(ev.Value-tt.value) > 1e-9 {
				t.Errorf("value %g, want %g", ev.Value, tt.value)
			}
			if ev.Signal != SignalErrorRate || ev.Threshold != 0.03 || ev.Window != 5*time.Minute {
				t.Errorf("measurement %+v", ev.Measurement)
			}
			if !strings.Contains(ev.Reason, tt.reason) {
				t.Errorf("reason %q, want it to mention %q", ev.Reason, tt.reason)
			}
		})
	}
}

func TestEvaluateLatency(t *testing.T) {
	t.Parallel()
	rules := Rules{}.WithDefaults()
	baseline := 200 * time.Millisecond
	tests := []struct {
		name    string
		samples []Sample
		want    Outcome
		value   float64
	}{
		{name: "within twice the baseline", samples: series(3*time.Minute, 0, good), want: OutcomeHealthy, value: 0.15},
		{name: "slow for the whole window", samples: join(series(2*time.Minute, 3*time.Minute, good), series(3*time.Minute, 0, slow)), want: OutcomeBreach, value: 0.9},
		{name: "slow for two minutes", samples: join(series(2*time.Minute, 2*time.Minute, good), series(2*time.Minute, 0, slow)), want: OutcomeHealthy},
		{name: "slow since the window began", samples: series(3*time.Minute, 0, slow), want: OutcomeBreach, value: 0.9},
		{name: "no data", want: OutcomeInconclusive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := EvaluateLatency(tt.samples, ruleNow, rules, baseline)
			if ev.Outcome != tt.want {
				t.Fatalf("outcome %s (%s), want %s", ev.Outcome, ev.Reason, tt.want)
			}
			if tt.value != 0 && math.Abs(ev.Value-tt.value) > 1e-9 {
				t.Errorf("value %g, want %g", ev.Value, tt.value)
			}
			if ev.Signal != SignalP95Latency || math.Abs(ev.Threshold-0.4) > 1e-9 || ev.Window != 3*time.Minute {
				t.Errorf("measurement %+v", ev.Measurement)
			}
		})
	}
}

func TestEvaluateSkipsLatencyWithoutBaseline(t *testing.T) {
	t.Parallel()
	r := Rules{}.WithDefaults()
	if evs := Evaluate(series(5*time.Minute, 0, slow), ruleNow, r, 0); len(evs) != 1 || evs[0].Signal != SignalErrorRate {
		t.Fatalf("got %+v, want the error rate only", evs)
	}
	if evs := Evaluate(series(5*time.Minute, 0, slow), ruleNow, r, 200*time.Millisecond); len(evs) != 2 || evs[1].Outcome != OutcomeBreach {
		t.Fatalf("got %+v, want a latency breach", evs)
	}
}

func TestRulesDefaultsAndValidate(t *testing.T) {
	t.Parallel()
	d := Rules{}.WithDefaults()
	want := Rules{ErrorRate: 0.03, ErrorWindow: 5 * time.Minute, LatencyFactor: 2, LatencyWindow: 3 * time.Minute, ConsecutiveBreaches: 1, SampleInterval: 30 * time.Second, MinRequests: 1, KnownGoodAfter: 30 * time.Minute}
	if d != want {
		t.Fatalf("defaults %+v, want %+v", d, want)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	kept := Rules{ErrorRate: 0.1, DryRun: true}.WithDefaults()
	if kept.ErrorRate != 0.1 || !kept.DryRun {
		t.Fatalf("set values lost: %+v", kept)
	}
	bad := map[string]Rules{
		"error rate above 1":           {ErrorRate: 1.5},
		"negative error rate":          {ErrorRate: -0.1},
		"latency factor 1":             {LatencyFactor: 1},
		"negative breaches":            {ConsecutiveBreaches: -1},
		"negative min requests":        {MinRequests: -5},
		"sub-second interval":          {SampleInterval: time.Millisecond},
		"window shorter than interval": {ErrorWindow: 10 * time.Second},
	}
	for name, r := range bad {
		if err := r.WithDefaults().Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestHealthSampleValidate(t *testing.T) {
	t.Parallel()
	ok := Sample{At: ruleNow, Requests: 10, Errors: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Sample{
		"no time":           {Requests: 1},
		"negative requests": {At: ruleNow, Requests: -1},
		"more errors":       {At: ruleNow, Requests: 1, Errors: 2},
		"negative latency":  {At: ruleNow, Requests: 1, P95: -time.Second},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

package policies

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/tollgate/tollgate/health"
)

// guardQuery is the Engine's key for data.tollgate.guard.rules.
const guardQuery = "guard"

// guardRules is the policy's shape of health.Rules: durations are strings.
type guardRules struct {
	ErrorRate           float64        `json:"error_rate"`
	ErrorWindow         string         `json:"error_window"`
	LatencyFactor       float64        `json:"latency_factor"`
	LatencyWindow       string         `json:"latency_window"`
	ConsecutiveBreaches int            `json:"consecutive_breaches"`
	SampleInterval      string         `json:"sample_interval"`
	MinRequests         int64          `json:"min_requests"`
	KnownGoodAfter      string         `json:"known_good_after"`
	DryRun              bool           `json:"dry_run"`
	Queries             health.Queries `json:"queries"`
}

// GuardRules returns the guard's rules for an app, from
// data.tollgate.guard.rules. A bundle without guard rules gives the zero
// Rules (tollgate's defaults); the result is validated with its defaults.
func (e *Engine) GuardRules(ctx context.Context, tenant, app string) (health.Rules, error) {
	rs, err := e.queries[guardQuery].Eval(ctx, rego.EvalInput(map[string]any{"tenant": tenant, "app": app}))
	if err != nil {
		return health.Rules{}, fmt.Errorf("guard rules of %s/%s from %q: %w", tenant, app, e.source, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return health.Rules{}, nil
	}
	raw, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		return health.Rules{}, fmt.Errorf("guard rules of %s/%s: encode: %w", tenant, app, err)
	}
	var g guardRules
	if err := json.Unmarshal(raw, &g); err != nil {
		return health.Rules{}, fmt.Errorf("guard rules of %s/%s from %q: %w", tenant, app, e.source, err)
	}
	r := health.Rules{
		ErrorRate: g.ErrorRate, LatencyFactor: g.LatencyFactor, ConsecutiveBreaches: g.ConsecutiveBreaches,
		MinRequests: g.MinRequests, DryRun: g.DryRun, Queries: g.Queries,
	}
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
	}{
		{"error_window", g.ErrorWindow, &r.ErrorWindow},
		{"latency_window", g.LatencyWindow, &r.LatencyWindow},
		{"sample_interval", g.SampleInterval, &r.SampleInterval},
		{"known_good_after", g.KnownGoodAfter, &r.KnownGoodAfter},
	} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return health.Rules{}, fmt.Errorf("guard rules of %s/%s from %q: %s: %w", tenant, app, e.source, d.name, err)
		}
		*d.out = v
	}
	if err := r.WithDefaults().Validate(); err != nil {
		return health.Rules{}, fmt.Errorf("guard rules of %s/%s from %q: %w", tenant, app, e.source, err)
	}
	return r, nil
}

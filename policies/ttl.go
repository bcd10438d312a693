package policies

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
)

// ttlQuery is the Engine's key for data.tollgate.ttl.periods.
const ttlQuery = "ttl"

// Default periods of the idle-app TTL, when policy sets none.
const (
	DefaultIdleAfter = 30 * 24 * time.Hour
	DefaultGrace     = 7 * 24 * time.Hour
)

// TTL is an app's idle-app periods: IdleAfter without a scan, a release or
// health traffic marks it idle (zero: never), and Grace later, with still
// no activity, it is archived.
type TTL struct {
	IdleAfter time.Duration `json:"idle_after"`
	Grace     time.Duration `json:"grace"`
}

// TTL returns an app's idle-app periods from data.tollgate.ttl.periods (the
// defaults, the tenant's, then the app's); unset ones are
// DefaultIdleAfter and DefaultGrace.
func (e *Engine) TTL(ctx context.Context, tenant, app string) (TTL, error) {
	out := TTL{IdleAfter: DefaultIdleAfter, Grace: DefaultGrace}
	rs, err := e.queries[ttlQuery].Eval(ctx, rego.EvalInput(map[string]any{"tenant": tenant, "app": app}))
	if err != nil {
		return TTL{}, fmt.Errorf("ttl of %s/%s from %q: %w", tenant, app, e.source, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return out, nil
	}
	raw, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		return TTL{}, fmt.Errorf("ttl of %s/%s: encode: %w", tenant, app, err)
	}
	var p struct {
		IdleAfter string `json:"idle_after"`
		Grace     string `json:"grace"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return TTL{}, fmt.Errorf("ttl of %s/%s from %q: %w", tenant, app, e.source, err)
	}
	for _, d := range []struct {
		name, in string
		out      *time.Duration
	}{{"idle_after", p.IdleAfter, &out.IdleAfter}, {"grace", p.Grace, &out.Grace}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil || v < 0 {
			return TTL{}, fmt.Errorf("ttl of %s/%s from %q: %s %q: want a duration of zero or more", tenant, app, e.source, d.name, d.in)
		}
		*d.out = v
	}
	return out, nil
}

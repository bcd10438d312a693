package orchestrator

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"

	"github.com/tollgate/tollgate/activities/deployers"
)

// targets are the deploy targets, built once at start.
type targets map[string]deployers.Deployer

func newTargets(cfg map[string]deployers.Target, logger *slog.Logger) (targets, error) {
	out := targets{}
	client := &http.Client{}
	for _, key := range slices.Sorted(func(yield func(string) bool) {
		for k := range cfg {
			if !yield(k) {
				return
			}
		}
	}) {
		t := cfg[key]
		if err := t.LoadSecret(os.LookupEnv); err != nil {
			return nil, fmt.Errorf("deploy target %q: %w", key, err)
		}
		d, err := deployers.New(t, client, deployers.WithLogger(logger))
		if err != nil {
			return nil, fmt.Errorf("deploy target %q: %w", key, err)
		}
		out[key] = d
	}
	return out, nil
}

// Deployer returns the target configured for tenant/app, else for app,
// else for "*".
func (t targets) Deployer(tenant, app string) (deployers.Deployer, error) {
	for _, key := range []string{tenant + "/" + app, app, "*"} {
		if d, ok := t[key]; ok {
			return d, nil
		}
	}
	return nil, fmt.Errorf("no deploy target configured for %s/%s (orchestrator config targets)", tenant, app)
}

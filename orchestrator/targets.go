package orchestrator

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/tenant"
)

// ErrTargetKey is a per-app deploy target keyed anything but "tenant/app".
var ErrTargetKey = errors.New(`deploy targets are keyed "tenant/app"; a target for every app is default_target`)

// targets are the deploy targets, built once at start: one per tenant/app,
// and the operator's fleet-wide default, if any. A rollback of one tenant's
// app never reaches a target another tenant's app is keyed by.
type targets struct {
	byApp    map[string]deployers.Deployer
	fallback deployers.Deployer
}

// ParseTargetKey splits a per-app deploy target key "tenant/app" and checks
// both names. A bare app or "*" is refused: such a key would serve every
// tenant's app of that name.
func ParseTargetKey(key string) (tenantName, app string, err error) {
	tenantName, app, ok := strings.Cut(key, "/")
	if !ok {
		return "", "", fmt.Errorf("deploy target %q: %w", key, ErrTargetKey)
	}
	if err := tenant.Validate(tenantName); err != nil {
		return "", "", fmt.Errorf("deploy target %q: %w", key, err)
	}
	if err := releases.ValidName("app", app); err != nil {
		return "", "", fmt.Errorf("deploy target %q: %w", key, err)
	}
	return tenantName, app, nil
}

// ValidateTargets checks the keys of the per-app deploy targets.
func ValidateTargets(cfg map[string]deployers.Target) error {
	for _, key := range slices.Sorted(maps.Keys(cfg)) {
		if _, _, err := ParseTargetKey(key); err != nil {
			return err
		}
	}
	return nil
}

func newTargets(cfg map[string]deployers.Target, fallback *deployers.Target, logger *slog.Logger) (targets, error) {
	out := targets{byApp: map[string]deployers.Deployer{}}
	client := &http.Client{}
	build := func(name string, t deployers.Target) (deployers.Deployer, error) {
		if err := t.LoadSecret(os.LookupEnv); err != nil {
			return nil, fmt.Errorf("deploy target %s: %w", name, err)
		}
		d, err := deployers.New(t, client, deployers.WithLogger(logger))
		if err != nil {
			return nil, fmt.Errorf("deploy target %s: %w", name, err)
		}
		return d, nil
	}
	for _, key := range slices.Sorted(maps.Keys(cfg)) {
		if _, _, err := ParseTargetKey(key); err != nil {
			return targets{}, err
		}
		d, err := build(fmt.Sprintf("%q", key), cfg[key])
		if err != nil {
			return targets{}, err
		}
		out.byApp[key] = d
	}
	if fallback != nil {
		d, err := build("default_target", *fallback)
		if err != nil {
			return targets{}, err
		}
		out.fallback = d
	}
	return out, nil
}

// Deployer returns the target configured for tenant/app, else the
// operator's default target. Nothing else matches: not the same app name in
// another tenant, not a wildcard.
func (t targets) Deployer(tenantName, app string) (deployers.Deployer, error) {
	if err := tenant.Validate(tenantName); err != nil {
		return nil, fmt.Errorf("find deploy target of app %q: %w", app, err)
	}
	if err := releases.ValidName("app", app); err != nil {
		return nil, fmt.Errorf("find deploy target in tenant %q: %w", tenantName, err)
	}
	key := tenantName + "/" + app
	if d, ok := t.byApp[key]; ok {
		return d, nil
	}
	if t.fallback != nil {
		return t.fallback, nil
	}
	return nil, fmt.Errorf("no deploy target configured for %s (guard.targets %q, or guard.default_target)", key, key)
}

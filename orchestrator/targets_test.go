package orchestrator

import (
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/tenant"
)

func flagdTarget(t *testing.T) deployers.Target {
	t.Helper()
	return deployers.Target{Type: deployers.TypeFlagd, FlagFile: filepath.Join(t.TempDir(), "flags.json")}
}

func TestTargetsRefuseKeysThatSpanTenants(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]error{
		"shop":           ErrTargetKey,
		"*":              ErrTargetKey,
		"*/shop":         tenant.ErrInvalid,
		"x/../acme/shop": nil, // "x" is a tenant, "../acme/shop" no app
		"acme/*":         nil, // the app grammar refuses it
		"acme/shop/x":    nil,
		"/shop":          tenant.ErrInvalid,
		"acme/":          nil,
	} {
		cfg := map[string]deployers.Target{key: flagdTarget(t)}
		err := ValidateTargets(cfg)
		if err == nil {
			t.Errorf("ValidateTargets(%q) = nil, want a refusal", key)
			continue
		}
		if want != nil && !errors.Is(err, want) {
			t.Errorf("ValidateTargets(%q) = %v, want %v", key, err, want)
		}
		if _, err := newTargets(cfg, nil, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("newTargets(%q) = nil error, want a refusal", key)
		}
	}
	if err := ValidateTargets(map[string]deployers.Target{"acme/shop": flagdTarget(t), "acme/web.v2": flagdTarget(t)}); err != nil {
		t.Errorf("ValidateTargets(tenant/app keys) = %v", err)
	}
}

func TestTargetsResolveOnlyTheTenantsOwnApp(t *testing.T) {
	t.Parallel()
	ts, err := newTargets(map[string]deployers.Target{"acme/shop": flagdTarget(t)}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if d, err := ts.Deployer("acme", "shop"); err != nil || d == nil {
		t.Fatalf("Deployer(acme, shop) = %v, %v", d, err)
	}
	for _, tc := range [][2]string{{"globex", "shop"}, {"acme", "web"}, {"x/../acme", "shop"}, {"acme/shop", ""}, {"", "shop"}} {
		if d, err := ts.Deployer(tc[0], tc[1]); err == nil {
			t.Errorf("Deployer(%q, %q) = %v, want no target", tc[0], tc[1], d)
		}
	}
}

func TestTargetsFallBackOnlyToTheExplicitDefault(t *testing.T) {
	t.Parallel()
	def := flagdTarget(t)
	ts, err := newTargets(map[string]deployers.Target{"acme/shop": flagdTarget(t)}, &def, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	own, err := ts.Deployer("acme", "shop")
	if err != nil {
		t.Fatal(err)
	}
	other, err := ts.Deployer("globex", "shop")
	if err != nil {
		t.Fatalf("Deployer(globex, shop) with a default target = %v", err)
	}
	if other == own || other != ts.fallback {
		t.Errorf("globex/shop got acme/shop's target, want the default")
	}
	if _, err := ts.Deployer("x/../acme", "shop"); err == nil || !strings.Contains(err.Error(), "invalid tenant") {
		t.Errorf("Deployer(x/../acme, shop) = %v, want an invalid tenant even with a default", err)
	}
}

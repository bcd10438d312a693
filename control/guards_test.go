package control

import (
	"context"
	"errors"
	"testing"

	"github.com/tollgate/tollgate/tenant"
	"github.com/tollgate/tollgate/workflows"
)

// A guard's and a rollback's workflow ids are "guard/<tenant>/<app>" and
// "rollback/<tenant>/<app>": a tenant like "x/../victim" or "victim/app"
// would name another tenant's workflow. Every function refuses it before
// it talks to Temporal (the client here has none, so a call that got that
// far would panic).
func TestGuardsRefuseATenantOutsideTheGrammar(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := &Guards{}
	for _, bad := range []string{"x/../victim", "victim/shop", "..", "Victim", ""} {
		checks := map[string]error{
			"Watch":    c.Watch(ctx, bad, "shop", workflows.ReleaseRef{ID: "r1"}),
			"Freeze":   c.Freeze(ctx, bad, "shop", "r"),
			"Unfreeze": c.Unfreeze(ctx, bad, "shop"),
			"Push":     c.Push(ctx, bad, "shop", []workflows.HealthSample{{}}),
		}
		_, checks["Rollback"] = c.Rollback(ctx, workflows.RollbackRequest{Tenant: bad, App: "shop"})
		_, checks["Status"] = c.Status(ctx, bad, "shop")
		for fn, err := range checks {
			if !errors.Is(err, tenant.ErrInvalid) {
				t.Errorf("%s(tenant %q) = %v, want tenant.ErrInvalid", fn, bad, err)
			}
		}
	}
	for _, app := range []string{"../shop", "shop/x", ""} {
		if err := c.Freeze(ctx, "acme", app, "r"); err == nil {
			t.Errorf("Freeze(app %q) = nil, want a refusal", app)
		}
	}
}

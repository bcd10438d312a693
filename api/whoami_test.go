package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/tollgate/tollgate/policies"
)

// recordingAuthorizer allows the actions in allow and records what it was
// asked.
type recordingAuthorizer struct {
	allow []string
	mu    sync.Mutex
	asked []policies.AuthzInput
}

func (a *recordingAuthorizer) Decide(_ context.Context, in policies.AuthzInput) (policies.AuthzDecision, error) {
	a.mu.Lock()
	a.asked = append(a.asked, in)
	a.mu.Unlock()
	return policies.AuthzDecision{Allow: slices.Contains(a.allow, in.Action)}, nil
}

func whoamiAs(t *testing.T, s *Server, token string) (int, WhoAmI) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	var out WhoAmI
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%v: %s", err, rec.Body)
		}
	}
	return rec.Code, out
}

// TestWhoAmIAsksTheAuthorizerForEveryAction: can holds every action of the
// policy, each as the server's Authorizer decided it for the principal's
// own tenant, whatever that Authorizer is.
func TestWhoAmIAsksTheAuthorizerForEveryAction(t *testing.T) {
	ctx := context.Background()
	actions, err := policies.AuthzActions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := testServer(t, Config{Tokens: []Token{
		{Name: "oncall-a", SHA256: HashToken("oncall-a"), Tenant: "alpha", Roles: []string{RoleOncall}, Person: "olga@example.com"},
		{Name: "none-a", SHA256: HashToken("none-a"), Tenant: "alpha"},
	}})
	s.actions = actions

	t.Run("the policy", func(t *testing.T) {
		authz, err := policies.NewAuthz(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.deps.Authorizer = authz
		code, got := whoamiAs(t, s, "oncall-a")
		if code != http.StatusOK || got.Principal.Name != "oncall-a" || got.Principal.Tenant != "alpha" || got.Principal.Person != "olga@example.com" ||
			got.Principal.Auth != AuthStatic || !slices.Equal(got.Principal.Roles, []string{RoleOncall}) {
			t.Fatalf("%d %+v", code, got)
		}
		if len(got.Can) != len(actions) {
			t.Fatalf("can has %d actions, want the policy's %d: %v", len(got.Can), len(actions), got.Can)
		}
		for _, a := range actions {
			var in policies.AuthzInput
			in.Principal.Name, in.Principal.Tenant, in.Principal.Roles = "oncall-a", "alpha", []string{RoleOncall}
			in.Action, in.Resource.Tenant = a, "alpha"
			d, err := authz.Decide(ctx, in)
			if err != nil || got.Can[a] != d.Allow {
				t.Errorf("can[%s] = %v, the policy says %v (%v)", a, got.Can[a], d.Allow, err)
			}
		}
		if !got.Can["rollback.create"] || got.Can["scan.create"] || got.Can["review.decide"] {
			t.Errorf("oncall's can: %v", got.Can)
		}
		code, got = whoamiAs(t, s, "none-a")
		if code != http.StatusOK || got.Principal.Roles == nil || slices.ContainsFunc(actions, func(a string) bool { return got.Can[a] }) {
			t.Fatalf("a principal without roles: %d %+v", code, got)
		}
	})

	t.Run("another authorizer", func(t *testing.T) {
		rec := &recordingAuthorizer{allow: []string{"pools.read"}}
		s.deps.Authorizer = rec
		code, got := whoamiAs(t, s, "oncall-a")
		if code != http.StatusOK {
			t.Fatal(code)
		}
		for a, ok := range got.Can {
			if ok != (a == "pools.read") {
				t.Errorf("can[%s] = %v, the authorizer says otherwise", a, ok)
			}
		}
		if len(rec.asked) != len(actions) {
			t.Fatalf("asked %d times, want once per action (%d)", len(rec.asked), len(actions))
		}
		for _, in := range rec.asked {
			if in.Resource.Tenant != "alpha" || in.Principal.Tenant != "alpha" || in.Principal.Name != "oncall-a" {
				t.Errorf("asked %+v, want the principal in its own tenant", in)
			}
		}
	})

	if code, _ := whoamiAs(t, s, "no-such-token"); code != http.StatusUnauthorized {
		t.Errorf("a bad token: %d, want 401", code)
	}
}

package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/tenant"
)

// TestOIDCRolesComeOnlyFromTheRoleMap: the IdP's role names are never
// taken as tollgate roles; only what oidc.role_map grants counts, and
// without a map a token has no role at all.
func TestOIDCRolesComeOnlyFromTheRoleMap(t *testing.T) {
	iss := newIssuer(t)
	now := time.Now()
	claims := map[string]any{"iss": "https://ci.example", "aud": "tollgate", "sub": "repo:acme/app", "exp": now.Add(time.Hour).Unix(),
		"iat": now.Unix(), "tenant": "acme", "roles": []string{"admin", "sre", "tollgate-ci", "sec-team", "tollgate-ci"}}
	raw := iss.token(t, iss.key, claims)
	for name, tc := range map[string]struct {
		roleMap map[string][]string
		want    []string
	}{
		"no map grants nothing":  {nil, nil},
		"mapped values only":     {map[string][]string{"tollgate-ci": {RoleCI}, "sec-team": {RoleSecurity, RoleReviewer}}, []string{RoleCI, RoleReviewer, RoleSecurity}},
		"unmapped names ignored": {map[string][]string{"other": {RoleAdmin}}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			s := testServer(t, Config{OIDC: OIDC{Issuer: "https://ci.example", Audience: "tollgate", JWKSURL: iss.srv.URL, RoleMap: tc.roleMap}})
			var got Principal
			h := s.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = principalFrom(r.Context()) }))
			req := httptest.NewRequest(http.MethodGet, "/v1/scans/x", nil)
			req.Header.Set("Authorization", "Bearer "+raw)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if !slices.Equal(got.Roles, tc.want) || got.Tenant != "acme" || got.Name != "oidc:repo:acme/app" {
				t.Errorf("principal %+v, want tenant acme and roles %v", got, tc.want)
			}
		})
	}
}

func TestOIDCClaimsRefuseATenantOutsideTheGrammar(t *testing.T) {
	t.Parallel()
	m := newClaimMapper(OIDC{RoleMap: map[string][]string{"ci": {RoleCI}}})
	for _, name := range []string{"x/../victim", "..", "Acme", "a_b", "a.b", "*"} {
		if _, _, err := m.principal("sub", map[string]any{"tenant": name, "roles": []any{"ci"}}); !errors.Is(err, tenant.ErrInvalid) {
			t.Errorf("tenant claim %q: err %v, want tenant.ErrInvalid", name, err)
		}
	}
	p, ignored, err := m.principal("sub", map[string]any{"tenant": "acme", "roles": "ci admin"})
	if err != nil || !slices.Equal(p.Roles, []string{RoleCI}) || !slices.Equal(ignored, []string{"admin"}) {
		t.Errorf("space-separated roles: %+v, ignored %v, %v", p, ignored, err)
	}
}

// FuzzOIDCClaims feeds arbitrary claim JSON to the mapping: a principal it
// builds has a tenant in the grammar and only roles the map grants, each
// once.
func FuzzOIDCClaims(f *testing.F) {
	for _, s := range []string{
		`{"tenant":"acme","roles":["tollgate-ci","admin"]}`,
		`{"tenant":"x/../victim","roles":["tollgate-ci"]}`,
		`{"tenant":"acme","roles":"sec-team tollgate-ci sec-team"}`,
		`{"tenant":["acme"],"roles":{"a":1}}`,
		`{"tenant":"acme","roles":[1,null,"sec-team",["x"]]}`,
		`{}`, `null`, `[]`,
	} {
		f.Add("sub", s)
	}
	roleMap := map[string][]string{"tollgate-ci": {RoleCI}, "sec-team": {RoleSecurity, RoleReviewer}, "ops": {RoleOncall, RoleCI}}
	granted := map[string]bool{}
	for _, rs := range roleMap {
		for _, r := range rs {
			granted[r] = true
		}
	}
	m := newClaimMapper(OIDC{RoleMap: roleMap})
	f.Fuzz(func(t *testing.T, sub, doc string) {
		var claims map[string]any
		if json.Unmarshal([]byte(doc), &claims) != nil {
			return
		}
		p, _, err := m.principal(sub, claims)
		if err != nil {
			return
		}
		if err := tenant.Validate(p.Tenant); err != nil {
			t.Fatalf("principal %+v from %s: %v", p, doc, err)
		}
		if p.Tenant != claims["tenant"] || p.Name != "oidc:"+sub {
			t.Fatalf("principal %+v does not match the claims %s", p, doc)
		}
		for i, r := range p.Roles {
			if !granted[r] || !slices.Contains(Roles, r) {
				t.Fatalf("role %q not granted by the map, from %s", r, doc)
			}
			if slices.Contains(p.Roles[i+1:], r) {
				t.Fatalf("role %q twice, from %s", r, doc)
			}
		}
	})
}

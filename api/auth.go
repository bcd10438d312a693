package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/tenant"
)

// Roles a principal can have.
const (
	RoleCI     = "ci"
	RoleSRE    = "sre"
	RoleOncall = "oncall"
	RoleAdmin  = "admin"
	// RoleDeployer records releases.
	RoleDeployer = "deployer"
	// RoleSecurity accepts risks (exceptions) and revokes them.
	RoleSecurity = "security"
	// RoleReviewer approves or rejects scans waiting for a human review.
	RoleReviewer = "reviewer"
	// RoleHealth pushes health samples to the app guards, and nothing else.
	RoleHealth = "health"
)

// Roles lists every role a token may have.
var Roles = []string{RoleCI, RoleSRE, RoleOncall, RoleAdmin, RoleDeployer, RoleSecurity, RoleReviewer, RoleHealth}

// How a principal authenticated (Principal.Auth).
const (
	AuthStatic = "static"
	AuthOIDC   = "oidc"
)

// Principal is who a request comes from. Person is the human behind it,
// when it names one: an OIDC login's verified email or subject, or a static
// token's person. Reviews are bound to persons, never to token names.
type Principal struct {
	Name   string   `json:"name"`
	Tenant string   `json:"tenant"`
	Roles  []string `json:"roles"`
	Person string   `json:"person,omitempty"`
	Auth   string   `json:"auth,omitempty"`
}

// Token is a static API token as configured: only its sha256 is kept.
// Person names the human who holds it (an email, e.g. alice@example.com);
// a token without one (a CI bot's) cannot decide reviews.
type Token struct {
	Name   string   `json:"name" yaml:"name"`
	SHA256 string   `json:"sha256" yaml:"sha256"`
	Tenant string   `json:"tenant" yaml:"tenant"`
	Roles  []string `json:"roles" yaml:"roles"`
	Person string   `json:"person,omitempty" yaml:"person,omitempty"`
}

// HashToken returns the hex sha256 a Token stores for a secret token.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Validate checks a configured token.
func (t Token) Validate() error {
	if t.Name == "" || t.Tenant == "" {
		return fmt.Errorf("token %q: name and tenant are required", t.Name)
	}
	if err := tenant.Validate(t.Tenant); err != nil {
		return fmt.Errorf("token %q: %w", t.Name, err)
	}
	if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("token %q: sha256 must be 64 hex digits (the hash of the token, never the token)", t.Name)
	}
	for _, r := range t.Roles {
		if !slices.Contains(Roles, r) {
			return fmt.Errorf("token %q: unknown role %q", t.Name, r)
		}
	}
	if t.Person != "" && !validEmail(t.Person) {
		return fmt.Errorf("token %q: person %q is not an email address", t.Name, t.Person)
	}
	return nil
}

type principalKey struct{}

func principalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// authenticate resolves the bearer token, comparing hashes in constant time.
// An address that sent too many invalid tokens lately is refused first, so
// that a flood of them is refused before any is hashed or verified.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := s.edge.client(r)
		if s.edge.tooManyBadTokens(client) {
			s.tooMany(w, r, "rate-limited-bad-tokens", "too many invalid tokens from this address; retry later")
			return
		}
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || raw == "" {
			s.edge.authFailed(client)
			w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate"`)
			writeProblem(w, r, http.StatusUnauthorized, "unauthenticated", "a bearer token is required")
			return
		}
		raw = strings.TrimSpace(raw)
		p, ok := s.staticPrincipal(raw)
		if !ok && s.oidc != nil && looksLikeJWT(raw) {
			op, ignored, err := s.oidc.principal(r.Context(), raw)
			if err == nil {
				p, ok = op, true
				if len(ignored) > 0 {
					s.deps.Logger.DebugContext(r.Context(), "OIDC role claim values not in oidc.role_map grant nothing", "principal", p.Name, "values", ignored)
				}
			} else {
				s.deps.Logger.InfoContext(r.Context(), "OIDC token refused", "err", err)
			}
		}
		if !ok {
			s.edge.authFailed(client)
			w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate", error="invalid_token"`)
			writeProblem(w, r, http.StatusUnauthorized, "unauthenticated", "the bearer token is not valid")
			return
		}
		if !s.edge.allowPrincipal(p) {
			s.tooMany(w, r, "rate-limited-principal", fmt.Sprintf("too many requests from %q; retry after a second", p.Name))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// Authorizer decides what a principal may do; the OPA policy in
// policies/authz is the one the server uses.
type Authorizer interface {
	Decide(ctx context.Context, in policies.AuthzInput) (policies.AuthzDecision, error)
}

var _ Authorizer = (*policies.Authz)(nil)

// authorize asks the policy whether p may do action in tenant. An error
// from the policy is a denial.
func (s *Server) authorize(ctx context.Context, p Principal, action, tenant string) (bool, string) {
	var in policies.AuthzInput
	in.Principal.Name, in.Principal.Tenant, in.Principal.Roles = p.Name, p.Tenant, p.Roles
	in.Action, in.Resource.Tenant = action, tenant
	d, err := s.deps.Authorizer.Decide(ctx, in)
	if err != nil {
		s.deps.Logger.ErrorContext(ctx, "authorization policy failed; denying", "err", err)
		return false, "authorization policy failed"
	}
	return d.Allow, d.Reason
}

// staticPrincipal finds a configured static token, comparing hashes in
// constant time.
func (s *Server) staticPrincipal(raw string) (Principal, bool) {
	got, _ := hex.DecodeString(HashToken(raw))
	var found *Token
	for i := range s.cfg.Tokens {
		want, _ := hex.DecodeString(s.cfg.Tokens[i].SHA256)
		if subtle.ConstantTimeCompare(got, want) == 1 {
			found = &s.cfg.Tokens[i]
		}
	}
	// Config.Validate refused a token outside the tenant grammar; a Server
	// built some other way still never hands one out.
	if found == nil || !tenant.Valid(found.Tenant) {
		return Principal{}, false
	}
	return Principal{Name: found.Name, Tenant: found.Tenant, Roles: found.Roles, Person: found.Person, Auth: AuthStatic}, true
}

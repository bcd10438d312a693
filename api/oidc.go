package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// OIDC configures bearer JWTs from an OpenID Connect issuer (a CI system's
// workload identity, say). Signature, issuer, audience and expiry are checked
// by go-oidc against the issuer's JWKS.
type OIDC struct {
	// Issuer is the iss the tokens must carry (required to enable OIDC).
	Issuer string `json:"issuer"`
	// Audience is the aud the tokens must carry (required).
	Audience string `json:"audience"`
	// JWKSURL skips discovery and reads the keys from here.
	JWKSURL string `json:"jwks_url"`
	// TenantClaim and RolesClaim name the claims holding the principal's
	// tenant (a string) and roles (a list of strings). Defaults "tenant", "roles".
	TenantClaim string `json:"tenant_claim"`
	RolesClaim  string `json:"roles_claim"`
}

// Validate checks the OIDC settings.
func (o OIDC) Validate() error {
	if o.Issuer == "" {
		return nil
	}
	if o.Audience == "" {
		return errors.New("oidc: an audience is required with an issuer")
	}
	return nil
}

type oidcVerifier struct {
	v           *oidc.IDTokenVerifier
	tenantClaim string
	rolesClaim  string
}

// newOIDCVerifier reads the issuer's discovery document (or uses JWKSURL).
func newOIDCVerifier(ctx context.Context, o OIDC) (*oidcVerifier, error) {
	if o.Issuer == "" {
		return nil, nil
	}
	cfg := &oidc.Config{ClientID: o.Audience}
	var v *oidc.IDTokenVerifier
	if o.JWKSURL != "" {
		v = oidc.NewVerifier(o.Issuer, oidc.NewRemoteKeySet(context.WithoutCancel(ctx), o.JWKSURL), cfg)
	} else {
		p, err := oidc.NewProvider(ctx, o.Issuer)
		if err != nil {
			return nil, fmt.Errorf("oidc discovery at %q: %w", o.Issuer, err)
		}
		v = p.Verifier(cfg)
	}
	return &oidcVerifier{v: v, tenantClaim: cmp.Or(o.TenantClaim, "tenant"), rolesClaim: cmp.Or(o.RolesClaim, "roles")}, nil
}

// principal verifies a JWT and maps its claims to a principal.
func (o *oidcVerifier) principal(ctx context.Context, raw string) (Principal, error) {
	tok, err := o.v.Verify(ctx, raw)
	if err != nil {
		return Principal{}, err
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, err
	}
	tenant, _ := claims[o.tenantClaim].(string)
	if tenant == "" {
		return Principal{}, fmt.Errorf("token has no %q claim", o.tenantClaim)
	}
	p := Principal{Name: "oidc:" + tok.Subject, Tenant: tenant, Person: oidcPerson(tok.Subject, claims), Auth: AuthOIDC}
	switch roles := claims[o.rolesClaim].(type) {
	case []any:
		for _, r := range roles {
			if s, ok := r.(string); ok {
				p.Roles = append(p.Roles, s)
			}
		}
	case string:
		p.Roles = strings.Fields(roles)
	}
	return p, nil
}

// looksLikeJWT tells a JWT (three base64url parts) from a static token.
func looksLikeJWT(s string) bool { return strings.Count(s, ".") == 2 && len(s) > 20 }

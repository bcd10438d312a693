package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/tollgate/tollgate/tenant"
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
	// tenant (a string in the tenant grammar) and the IdP's role or group
	// values (a list of strings, or one space-separated string). Defaults
	// "tenant", "roles".
	TenantClaim string `json:"tenant_claim"`
	RolesClaim  string `json:"roles_claim"`
	// RoleMap maps a value of RolesClaim to the tollgate roles it grants,
	// e.g. {"tollgate-ci": ["ci"], "sec-team": ["security"]}. A value not
	// in the map grants nothing (logged at debug); without a map, no OIDC
	// token has any role. The IdP's names are never taken as roles.
	RoleMap map[string][]string `json:"role_map"`
}

// Validate checks the OIDC settings.
func (o OIDC) Validate() error {
	if o.Issuer == "" {
		if len(o.RoleMap) > 0 {
			return errors.New("oidc: role_map is set but no issuer")
		}
		return nil
	}
	if o.Audience == "" {
		return errors.New("oidc: an audience is required with an issuer")
	}
	for _, value := range slices.Sorted(maps.Keys(o.RoleMap)) {
		if value == "" {
			return errors.New("oidc: role_map has an empty claim value")
		}
		for _, r := range o.RoleMap[value] {
			if !slices.Contains(Roles, r) {
				return fmt.Errorf("oidc: role_map[%q]: unknown role %q (known: %s)", value, r, strings.Join(Roles, ", "))
			}
		}
	}
	return nil
}

type oidcVerifier struct {
	v      *oidc.IDTokenVerifier
	claims claimMapper
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
	return &oidcVerifier{v: v, claims: newClaimMapper(o)}, nil
}

// principal verifies a JWT and maps its claims to a principal. ignored are
// the role claim values the role map does not know.
func (o *oidcVerifier) principal(ctx context.Context, raw string) (p Principal, ignored []string, err error) {
	tok, err := o.v.Verify(ctx, raw)
	if err != nil {
		return Principal{}, nil, err
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, nil, fmt.Errorf("decode claims of %q: %w", tok.Subject, err)
	}
	return o.claims.principal(tok.Subject, claims)
}

// claimMapper turns a verified token's claims into a principal.
type claimMapper struct {
	tenantClaim string
	rolesClaim  string
	roleMap     map[string][]string
}

func newClaimMapper(o OIDC) claimMapper {
	return claimMapper{tenantClaim: cmp.Or(o.TenantClaim, "tenant"), rolesClaim: cmp.Or(o.RolesClaim, "roles"), roleMap: o.RoleMap}
}

// principal maps claims: the tenant claim must be in the tenant grammar
// (tenant.ErrInvalid otherwise), and each role claim value grants the roles
// the role map gives it, nothing else. ignored lists the values it does not
// know.
func (m claimMapper) principal(subject string, claims map[string]any) (p Principal, ignored []string, err error) {
	if subject == "" {
		return Principal{}, nil, errors.New("token has no sub claim")
	}
	name, _ := claims[m.tenantClaim].(string)
	if name == "" {
		return Principal{}, nil, fmt.Errorf("token of %q has no %q claim", subject, m.tenantClaim)
	}
	if err := tenant.Validate(name); err != nil {
		return Principal{}, nil, fmt.Errorf("token of %q: claim %q: %w", subject, m.tenantClaim, err)
	}
	var values []string
	switch v := claims[m.rolesClaim].(type) {
	case []any:
		for _, r := range v {
			if s, ok := r.(string); ok {
				values = append(values, s)
			}
		}
	case string:
		values = strings.Fields(v)
	}
	p = Principal{Name: "oidc:" + subject, Tenant: name, Person: oidcPerson(subject, claims), Auth: AuthOIDC}
	for _, v := range values {
		roles, ok := m.roleMap[v]
		if !ok {
			ignored = append(ignored, v)
			continue
		}
		for _, r := range roles {
			if !slices.Contains(p.Roles, r) {
				p.Roles = append(p.Roles, r)
			}
		}
	}
	slices.Sort(p.Roles)
	return p, ignored, nil
}

// looksLikeJWT tells a JWT (three base64url parts) from a static token.
func looksLikeJWT(s string) bool { return strings.Count(s, ".") == 2 && len(s) > 20 }

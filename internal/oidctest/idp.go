// Package oidctest is an OpenID Connect provider for tests: mockoidc
// (github.com/oauth2-proxy/mockoidc) with real discovery, JWKS and the
// authorization code flow, made strict about PKCE (an authorization request
// must carry an S256 code challenge; "plain" and none are refused, which
// mockoidc alone accepts), and issuing ID tokens with the tenant and roles
// claims tollgate's API maps to a principal, for the users a test queues.
package oidctest

import (
	"net"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// User is who signs in next: the subject, a verified email (the person a
// review is bound to), and the claims tollgate reads.
type User struct {
	Subject string
	Email   string
	Tenant  string
	// Roles are the IdP's role values (the roles claim); the API's
	// role map turns them into tollgate roles.
	Roles []string
}

// IdP is a running provider.
type IdP struct {
	m *mockoidc.MockOIDC
}

// Start runs the provider on loopback until the test ends.
func Start(t testing.TB) *IdP {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatalf("oidctest: %v", err)
	}
	m.CodeChallengeMethodsSupported = []string{mockoidc.CodeChallengeMethodS256}
	if err := m.AddMiddleware(requireS256); err != nil {
		t.Fatalf("oidctest: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("oidctest: %v", err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatalf("oidctest: %v", err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return &IdP{m: m}
}

// requireS256 refuses an authorization request without an S256 code
// challenge, as the provider of a public client must (RFC 9700 2.1.1).
// mockoidc checks the verifier against the challenge at the token
// endpoint, but only when the authorization request carried one.
func requireS256(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == mockoidc.AuthorizationEndpoint {
			q := r.URL.Query()
			if r.Method == http.MethodPost {
				if err := r.ParseForm(); err == nil {
					q = r.Form
				}
			}
			if q.Get("code_challenge_method") != mockoidc.CodeChallengeMethodS256 || q.Get("code_challenge") == "" {
				http.Error(w, `{"error":"invalid_request","error_description":"PKCE with an S256 code challenge is required"}`, http.StatusBadRequest)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Issuer is the iss of the tokens and the base of discovery.
func (p *IdP) Issuer() string { return p.m.Issuer() }

// ClientID is the one client the provider knows: the console. ID tokens
// carry it as aud, so it is also the API's OIDC audience.
func (p *IdP) ClientID() string { return p.m.ClientID }

// ClientSecret is the console's client secret.
func (p *IdP) ClientSecret() string { return p.m.ClientSecret }

// QueueUser makes u the user of the next authorization request.
func (p *IdP) QueueUser(u User) {
	p.m.QueueUser(&user{u})
}

// user adapts User to mockoidc.User.
type user struct{ u User }

var _ mockoidc.User = (*user)(nil)

func (u *user) ID() string { return u.u.Subject }

func (u *user) Userinfo(scope []string) ([]byte, error) {
	return (&mockoidc.MockUser{Subject: u.u.Subject, Email: u.u.Email, EmailVerified: true}).Userinfo(scope)
}

// claims are an ID token's: the standard ones, the email (always: tollgate
// binds a review to the person), and tenant and roles.
type claims struct {
	*mockoidc.IDTokenClaims
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Tenant        string   `json:"tenant"`
	Roles         []string `json:"roles"`
}

func (u *user) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return &claims{IDTokenClaims: base, Email: u.u.Email, EmailVerified: u.u.Email != "", Tenant: u.u.Tenant, Roles: u.u.Roles}, nil
}

package api

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// issuer serves a JWKS on loopback and signs tokens with its key.
type issuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func newIssuer(t *testing.T) *issuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { json.NewEncoder(w).Encode(jwks) }))
	t.Cleanup(srv.Close)
	return &issuer{srv: srv, key: key}
}

func (i *issuer) token(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func testServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ov, err := newOIDCVerifier(context.Background(), cfg.OIDC)
	if err != nil {
		t.Fatal(err)
	}
	// Tests here send many bad tokens from one address on purpose; the
	// limit on that is tested by TestBadTokensAreRefusedBeforeAuthWork.
	cfg.AuthFailureBurst = cmp.Or(cfg.AuthFailureBurst, 1<<20)
	cfg = cfg.withDefaults()
	return &Server{cfg: cfg, deps: Deps{Logger: slog.New(slog.DiscardHandler)}, oidc: ov, met: newMetrics(nil), edge: newEdge(cfg)}
}

// TestAuthentication checks the middleware alone: static tokens and OIDC
// JWTs verified against a real JWKS endpoint.
func TestAuthentication(t *testing.T) {
	iss := newIssuer(t)
	s := testServer(t, Config{
		Tokens: []Token{{Name: "ci", SHA256: HashToken("static-secret"), Tenant: "a", Roles: []string{RoleCI}}},
		OIDC: OIDC{Issuer: "https://ci.example", Audience: "tollgate", JWKSURL: iss.srv.URL,
			RoleMap: map[string][]string{"ci": {RoleCI}}},
	})
	var got Principal
	h := s.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = principalFrom(r.Context()) }))
	now := time.Now()
	good := map[string]any{"iss": "https://ci.example", "aud": "tollgate", "sub": "repo:acme/app", "exp": now.Add(time.Hour).Unix(),
		"iat": now.Unix(), "tenant": "acme", "roles": []string{"ci"}}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range good {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		name   string
		header string
		status int
		tenant string
	}{
		{"static token", "Bearer static-secret", 200, "a"},
		{"no header", "", 401, ""},
		{"not bearer", "Basic abc", 401, ""},
		{"unknown static token", "Bearer nope", 401, ""},
		{"valid jwt", "Bearer " + iss.token(t, iss.key, good), 200, "acme"},
		{"expired jwt", "Bearer " + iss.token(t, iss.key, with("exp", now.Add(-time.Minute).Unix())), 401, ""},
		{"wrong audience", "Bearer " + iss.token(t, iss.key, with("aud", "someone-else")), 401, ""},
		{"wrong issuer", "Bearer " + iss.token(t, iss.key, with("iss", "https://evil.example")), 401, ""},
		{"wrong key", "Bearer " + iss.token(t, other, good), 401, ""},
		{"no tenant claim", "Bearer " + iss.token(t, iss.key, with("tenant", "")), 401, ""},
		{"tenant claim escaping a key", "Bearer " + iss.token(t, iss.key, with("tenant", "x/../victim")), 401, ""},
		{"tenant claim not a label", "Bearer " + iss.token(t, iss.key, with("tenant", "Acme.corp")), 401, ""},
		{"tenant claim not a string", "Bearer " + iss.token(t, iss.key, with("tenant", []string{"acme"})), 401, ""},
		{"no subject", "Bearer " + iss.token(t, iss.key, with("sub", "")), 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got = Principal{}
			req := httptest.NewRequest(http.MethodGet, "/v1/scans/x", nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			if c.status == 401 && rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("401 without problem+json")
			}
			if got.Tenant != c.tenant {
				t.Fatalf("tenant %q, want %q", got.Tenant, c.tenant)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]Config{
		"nobody":                        {},
		"bad hash":                      {Tokens: []Token{{Name: "x", Tenant: "a", SHA256: "plain-token"}}},
		"bad role":                      {Tokens: []Token{{Name: "x", Tenant: "a", SHA256: HashToken("t"), Roles: []string{"root"}}}},
		"no tenant":                     {Tokens: []Token{{Name: "x", SHA256: HashToken("t")}}},
		"bad tenant":                    {Tokens: []Token{{Name: "x", Tenant: "x/../victim", SHA256: HashToken("t")}}},
		"dot tenant":                    {Tokens: []Token{{Name: "x", Tenant: "..", SHA256: HashToken("t")}}},
		"oidc role map to unknown role": {OIDC: OIDC{Issuer: "https://i", Audience: "a", RoleMap: map[string][]string{"ops": {"root"}}}},
		"oidc role map empty value":     {OIDC: OIDC{Issuer: "https://i", Audience: "a", RoleMap: map[string][]string{"": {RoleCI}}}},
		"oidc role map without issuer":  {Tokens: []Token{{Name: "x", Tenant: "a", SHA256: HashToken("t")}}, OIDC: OIDC{RoleMap: map[string][]string{"ci": {RoleCI}}}},
		"oidc no aud":                   {OIDC: OIDC{Issuer: "https://i"}},
		"negative cap":                  {Tokens: []Token{{Name: "x", Tenant: "a", SHA256: HashToken("t")}}, MaxArchiveBytes: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Every role the policy knows may be given to a token.
func TestTokenRoles(t *testing.T) {
	for _, role := range Roles {
		tok := Token{Name: "n", Tenant: "a", SHA256: HashToken("x"), Roles: []string{role}}
		if err := tok.Validate(); err != nil {
			t.Errorf("role %s: %v", role, err)
		}
	}
	if err := (Token{Name: "n", Tenant: "a", SHA256: HashToken("x"), Roles: []string{"root"}}).Validate(); err == nil {
		t.Error("an unknown role was taken")
	}
}

package oidctest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

// TestIdPRequiresS256 walks the authorization code flow by hand: discovery
// names the endpoints and S256 alone; an authorization request without a
// challenge, or with a plain one, is refused; a code redeemed with the
// wrong verifier is refused and spent; the right verifier gets an ID token
// that verifies against the JWKS and carries the queued user's tenant,
// roles and email.
func TestIdPRequiresS256(t *testing.T) {
	ctx := context.Background()
	idp := Start(t)
	provider, err := oidc.NewProvider(ctx, idp.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	var disco struct {
		Methods []string `json:"code_challenge_methods_supported"`
	}
	if err := provider.Claims(&disco); err != nil || !slices.Equal(disco.Methods, []string{"S256"}) {
		t.Fatalf("discovery's challenge methods %v (%v), want [S256]", disco.Methods, err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	const redirect = "http://127.0.0.1/console/auth/callback"
	authorize := func(extra url.Values) (int, string) {
		t.Helper()
		q := url.Values{"scope": {"openid email"}, "state": {"st"}, "client_id": {idp.ClientID()}, "response_type": {"code"}, "redirect_uri": {redirect}}
		for k, v := range extra {
			q[k] = v
		}
		resp, err := noRedirect.Get(provider.Endpoint().AuthURL + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return resp.StatusCode, loc.Query().Get("code")
	}
	redeem := func(code, verifier string) (int, []byte) {
		t.Helper()
		resp, err := http.PostForm(provider.Endpoint().TokenURL, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"client_id": {idp.ClientID()}, "client_secret": {idp.ClientSecret()}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	s256 := url.Values{"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}

	if code, _ := authorize(nil); code != http.StatusBadRequest {
		t.Errorf("authorization without PKCE: %d, want 400", code)
	}
	if code, _ := authorize(url.Values{"code_challenge": {verifier}, "code_challenge_method": {"plain"}}); code != http.StatusBadRequest {
		t.Errorf("authorization with a plain challenge: %d, want 400", code)
	}
	status, code := authorize(s256)
	if status != http.StatusFound || code == "" {
		t.Fatalf("authorization with S256: %d, code %q", status, code)
	}
	if status, body := redeem(code, strings.Repeat("w", 43)); status != http.StatusUnauthorized {
		t.Fatalf("wrong verifier: %d %s", status, body)
	}
	if status, body := redeem(code, verifier); status != http.StatusUnauthorized {
		t.Fatalf("a code redeemed once with the wrong verifier: %d %s", status, body)
	}

	idp.QueueUser(User{Subject: "u-1", Email: "ola@example.com", Tenant: "alpha", Roles: []string{"oncall", "other"}})
	if status, code = authorize(s256); status != http.StatusFound {
		t.Fatalf("authorization: %d", status)
	}
	status, body := redeem(code, verifier)
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.IDToken == "" {
		t.Fatalf("redeem: %d %s", status, body)
	}
	id, err := provider.Verifier(&oidc.Config{ClientID: idp.ClientID()}).Verify(ctx, tok.IDToken)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Tenant   string   `json:"tenant"`
		Roles    []string `json:"roles"`
		Email    string   `json:"email"`
		Verified bool     `json:"email_verified"`
	}
	if err := id.Claims(&c); err != nil || id.Subject != "u-1" || c.Tenant != "alpha" || !slices.Equal(c.Roles, []string{"oncall", "other"}) ||
		c.Email != "ola@example.com" || !c.Verified {
		t.Fatalf("ID token of %q: %+v (%v)", id.Subject, c, err)
	}
}

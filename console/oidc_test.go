package console

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// fakeIdP is an OpenID Connect issuer: discovery, keys, and a token
// endpoint that honours PKCE (S256) and signs ID tokens.
type fakeIdP struct {
	t   *testing.T
	srv *httptest.Server
	key *rsa.PrivateKey
	mu  sync.Mutex
	// codes are the authorization codes issued: the challenge and nonce
	// the browser's authorize request carried.
	codes map[string]authorize
	// nonce, when set, replaces the nonce in the ID tokens.
	nonce string
}

type authorize struct{ challenge, method, nonce string }

func newFakeIdP(t *testing.T) *fakeIdP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIdP{t: t, key: key, codes: map[string]authorize{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": f.srv.URL, "authorization_endpoint": f.srv.URL + "/authorize",
			"token_endpoint": f.srv.URL + "/token", "jwks_uri": f.srv.URL + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", f.token)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// approve is the user signing in at the issuer: it answers the code the
// issuer would send back for an authorize URL.
func (f *fakeIdP) approve(authURL string) string {
	u, err := url.Parse(authURL)
	if err != nil {
		f.t.Fatal(err)
	}
	q := u.Query()
	code := randomID()
	f.mu.Lock()
	f.codes[code] = authorize{challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"), nonce: q.Get("nonce")}
	f.mu.Unlock()
	return code
}

func (f *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	a, ok := f.codes[r.PostForm.Get("code")]
	delete(f.codes, r.PostForm.Get("code"))
	nonce := f.nonce
	f.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || a.method != "S256" || base64.RawURLEncoding.EncodeToString(sum[:]) != a.challenge {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	if nonce == "" {
		nonce = a.nonce
	}
	claims, _ := json.Marshal(map[string]any{"iss": f.srv.URL, "aud": "tollgate", "sub": "u1", "nonce": nonce,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "tenant": "acme"})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: f.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		f.t.Error(err)
		return
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		f.t.Error(err)
		return
	}
	idt, _ := jws.CompactSerialize()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "id_token": idt})
}

func oidcSetup(t *testing.T) (*testBundle, *fakeIdP) {
	idp := newFakeIdP(t)
	b := setup(t, Config{Issuer: idp.srv.URL, Audience: "tollgate", RedirectURL: "https://tollgate.example/console/auth/callback", HTTPClient: idp.srv.Client()})
	return b, idp
}

// start follows the sign-in link to the issuer's authorize URL.
func start(t *testing.T, br *client) *url.URL {
	t.Helper()
	w := br.do("GET", "/console/auth/start", nil)
	if w.Code != http.StatusFound {
		t.Fatalf("auth start: %d", w.Code)
	}
	u, err := url.Parse(w.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestOIDCSigninUsesPKCEAndTheIDTokenAsBearer(t *testing.T) {
	t.Parallel()
	b, idp := oidcSetup(t)
	br := b.browser(t)
	if page := br.do("GET", "/console/signin", nil).Body.String(); !strings.Contains(page, `id="signin-oidc"`) || strings.Contains(page, "signin-token-form") {
		t.Fatalf("sign-in page: want the OIDC link and no token form:\n%s", page)
	}
	u := start(t, br)
	q := u.Query()
	if !strings.HasPrefix(u.String(), idp.srv.URL+"/authorize?") || q.Get("client_id") != "tollgate" || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("state") == "" || q.Get("nonce") == "" ||
		q.Get("redirect_uri") != "https://tollgate.example/console/auth/callback" || !strings.Contains(q.Get("scope"), "openid") {
		t.Fatalf("authorize URL %s", u)
	}
	if ck := br.cookies[authCookie]; ck == nil || ck.Value != q.Get("state") || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("state cookie %+v", ck)
	}
	code := idp.approve(u.String())
	// The API accepts the ID token the issuer signed: a bearer it trusts.
	b.api.mu.Lock()
	b.api.tokens = map[string]whoami{}
	b.api.mu.Unlock()
	var idToken string
	api := b.api
	b.console.api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if strings.Count(tok, ".") == 2 {
			idToken = tok
			api.mu.Lock()
			api.tokens[tok] = who("u1", "acme", "u1@example.com", "app.read")
			api.mu.Unlock()
		}
		api.ServeHTTP(w, r)
	})
	w := br.do("GET", "/console/auth/callback?"+url.Values{"state": {q.Get("state")}, "code": {code}}.Encode(), nil)
	if w.Code != http.StatusSeeOther || br.cookies[sessionCookie] == nil {
		t.Fatalf("callback: %d %s", w.Code, w.Body)
	}
	if idToken == "" {
		t.Fatal("the console did not send the API the ID token")
	}
	ss, ok := b.console.sessions.get(br.cookies[sessionCookie].Value)
	if !ok || ss.token != idToken || ss.expires.Sub(time.Now()) > time.Hour {
		t.Fatalf("session %+v: want the ID token, expiring with it", ss)
	}
	if page := br.do("GET", "/console/apps", nil); page.Code != http.StatusOK || !strings.Contains(page.Body.String(), `id="whoami">u1`) {
		t.Fatalf("apps after OIDC sign-in: %d", page.Code)
	}
}

func TestOIDCCallbackRefusesAnotherBrowsersState(t *testing.T) {
	t.Parallel()
	b, idp := oidcSetup(t)
	victim, attacker := b.browser(t), b.browser(t)
	u := start(t, attacker)
	code := idp.approve(u.String())
	start(t, victim) // the victim has a sign-in of its own going
	w := victim.do("GET", "/console/auth/callback?"+url.Values{"state": {u.Query().Get("state")}, "code": {code}}.Encode(), nil)
	if w.Code != http.StatusBadRequest || victim.cookies[sessionCookie] != nil {
		t.Fatalf("callback with another browser's state: %d", w.Code)
	}
	// And a state is used once.
	w = attacker.do("GET", "/console/auth/callback?"+url.Values{"state": {"forged"}, "code": {code}}.Encode(), nil)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("forged state: %d", w.Code)
	}
}

func TestOIDCCallbackRefusesAWrongNonce(t *testing.T) {
	t.Parallel()
	b, idp := oidcSetup(t)
	idp.nonce = "replayed-nonce"
	br := b.browser(t)
	u := start(t, br)
	code := idp.approve(u.String())
	w := br.do("GET", "/console/auth/callback?"+url.Values{"state": {u.Query().Get("state")}, "code": {code}}.Encode(), nil)
	if w.Code != http.StatusUnauthorized || br.cookies[sessionCookie] != nil || !strings.Contains(w.Body.String(), "nonce") {
		t.Fatalf("wrong nonce: %d %s", w.Code, w.Body)
	}
}

func TestOIDCClientMustBeTheAPIAudience(t *testing.T) {
	t.Parallel()
	err := Config{Issuer: "https://idp.example", Audience: "tollgate", ClientID: "console", RedirectURL: "https://x/console/auth/callback"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "must equal the API's OIDC audience") {
		t.Fatalf("client id not the audience: %v", err)
	}
}

package api

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/tasks"
)

// countingIssuer serves a JWKS and counts how often it is fetched.
func countingIssuer(t *testing.T) (*issuer, *atomic.Int64) {
	iss := newIssuer(t)
	var fetches atomic.Int64
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &iss.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	iss.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		json.NewEncoder(w).Encode(jwks)
	})
	return iss, &fetches
}

// signedWithKid signs claims with key under a key id of the caller's choice.
func signedWithKid(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func serveFrom(h http.Handler, remote, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/v1/scans/x", nil)
	req.RemoteAddr = remote
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestBadTokensAreRefusedBeforeAuthWork: JWTs with random key ids, each of
// which makes the OIDC verifier fetch the issuer's keys again, are refused
// with 429 once an address has sent a few, before any verification; the
// issuer sees a bounded number of fetches, and other addresses are served.
func TestBadTokensAreRefusedBeforeAuthWork(t *testing.T) {
	iss, fetches := countingIssuer(t)
	s := testServer(t, Config{
		OIDC:             OIDC{Issuer: "https://ci.example", Audience: "tollgate", JWKSURL: iss.srv.URL},
		AuthFailureBurst: 5, AuthFailureRate: 0.001,
	})
	h := s.authenticate(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	attacker, _ := rsa.GenerateKey(rand.Reader, 2048)
	claims := map[string]any{"iss": "https://ci.example", "aud": "tollgate", "sub": "x", "tenant": "a", "exp": time.Now().Add(time.Hour).Unix()}
	codes := map[int]int{}
	for i := range 50 {
		rec := serveFrom(h, "192.0.2.7:4000", signedWithKid(t, attacker, fmt.Sprintf("random-%d", i), claims))
		codes[rec.Code]++
	}
	if codes[http.StatusUnauthorized] != 5 || codes[http.StatusTooManyRequests] != 45 {
		t.Fatalf("answers %v, want 5 × 401 then 45 × 429", codes)
	}
	if n := fetches.Load(); n > 6 {
		t.Fatalf("the JWKS was fetched %d times for 5 verified tokens", n)
	}
	// Another address still gets its answer.
	if rec := serveFrom(h, "198.51.100.1:4000", "nope"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("another address: %d", rec.Code)
	}
}

// TestLimiterTablesStayBounded: thousands of addresses and principals leave
// the limiters' tables at their bound.
func TestLimiterTablesStayBounded(t *testing.T) {
	s := testServer(t, Config{
		Tokens:         []Token{{Name: "ci", SHA256: HashToken("ok"), Tenant: "a", Roles: []string{RoleCI}}},
		MaxLimiterKeys: 64,
	})
	h := s.limitAddress(s.authenticate(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})))
	for i := range 2000 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		serveFrom(h, netip.AddrPortFrom(addr, 1234).String(), "ok")
		s.edge.allowPrincipal(Principal{Tenant: "a", Name: fmt.Sprintf("oidc:repo-%d", i)})
	}
	for name, l := range map[string]*keyedLimiter{"address": s.edge.perIP, "principal": s.edge.perPrincipal, "auth failures": s.edge.authFailures} {
		if n := l.len(); n > 64 {
			t.Errorf("%s limiter holds %d keys, bound 64", name, n)
		}
	}
	if s.edge.perIP.len() != 64 {
		t.Errorf("address limiter holds %d keys, want the bound (64)", s.edge.perIP.len())
	}
}

// TestPrincipalLimitIsPerTenant: the same principal name in two tenants has
// two budgets.
func TestPrincipalLimitIsPerTenant(t *testing.T) {
	s := testServer(t, Config{Tokens: []Token{{Name: "ci", SHA256: HashToken("x"), Tenant: "a"}}, RatePerSecond: 0.001, Burst: 1})
	if !s.edge.allowPrincipal(Principal{Tenant: "a", Name: "ci"}) || s.edge.allowPrincipal(Principal{Tenant: "a", Name: "ci"}) {
		t.Fatal("tenant a's ci: want one request, then refused")
	}
	if !s.edge.allowPrincipal(Principal{Tenant: "b", Name: "ci"}) {
		t.Fatal("tenant b's ci shares tenant a's budget")
	}
}

// TestArchiveChecksAreBounded: with every check slot taken, an upload is
// answered 503 with Retry-After instead of starting another extraction;
// a waiting check gets the slot when one frees.
func TestArchiveChecksAreBounded(t *testing.T) {
	s := testServer(t, Config{
		Tokens:              []Token{{Name: "ci", SHA256: HashToken("ci-token"), Tenant: "a", Roles: []string{RoleCI}}},
		MaxConcurrentChecks: 1, CheckQueueWait: time.Nanosecond,
	})
	authz, err := policies.NewAuthz(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.deps.Authorizer = authz
	release, ok := s.edge.acquireCheck(context.Background())
	if !ok {
		t.Fatal("no free slot at start")
	}
	body, ctype := upload(t)
	req := httptest.NewRequest(http.MethodPost, "/v1/scans", body)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", "Bearer ci-token")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "/busy") {
		t.Fatalf("with every slot taken: %d %s (Retry-After %q)", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}

	// A check that may wait gets the slot as soon as it is released.
	s.edge.checkWait = time.Hour
	got := make(chan bool)
	go func() {
		r, ok := s.edge.acquireCheck(context.Background())
		if ok {
			r()
		}
		got <- ok
	}()
	release()
	if !<-got {
		t.Fatal("a waiting check did not get the freed slot")
	}
	// One whose request ends stops waiting.
	release, _ = s.edge.acquireCheck(context.Background())
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := s.edge.acquireCheck(ctx); ok {
		t.Fatal("a cancelled request got a slot that is taken")
	}
}

// upload is a scan submission: metadata and a small archive.
func upload(t *testing.T) (io.Reader, string) {
	t.Helper()
	return uploadWithVEX(t)
}

// TestClientKey: X-Forwarded-For is believed only from a trusted proxy, and
// then only up to the first hop no trusted proxy wrote; IPv6 clients are
// keyed by their /64.
func TestClientKey(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"192.0.2.1:5555", []string{"203.0.113.9"}, nil, "192.0.2.1"},
		{"10.1.2.3:5555", []string{"203.0.113.9"}, nil, "10.1.2.3"},
		{"10.1.2.3:5555", []string{"203.0.113.9"}, proxies, "203.0.113.9"},
		{"10.1.2.3:5555", []string{"198.51.100.5, 203.0.113.9, 10.9.9.9"}, proxies, "203.0.113.9"},
		{"10.1.2.3:5555", []string{"198.51.100.5", "203.0.113.9"}, proxies, "203.0.113.9"},
		{"10.1.2.3:5555", []string{"garbage, 203.0.113.9"}, proxies, "203.0.113.9"},
		{"10.1.2.3:5555", []string{"203.0.113.9, garbage"}, proxies, "10.1.2.3"},
		{"192.0.2.1:5555", []string{"203.0.113.9"}, proxies, "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", nil, nil, "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.1]:443", nil, nil, "192.0.2.1"},
		{"@", nil, nil, "raw:@"},
	}
	for _, c := range cases {
		if got := clientKey(c.remote, c.xff, c.trusted); got != c.want {
			t.Errorf("clientKey(%q, %q, %v) = %q, want %q", c.remote, c.xff, c.trusted, got, c.want)
		}
	}
}

// FuzzClientKey: any header gives a key, and without trusted proxies the key
// never depends on X-Forwarded-For.
func FuzzClientKey(f *testing.F) {
	f.Add("10.1.2.3:5555", "198.51.100.5, 203.0.113.9")
	f.Add("[2001:db8::1%eth0]:1", "::1, fe80::1%lo")
	f.Add("", ",,,")
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		if clientKey(remote, []string{xff}, proxies) == "" {
			t.Fatal("empty key")
		}
		if clientKey(remote, []string{xff}, nil) != clientKey(remote, nil, nil) {
			t.Fatal("X-Forwarded-For changed the key of an untrusted connection")
		}
	})
}

// TestPoolsShowOnlyTheCallersTenant: an sre sees the fleet's totals and its
// own tenant's backlog, never another tenant's name or rows.
func TestPoolsShowOnlyTheCallersTenant(t *testing.T) {
	s := testServer(t, Config{Tokens: []Token{{Name: "sre-b", SHA256: HashToken("sre-b"), Tenant: "bravo", Roles: []string{RoleSRE}}}})
	authz, err := policies.NewAuthz(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.deps.Authorizer = authz
	s.deps.Pools = poolsFunc(func(context.Context) ([]tasks.PoolStatus, error) {
		return []tasks.PoolStatus{{Pool: tasks.PoolFast, QueueStatus: tasks.QueueStatus{Pending: 9}, Tenants: []tasks.TenantTasks{
			{Tenant: "alpha-secret-project", Priority: tasks.PriorityCI, Tasks: 7}, {Tenant: "bravo", Priority: tasks.PriorityCI, Tasks: 2},
		}}}, nil
	})
	req := httptest.NewRequest(http.MethodGet, "/v1/pools", nil)
	req.Header.Set("Authorization", "Bearer sre-b")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "alpha") {
		t.Fatalf("another tenant's backlog is shown:\n%s", rec.Body)
	}
	var got PoolsStatus
	json.Unmarshal(rec.Body.Bytes(), &got)
	if p := got.Pools[0]; p.Pending != 9 || p.TenantsWithWork != 2 || len(p.Tenants) != 1 || p.Tenants[0].Tenant != "bravo" {
		t.Fatalf("pools %+v", got.Pools)
	}
}

type poolsFunc func(context.Context) ([]tasks.PoolStatus, error)

func (f poolsFunc) Status(ctx context.Context) ([]tasks.PoolStatus, error) { return f(ctx) }

// TestRoutesAreServed: Handler serves exactly Routes (a route missing from
// the table would escape the cross-tenant matrix), and /metrics is not one.
func TestRoutesAreServed(t *testing.T) {
	s := testServer(t, Config{Tokens: []Token{{Name: "x", SHA256: HashToken("x"), Tenant: "a"}}})
	h := s.Handler()
	for _, r := range Routes() {
		path := strings.NewReplacer("{id}", "00000000-0000-0000-0000-000000000000", "{app}", "app").Replace(r.Pattern)
		req := httptest.NewRequest(r.Method, path, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !r.Public && rec.Code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", r, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("/metrics on the API handler: %d, want 404", rec.Code)
	}
}

// TestAddressLimitComesBeforeAuthentication: past an address's budget its
// requests are 429 whatever they carry, on public routes too, while another
// address is served.
func TestAddressLimitComesBeforeAuthentication(t *testing.T) {
	s := testServer(t, Config{Tokens: []Token{{Name: "ci", SHA256: HashToken("ok"), Tenant: "a"}}, IPRatePerSecond: 0.001, IPBurst: 2})
	h := s.Handler()
	send := func(remote, path string) int {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if a, b := send("192.0.2.9:1", "/v1/scans/x"), send("192.0.2.9:2", "/healthz"); a != http.StatusUnauthorized || b != http.StatusOK {
		t.Fatalf("within the budget: %d %d", a, b)
	}
	for _, path := range []string{"/v1/scans/x", "/readyz"} {
		if code := send("192.0.2.9:3", path); code != http.StatusTooManyRequests {
			t.Fatalf("%s past the budget: %d, want 429", path, code)
		}
	}
	if code := send("198.51.100.9:1", "/healthz"); code != http.StatusOK {
		t.Fatalf("another address: %d", code)
	}
}

package api

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/time/rate"
)

// edge holds the abuse limits applied before a request does real work: a
// rate limit per client address (before authentication), one per principal
// (after it), and a bound on the archive checks running at once.
type edge struct {
	perIP        *keyedLimiter
	authFailures *keyedLimiter
	perPrincipal *keyedLimiter
	trusted      []netip.Prefix
	checks       chan struct{}
	checkWait    time.Duration
}

func newEdge(cfg Config) *edge {
	return &edge{
		perIP:        newKeyedLimiter(cfg.IPRatePerSecond, cfg.IPBurst, cfg.MaxLimiterKeys),
		authFailures: newKeyedLimiter(cfg.AuthFailureRate, cfg.AuthFailureBurst, cfg.MaxLimiterKeys),
		perPrincipal: newKeyedLimiter(cfg.RatePerSecond, cfg.Burst, cfg.MaxLimiterKeys),
		trusted:      cfg.TrustedProxies,
		checks:       make(chan struct{}, cfg.MaxConcurrentChecks),
		checkWait:    cfg.CheckQueueWait,
	}
}

// keyedLimiter is a token bucket per key in a bounded LRU table, so that a
// stream of new keys (addresses, principals) cannot grow memory: past the
// bound the least recently seen key is forgotten. An entry also expires
// after being idle for as long as its bucket takes to refill, when a new
// bucket would be the same as the old one.
type keyedLimiter struct {
	mu    sync.Mutex
	table *expirable.LRU[string, *rate.Limiter]
	limit rate.Limit
	burst int
}

func newKeyedLimiter(perSecond float64, burst, size int) *keyedLimiter {
	refill := time.Minute
	if perSecond > 0 {
		refill = max(refill, time.Duration(float64(burst)/perSecond*float64(time.Second)))
	}
	return &keyedLimiter{table: expirable.NewLRU[string, *rate.Limiter](size, nil, refill), limit: rate.Limit(perSecond), burst: burst}
}

// allow takes a token from key's bucket.
func (l *keyedLimiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.table.Get(key)
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
	}
	// Adding again restarts the idle expiry.
	l.table.Add(key, lim)
	return lim.Allow()
}

// exhausted reports whether key's bucket is empty, taking nothing from it.
func (l *keyedLimiter) exhausted(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.table.Peek(key)
	return ok && lim.Tokens() < 1
}

// len is how many keys the limiter remembers.
func (l *keyedLimiter) len() int { return l.table.Len() }

// client names the client a request comes from (see clientKey).
func (e *edge) client(r *http.Request) string {
	return clientKey(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), e.trusted)
}

// limitAddress applies the per-address request rate to every route, the
// public ones too (/readyz reaches Temporal, NATS and the store).
func (s *Server) limitAddress(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.edge.perIP.allow(s.edge.client(r)) {
			s.tooMany(w, r, "rate-limited-address", "too many requests from this address; retry after a second")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tooMany answers 429 with Retry-After, counting the refusal by reason.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, reason, detail string) {
	s.met.refused.WithLabelValues(reason).Inc()
	w.Header().Set("Retry-After", "1")
	writeProblem(w, r, http.StatusTooManyRequests, "rate-limited", detail)
}

// tooManyBadTokens reports whether the client has sent too many invalid
// tokens lately: then its request is refused before its token is looked at.
func (e *edge) tooManyBadTokens(client string) bool { return e.authFailures.exhausted(client) }

// authFailed counts an invalid token against the client's address.
func (e *edge) authFailed(client string) { e.authFailures.allow(client) }

// allowPrincipal applies the per-principal limit: a principal is named
// within its tenant, so two tenants' "ci" tokens have their own budgets.
func (e *edge) allowPrincipal(p Principal) bool {
	return e.perPrincipal.allow(p.Tenant + "\x00" + p.Name)
}

// acquireCheck takes an archive-check slot, waiting at most the configured
// time (or until ctx ends). It reports false when no slot came free.
func (e *edge) acquireCheck(ctx context.Context) (release func(), ok bool) {
	release = func() { <-e.checks }
	select {
	case e.checks <- struct{}{}:
		return release, true
	default:
	}
	t := time.NewTimer(e.checkWait)
	defer t.Stop()
	select {
	case e.checks <- struct{}{}:
		return release, true
	case <-t.C:
		return nil, false
	case <-ctx.Done():
		return nil, false
	}
}

// clientKey names the client a request comes from for rate limiting: the
// connection's address, or, when that is a trusted proxy, the right-most
// X-Forwarded-For address that is not one (the first one no trusted proxy
// could have written). IPv6 clients are keyed by their /64, which one host
// usually holds whole. An address that does not parse is its own key.
func clientKey(remoteAddr string, forwarded []string, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return "raw:" + remoteAddr
	}
	addr = addr.Unmap().WithZone("")
	if isTrusted(addr, trusted) {
		hops := strings.Split(strings.Join(forwarded, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a hop no trusted proxy wrote: stop at the last good one
			}
			addr = hop.Unmap().WithZone("")
			if !isTrusted(addr, trusted) {
				break
			}
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

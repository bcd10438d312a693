package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"time"
)

// sessionCookie holds a session's id; the token stays on the server.
const sessionCookie = "tollgate_console"

// session is one signed-in browser: its bearer token (a static API token or
// an OIDC ID token), its CSRF token and who the API says it is.
type session struct {
	id, token, csrf string
	expires         time.Time
	who             whoami
}

// sessions is the in-memory session store: random 256-bit ids, each expiring
// with its token, at most max of them.
type sessions struct {
	mu  sync.Mutex
	max int
	now func() time.Time
	m   map[string]*session
}

func newSessions(maxN int, now func() time.Time) *sessions {
	return &sessions{max: maxN, now: now, m: map[string]*session{}}
}

// randomID is 256 random bits, base64url.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) add(token string, expires time.Time, who whoami) *session {
	ss := &session{id: randomID(), token: token, csrf: randomID(), expires: expires, who: who}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		now := s.now()
		var soonest *session
		for _, o := range s.m {
			if !o.expires.After(now) {
				delete(s.m, o.id)
			} else if soonest == nil || o.expires.Before(soonest.expires) {
				soonest = o
			}
		}
		if len(s.m) >= s.max && soonest != nil {
			delete(s.m, soonest.id)
		}
	}
	s.m[ss.id] = ss
	return ss
}

func (s *sessions) get(id string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[id]
	if ok && !ss.expires.After(s.now()) {
		delete(s.m, id)
		return nil, false
	}
	return ss, ok
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// secureRequest: a cookie is Secure unless the request came over plain
// http from the loopback (tollgate dev on a laptop). Behind a TLS-ending
// proxy the browser speaks https, so Secure is right.
func secureRequest(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, expires time.Time) {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: secureRequest(r), SameSite: http.SameSiteLaxMode}
	if value == "" {
		c.MaxAge = -1
	} else if !expires.IsZero() {
		c.Expires = expires
	}
	http.SetCookie(w, c)
}

// sameSecret compares two secrets in constant time; empty never matches.
func sameSecret(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// signedIn serves h with the request's session, or sends the browser to
// sign in. A POST must carry the session's CSRF token in the form's csrf
// field (besides passing http.CrossOriginProtection).
func (c *Console) signedIn(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var ss *session
		if ck, err := r.Cookie(sessionCookie); err == nil {
			ss, _ = c.sessions.get(ck.Value)
		}
		if ss == nil {
			if r.Header.Get("HX-Request") == "true" {
				w.Header().Set("HX-Redirect", "/console/signin")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if r.Method != http.MethodGet {
				c.renderError(w, r, nil, http.StatusUnauthorized, "your session has ended: sign in again")
				return
			}
			http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !sameSecret(r.PostFormValue("csrf"), ss.csrf) {
				c.renderError(w, r, ss, http.StatusForbidden, "the form's CSRF token is missing or wrong: reload the page and try again")
				return
			}
		}
		h(w, r, ss)
	}
}

// pendingLogin is an OIDC sign-in between /auth/start and /auth/callback.
type pendingLogin struct {
	nonce, verifier string
	expires         time.Time
}

// loginTTL is how long a user has at the issuer's sign-in page.
const loginTTL = 10 * time.Minute

// logins are the pending OIDC sign-ins by state, each used once.
type logins struct {
	mu  sync.Mutex
	max int
	now func() time.Time
	m   map[string]pendingLogin
}

func newLogins(maxN int, now func() time.Time) *logins {
	return &logins{max: maxN, now: now, m: map[string]pendingLogin{}}
}

func (l *logins) add(state string, p pendingLogin) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) >= l.max {
		now := l.now()
		for k, o := range l.m {
			if !o.expires.After(now) {
				delete(l.m, k)
			}
		}
		for k := range l.m { // still full: drop any one (a flood of starts)
			if len(l.m) < l.max {
				break
			}
			delete(l.m, k)
		}
	}
	l.m[state] = p
}

func (l *logins) take(state string) (pendingLogin, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.m[state]
	delete(l.m, state)
	if !ok || !p.expires.After(l.now()) {
		return pendingLogin{}, false
	}
	return p, true
}

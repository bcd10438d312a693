// Package console is tollgate's web console: server-rendered pages under
// /console/ for on-call, reviewers, security and SRE. It is a client of the
// API, in process: every page reads, and every form posts, through the API's
// own http.Handler with the signed-in session's bearer token, so every action
// passes the same authentication, rate limits and Rego policy. What a page
// offers (a rollback button, the review buttons) follows GET /v1/whoami's
// "can"; the API refuses anyway.
package console

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

//go:embed templates static
var assets embed.FS

// Config of the console. Zero fields take the documented defaults.
type Config struct {
	// Issuer is the OpenID Connect issuer the API trusts
	// (api.Config.OIDC.Issuer); empty: no OIDC sign-in.
	Issuer string
	// Audience is the audience the API requires of OIDC tokens
	// (api.Config.OIDC.Audience). The console signs users in as the OIDC
	// client with this id, so that the ID token it receives is a bearer
	// the API accepts: ClientID, when set, must equal it.
	Audience string
	ClientID string
	// ClientSecret is the client's secret at the issuer (empty for a public
	// client: PKCE protects the code either way).
	ClientSecret string
	// RedirectURL is where the issuer sends the browser back:
	// https://HOST/console/auth/callback (required with an issuer).
	RedirectURL string
	// AllowTokenSignin offers a form that signs in with a static API token
	// (always on `tollgate dev`; opt-in on serve).
	AllowTokenSignin bool
	// MaxSessions bounds the in-memory sessions (default 10000): past it,
	// the session closest to expiry is dropped.
	MaxSessions int
	// TokenSessionTTL is how long a static-token session lasts (default 8h);
	// an OIDC session lasts as long as its ID token.
	TokenSessionTTL time.Duration
	// HTTPClient talks to the issuer (default http.DefaultClient).
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.ClientID = cmp.Or(c.ClientID, c.Audience)
	c.MaxSessions = cmp.Or(c.MaxSessions, 10000)
	c.TokenSessionTTL = cmp.Or(c.TokenSessionTTL, 8*time.Hour)
	c.HTTPClient = cmp.Or(c.HTTPClient, http.DefaultClient)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Issuer == "" && !c.AllowTokenSignin {
		return errors.New("console: no OIDC issuer and no token sign-in: nobody could sign in")
	}
	if c.Issuer != "" {
		if c.Audience == "" {
			return errors.New("console: an OIDC issuer needs the API's audience")
		}
		if c.ClientID != "" && c.ClientID != c.Audience {
			return fmt.Errorf("console: client_id %q must equal the API's OIDC audience %q: the ID token is the bearer the console sends the API", c.ClientID, c.Audience)
		}
		if c.RedirectURL == "" {
			return errors.New("console: redirect_url is required with an OIDC issuer (https://HOST/console/auth/callback)")
		}
	}
	if c.MaxSessions < 0 || c.TokenSessionTTL < 0 {
		return errors.New("console: limits must not be negative")
	}
	return nil
}

// Console serves /console/.
type Console struct {
	cfg      Config
	api      http.Handler
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
	sessions *sessions
	logins   *logins
	pages    map[string]*template.Template
	handler  http.Handler
}

var _ http.Handler = (*Console)(nil)

// New builds the console over the API's handler. With an issuer it reads the
// issuer's discovery document (ctx bounds that).
func New(ctx context.Context, cfg Config, apiHandler http.Handler) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Console{cfg: cfg, api: apiHandler,
		sessions: newSessions(cfg.MaxSessions, cfg.Now), logins: newLogins(cfg.MaxSessions, cfg.Now)}
	if cfg.Issuer != "" {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, cfg.HTTPClient), cfg.Issuer)
		if err != nil {
			return nil, fmt.Errorf("console: discover OIDC issuer %q: %w", cfg.Issuer, err)
		}
		c.oauth = &oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: cfg.RedirectURL, Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
		c.verifier = p.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: cfg.Now})
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	c.handler = c.routes()
	return c, nil
}

// ServeHTTP serves the console's pages under /console/.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.handler.ServeHTTP(w, r) }

// contentSecurityPolicy allows the console's own scripts, styles and images
// and nothing else: no inline script or style, no CDN, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/apps", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /console/signin", c.signinPage)
	mux.HandleFunc("POST /console/signin", c.tokenSignin)
	mux.HandleFunc("GET /console/auth/start", c.authStart)
	mux.HandleFunc("GET /console/auth/callback", c.authCallback)
	mux.HandleFunc("POST /console/signout", c.signedIn(c.signout))

	mux.HandleFunc("GET /console/apps", c.signedIn(c.appsPage))
	mux.HandleFunc("GET /console/apps/{app}", c.signedIn(c.appPage))
	mux.HandleFunc("GET /console/apps/{app}/rollback", c.signedIn(c.rollbackFragment))
	mux.HandleFunc("POST /console/apps/{app}/rollback", c.signedIn(c.rollback))
	mux.HandleFunc("POST /console/apps/{app}/freeze", c.signedIn(c.freeze("freeze")))
	mux.HandleFunc("POST /console/apps/{app}/unfreeze", c.signedIn(c.freeze("unfreeze")))
	mux.HandleFunc("GET /console/scans", c.signedIn(c.scansPage))
	mux.HandleFunc("GET /console/scans/{id}", c.signedIn(c.scanPage))
	mux.HandleFunc("GET /console/scans/{id}/report", c.signedIn(c.download))
	mux.HandleFunc("POST /console/scans/{id}/review", c.signedIn(c.review))
	mux.HandleFunc("GET /console/review", c.signedIn(c.reviewPage))
	mux.HandleFunc("GET /console/exceptions", c.signedIn(c.exceptionsPage))
	mux.HandleFunc("POST /console/exceptions", c.signedIn(c.createException))
	mux.HandleFunc("POST /console/exceptions/{id}/revoke", c.signedIn(c.revokeException))
	mux.HandleFunc("GET /console/pools", c.signedIn(c.poolsPage))
	mux.HandleFunc("GET /console/pools/table", c.signedIn(c.poolsFragment))
	mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, nil, http.StatusNotFound, "no such page: "+r.URL.Path)
	})
	return securityHeaders(http.NewCrossOriginProtection().Handler(mux))
}

// securityHeaders sets the CSP and its companions on every response.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

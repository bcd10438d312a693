package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// whoami is GET /v1/whoami: the principal and what it may do in its tenant.
type whoami struct {
	Principal struct {
		Name   string   `json:"name"`
		Tenant string   `json:"tenant"`
		Roles  []string `json:"roles"`
		Person string   `json:"person"`
		Auth   string   `json:"auth"`
	} `json:"principal"`
	Can map[string]bool `json:"can"`
}

// signinCookie binds the sign-in form (before any session) to the browser
// that loaded it: its value is the form's csrf field.
const signinCookie = "tollgate_console_signin"

// authCookie binds an OIDC sign-in's state to the browser that started it.
const authCookie = "tollgate_console_auth"

type signinData struct {
	OIDC, Token bool
	CSRF        string
}

func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignin(w, r, http.StatusOK, "")
}

func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d := signinData{OIDC: c.oauth != nil, Token: c.cfg.AllowTokenSignin}
	if d.Token {
		d.CSRF = randomID()
		setCookie(w, r, signinCookie, d.CSRF, "/console/signin", c.cfg.Now().Add(loginTTL))
	}
	c.render(w, r, nil, status, "signin", page{Title: "Sign in", Error: msg, Data: d})
}

// tokenSignin signs in with a static API token, if allowed: the API's
// GET /v1/whoami must accept it.
func (c *Console) tokenSignin(w http.ResponseWriter, r *http.Request) {
	if !c.cfg.AllowTokenSignin {
		c.renderError(w, r, nil, http.StatusNotFound, "sign-in with a token is not enabled on this server")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	ck, err := r.Cookie(signinCookie)
	if err != nil || !sameSecret(r.PostFormValue("csrf"), ck.Value) {
		c.renderError(w, r, nil, http.StatusForbidden, "the form's CSRF token is missing or wrong: reload the sign-in page and try again")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		c.renderSignin(w, r, http.StatusBadRequest, "enter a token")
		return
	}
	who, a := c.whoami(r, token)
	if !a.ok() {
		c.renderSignin(w, r, a.status, "the API refused this token: "+a.detail())
		return
	}
	setCookie(w, r, signinCookie, "", "/console/signin", zeroTime)
	c.startSession(w, r, token, c.cfg.Now().Add(c.cfg.TokenSessionTTL), who)
}

func (c *Console) whoami(r *http.Request, token string) (whoami, apiAnswer) {
	var who whoami
	a := c.call(r, token, http.MethodGet, "/v1/whoami", nil)
	if a.ok() && json.Unmarshal(a.body, &who) != nil {
		a.status, a.body = http.StatusBadGateway, []byte(`{"detail":"the API's whoami answer could not be read"}`)
	}
	return who, a
}

// startSession keeps the token server-side until it expires and gives the
// browser only the session's random id.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, token string, expires time.Time, who whoami) {
	ss := c.sessions.add(token, expires, who)
	setCookie(w, r, sessionCookie, ss.id, "/console/", expires)
	http.Redirect(w, r, "/console/apps", http.StatusSeeOther)
}

var errNoIDToken = errors.New("the token response has no id_token")

// authStart begins the OIDC authorization code flow with PKCE: a random
// state (also in a cookie, to bind the callback to this browser), nonce and
// code verifier, kept server-side until the callback.
func (c *Console) authStart(w http.ResponseWriter, r *http.Request) {
	if c.oauth == nil {
		c.renderError(w, r, nil, http.StatusNotFound, "OIDC sign-in is not configured on this server")
		return
	}
	state, nonce, verifier := randomID(), randomID(), oauth2.GenerateVerifier()
	exp := c.cfg.Now().Add(loginTTL)
	c.logins.add(state, pendingLogin{nonce: nonce, verifier: verifier, expires: exp})
	setCookie(w, r, authCookie, state, "/console/auth/", exp)
	http.Redirect(w, r, c.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// authCallback finishes the flow: the state must be this browser's and
// pending, the code is exchanged with the verifier, the ID token verified
// (issuer, audience = client id, expiry, signature) with its nonce, and the
// API must accept it as a bearer.
func (c *Console) authCallback(w http.ResponseWriter, r *http.Request) {
	if c.oauth == nil {
		c.renderError(w, r, nil, http.StatusNotFound, "OIDC sign-in is not configured on this server")
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		c.renderSignin(w, r, http.StatusUnauthorized, "the identity provider refused the sign-in: "+e+" "+q.Get("error_description"))
		return
	}
	state := q.Get("state")
	ck, err := r.Cookie(authCookie)
	if err != nil || !sameSecret(state, ck.Value) {
		c.renderSignin(w, r, http.StatusBadRequest, "the sign-in's state does not match this browser's: start again")
		return
	}
	setCookie(w, r, authCookie, "", "/console/auth/", zeroTime)
	pl, ok := c.logins.take(state)
	if !ok {
		c.renderSignin(w, r, http.StatusBadRequest, "the sign-in expired or was already used: start again")
		return
	}
	ctx := oidc.ClientContext(r.Context(), c.cfg.HTTPClient)
	tok, err := c.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pl.verifier))
	if err != nil {
		c.cfg.Logger.WarnContext(ctx, "console: exchange the OIDC code", "err", err)
		c.renderSignin(w, r, http.StatusUnauthorized, "the identity provider did not accept the sign-in's code")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.verify(ctx, raw)
	if err != nil {
		c.cfg.Logger.WarnContext(ctx, "console: verify the ID token", "err", err)
		c.renderSignin(w, r, http.StatusUnauthorized, "the identity provider's ID token is not valid")
		return
	}
	if !sameSecret(idt.Nonce, pl.nonce) {
		c.renderSignin(w, r, http.StatusUnauthorized, "the ID token's nonce does not match the sign-in's")
		return
	}
	who, a := c.whoami(r, raw)
	if !a.ok() {
		c.renderSignin(w, r, a.status, "the API refused your identity: "+a.detail())
		return
	}
	c.startSession(w, r, raw, idt.Expiry, who)
}

func (c *Console) verify(ctx context.Context, raw string) (*oidc.IDToken, error) {
	if raw == "" {
		return nil, errNoIDToken
	}
	return c.verifier.Verify(ctx, raw)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, ss *session) {
	c.sessions.delete(ss.id)
	setCookie(w, r, sessionCookie, "", "/console/", zeroTime)
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}

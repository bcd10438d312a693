package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"
)

// apiAnswer is what the API answered one in-process request.
type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a apiAnswer) ok() bool { return a.status >= 200 && a.status < 300 }

// problem is the API's error body (application/problem+json).
type problem struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// detail is the refusal's problem detail, else its title, else the status.
func (a apiAnswer) detail() string {
	var p problem
	_ = json.Unmarshal(a.body, &p)
	switch {
	case p.Detail != "":
		return p.Detail
	case p.Title != "":
		return p.Title
	}
	return fmt.Sprintf("the API answered %d %s", a.status, http.StatusText(a.status))
}

// call sends one request to the API's handler in process, as the browser's
// client: with the token as bearer and the browser's address (and
// forwarding header), so that the API's per-address limits and trusted
// proxies see the real client.
func (c *Console) call(r *http.Request, token, method, path string, body any) apiAnswer {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiAnswer{status: http.StatusInternalServerError, body: []byte(`{"detail":"encode the request"}`)}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, "http://tollgate.console"+path, rd)
	if err != nil {
		return apiAnswer{status: http.StatusBadRequest, body: fmt.Appendf(nil, `{"detail":%q}`, "bad request path "+path)}
	}
	req.RemoteAddr = r.RemoteAddr
	req.Host = r.Host
	if v := r.Header.Values("X-Forwarded-For"); len(v) > 0 {
		req.Header["X-Forwarded-For"] = v
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	c.api.ServeHTTP(rec, req)
	return apiAnswer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// get reads path into v. A refusal is rendered as the page (with the API's
// status and its detail) and get answers false; a 401 ends the session.
func (c *Console) get(w http.ResponseWriter, r *http.Request, ss *session, path string, v any) bool {
	a := c.call(r, ss.token, http.MethodGet, path, nil)
	return c.decode(w, r, ss, a, v)
}

func (c *Console) decode(w http.ResponseWriter, r *http.Request, ss *session, a apiAnswer, v any) bool {
	if !a.ok() {
		c.refused(w, r, ss, a)
		return false
	}
	if v == nil {
		return true
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		c.cfg.Logger.ErrorContext(r.Context(), "console: decode API answer", "path", r.URL.Path, "err", err)
		c.renderError(w, r, ss, http.StatusBadGateway, "the API's answer could not be read")
		return false
	}
	return true
}

// refused renders an API refusal with its status; a 401 means the token
// expired or was revoked, so the session ends.
func (c *Console) refused(w http.ResponseWriter, r *http.Request, ss *session, a apiAnswer) {
	if a.status == http.StatusUnauthorized && ss != nil {
		c.sessions.delete(ss.id)
		setCookie(w, r, sessionCookie, "", "/console/", zeroTime)
		ss = nil
	}
	if ra := a.header.Get("Retry-After"); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	c.renderError(w, r, ss, a.status, a.detail())
}

var zeroTime time.Time

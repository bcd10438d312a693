// Package apiclient is the one client of tollgate's /v1 API. The CLI's
// submit, the load test's driver and the end-to-end tests speak to the API
// through it, so a submission is built, authenticated and decoded in one
// place.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/api"
)

// MaxAnswerBytes bounds an answer the client reads (a report with every
// package of a large app fits).
const MaxAnswerBytes = 256 << 20

// rateLimitRetries is how often a 429 is waited out (its Retry-After)
// before the client gives up.
const rateLimitRetries = 5

// Client talks to one API as one principal.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client of the API at base, an http or https URL, sending
// token as a bearer token when it is not empty. hc nil is a client with a
// two-minute timeout.
func New(base, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api client: base %q: want an http(s) URL", base)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	return &Client{base: u, token: token, http: hc}, nil
}

// Error is an answer with a status of 300 or more, and the problem+json it
// carried.
type Error struct {
	Method, Path string
	Status       int
	Problem      api.Problem
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Problem.Detail != "" {
		msg += ": " + e.Problem.Detail
	}
	return msg
}

// ClientSide reports an answer that blames the request (4xx): sending it
// again will not help.
func ClientSide(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status >= 400 && e.Status < 500
}

// Submission is one scan request: the metadata part, the archive part, the
// scan's own VEX documents (one vex part each) and the Idempotency-Key
// header (a retried submission with the same key is the same scan).
type Submission struct {
	Metadata       api.Metadata
	Archive        []byte
	VEX            [][]byte
	IdempotencyKey string
}

// Submit posts s to /v1/scans and returns the accepted scan's status.
func (c *Client) Submit(ctx context.Context, s Submission) (api.ScanStatus, error) {
	meta, err := json.Marshal(s.Metadata)
	if err != nil {
		return api.ScanStatus{}, fmt.Errorf("submit %q: encode metadata: %w", s.Metadata.App, err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, err := mw.CreateFormField("metadata")
	if err == nil {
		_, err = w.Write(meta)
	}
	if err == nil {
		w, err = mw.CreateFormFile("archive", "source.tgz")
	}
	if err == nil {
		_, err = w.Write(s.Archive)
	}
	for i, doc := range s.VEX {
		if err == nil {
			w, err = mw.CreateFormFile("vex", fmt.Sprintf("vex-%d", i+1))
		}
		if err == nil {
			_, err = w.Write(doc)
		}
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return api.ScanStatus{}, fmt.Errorf("submit %q: build the request: %w", s.Metadata.App, err)
	}
	var st api.ScanStatus
	err = c.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath("/v1/scans").String(), bytes.NewReader(body.Bytes()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
		if s.IdempotencyKey != "" {
			req.Header.Set("Idempotency-Key", s.IdempotencyKey)
		}
		return req, nil
	}, &st)
	return st, err
}

// Status returns scan id's status; a wait above zero long-polls the API for
// up to that long (it answers at once when the scan is done).
func (c *Client) Status(ctx context.Context, id string, wait time.Duration) (api.ScanStatus, error) {
	ref := "/v1/scans/" + url.PathEscape(id)
	if wait > 0 {
		ref += "?wait=" + wait.String()
	}
	var st api.ScanStatus
	err := c.Get(ctx, ref, &st)
	return st, err
}

// Get decodes the JSON answer of GET ref, a URL relative to the API's base
// (the status_url and report_url a status carries, a query included).
func (c *Client) Get(ctx context.Context, ref string, out any) error {
	return c.do(ctx, func() (*http.Request, error) {
		u, err := c.base.Parse(ref)
		if err != nil {
			return nil, fmt.Errorf("GET %q: %w", ref, err)
		}
		return http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	}, out)
}

// Post sends body as JSON to ref, a URL relative to the API's base, and
// decodes the JSON answer into out.
func (c *Client) Post(ctx context.Context, ref string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("POST %q: encode body: %w", ref, err)
	}
	return c.PostRaw(ctx, ref, "application/json", data, out)
}

// PostRaw posts data, of contentType, as it is (a VEX document in JSON or
// XML), and decodes the answer into out.
func (c *Client) PostRaw(ctx context.Context, ref, contentType string, data []byte, out any) error {
	return c.do(ctx, func() (*http.Request, error) {
		u, err := c.base.Parse(ref)
		if err != nil {
			return nil, fmt.Errorf("POST %q: %w", ref, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", contentType)
		return req, nil
	}, out)
}

// Raw returns the body of GET ref as it is (SARIF, CycloneDX, SPDX).
func (c *Client) Raw(ctx context.Context, ref string) ([]byte, error) {
	var raw json.RawMessage
	err := c.Get(ctx, ref, &raw)
	return raw, err
}

// do sends a request, waits out a 429's Retry-After a few times, and
// decodes the answer into out (a *json.RawMessage takes it as it is) or its
// problem+json into an *Error. The retry is written here rather than taken
// from a retry library: it only honours the server's Retry-After, and the
// callers keep their own policies for network errors.
func (c *Client) do(ctx context.Context, build func() (*http.Request, error), out any) error {
	for attempt := 0; ; attempt++ {
		req, err := build()
		if err != nil {
			return err
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: read answer: %w", req.Method, req.URL.Path, err)
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < rateLimitRetries {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(max(wait, 1)) * time.Second):
			}
			continue
		}
		if resp.StatusCode >= 300 {
			e := &Error{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode}
			_ = json.Unmarshal(data, &e.Problem)
			return e
		}
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = data
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", req.Method, req.URL.Path, err)
		}
		return nil
	}
}

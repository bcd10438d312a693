package deployers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/internal/syncbuf"
)

// delivery is one request the receiver got.
type delivery struct {
	header    http.Header
	req       deployers.Request
	verifyErr error
	n         int // deliveries of this Idempotency-Key so far, this one included
}

// receiver is a deployer the way an app would write one: it verifies the
// signature and dedupes on the Idempotency-Key. respond, when set, answers
// instead of the default (200 the first time a key is seen, 409 after).
type receiver struct {
	secret  []byte
	respond func(w http.ResponseWriter, r *http.Request, d delivery)

	mu         sync.Mutex
	byKey      map[string]int
	deliveries []delivery
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	d := delivery{header: r.Header.Clone()}
	d.verifyErr = deployers.VerifySignature(rv.secret, r.Header, body, time.Now(), time.Minute)
	if d.verifyErr == nil {
		if err := json.Unmarshal(body, &d.req); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
	}
	rv.mu.Lock()
	if d.verifyErr == nil {
		rv.byKey[r.Header.Get(deployers.HeaderIdempotencyKey)]++
		d.n = rv.byKey[r.Header.Get(deployers.HeaderIdempotencyKey)]
	}
	rv.deliveries = append(rv.deliveries, d)
	rv.mu.Unlock()

	switch {
	case d.verifyErr != nil:
		http.Error(w, "signature rejected", http.StatusUnauthorized)
	case rv.respond != nil:
		rv.respond(w, r, d)
	case d.n > 1:
		http.Error(w, "already applied", http.StatusConflict)
	default:
		fmt.Fprintln(w, "switched")
	}
}

func (rv *receiver) got() []delivery {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]delivery(nil), rv.deliveries...)
}

type webhookBundle struct {
	rv     *receiver
	srv    *httptest.Server
	target deployers.Target
	logs   *syncbuf.Buffer
}

func setupWebhook(t *testing.T, respond func(http.ResponseWriter, *http.Request, delivery)) *webhookBundle {
	t.Helper()
	rv := &receiver{secret: []byte(testSecret), respond: respond, byKey: map[string]int{}}
	srv := httptest.NewServer(rv)
	t.Cleanup(srv.Close)
	return &webhookBundle{
		rv:     rv,
		srv:    srv,
		target: deployers.Target{Type: "webhook", URL: srv.URL + "/deploy", Secret: testSecret},
		logs:   &syncbuf.Buffer{},
	}
}

func (b *webhookBundle) deployer(t *testing.T, opts ...deployers.Option) *deployers.Webhook {
	t.Helper()
	w, err := deployers.NewWebhook(b.target, b.srv.Client(), append([]deployers.Option{deployers.WithLogger(testLogger(t, b.logs))}, opts...)...)
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	return w
}

func testRequest() deployers.Request {
	return deployers.Request{
		App:         "shop",
		Tenant:      "acme",
		ReleaseID:   "r41",
		Artifact:    "sha256:" + strings.Repeat("ab", 32),
		RollbackID:  "rb-7f3a",
		FromRelease: "r42",
		Reason:      "p95 latency over budget",
		Trigger:     "guard",
	}
}

func TestWebhookDelivers(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	req := testRequest()
	rc, err := b.deployer(t).Deploy(context.Background(), req)
	if err != nil {
		t.Fatalf("Deploy() = %v", err)
	}
	want := deployers.Receipt{Target: "webhook " + b.srv.URL + "/deploy", Status: 200, Detail: "switched"}
	if rc != want {
		t.Errorf("Receipt = %+v, want %+v", rc, want)
	}
	got := b.rv.got()
	if len(got) != 1 {
		t.Fatalf("receiver got %d deliveries, want 1", len(got))
	}
	d := got[0]
	if d.verifyErr != nil {
		t.Fatalf("receiver rejected signature: %v", d.verifyErr)
	}
	if d.req != req {
		t.Errorf("receiver decoded %+v, want %+v", d.req, req)
	}
	for h, v := range map[string]string{
		"Content-Type":                 "application/json",
		"User-Agent":                   "tollgate-deployer/1",
		deployers.HeaderIdempotencyKey: req.RollbackID,
	} {
		if got := d.header.Get(h); got != v {
			t.Errorf("header %s = %q, want %q", h, got, v)
		}
	}
	if sig := d.header.Get(deployers.HeaderSignature); !strings.HasPrefix(sig, "v1=") {
		t.Errorf("signature header = %q, want v1=...", sig)
	}
	if strings.Contains(b.logs.String(), testSecret) {
		t.Error("logs contain the secret")
	}
}

func TestWebhookDuplicateIs409(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	w := b.deployer(t)
	req := testRequest()
	if rc, err := w.Deploy(context.Background(), req); err != nil || rc.Duplicate {
		t.Fatalf("first Deploy() = %+v, %v; want fresh success", rc, err)
	}
	rc, err := w.Deploy(context.Background(), req)
	if err != nil {
		t.Fatalf("second Deploy() = %v, want success", err)
	}
	if !rc.Duplicate || rc.Status != http.StatusConflict || rc.Detail != "already applied" {
		t.Errorf("second Receipt = %+v, want duplicate 409", rc)
	}
	if got := b.rv.got(); len(got) != 2 || got[1].n != 2 {
		t.Fatalf("receiver saw %d deliveries, want 2 of the same key", len(got))
	}
}

func TestWebhookDuplicateInSuccessAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		body   string
		dup    bool
	}{
		{http.StatusOK, `{"duplicate":true}`, true},
		{http.StatusOK, `{"duplicate":false,"detail":"ok"}`, false},
		{http.StatusOK, `not json`, false},
		{http.StatusAccepted, `{"queued":true}`, false},
		{http.StatusNoContent, ``, false},
		{http.StatusAlreadyReported, ``, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, tt.body), func(t *testing.T) {
			t.Parallel()
			b := setupWebhook(t, func(w http.ResponseWriter, _ *http.Request, _ delivery) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			rc, err := b.deployer(t).Deploy(context.Background(), testRequest())
			if err != nil {
				t.Fatalf("Deploy() = %v", err)
			}
			if rc.Duplicate != tt.dup || rc.Status != tt.status {
				t.Errorf("Receipt = %+v, want status %d duplicate %v", rc, tt.status, tt.dup)
			}
		})
	}
}

func TestWebhookRetryableFailureThenSuccess(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, func(w http.ResponseWriter, _ *http.Request, d delivery) {
		if d.n == 1 {
			http.Error(w, "database unavailable\nstack trace follows", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "switched")
	})
	w := b.deployer(t)
	req := testRequest()
	rc, err := w.Deploy(context.Background(), req)
	if err == nil {
		t.Fatal("first Deploy() = nil, want the 500 as an error")
	}
	if errors.Is(err, deployers.ErrPermanent) {
		t.Fatalf("first Deploy() = %v, want retryable", err)
	}
	if rc.Status != 500 || rc.Detail != "database unavailable" {
		t.Errorf("first Receipt = %+v, want status 500 and the first line as detail", rc)
	}
	// The caller (a Temporal activity retry) sends the same request again.
	rc, err = w.Deploy(context.Background(), req)
	if err != nil || rc.Status != 200 || rc.Duplicate {
		t.Fatalf("retry Deploy() = %+v, %v; want success", rc, err)
	}
	got := b.rv.got()
	if len(got) != 2 || got[0].header.Get(deployers.HeaderIdempotencyKey) != got[1].header.Get(deployers.HeaderIdempotencyKey) {
		t.Fatalf("receiver got %d deliveries, want 2 with the same Idempotency-Key", len(got))
	}
}

func TestWebhookStatusClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status    int
		wantErr   bool
		permanent bool
	}{
		{200, false, false},
		{201, false, false},
		{409, false, false},
		{301, true, true},
		{302, true, true},
		{307, true, true},
		{400, true, true},
		{401, true, true},
		{403, true, true},
		{404, true, true},
		{410, true, true},
		{422, true, true},
		{408, true, false},
		{425, true, false},
		{429, true, false},
		{500, true, false},
		{502, true, false},
		{503, true, false},
		{504, true, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			b := setupWebhook(t, func(w http.ResponseWriter, r *http.Request, _ delivery) {
				if tt.status >= 300 && tt.status < 400 {
					http.Redirect(w, r, "/elsewhere", tt.status)
					return
				}
				w.WriteHeader(tt.status)
			})
			rc, err := b.deployer(t).Deploy(context.Background(), testRequest())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Deploy() = %v, want error %v", err, tt.wantErr)
			}
			if got := errors.Is(err, deployers.ErrPermanent); got != tt.permanent {
				t.Errorf("Deploy() = %v, permanent %v, want %v", err, got, tt.permanent)
			}
			if rc.Status != tt.status {
				t.Errorf("Receipt.Status = %d, want %d", rc.Status, tt.status)
			}
			if n := len(b.rv.got()); n != 1 {
				t.Errorf("receiver got %d requests, want 1 (redirects are not followed)", n)
			}
		})
	}
}

func TestWebhookWrongSecretIsRejected(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	other := "another-secret-of-more-than-32-bytes!"
	b.target.Secret = other
	_, err := b.deployer(t).Deploy(context.Background(), testRequest())
	if !errors.Is(err, deployers.ErrPermanent) {
		t.Fatalf("Deploy() = %v, want the receiver's 401 as permanent", err)
	}
	got := b.rv.got()
	if len(got) != 1 || !errors.Is(got[0].verifyErr, deployers.ErrSignature) || errors.Is(got[0].verifyErr, deployers.ErrStaleTimestamp) {
		t.Fatalf("receiver verification = %v, want a signature mismatch", got[0].verifyErr)
	}
	for _, s := range []string{err.Error(), b.logs.String()} {
		if strings.Contains(s, other) || strings.Contains(s, testSecret) {
			t.Errorf("secret leaked into %q", s)
		}
	}
}

func TestWebhookStaleTimestampIsRejected(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	past := func() time.Time { return time.Now().Add(-10 * time.Minute) }
	_, err := b.deployer(t, deployers.WithClock(past)).Deploy(context.Background(), testRequest())
	if !errors.Is(err, deployers.ErrPermanent) {
		t.Fatalf("Deploy() = %v, want the receiver's 401", err)
	}
	if got := b.rv.got(); len(got) != 1 || !errors.Is(got[0].verifyErr, deployers.ErrStaleTimestamp) {
		t.Fatalf("receiver verification = %v, want ErrStaleTimestamp", got[0].verifyErr)
	}
}

// blockUntilGone answers only once the client has gone away. arrived gets a
// value when a request is in.
func blockUntilGone(arrived chan<- struct{}) func(http.ResponseWriter, *http.Request, delivery) {
	return func(_ http.ResponseWriter, r *http.Request, _ delivery) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}
}

func TestWebhookHonoursCancellation(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	b := setupWebhook(t, blockUntilGone(arrived))
	w := b.deployer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := w.Deploy(ctx, testRequest())
		errc <- err
	}()
	<-arrived
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Deploy() = %v, want context.Canceled", err)
	}
	if errors.Is(err, deployers.ErrPermanent) {
		t.Errorf("Deploy() = %v, want retryable", err)
	}
}

func TestWebhookTimeout(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	b := setupWebhook(t, blockUntilGone(arrived))
	b.target.Timeout = 50 * time.Millisecond
	_, err := b.deployer(t).Deploy(context.Background(), testRequest())
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, deployers.ErrPermanent) {
		t.Fatalf("Deploy() = %v, want a retryable deadline error", err)
	}
}

func TestWebhookBoundsResponseDetail(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, func(w http.ResponseWriter, _ *http.Request, _ delivery) {
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "  \x1b[31m"+strings.Repeat("é", 400)) // 800 bytes, no newline
		io.WriteString(w, strings.Repeat("x", 1<<20))
	})
	rc, err := b.deployer(t).Deploy(context.Background(), testRequest())
	if err == nil || errors.Is(err, deployers.ErrPermanent) {
		t.Fatalf("Deploy() = %v, want a retryable error", err)
	}
	if len(rc.Detail) > 200 || !strings.HasPrefix(rc.Detail, "[31mé") || strings.ContainsRune(rc.Detail, '\x1b') {
		t.Errorf("Detail = %q (%d bytes), want at most 200 bytes without control characters", rc.Detail, len(rc.Detail))
	}
	if !strings.HasSuffix(rc.Detail, "é") {
		t.Errorf("Detail = %q, want it cut on a rune boundary", rc.Detail)
	}
}

func TestWebhookNetworkErrorIsRetryable(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	w := b.deployer(t)
	b.srv.Close()
	_, err := w.Deploy(context.Background(), testRequest())
	if err == nil || errors.Is(err, deployers.ErrPermanent) {
		t.Fatalf("Deploy() to a closed server = %v, want a retryable error", err)
	}
}

func TestWebhookRejectsInvalidRequest(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	req := testRequest()
	req.RollbackID = ""
	_, err := b.deployer(t).Deploy(context.Background(), req)
	if !errors.Is(err, deployers.ErrPermanent) || !strings.Contains(err.Error(), "rollback_id") {
		t.Fatalf("Deploy() = %v, want a permanent error naming rollback_id", err)
	}
	if n := len(b.rv.got()); n != 0 {
		t.Errorf("receiver got %d requests, want none", n)
	}
}

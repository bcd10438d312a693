package activities

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/activities/deployers"
)

const testEventsSecret = "an-events-webhook-secret-of-32-bytes+"

func TestEventsWebhookShortSecretIsAConfigError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url, secret, want string
	}{
		{"short secret", "https://hooks.example/events", "hunter2", "at least 32"},
		{"31 bytes", "https://hooks.example/events", strings.Repeat("x", 31), "at least 32"},
		{"not http", "ftp://hooks.example/events", testEventsSecret, "http(s)"},
		{"relative", "/events", testEventsSecret, "http(s)"},
	} {
		err := ValidateEventsWebhook(tc.url, []byte(tc.secret))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
	if err := ValidateEventsWebhook("https://hooks.example/events", []byte(strings.Repeat("x", 32))); err != nil {
		t.Errorf("32-byte secret: %v", err)
	}
	if err := ValidateEventsWebhook("", nil); err != nil {
		t.Errorf("no webhook: %v", err)
	}
}

// A webhook that answers with a redirect is a failed delivery: the signed
// event never reaches the redirect's target.
func TestEventsWebhookDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhere.Add(1)
	}))
	defer other.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer hook.Close()
	r := &Rematch{WebhookURL: hook.URL + "/events", WebhookSecret: []byte(testEventsSecret), HTTP: hook.Client()}
	err := r.events().postWebhook(context.Background(), []byte(`{"type":"verdict.worsened"}`))
	if err == nil || !strings.Contains(err.Error(), "307") {
		t.Fatalf("error %v, want the redirect as a failure", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect was followed %d times", n)
	}
}

// The webhook's URL may carry a token in its user info or query: neither
// appears in an error or a log line.
func TestEventsWebhookRedactsItsURL(t *testing.T) {
	t.Parallel()
	var got atomic.Pointer[http.Request]
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer hook.Close()
	raw := strings.Replace(hook.URL, "http://", "http://user:pa55word@", 1) + "/events?token=s3cr3t"
	var logs bytes.Buffer
	r := &Rematch{WebhookURL: raw, WebhookSecret: []byte(testEventsSecret), HTTP: hook.Client(), Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	body := []byte(`{"type":"verdict.worsened"}`)
	err := r.events().postWebhook(context.Background(), body)
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("error %v, want the 502", err)
	}
	req := got.Load()
	if req == nil || req.URL.Query().Get("token") != "s3cr3t" {
		t.Fatal("the webhook did not get the request with its query")
	}
	if err := deployers.VerifySignature([]byte(testEventsSecret), req.Header, body, time.Now(), time.Minute); err != nil {
		t.Fatalf("signature: %v", err)
	}
	// An unreachable host: the client's own error names the URL.
	hook.Close()
	err2 := r.events().postWebhook(context.Background(), body)
	if err2 == nil {
		t.Fatal("no error from a closed server")
	}
	for _, s := range []string{err.Error(), err2.Error(), logs.String()} {
		for _, secret := range []string{"pa55word", "s3cr3t", "token=", "user:"} {
			if strings.Contains(s, secret) {
				t.Errorf("%q leaks %q", s, secret)
			}
		}
	}
	if !strings.Contains(err2.Error(), "/events") {
		t.Errorf("error %q does not name the (redacted) URL", err2)
	}
}

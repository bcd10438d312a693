package apiclient

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/api"
)

func TestSubmitSendsOneMultipartRequest(t *testing.T) {
	var calls atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 { // the first answer is a rate limit, waited out
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/base/v1/scans" {
			t.Errorf("%s %s, want POST /base/v1/scans", r.Method, r.URL.Path)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer tok" {
			t.Errorf("Authorization = %q", got)
		}
		if got := r.Header.Get("Idempotency-Key"); got != "k1" {
			t.Errorf("Idempotency-Key = %q", got)
		}
		var meta api.Metadata
		if err := json.Unmarshal([]byte(r.FormValue("metadata")), &meta); err != nil || meta.App != "shop" || meta.Commit != "abc" {
			t.Errorf("metadata = %q (%v)", r.FormValue("metadata"), err)
		}
		f, _, err := r.FormFile("archive")
		if err != nil {
			t.Fatalf("archive part: %v", err)
		}
		if b, _ := io.ReadAll(f); string(b) != "tgz bytes" {
			t.Errorf("archive = %q", b)
		}
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(api.ScanStatus{ScanID: "s1", Status: "running"})
	}))
	defer hs.Close()
	c, err := New(hs.URL+"/base/", "tok", nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Submit(context.Background(), Submission{
		Metadata: api.Metadata{App: "shop", Commit: "abc"}, Archive: []byte("tgz bytes"), IdempotencyKey: "k1"})
	if err != nil || st.ScanID != "s1" || calls.Load() != 2 {
		t.Fatalf("Submit = %+v, %v after %d calls; want scan s1 after 2", st, err, calls.Load())
	}
}

func TestProblemsAndStatus(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/scans/s%201", "/v1/scans/s 1":
			if r.URL.Query().Get("wait") != "30s" {
				t.Errorf("wait = %q", r.URL.Query().Get("wait"))
			}
			json.NewEncoder(w).Encode(api.ScanStatus{ScanID: "s 1", Status: "completed"})
		default:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(api.Problem{Title: "Forbidden", Status: 403, Detail: "not your tenant"})
		}
	}))
	defer hs.Close()
	c, err := New(hs.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(context.Background(), "s 1", 30*time.Second)
	if err != nil || st.Status != "completed" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	var out map[string]any
	err = c.Get(context.Background(), "/v1/scans/other/report", &out)
	if !ClientSide(err) {
		t.Fatalf("Get = %v, want a client-side *Error", err)
	}
	if got := err.Error(); got != "GET /v1/scans/other/report: 403 Forbidden: not your tenant" {
		t.Errorf("error = %q", got)
	}
}

func TestNewRefusesWhatIsNotAnHTTPURL(t *testing.T) {
	for _, base := range []string{"", "localhost:8080", "ftp://x", "http://", "::"} {
		if _, err := New(base, "", nil); err == nil {
			t.Errorf("New(%q) = nil error", base)
		}
	}
}

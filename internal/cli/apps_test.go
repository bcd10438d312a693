package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// tollgate app list asks GET /v1/apps with the state filter and shows each
// app's state and since when; tollgate app revive APP posts the reason to
// the app's revive route and says what was done. Against a stand-in API:
// the routes themselves are tested in package api.
func TestAppListAndReviveCallTheAPI(t *testing.T) {
	var got []string
	var reviveBody map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/apps":
			io.WriteString(w, `{"apps":[{"app":"shop","release":{"id":"r1","artifact":"sha256:aa","scan_id":"s1","verdict":"pass","recorded_at":"2026-10-01T00:00:00Z"},
				"known_good":"r1","state":"idle","since":"2026-12-01T10:00:00Z","last_scan":null}]}`)
		case r.Method == http.MethodPost && r.URL.Path == "/v1/apps/shop/revive":
			json.NewDecoder(r.Body).Decode(&reviveBody)
			io.WriteString(w, `{"tenant":"acme","app":"shop","previous":"archived","revived":true,"release_id":"r1",
				"deploy":{"target":"webhook https://deployer.example/x","status":200},"guard_started":true}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	code, out, errs := run(t, "app", "list", "--state", "idle", "--server", srv.URL, "--token", "tok")
	if code != 0 || !strings.Contains(out, "shop") || !strings.Contains(out, "idle") || !strings.Contains(out, "2026-12-01T10:00:00Z") {
		t.Fatalf("app list: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = run(t, "app", "revive", "shop", "--reason", "the customer is back", "--server", srv.URL, "--token", "tok")
	if code != 0 || !strings.Contains(out, "app shop revived (was archived); release r1 deployed again") || !strings.Contains(out, "the guard is watching it") {
		t.Fatalf("app revive: %d\n%s\n%s", code, out, errs)
	}
	if reviveBody["reason"] != "the customer is back" {
		t.Fatalf("revive body %v", reviveBody)
	}
	want := []string{"GET /v1/apps?state=idle Bearer tok", "POST /v1/apps/shop/revive Bearer tok"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if code, _, _ := run(t, "app", "revive", "shop", "--server", srv.URL); code != 2 {
		t.Fatalf("revive without a reason: exit %d, want 2", code)
	}
}

package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/workflows"
)

// noScans is a Temporal client whose visibility store holds no scan; the
// apps routes ask it for each app's last scan and nothing else.
type noScans struct{ client.Client }

func (noScans) ListWorkflow(context.Context, *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	return &workflowservice.ListWorkflowExecutionsResponse{}, nil
}

// revivingGuards has no guards and records the revives asked for.
type revivingGuards struct {
	api.Guards
	mu      sync.Mutex
	revives []workflows.ReviveRequest
}

func (*revivingGuards) Status(context.Context, string, string) (control.GuardStatus, error) {
	return control.GuardStatus{}, control.ErrNoGuard
}

func (g *revivingGuards) Revive(_ context.Context, req workflows.ReviveRequest) (workflows.ReviveResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.revives = append(g.revives, req)
	return workflows.ReviveResult{Tenant: req.Tenant, App: req.App, Previous: workflows.LifecycleArchived, Revived: true, GuardStarted: true}, nil
}

func call(t *testing.T, base, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd *strings.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	return resp.StatusCode, raw
}

// GET /v1/apps shows the idle-app TTL's idle and archived marks, with
// since-when, before the guard's state, and ?state= filters on them; POST
// /v1/apps/{app}/revive is on-call's, in its own tenant, for an idle or
// archived app only, and names the caller in the revive.
func TestAppsShowIdleAndArchivedAndOncallRevives(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ev, err := storage.OpenLocal(filepath.Join(dir, "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	in, err := storage.OpenLocalInputs(filepath.Join(dir, "inputs"))
	if err != nil {
		t.Fatal(err)
	}
	store := &releases.Store{Evidence: ev, Lister: ev}
	if _, err := ev.Put(ctx, "scans/s1/verdict.json", "application/json", []byte(`{"app":"shop","verdict":"pass"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Record(ctx, releases.Release{Tenant: "acme", App: "shop", Artifact: "sha256:" + strings.Repeat("a", 64), ScanID: "s1", RecordedBy: "ci"}); err != nil {
		t.Fatal(err)
	}
	guards := &revivingGuards{}
	tokens := []api.Token{
		{Name: "oncall-acme", SHA256: api.HashToken("oncall-acme"), Tenant: "acme", Roles: []string{api.RoleOncall}},
		{Name: "ci-acme", SHA256: api.HashToken("ci-acme"), Tenant: "acme", Roles: []string{api.RoleCI}},
		{Name: "oncall-other", SHA256: api.HashToken("oncall-other"), Tenant: "other", Roles: []string{api.RoleOncall}},
	}
	srv, err := api.New(api.Config{Tokens: tokens, RatePerSecond: 1000, Burst: 1000},
		api.Deps{Temporal: noScans{}, Inputs: in, Evidence: ev, Releases: store, Guards: guards})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	revive := api.ReviveIn{Reason: "the customer is back"}
	list := func(query string) []api.AppSummary {
		t.Helper()
		code, body := call(t, hs.URL, http.MethodGet, "/v1/apps"+query, "ci-acme", nil)
		var l api.AppList
		if code != http.StatusOK || json.Unmarshal(body, &l) != nil {
			t.Fatalf("GET /v1/apps%s: %d %s", query, code, body)
		}
		return l.Apps
	}

	if apps := list(""); len(apps) != 1 || apps[0].State != api.StateUnguarded || apps[0].Since != nil {
		t.Fatalf("active app %+v", apps)
	}
	if code, body := call(t, hs.URL, http.MethodPost, "/v1/apps/shop/revive", "oncall-acme", revive); code != http.StatusConflict {
		t.Fatalf("revive of an active app: %d %s", code, body)
	}

	idleAt := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if _, err := store.RecordLifecycle(ctx, releases.Lifecycle{Tenant: "acme", App: "shop", State: releases.StateIdle, At: idleAt, By: "ttl"}); err != nil {
		t.Fatal(err)
	}
	if apps := list("?state=idle"); len(apps) != 1 || apps[0].Since == nil || !apps[0].Since.Equal(idleAt) {
		t.Fatalf("idle apps %+v", apps)
	}
	if apps := list("?state=unguarded"); len(apps) != 0 {
		t.Fatalf("an idle app listed as unguarded: %+v", apps)
	}
	archivedAt := idleAt.Add(7 * 24 * time.Hour)
	if _, err := store.RecordLifecycle(ctx, releases.Lifecycle{Tenant: "acme", App: "shop", State: releases.StateArchived, At: archivedAt, By: "ttl"}); err != nil {
		t.Fatal(err)
	}
	if apps := list("?state=archived"); len(apps) != 1 || !apps[0].Since.Equal(archivedAt) {
		t.Fatalf("archived apps %+v", apps)
	}

	for _, c := range []struct {
		token, app string
		body       any
		want       int
	}{
		{"ci-acme", "shop", revive, http.StatusForbidden},
		{"oncall-other", "shop", revive, http.StatusNotFound},
		{"oncall-acme", "cart", revive, http.StatusNotFound},
		{"oncall-acme", "shop", api.ReviveIn{}, http.StatusBadRequest},
		{"oncall-acme", "Shop!", revive, http.StatusBadRequest},
	} {
		if code, body := call(t, hs.URL, http.MethodPost, "/v1/apps/"+c.app+"/revive", c.token, c.body); code != c.want {
			t.Errorf("%s reviving %s: %d, want %d: %s", c.token, c.app, code, c.want, body)
		}
	}
	if len(guards.revives) != 0 {
		t.Fatalf("refused requests revived %+v", guards.revives)
	}
	code, body := call(t, hs.URL, http.MethodPost, "/v1/apps/shop/revive", "oncall-acme", revive)
	var res workflows.ReviveResult
	if code != http.StatusOK || json.Unmarshal(body, &res) != nil || !res.Revived {
		t.Fatalf("revive: %d %s", code, body)
	}
	if g := guards.revives; len(g) != 1 || g[0].Tenant != "acme" || g[0].App != "shop" || g[0].By != "oncall-acme" || g[0].Reason != revive.Reason {
		t.Fatalf("revives %+v", g)
	}
}

package orchestrator_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tollgate/tollgate/activities"
	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/internal/golden"
	"github.com/tollgate/tollgate/orchestrator"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/workflows"
)

const ttlSecret = "0123456789abcdef0123456789abcdef-ttl"

// signedPosts is a receiver of signed webhook POSTs (the deploy target or
// the events webhook): it checks each signature and keeps the bodies.
type signedPosts struct {
	t      *testing.T
	mu     sync.Mutex
	bodies []map[string]any
	keys   []string
}

func (s *signedPosts) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := deployers.VerifySignature([]byte(ttlSecret), r.Header, body, time.Now(), time.Minute); err != nil {
		s.t.Errorf("unsigned delivery: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	s.mu.Lock()
	s.bodies = append(s.bodies, m)
	s.keys = append(s.keys, r.Header.Get(deployers.HeaderIdempotencyKey))
	s.mu.Unlock()
}

func (s *signedPosts) got() ([]map[string]any, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.bodies...), append([]string(nil), s.keys...)
}

// TestTTLEndToEnd: a released, guarded app with no activity is marked idle
// after its policy period (a record, an event on the stream and the events
// webhook); after the grace period it is archived: the deploy webhook gets
// a signed "disable" with the archive's key, the guard stops, the archived
// record names both. A revive deploys the release again and restarts the
// guard. Real servers: nats-server, the Temporal dev server, the
// orchestrator with its schedules, local evidence, httptest receivers;
// the periods (2s each) come from policy data in a copy of the bundle.
func TestTTLEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	dir := t.TempDir()

	srv := startServers(ctx, t, dir, logger)
	tc, nc, js, ev := srv.tc, srv.nc, srv.js, srv.ev

	// The bundle, with 2s periods for acme/shop only.
	policy := filepath.Join(dir, "policy")
	copyBundleWithTTL(t, filepath.Join("..", "policies", "bundle"), policy, map[string]any{"acme/shop": map[string]any{"idle_after": "2s", "grace": "2s"}})
	deploys := &signedPosts{t: t}
	deploySrv := httptest.NewServer(deploys)
	defer deploySrv.Close()
	hooks := &signedPosts{t: t}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()
	orch, err := orchestrator.Start(ctx, orchestrator.Config{
		PolicyDir: policy, RematchInterval: -1, TTLInterval: 24 * time.Hour,
		DefaultTarget:    &deployers.Target{Type: deployers.TypeWebhook, URL: deploySrv.URL + "/deploy", Secret: ttlSecret},
		EventsWebhookURL: hookSrv.URL + "/events", EventsWebhookSecret: ttlSecret,
	}, orchestrator.Deps{Temporal: tc, Publisher: js, Evidence: ev, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer orch.Stop()
	if _, err := tc.ScheduleClient().GetHandle(ctx, workflows.TTLScheduleID).Describe(ctx); err != nil {
		t.Fatalf("the TTL schedule: %v", err)
	}

	rels := &releases.Store{Evidence: ev, Lister: ev}
	if _, err := ev.Put(ctx, "scans/s-ttl-1/verdict.json", "application/json", []byte(`{"app":"shop","verdict":"pass"}`)); err != nil {
		t.Fatal(err)
	}
	rel := recordShopRelease(ctx, t, rels, "s-ttl-1")
	guards := &control.Guards{Temporal: tc}
	if err := guards.Watch(ctx, "acme", "shop", rel.Ref()); err != nil {
		t.Fatal(err)
	}
	events := subscribeJSON[activities.AppEvent](t, nc, activities.AppEventsSubjectPrefix+".acme.shop")

	sweep := func(name string) (workflows.TTLResult, string) {
		t.Helper()
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "ttl-" + name, TaskQueue: workflows.TaskQueue}, workflows.TTLWorkflow, workflows.TTLRequest{Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.TTLResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatal(err)
		}
		return res, run.GetID()
	}
	nextAppEvent := func() activities.AppEvent {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return activities.AppEvent{}
	}
	waitUntil := func(at time.Time) {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Until(at)):
		}
	}

	if res, _ := sweep("fresh"); res.Apps != 1 || res.Idled != 0 {
		t.Fatalf("a fresh release: %+v", res)
	}
	waitUntil(rel.RecordedAt.Add(2*time.Second + 100*time.Millisecond))
	if res, _ := sweep("idle"); res.Idled != 1 {
		t.Fatalf("after the period: %+v, want the app idle", res)
	}
	idle := nextAppEvent()
	if idle.Type != workflows.EventAppIdle || idle.State != releases.StateIdle || !idle.LastActivity.Equal(rel.RecordedAt) || idle.Evidence.Key == "" {
		t.Fatalf("idle event %+v", idle)
	}
	lc, err := rels.Lifecycle(ctx, "acme", "shop")
	if err != nil || lc.State != releases.StateIdle || lc.IdleAfter != 2*time.Second {
		t.Fatalf("lifecycle after idle: %+v, %v", lc, err)
	}
	if res, _ := sweep("grace"); res.Archived != 0 || res.Idled != 0 {
		t.Fatalf("in the grace period: %+v", res)
	}

	waitUntil(lc.At.Add(2*time.Second + 100*time.Millisecond))
	res, ttlID := sweep("archive")
	if res.Archived != 1 {
		t.Fatalf("after the grace: %+v, want the app archived", res)
	}
	if *updateHistory {
		golden.WriteHistory(ctx, t, tc, ttlID, filepath.Join("..", "workflows", "testdata", "ttl_history.json"))
	}
	archived := nextAppEvent()
	if archived.Type != workflows.EventAppArchived || archived.ReleaseID != rel.ID {
		t.Fatalf("archived event %+v", archived)
	}
	bodies, keys := deploys.got()
	wantKey := "archive/acme/shop/" + lc.At.UTC().Format("20060102T150405Z")
	if len(bodies) != 1 || bodies[0]["action"] != deployers.ActionDisable || bodies[0]["tenant"] != "acme" || keys[0] != wantKey {
		t.Fatalf("deploy target got %v with keys %v, want one disable keyed %s", bodies, keys, wantKey)
	}
	desc, err := tc.DescribeWorkflowExecution(ctx, workflows.GuardWorkflowID("acme", "shop"), "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("the guard after the archive: %v %v", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	lc, err = rels.Lifecycle(ctx, "acme", "shop")
	if err != nil || lc.State != releases.StateArchived || !lc.GuardStopped || !strings.HasPrefix(lc.Target, "webhook ") {
		t.Fatalf("lifecycle after the archive: %+v, %v", lc, err)
	}
	if res, _ := sweep("archived"); res.Archived != 0 || res.Idled != 0 || res.Cleared != 0 {
		t.Fatalf("an archived app swept again: %+v", res)
	}

	rv, err := guards.Revive(ctx, workflows.ReviveRequest{Tenant: "acme", App: "shop", By: "alice", Reason: "the customer is back"})
	if err != nil {
		t.Fatal(err)
	}
	if *updateHistory {
		golden.WriteHistory(ctx, t, tc, workflows.ReviveWorkflowID("acme", "shop"), filepath.Join("..", "workflows", "testdata", "revive_history.json"))
	}
	if !rv.Revived || rv.Previous != releases.StateArchived || !rv.GuardStarted || rv.Deploy == nil {
		t.Fatalf("revive %+v", rv)
	}
	revived := nextAppEvent()
	if revived.Type != workflows.EventAppRevived || revived.By != "alice" {
		t.Fatalf("revive event %+v", revived)
	}
	bodies, _ = deploys.got()
	if len(bodies) != 2 || bodies[1]["action"] != nil || bodies[1]["release_id"] != rel.ID {
		t.Fatalf("deploy target got %v, want the release deployed again", bodies)
	}
	desc, err = tc.DescribeWorkflowExecution(ctx, workflows.GuardWorkflowID("acme", "shop"), "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the guard after the revive: %v %v", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	if lc, err := rels.Lifecycle(ctx, "acme", "shop"); err != nil || lc.State != releases.StateActive || lc.By != "alice" || !lc.GuardStarted {
		t.Fatalf("lifecycle after the revive: %+v, %v", lc, err)
	}
	// The events webhook got every change, in order.
	hookBodies, _ := hooks.got()
	var types []string
	for _, b := range hookBodies {
		types = append(types, b["type"].(string))
	}
	if strings.Join(types, ",") != "app.idle,app.archived,app.revived" {
		t.Fatalf("events webhook got %v", types)
	}
}

// copyBundleWithTTL copies the policy bundle to dst with ttl.apps set.
func copyBundleWithTTL(t *testing.T, src, dst string, apps map[string]any) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "data.json" {
			var data map[string]any
			if err := json.Unmarshal(raw, &data); err != nil {
				t.Fatal(err)
			}
			cfg := data["tollgate"].(map[string]any)["config"].(map[string]any)
			cfg["ttl"].(map[string]any)["apps"] = apps
			if raw, err = json.Marshal(data); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

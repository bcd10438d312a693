package orchestrator_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/client"

	"github.com/tollgate/tollgate/activities"
	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/internal/golden"
	"github.com/tollgate/tollgate/orchestrator"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/vulndb"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workers/scanners"
	"github.com/tollgate/tollgate/workflows"
)

var updateHistory = flag.Bool("update-history", false, "save the rematch run's history to workflows/testdata for the replay test")

// The advisory that appears between the two DBs.
const newAdvisory = "GHSA-35jh-r3h4-6jhm"

// TestRematchEndToEnd: a release's SBOM is clean under DB v1. The DB is
// updated with one new advisory for a package it contains; the scheduled
// re-match finds it with no re-cataloguing, records a worse verdict and
// emits the event. The same advisory accepted as an exception makes the
// verdict clean again; when the exception expires, the finding returns.
//
// Real servers and scanners throughout: nats-server, the Temporal dev
// server, the orchestrator with its schedule, deep and fast workers running
// gitleaks, syft and trivy, and DBs built from OSV records in testdata.
func TestRematchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	dir := t.TempDir()

	srv := startServers(ctx, t, dir, logger)
	tc, nc, js, ev := srv.tc, srv.nc, srv.js, srv.ev
	// The schedule's own interval is far away: the test triggers it.
	orch, err := orchestrator.Start(ctx, orchestrator.Config{RematchInterval: 24 * time.Hour},
		orchestrator.Deps{Temporal: tc, Publisher: js, Evidence: ev, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer orch.Stop()

	// DB v1 lacks the advisory; v2, built later, has it.
	osv := filepath.Join("..", "testdata", "osv")
	v1src := filepath.Join(dir, "osv-v1")
	copyOSVWithout(t, osv, v1src, newAdvisory+".json")
	v1, v2 := filepath.Join(dir, "db-v1"), filepath.Join(dir, "db-v2")
	if _, err := vulndb.ImportOSV(ctx, logger, v1, v1src); err != nil {
		t.Fatal(err)
	}

	fleet := startWorkers(ctx, t, js, tc, ev, v1, logger)
	scan := workflows.ScanRequest{ScanID: "7d3f1b9e-0000-4000-8000-000000000001", App: "shop", Tenant: "acme",
		Input: tasks.Input{Dir: abs(t, filepath.Join("..", "testdata", "rematch-app"))}, SubmittedAt: time.Now().UTC()}
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "scan-" + scan.ScanID, TaskQueue: workflows.TaskQueue}, workflows.ScanWorkflowName, scan)
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.ScanResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if res.Verdict != report.VerdictPass {
		t.Fatalf("scan under DB v1: %s %+v, want pass", res.Verdict, res.Reasons)
	}
	lister := storage.Lister(ev)
	rels := &releases.Store{Evidence: ev, Lister: lister}
	rel := recordShopRelease(ctx, t, rels, scan.ScanID)
	events := subscribeJSON[activities.VerdictEvent](t, nc, activities.EventsSubjectPrefix+".acme.shop")

	// With DB v1 still in the workers, a re-match finds nothing new: the
	// worker skips the SBOM, and nothing is recorded.
	if got := rematch(ctx, t, tc); got.Skipped != 1 || got.Changed != 0 {
		t.Fatalf("rematch under the same DB: %+v", got)
	}

	// The DB is updated: the deep workers restart with v2.
	fleet.stop()
	if _, err := vulndb.ImportOSV(ctx, logger, v2, osv); err != nil {
		t.Fatal(err)
	}
	fleet = startWorkers(ctx, t, js, tc, ev, v2, logger)
	defer fleet.stop()

	got, runID := rematchRun(ctx, t, tc)
	if *updateHistory {
		// The run and its one child (version 1 of RematchWorkflow);
		// rematch_history.json keeps the version 0 run, which still replays.
		golden.WriteHistory(ctx, t, tc, runID[0], filepath.Join("..", "workflows", "testdata", "rematch_history_v1.json"))
		golden.WriteHistory(ctx, t, tc, workflows.RematchAppWorkflowID("acme", "shop", runID[1]), filepath.Join("..", "workflows", "testdata", "rematch_app_history.json"))
	}
	if got.Apps != 1 || got.Failed != 0 || got.Matched != 1 || got.Worsened != 1 {
		t.Fatalf("rematch under DB v2: %+v, want one match and one worse verdict", got)
	}
	e := nextEvent(ctx, t, events)
	if e.Previous != report.VerdictPass || e.Verdict != report.VerdictWarn || e.ReleaseID != rel.ID || !strings.Contains(reasonsText(e.Reasons), newAdvisory) {
		t.Fatalf("event %+v", e)
	}
	last := lastRecord(ctx, t, ev, rel)
	if !last.Matched || last.Verdict != report.VerdictWarn || !hasVuln(last.Vulnerabilities, newAdvisory) {
		t.Fatalf("record %+v", last)
	}

	// The advisory is accepted until shortly: the verdict is clean again.
	excs := &exceptions.Store{Evidence: ev, Lister: lister}
	exc, err := excs.Add(ctx, exceptions.Exception{
		Tenant: "acme", Scope: exceptions.ScopeApp, App: "shop", Reason: "not reachable from our code",
		Approver: "security@acme", ExpiresAt: time.Now().Add(5 * time.Second),
		Finding: exceptions.Finding{Vulnerability: newAdvisory, Package: "lodash"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rematch(ctx, t, tc); got.Skipped != 1 || got.Improved != 1 {
		t.Fatalf("rematch with the exception: %+v (the DB is unchanged: skipped, re-decided)", got)
	}
	last = lastRecord(ctx, t, ev, rel)
	if last.Verdict != report.VerdictPass || len(last.Exceptions) != 1 || last.Exceptions[0].ID != exc.ID {
		t.Fatalf("record with the exception %+v", last)
	}

	// The exception expires: the finding returns, with its event.
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(time.Until(exc.ExpiresAt)):
	}
	if got := rematch(ctx, t, tc); got.Worsened != 1 {
		t.Fatalf("rematch after the exception expired: %+v", got)
	}
	if e := nextEvent(ctx, t, events); e.Verdict != report.VerdictWarn || e.Previous != report.VerdictPass {
		t.Fatalf("event after expiry %+v", e)
	}

	// A run triggered for one tenant (POST /v1/rematch) plans only that
	// tenant's apps: another tenant's run does not touch acme's release.
	for tenant, apps := range map[string]int{"globex": 0, "acme": 1} {
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.RematchNowWorkflowID(tenant), TaskQueue: workflows.TaskQueue},
			workflows.RematchWorkflow, workflows.RematchRequest{Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		var got workflows.RematchResult
		if err := run.Get(ctx, &got); err != nil {
			t.Fatal(err)
		}
		if got.Apps != apps || got.Failed != 0 {
			t.Errorf("rematch of tenant %s: %+v, want %d apps", tenant, got, apps)
		}
	}
}

// workerFleet is one fast and one deep worker on one scanner engine.
type workerFleet struct{ stop func() }

func startWorkers(ctx context.Context, t *testing.T, js jetstream.JetStream, tc client.Client, ev storage.Evidence, db string, logger *slog.Logger) workerFleet {
	t.Helper()
	eng, err := scanners.New(ctx, scanners.Options{DBDir: db}, logger)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	for _, pool := range []string{tasks.PoolFast, tasks.PoolDeep} {
		w, err := workers.New(workers.Config{Pool: pool, Concurrency: 2, ShutdownGrace: 5 * time.Second},
			workers.Deps{JetStream: js, Temporal: tc, Evidence: ev, Scanners: eng.Scanners(), Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		go func() { w.Run(wctx); done <- struct{}{} }()
	}
	stopped := false
	return workerFleet{stop: func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		<-done
		eng.Close()
	}}
}

// rematch triggers the schedule and waits for the run it starts.
func rematch(ctx context.Context, t *testing.T, tc client.Client) workflows.RematchResult {
	t.Helper()
	res, _ := rematchRun(ctx, t, tc)
	return res
}

// rematchRun is rematch, also saying which workflow (id, run id) ran.
func rematchRun(ctx context.Context, t *testing.T, tc client.Client) (workflows.RematchResult, [2]string) {
	t.Helper()
	h := tc.ScheduleClient().GetHandle(ctx, workflows.RematchScheduleID)
	before, err := h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := len(before.Info.RecentActions)
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	// The schedule starts the run asynchronously: follow its actions.
	for {
		d, err := h.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(d.Info.RecentActions); n > seen {
			a := d.Info.RecentActions[n-1].StartWorkflowResult
			var res workflows.RematchResult
			if err := tc.GetWorkflow(ctx, a.WorkflowID, a.FirstExecutionRunID).Get(ctx, &res); err != nil {
				t.Fatal(err)
			}
			return res, [2]string{a.WorkflowID, a.FirstExecutionRunID}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the schedule started no run: %v", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func nextEvent(ctx context.Context, t *testing.T, events <-chan activities.VerdictEvent) activities.VerdictEvent {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-ctx.Done():
		t.Fatal("no verdict event")
	}
	return activities.VerdictEvent{}
}

func lastRecord(ctx context.Context, t *testing.T, ev *storage.Local, rel releases.Release) workflows.RematchRecord {
	t.Helper()
	keys, err := ev.List(ctx, "apps/acme/shop/releases/"+rel.ID+"/rematch/")
	if err != nil || len(keys) == 0 {
		t.Fatalf("rematch records: %v %v", keys, err)
	}
	raw, _, err := ev.Get(ctx, keys[len(keys)-1])
	if err != nil {
		t.Fatal(err)
	}
	var rec workflows.RematchRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func hasVuln(vs []report.Vulnerability, id string) bool {
	for _, v := range vs {
		if v.ID == id {
			return true
		}
	}
	return false
}

func reasonsText(rs []report.Reason) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.Message + "\n")
	}
	return b.String()
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// copyOSVWithout copies an OSV tree, leaving out one record.
func copyOSVWithout(t *testing.T, src, dst, skip string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == skip || filepath.Ext(p) != ".json" {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// recordShopRelease records acme/shop's release of scanID.
func recordShopRelease(ctx context.Context, t *testing.T, rels *releases.Store, scanID string) releases.Release {
	t.Helper()
	sum := sha256.Sum256([]byte("shop image"))
	rel, err := rels.Record(ctx, releases.Release{Tenant: "acme", App: "shop", Artifact: "sha256:" + hex.EncodeToString(sum[:]), ScanID: scanID, RecordedBy: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// subscribeJSON delivers the messages on subject, decoded as T, until the
// test ends.
func subscribeJSON[T any](t *testing.T, nc *nats.Conn, subject string) <-chan T {
	t.Helper()
	out := make(chan T, 8)
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var e T
		if json.Unmarshal(m.Data, &e) == nil {
			out <- e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return out
}

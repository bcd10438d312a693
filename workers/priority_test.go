package workers_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/client"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workflows"
)

// waitQueued waits until the fast pool holds want[p] pending tasks at each
// priority p. It reads the queue; nothing sleeps a fixed time.
func waitQueued(t *testing.T, js jetstream.JetStream, sc tasks.StreamConfig, want map[string]uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := tasks.Status(ctx, js, sc, tasks.PoolFast)
		ok := err == nil
		for _, q := range st.Priorities {
			ok = ok && q.Pending == want[q.Priority]
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("fast pool never held %v: %+v, %v", want, st.Priorities, err)
		case <-tick.C:
		}
	}
}

// A CI scan submitted behind a backlog of bulk rescans is taken first: the
// worker serves its CI consumer before its bulk one.
func TestCIBeforeBulk(t *testing.T) {
	e := newEnv(t)
	js := e.jetstream()
	const bulk = 6
	for i := range bulk {
		req := scanRequest("bulk-" + string(rune('a'+i)))
		req.Tenant, req.Priority = "acme", tasks.PriorityBulk
		e.start(req)
	}
	waitQueued(t, js, e.stream, map[string]uint64{tasks.PriorityBulk: bulk})
	ci := scanRequest("ci")
	ci.Tenant = "acme"
	run := e.start(ci)
	waitQueued(t, js, e.stream, map[string]uint64{tasks.PriorityCI: 1, tasks.PriorityBulk: bulk})

	var mu sync.Mutex
	var order []string
	recording := workers.ScannerFunc(func(ctx context.Context, task tasks.Task, dir string) (workers.Output, error) {
		mu.Lock()
		order = append(order, task.ScanID)
		mu.Unlock()
		return secretsScanner().Scan(ctx, task, dir)
	})
	var calls sync.Map
	e.startWorker(tasks.PoolFast, "fast", js, e.client, map[string]workers.Scanner{tasks.KindSecrets: recording})
	e.startWorker(tasks.PoolDeep, "deep", js, e.client, map[string]workers.Scanner{tasks.KindDeep: deepScanner(&calls, "deep")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res workflows.ScanResult
	if err := run.Get(ctx, &res); err != nil || res.Verdict != report.VerdictPass {
		t.Fatalf("CI scan: %v %+v", err, res)
	}
	mu.Lock()
	defer mu.Unlock()
	// The worker runs two at once, and bulk work may hold one slot: the CI
	// task starts in the first fetch, ahead of all but at most one bulk task.
	if i := slices.Index(order, "ci"); i < 0 || i > 1 {
		t.Fatalf("CI task started %dth of %v, want among the first two", i+1, order)
	}
}

// A tenant at its cap of pending tasks waits for room, says so in its
// progress, and finishes once the backlog drains; nothing fails.
func TestTenantBacklogWaits(t *testing.T) {
	e := newEnv(t)
	// newEnv set the stream up; tighten the cap to one pending task.
	e.stream.MaxPendingPerTenant = 1
	js := e.jetstream()
	if err := tasks.EnsureStream(context.Background(), js, e.stream); err != nil {
		t.Fatal(err)
	}
	first, second := scanRequest("first"), scanRequest("second")
	first.Tenant, second.Tenant = "acme", "acme"
	runs := []client.WorkflowRun{e.start(first)}
	waitQueued(t, js, e.stream, map[string]uint64{tasks.PriorityCI: 1})
	runs = append(runs, e.start(second))
	// The second scan reports what it waits for.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := e.client.QueryWorkflow(ctx, "scan-second", "", workflows.QueryProgress)
		var p workflows.Progress
		if err == nil && v.Get(&p) == nil && p.Waiting != "" {
			t.Logf("second scan: waiting: %s", p.Waiting)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the second scan never reported waiting for its tenant's backlog")
		case <-tick.C:
		}
	}
	var calls sync.Map
	e.startWorker(tasks.PoolFast, "fast", js, e.client, map[string]workers.Scanner{tasks.KindSecrets: secretsScanner()})
	e.startWorker(tasks.PoolDeep, "deep", js, e.client, map[string]workers.Scanner{tasks.KindDeep: deepScanner(&calls, "deep")})
	for i, run := range runs {
		var res workflows.ScanResult
		if err := run.Get(ctx, &res); err != nil || res.Verdict != report.VerdictPass {
			t.Fatalf("scan %d: %v %+v", i, err, res)
		}
	}
}

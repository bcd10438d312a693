package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/tasks"
)

func TestPoolArithmetic(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	before := api.PoolsStatus{At: t0, Pools: []tasks.PoolStatus{{Pool: "deep", QueueStatus: tasks.QueueStatus{Pending: 40, AckPending: 4, Delivered: 1000}}}}
	now := api.PoolsStatus{At: t0.Add(10 * time.Second), Pools: []tasks.PoolStatus{{Pool: "deep", QueueStatus: tasks.QueueStatus{Pending: 60, AckPending: 4, Delivered: 1020}}}}
	r := poolReports(before, now, 30*time.Second, 2)[0]
	// 2 delivered/s; 2 more arriving than leaving: λ = 4/s. S = 4 / 2 = 2s.
	// slots = 2 × (4 + 60/30) = 12; workers = 12 / 2 = 6.
	if r.Throughput != 2 || r.Arrivals != 4 || r.ServiceS != 2 || r.Slots != 12 || r.WorkersNeed != 6 {
		t.Fatalf("got %+v", r)
	}
	if !strings.Contains(r.Arithmetic, "workers = ⌈12.00 / 2⌉ = 6") {
		t.Errorf("arithmetic %q", r.Arithmetic)
	}
	// A backlog nobody takes.
	stuck := api.PoolsStatus{At: t0.Add(10 * time.Second), Pools: []tasks.PoolStatus{{Pool: "deep", QueueStatus: tasks.QueueStatus{Pending: 60, Delivered: 1000, Oldest: t0}}}}
	if r := poolReports(before, stuck, 30*time.Second, 2)[0]; r.WorkersNeed != 1 || !strings.Contains(r.Arithmetic, "no worker is taking them") {
		t.Errorf("stuck pool: %+v", r)
	}
	// An idle pool needs nothing.
	idle := api.PoolsStatus{At: t0.Add(10 * time.Second), Pools: []tasks.PoolStatus{{Pool: "deep", QueueStatus: tasks.QueueStatus{Delivered: 1000}}}}
	if r := poolReports(api.PoolsStatus{At: t0, Pools: []tasks.PoolStatus{{Pool: "deep", QueueStatus: tasks.QueueStatus{Delivered: 1000}}}}, idle, 30*time.Second, 2)[0]; r.WorkersNeed != 0 {
		t.Errorf("idle pool: %+v", r)
	}
}

// TestPoolsPrintsTheCallersTenant: the table shows the caller's own tenant's
// backlog (all the API returns) and how many tenants have work.
func TestPoolsPrintsTheCallersTenant(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	st := api.PoolsStatus{At: t0, Pools: []tasks.PoolStatus{{Pool: "fast", QueueStatus: tasks.QueueStatus{Pending: 9}, TenantCap: 256, TenantsWithWork: 3,
		Tenants: []tasks.TenantTasks{{Tenant: "acme", Priority: tasks.PriorityCI, Tasks: 2}}}}}
	var out strings.Builder
	printPools(&out, t0, poolReports(st, st, 30*time.Second, 2), 30*time.Second)
	if !strings.Contains(out.String(), "fast your tenant: acme ci 2/256 (of 3 tenants with work)") {
		t.Fatalf("output:\n%s", out.String())
	}
}

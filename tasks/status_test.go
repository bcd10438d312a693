package tasks_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/tasks"
)

// startJetStream runs an embedded nats-server and sets up the stream.
func startJetStream(t *testing.T, cfg tasks.StreamConfig) jetstream.JetStream {
	t.Helper()
	ctx := context.Background()
	ns, err := stack.StartNATS(ctx, stack.NATSOptions{StoreDir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := tasks.EnsureStream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	return js
}

var (
	fastCI   = tasks.Task{Pool: tasks.PoolFast, Kind: tasks.KindSecrets, Tenant: "acme"}
	fastBulk = tasks.Task{Pool: tasks.PoolFast, Kind: tasks.KindSecrets, Tenant: "acme", Priority: tasks.PriorityBulk}
	deepCI   = tasks.Task{Pool: tasks.PoolDeep, Kind: tasks.KindDeep, Tenant: "acme"}
)

func TestPoolStatus(t *testing.T) {
	ctx := context.Background()
	var cfg tasks.StreamConfig
	js := startJetStream(t, cfg)
	if st, err := tasks.Status(ctx, js, cfg, tasks.PoolFast); err != nil || st.Pending != 0 || !st.Oldest.IsZero() || st.TenantCap != 256 {
		t.Fatalf("empty pool: %v %+v", err, st)
	}
	before := time.Now().Add(-time.Second)
	for range 3 {
		if _, err := js.Publish(ctx, cfg.Subject(fastCI), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, cfg.Subject(fastBulk), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, cfg.Subject(deepCI), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	st, err := tasks.Status(ctx, js, cfg, tasks.PoolFast)
	if err != nil || st.Pending != 4 || st.AckPending != 0 || st.Oldest.Before(before) {
		t.Fatalf("four queued: %v %+v", err, st)
	}
	if ci, bulk := st.Priorities[0], st.Priorities[1]; ci.Priority != tasks.PriorityCI || ci.Pending != 3 || bulk.Priority != tasks.PriorityBulk || bulk.Pending != 1 {
		t.Fatalf("by priority: %+v", st.Priorities)
	}
	want := []tasks.TenantTasks{{Tenant: "acme", Priority: tasks.PriorityCI, Tasks: 3}, {Tenant: "acme", Priority: tasks.PriorityBulk, Tasks: 1}}
	if len(st.Tenants) != 2 || st.Tenants[0] != want[0] || st.Tenants[1] != want[1] {
		t.Fatalf("tenants: %+v", st.Tenants)
	}
	// A worker takes one: it is in progress, and still the oldest.
	cons, _ := js.Consumer(ctx, cfg.Name(), cfg.Consumer(tasks.PoolFast, tasks.PriorityCI))
	batch, err := cons.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	var msg jetstream.Msg
	for m := range batch.Messages() {
		msg = m
	}
	st, err = tasks.Status(ctx, js, cfg, tasks.PoolFast)
	if err != nil || st.Pending != 3 || st.AckPending != 1 || st.Delivered != 1 || st.Oldest.IsZero() {
		t.Fatalf("one in progress: %v %+v", err, st)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := tasks.Status(ctx, js, cfg, tasks.PoolDeep); err != nil || st.Pending != 1 {
		t.Fatalf("deep pool: %v %+v", err, st)
	}
	// The acked task is gone from the queue.
	if st, err := tasks.Status(ctx, js, cfg, tasks.PoolFast); err != nil || st.Pending != 3 || st.AckPending != 0 {
		t.Fatalf("after the ack: %v %+v", err, st)
	}
}

// A tenant at its cap is refused, with an error IsTenantBacklog knows;
// other tenants, and the same tenant's other priority, are not.
func TestTenantCap(t *testing.T) {
	ctx := context.Background()
	cfg := tasks.StreamConfig{MaxPendingPerTenant: 2}
	js := startJetStream(t, cfg)
	for range 2 {
		if _, err := js.Publish(ctx, cfg.Subject(fastCI), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	_, err := js.Publish(ctx, cfg.Subject(fastCI), []byte("{}"))
	if !tasks.IsTenantBacklog(err) {
		t.Fatalf("third task of a tenant capped at 2: %v", err)
	}
	other := fastCI
	other.Tenant = "globex"
	for _, task := range []tasks.Task{other, fastBulk, deepCI} {
		if _, err := js.Publish(ctx, cfg.Subject(task), []byte("{}")); err != nil {
			t.Fatalf("%s: %v", cfg.Subject(task), err)
		}
	}
	// A worker finishing one makes room.
	cons, _ := js.Consumer(ctx, cfg.Name(), cfg.Consumer(tasks.PoolFast, tasks.PriorityCI))
	batch, err := cons.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, cfg.Subject(fastCI), []byte("{}")); err != nil {
		t.Fatalf("after a task is done: %v", err)
	}
	if tasks.IsTenantBacklog(jetstream.ErrNoMessages) || tasks.IsTenantBacklog(nil) {
		t.Fatal("IsTenantBacklog of other errors")
	}
}

func TestTenantToken(t *testing.T) {
	for tenant, want := range map[string]string{"": "_", "local": "local", "acme": "acme", "acme.corp": "acme_2Ecorp", "a_b": "a_5Fb", "x>*": "x_3E_2A"} {
		got := tasks.TenantToken(tenant)
		if got != want {
			t.Errorf("TenantToken(%q) = %q, want %q", tenant, got, want)
		}
		if back, err := tasks.TenantFromToken(got); err != nil || back != tenant {
			t.Errorf("TenantFromToken(%q) = %q, %v", got, back, err)
		}
	}
	for _, bad := range []string{"a_", "a_4", "a_ZZ"} {
		if _, err := tasks.TenantFromToken(bad); err == nil {
			t.Errorf("TenantFromToken(%q) took it", bad)
		}
	}
}

// FuzzTenantToken: a tenant name (from a token file or an OIDC claim) always
// makes one subject token that reads back as the same name.
func FuzzTenantToken(f *testing.F) {
	for _, s := range []string{"", "acme", "a.b", "_", "local", "x y>*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tenant string) {
		tok := tasks.TenantToken(tenant)
		for _, c := range []byte(tok) {
			if c == '.' || c == '*' || c == '>' || c <= ' ' || c >= 0x7f {
				t.Fatalf("token %q of %q has %q", tok, tenant, c)
			}
		}
		back, err := tasks.TenantFromToken(tok)
		if err != nil || back != tenant {
			t.Fatalf("%q -> %q -> %q, %v", tenant, tok, back, err)
		}
	})
}

// TestPoolStatusForTenantHidesOtherTenants: a tenant's view of a pool keeps
// the fleet's totals but names no other tenant.
func TestPoolStatusForTenantHidesOtherTenants(t *testing.T) {
	ctx := context.Background()
	var cfg tasks.StreamConfig
	js := startJetStream(t, cfg)
	victim := tasks.Task{Pool: tasks.PoolFast, Kind: tasks.KindSecrets, Tenant: "victim-corp"}
	for _, task := range []tasks.Task{fastCI, fastCI, victim} {
		if _, err := js.Publish(ctx, cfg.Subject(task), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	st, err := tasks.Status(ctx, js, cfg, tasks.PoolFast)
	if err != nil {
		t.Fatal(err)
	}
	mine := st.ForTenant("acme")
	if mine.Pending != 3 || mine.TenantsWithWork != 2 {
		t.Fatalf("totals: pending %d, tenants with work %d; want 3 and 2", mine.Pending, mine.TenantsWithWork)
	}
	if len(mine.Tenants) != 1 || mine.Tenants[0].Tenant != "acme" || mine.Tenants[0].Tasks != 2 {
		t.Fatalf("acme's rows: %+v", mine.Tenants)
	}
	if other := st.ForTenant("nobody"); len(other.Tenants) != 0 || other.Pending != 3 {
		t.Fatalf("a tenant without work sees %+v", other)
	}
}

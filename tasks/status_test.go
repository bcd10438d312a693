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

func TestPoolStatus(t *testing.T) {
	ctx := context.Background()
	ns, err := stack.StartNATS(ctx, stack.NATSOptions{StoreDir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var cfg tasks.StreamConfig
	if err := tasks.EnsureStream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if st, err := tasks.Status(ctx, js, cfg, tasks.PoolFast); err != nil || st.Pending != 0 || !st.Oldest.IsZero() {
		t.Fatalf("empty pool: %v %+v", err, st)
	}
	before := time.Now().Add(-time.Second)
	for range 3 {
		if _, err := js.Publish(ctx, cfg.Subject(tasks.PoolFast, tasks.KindSecrets), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, cfg.Subject(tasks.PoolDeep, tasks.KindDeep), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	// The consumer counts new messages asynchronously: wait for them.
	st := waitStatus(ctx, t, js, cfg, tasks.PoolFast, func(st tasks.PoolStatus) bool { return st.Pending == 3 })
	if st.AckPending != 0 || st.Oldest.Before(before) {
		t.Fatalf("three queued: %+v", st)
	}
	// A worker takes one: it is in progress, and still the oldest.
	cons, _ := js.Consumer(ctx, cfg.Name(), cfg.Consumer(tasks.PoolFast))
	batch, err := cons.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	var msg jetstream.Msg
	for m := range batch.Messages() {
		msg = m
	}
	st = waitStatus(ctx, t, js, cfg, tasks.PoolFast, func(st tasks.PoolStatus) bool { return st.AckPending == 1 })
	if st.Pending != 2 || st.Oldest.IsZero() {
		t.Fatalf("one in progress: %+v", st)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	waitStatus(ctx, t, js, cfg, tasks.PoolDeep, func(st tasks.PoolStatus) bool { return st.Pending == 1 })
}

// waitStatus reads a pool's status until cond holds, for up to 10 seconds.
func waitStatus(ctx context.Context, t *testing.T, js jetstream.JetStream, cfg tasks.StreamConfig, pool string, cond func(tasks.PoolStatus) bool) tasks.PoolStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := tasks.Status(ctx, js, cfg, pool)
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool %s: %v %+v", pool, err, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

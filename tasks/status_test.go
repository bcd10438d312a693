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
	st, err := tasks.Status(ctx, js, cfg, tasks.PoolFast)
	if err != nil || st.Pending != 3 || st.AckPending != 0 || st.Oldest.Before(before) {
		t.Fatalf("three queued: %v %+v", err, st)
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
	st, err = tasks.Status(ctx, js, cfg, tasks.PoolFast)
	if err != nil || st.Pending != 2 || st.AckPending != 1 || st.Delivered != 1 || st.Oldest.IsZero() {
		t.Fatalf("one in progress: %v %+v", err, st)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := tasks.Status(ctx, js, cfg, tasks.PoolDeep); err != nil || st.Pending != 1 {
		t.Fatalf("deep pool: %v %+v", err, st)
	}
	// The acked task is gone from the queue.
	if st, err := tasks.Status(ctx, js, cfg, tasks.PoolFast); err != nil || st.Pending != 2 || st.AckPending != 0 {
		t.Fatalf("after the ack: %v %+v", err, st)
	}
}

package workers_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/temporal"

	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
)

// TestTaskAtMaxDeliverIsDeadLettered: a task handed back until JetStream's
// MaxDeliver is kept on its dead-letter subject, its scan ends with a clear
// DeadLetter error, and the work queue no longer holds it (so it stops
// counting against its tenant). On 9ae75cb the scan waits for its
// 30-minute activity timeout and the message stays in the queue.
func TestTaskAtMaxDeliverIsDeadLettered(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.stream.MaxDeliver = 2
	js := e.jetstream()
	if err := tasks.EnsureStream(ctx, js, e.stream); err != nil {
		t.Fatal(err)
	}
	// A deep worker has no task here: it serves the shared dead-letter
	// consumer, as every worker does.
	var calls sync.Map
	e.startWorker(tasks.PoolDeep, "deep", e.jetstream(), e.client, map[string]workers.Scanner{tasks.KindDeep: deepScanner(&calls, "deep")})

	run := e.start(scanRequest("dead-letter"))
	// A fast "worker" that gives the task back every time it gets it.
	cons, err := js.Consumer(ctx, e.stream.Name(), e.stream.Consumer(tasks.PoolFast, tasks.PriorityCI))
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < e.stream.MaxDeliver; {
		batch, err := cons.Fetch(1)
		if err != nil {
			t.Fatal(err)
		}
		for msg := range batch.Messages() {
			got++
			_ = msg.Nak()
		}
	}

	// JetStream notices MaxDeliver when it next looks for a message to
	// deliver, which a pull does: keep pulling, as idle workers would.
	pullCtx, stopPulling := context.WithCancel(ctx)
	defer stopPulling()
	go func() {
		for pullCtx.Err() == nil {
			if batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second)); err == nil {
				for msg := range batch.Messages() {
					_ = msg.Nak()
				}
			}
		}
	}()

	err = run.Get(ctx, nil)
	appErr, ok := errors.AsType[*temporal.ApplicationError](err)
	if !ok || appErr.Type() != tasks.ErrTypeDeadLetter {
		t.Fatalf("scan ended with %v, want a %s error", err, tasks.ErrTypeDeadLetter)
	}
	waitQueueEmpty(t, e)
	dead, err := js.Stream(ctx, e.stream.DeadStreamName())
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dead.GetLastMsgForSubject(ctx, e.stream.DeadSubject(e.stream.Subject(tasks.Task{Pool: tasks.PoolFast, Kind: tasks.KindSecrets})))
	if err != nil {
		t.Fatalf("no dead letter kept: %v", err)
	}
	if len(msg.Data) == 0 {
		t.Fatal("dead letter is empty")
	}
}

package activities

import (
	"context"
	"errors"
	"sync"
	"testing"

	"go.temporal.io/api/serviceerror"
)

// beats records heartbeats; the tokens in gone answer NotFound, as Temporal
// does for a completed or retried activity, and down makes every call fail.
type beats struct {
	mu   sync.Mutex
	got  map[string]int
	gone map[string]bool
	down bool
}

func (b *beats) RecordActivityHeartbeat(_ context.Context, token []byte, _ ...interface{}) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return errors.New("connection refused")
	}
	b.got[string(token)]++
	if b.gone[string(token)] {
		return serviceerror.NewNotFound("workflow execution already completed")
	}
	return nil
}

// TestQueuedTasksBeatUntilGone: every dispatched task is heartbeated at
// each beat until Temporal says its activity is gone; a Temporal outage
// forgets nothing.
func TestQueuedTasksBeatUntilGone(t *testing.T) {
	b := &beats{got: map[string]int{}, gone: map[string]bool{}}
	q := &QueuedTasks{Heartbeater: b}
	ctx := context.Background()
	q.Add([]byte("a"))
	q.Add([]byte("b"))
	q.Beat(ctx)
	b.gone["a"] = true // a worker completed it
	q.Beat(ctx)
	q.Beat(ctx)
	if b.got["a"] != 2 || b.got["b"] != 3 {
		t.Fatalf("after three beats: %v; want a forgotten after its second, b beaten each time", b.got)
	}
	b.down = true
	q.Beat(ctx)
	b.down = false
	q.Beat(ctx)
	if b.got["b"] != 4 || b.got["a"] != 2 {
		t.Fatalf("across an outage: %v; want b beaten again, a not", b.got)
	}
}

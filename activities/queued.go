package activities

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tollgate/tollgate/tasks"
)

// Heartbeater records a heartbeat for an activity by its task token (the
// Temporal client does).
type Heartbeater interface {
	RecordActivityHeartbeat(ctx context.Context, taskToken []byte, details ...interface{}) error
}

// QueuedTasks keeps alive the Dispatch activities this orchestrator
// started: it heartbeats each one's task token every Interval until
// Temporal no longer waits for it (a worker completed it, or the attempt
// timed out and was dispatched again). A worker that takes the task
// heartbeats it too, so an activity goes quiet only when neither its
// orchestrator nor a worker holds it: after the orchestrator died between
// starting the activity and publishing its task, or with a task queued
// behind it. Its heartbeat timeout (workflows' dispatch options) then
// retries it from a live orchestrator within a minute, where the
// start-to-close timeout alone would have held the scan for 30 minutes. A
// task published by the dead attempt and taken later is dropped by the
// worker as stale.
type QueuedTasks struct {
	Heartbeater Heartbeater
	// Interval between two heartbeats of one task (default 20s; it must stay
	// well under the dispatch options' HeartbeatTimeout).
	Interval time.Duration
	Logger   *slog.Logger

	mu     sync.Mutex
	tokens map[string][]byte
}

// DefaultQueuedInterval is QueuedTasks' default Interval.
const DefaultQueuedInterval = 20 * time.Second

// Add starts heartbeating token.
func (q *QueuedTasks) Add(token []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.tokens == nil {
		q.tokens = map[string][]byte{}
	}
	q.tokens[string(token)] = token
}

// Run heartbeats every task every Interval until ctx ends.
func (q *QueuedTasks) Run(ctx context.Context) {
	every := q.Interval
	if every <= 0 {
		every = DefaultQueuedInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			q.Beat(ctx)
		}
	}
}

// Beat heartbeats every task once, and forgets those Temporal no longer
// waits for.
func (q *QueuedTasks) Beat(ctx context.Context) {
	q.mu.Lock()
	tokens := make([][]byte, 0, len(q.tokens))
	for _, t := range q.tokens {
		tokens = append(tokens, t)
	}
	q.mu.Unlock()
	for _, t := range tokens {
		err := q.Heartbeater.RecordActivityHeartbeat(ctx, t, "queued")
		switch {
		case err == nil:
		case tasks.ActivityGone(err):
			q.mu.Lock()
			delete(q.tokens, string(t))
			q.mu.Unlock()
		case ctx.Err() != nil:
			return
		default:
			// Temporal unreachable: the next beat tries again, within the
			// heartbeat timeout.
			orDiscard(q.Logger).WarnContext(ctx, "heartbeat of a dispatched task", "err", err)
		}
	}
}

package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/temporal"

	"github.com/tollgate/tollgate/tasks"
)

// maxDeliveriesAdvisory is the part of JetStream's
// io.nats.jetstream.advisory.v1.max_deliver advisory that names the task.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// runDeadLetters serves the shared dead-letter consumer until ctx ends: for
// each task JetStream gave up on (MaxDeliver), it keeps the task on its
// dead-letter subject, fails the task's activity without retries, and
// deletes the task from the work queue, so that nothing sits there counting
// against its tenant.
func (w *Worker) runDeadLetters(ctx context.Context) {
	stream := w.cfg.Stream.DeadStreamName()
	var cons jetstream.Consumer
	for delay := 100 * time.Millisecond; cons == nil; delay = min(2*delay, 5*time.Second) {
		c, err := w.deps.JetStream.Consumer(ctx, stream, tasks.DeadLetterConsumer)
		switch {
		case err == nil:
			cons = c
			continue
		case ctx.Err() != nil:
			return
		}
		w.deps.Logger.WarnContext(ctx, "open dead-letter consumer; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := cons.Fetch(10, jetstream.FetchContext(fctx))
		if err == nil {
			for msg := range batch.Messages() {
				if err := w.deadLetter(ctx, msg); err != nil {
					w.deps.Logger.WarnContext(ctx, "dead-letter a task; it is tried again", "err", err)
					_ = msg.NakWithDelay(5 * time.Second)
					continue
				}
				_ = msg.Ack()
			}
			err = batch.Error()
		}
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
			w.deps.Logger.WarnContext(ctx, "fetch dead letters", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// deadLetter handles one max-deliveries advisory. It is idempotent: a task
// already moved is gone from the work queue, and the advisory is done.
func (w *Worker) deadLetter(ctx context.Context, msg jetstream.Msg) error {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(msg.Data(), &adv); err != nil || adv.StreamSeq == 0 {
		w.deps.Logger.ErrorContext(ctx, "malformed max-deliveries advisory; dropping it", "err", err)
		return nil
	}
	if adv.Stream != w.cfg.Stream.Name() {
		return nil
	}
	st, err := w.deps.JetStream.Stream(ctx, adv.Stream)
	if err != nil {
		return fmt.Errorf("open stream %q: %w", adv.Stream, err)
	}
	raw, err := st.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // moved already, or acknowledged after all
	}
	if err != nil {
		return fmt.Errorf("read task %d of stream %q: %w", adv.StreamSeq, adv.Stream, err)
	}
	logger := w.deps.Logger.With("seq", adv.StreamSeq, "subject", raw.Subject, "deliveries", adv.Deliveries)
	dead := nats.NewMsg(w.cfg.Stream.DeadSubject(raw.Subject))
	dead.Data = raw.Data
	dead.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dead-%s-%d", adv.Stream, adv.StreamSeq))
	dead.Header.Set("Tollgate-Dead-Reason", fmt.Sprintf("delivered %d times (MaxDeliver) without completing", adv.Deliveries))
	if _, err := w.deps.JetStream.PublishMsg(ctx, dead); err != nil {
		return fmt.Errorf("publish dead letter of task %d: %w", adv.StreamSeq, err)
	}
	var t tasks.Task
	if err := json.Unmarshal(raw.Data, &t); err == nil && len(t.TaskToken) > 0 {
		logger = logger.With("scan_id", t.ScanID, "kind", t.Kind)
		failure := temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("task %s of scan %s was delivered %d times without completing (workers died or gave it back each time); it is kept on %s",
				t.Kind, t.ScanID, adv.Deliveries, dead.Subject), tasks.ErrTypeDeadLetter, nil)
		if err := w.deps.Temporal.CompleteActivity(ctx, t.TaskToken, nil, failure); err != nil && !activityGone(err) {
			return fmt.Errorf("fail the activity of dead task %d: %w", adv.StreamSeq, err)
		}
	}
	if err := st.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("delete dead task %d from the work queue: %w", adv.StreamSeq, err)
	}
	logger.WarnContext(ctx, "task reached MaxDeliver: kept as a dead letter, its scan failed")
	return nil
}

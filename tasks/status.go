package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PoolStatus is one pool's queue at one time.
type PoolStatus struct {
	Pool string `json:"pool"`
	// Pending tasks are waiting for a worker; AckPending are with one.
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ack_pending"`
	// Redelivered tasks went to a worker more than once and are not done.
	Redelivered int `json:"redelivered"`
	// Waiting is the number of pull requests workers have open: idle
	// capacity.
	Waiting int `json:"waiting"`
	// Delivered counts the consumer's deliveries (redeliveries included)
	// since it was made.
	Delivered uint64 `json:"delivered"`
	// Oldest is when the oldest task not yet done was published (zero when
	// there is none).
	Oldest time.Time `json:"oldest,omitzero"`
}

// Status reads a pool's queue. What is queued comes from the work-queue
// stream itself, which holds exactly the tasks not yet done (acked tasks are
// deleted) and counts them as soon as a publish is acknowledged; what is in
// progress, redelivered and delivered comes from the pool's consumer.
func Status(ctx context.Context, js jetstream.JetStream, c StreamConfig, pool string) (PoolStatus, error) {
	c = c.withDefaults()
	cons, err := js.Consumer(ctx, c.Stream, c.Consumer(pool))
	if err != nil {
		return PoolStatus{}, fmt.Errorf("pool %s: consumer %s: %w", pool, c.Consumer(pool), err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return PoolStatus{}, fmt.Errorf("pool %s: consumer info: %w", pool, err)
	}
	st := PoolStatus{
		Pool: pool, AckPending: info.NumAckPending, Redelivered: info.NumRedelivered,
		Waiting: info.NumWaiting, Delivered: info.Delivered.Consumer,
	}
	stream, err := js.Stream(ctx, c.Stream)
	if err != nil {
		return st, fmt.Errorf("pool %s: stream %s: %w", pool, c.Stream, err)
	}
	subject := fmt.Sprintf("%s.%s.>", c.SubjectPrefix, pool)
	sinfo, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return st, fmt.Errorf("pool %s: stream info: %w", pool, err)
	}
	var queued uint64
	for _, n := range sinfo.State.Subjects {
		queued += n
	}
	// Tasks a worker holds are still in the stream until acked.
	st.Pending = queued - min(queued, uint64(st.AckPending))
	if queued == 0 {
		return st, nil
	}
	msg, err := stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subject))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return st, fmt.Errorf("pool %s: oldest task: %w", pool, err)
	default:
		st.Oldest = msg.Time
	}
	return st, nil
}

// Pools reads every pool's queue from one JetStream.
type Pools struct {
	JS     jetstream.JetStream
	Config StreamConfig
}

// Status returns the fast and deep pools' queues, in that order.
func (p Pools) Status(ctx context.Context) ([]PoolStatus, error) {
	var out []PoolStatus
	for _, pool := range []string{PoolFast, PoolDeep} {
		st, err := Status(ctx, p.JS, p.Config, pool)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

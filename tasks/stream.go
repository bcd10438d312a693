package tasks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig is the JetStream topology. Zero fields take the defaults.
type StreamConfig struct {
	// Stream is the stream name (default "TOLLGATE_TASKS").
	Stream string
	// SubjectPrefix prefixes every task subject (default "tollgate.tasks").
	SubjectPrefix string
	// AckWait is how long a worker may hold a task without heartbeating
	// before JetStream hands it to another worker (default 30s).
	AckWait time.Duration
	// MaxDeliver caps deliveries of one message (default 20).
	MaxDeliver int
	// Replicas of the stream in a clustered JetStream (default 1).
	Replicas int
	// MaxAge drops tasks nobody took (default 24h).
	MaxAge time.Duration
}

func (c StreamConfig) withDefaults() StreamConfig {
	c.Stream = cmp.Or(c.Stream, "TOLLGATE_TASKS")
	c.SubjectPrefix = cmp.Or(c.SubjectPrefix, "tollgate.tasks")
	c.AckWait = cmp.Or(c.AckWait, 30*time.Second)
	c.MaxDeliver = cmp.Or(c.MaxDeliver, 20)
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.MaxAge = cmp.Or(c.MaxAge, 24*time.Hour)
	return c
}

// Subject is the subject a task of kind for pool is published on.
func (c StreamConfig) Subject(pool, kind string) string {
	c = c.withDefaults()
	return fmt.Sprintf("%s.%s.%s", c.SubjectPrefix, pool, kind)
}

// Consumer is the durable consumer name of a pool.
func (c StreamConfig) Consumer(pool string) string { return "pool-" + pool }

// Name is the stream name in use.
func (c StreamConfig) Name() string { return c.withDefaults().Stream }

// EnsureStream creates or updates the work-queue stream and one durable pull
// consumer per pool. It is safe to call from every process at start-up.
func EnsureStream(ctx context.Context, js jetstream.JetStream, c StreamConfig) error {
	c = c.withDefaults()
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       c.Stream,
		Subjects:   []string{c.SubjectPrefix + ".>"},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Replicas:   c.Replicas,
		MaxAge:     c.MaxAge,
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("create stream %q: %w", c.Stream, err)
	}
	for _, pool := range []string{PoolFast, PoolDeep} {
		_, err := js.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
			Durable:       c.Consumer(pool),
			FilterSubject: fmt.Sprintf("%s.%s.>", c.SubjectPrefix, pool),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       c.AckWait,
			MaxDeliver:    c.MaxDeliver,
			MaxAckPending: 10_000,
			BackOff:       nil,
		})
		if err != nil {
			return fmt.Errorf("create consumer %q on stream %q: %w", c.Consumer(pool), c.Stream, err)
		}
	}
	return nil
}

// ErrUnknownPool is returned for a pool name that is neither fast nor deep.
var ErrUnknownPool = errors.New("unknown pool")

// ValidPool checks a pool name.
func ValidPool(pool string) error {
	if pool != PoolFast && pool != PoolDeep {
		return fmt.Errorf("pool %q: %w (want %q or %q)", pool, ErrUnknownPool, PoolFast, PoolDeep)
	}
	return nil
}

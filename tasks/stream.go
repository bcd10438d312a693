package tasks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	// MaxPendingPerTenant caps the tasks one tenant may have not yet done
	// (queued or running) in one pool at one priority (default 256). The
	// stream refuses a task over the cap (discard-new per subject, since a
	// task's subject names its tenant), and the scan waits for room instead
	// of flooding the queue ahead of other tenants.
	MaxPendingPerTenant int64
	// DeadStream keeps the tasks that reached MaxDeliver, on
	// <DeadSubjectPrefix>.<pool>.<priority>.<tenant>.<kind>, for 30 days
	// (defaults "TOLLGATE_DEAD" and "tollgate.dead").
	DeadStream        string
	DeadSubjectPrefix string
}

func (c StreamConfig) withDefaults() StreamConfig {
	c.Stream = cmp.Or(c.Stream, "TOLLGATE_TASKS")
	c.SubjectPrefix = cmp.Or(c.SubjectPrefix, "tollgate.tasks")
	c.AckWait = cmp.Or(c.AckWait, 30*time.Second)
	c.MaxDeliver = cmp.Or(c.MaxDeliver, 20)
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.MaxAge = cmp.Or(c.MaxAge, 24*time.Hour)
	c.MaxPendingPerTenant = cmp.Or(c.MaxPendingPerTenant, 256)
	c.DeadStream = cmp.Or(c.DeadStream, "TOLLGATE_DEAD")
	c.DeadSubjectPrefix = cmp.Or(c.DeadSubjectPrefix, "tollgate.dead")
	return c
}

// DeadSubject is where a task that reached MaxDeliver is kept: its task
// subject under the dead-letter prefix.
func (c StreamConfig) DeadSubject(taskSubject string) string {
	c = c.withDefaults()
	return c.DeadSubjectPrefix + strings.TrimPrefix(taskSubject, c.SubjectPrefix)
}

// DeadStreamName is the dead-letter stream in use.
func (c StreamConfig) DeadStreamName() string { return c.withDefaults().DeadStream }

// DeadLetterConsumer is the durable consumer, on the dead-letter stream, of
// JetStream's max-deliveries advisories for the task stream: the workers
// share it, and one of them moves each such task to its dead-letter
// subject and fails its scan.
const DeadLetterConsumer = "dead-letters"

// maxDeliveriesAdvisory is the subject of JetStream's advisories about the
// task stream's messages that reached MaxDeliver.
func (c StreamConfig) maxDeliveriesAdvisory() string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + c.withDefaults().Stream + ".*"
}

// ErrTypeDeadLetter is the Temporal application error type of a task that
// reached MaxDeliver: it is kept on a dead-letter subject and its scan
// fails (not retried).
const ErrTypeDeadLetter = "DeadLetter"

// Subject is the subject a task is published on:
// <prefix>.<pool>.<priority>.<tenant>.<kind>.
func (c StreamConfig) Subject(t Task) string {
	c = c.withDefaults()
	return fmt.Sprintf("%s.%s.%s.%s.%s", c.SubjectPrefix, t.Pool, cmp.Or(t.Priority, PriorityCI), TenantToken(t.Tenant), t.Kind)
}

// filter is the subject filter of a pool's tasks at one priority ("" for
// both).
func (c StreamConfig) filter(pool, priority string) string {
	c = c.withDefaults()
	if priority == "" {
		return fmt.Sprintf("%s.%s.>", c.SubjectPrefix, pool)
	}
	return fmt.Sprintf("%s.%s.%s.>", c.SubjectPrefix, pool, priority)
}

// Consumer is the durable consumer name of a pool at a priority: pool-<pool>
// for CI and pool-<pool>-bulk for bulk.
func (c StreamConfig) Consumer(pool, priority string) string {
	if priority == PriorityBulk {
		return "pool-" + pool + "-bulk"
	}
	return "pool-" + pool
}

// TenantToken is a tenant's name as one subject token: letters, digits and
// '-' stay, every other byte becomes _XX (hex), so that distinct tenants get
// distinct tokens and none holds '.', '*' or '>'. The embedded mode's empty
// tenant is "_", which no escape makes.
func TenantToken(tenant string) string {
	if tenant == "" {
		return "_"
	}
	var b strings.Builder
	for i := range len(tenant) {
		switch ch := tenant[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '-':
			b.WriteByte(ch)
		default:
			fmt.Fprintf(&b, "_%02X", ch)
		}
	}
	return b.String()
}

// TenantFromToken reverses TenantToken.
func TenantFromToken(token string) (string, error) {
	if token == "_" {
		return "", nil
	}
	var b strings.Builder
	for i := 0; i < len(token); i++ {
		if token[i] != '_' {
			b.WriteByte(token[i])
			continue
		}
		if i+2 >= len(token) {
			return "", fmt.Errorf("tenant token %q: short escape at %d", token, i)
		}
		v, err := strconv.ParseUint(token[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("tenant token %q: escape at %d: %w", token, i, err)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// Name is the stream name in use.
func (c StreamConfig) Name() string { return c.withDefaults().Stream }

// EventsStream keeps tollgate's events (tollgate.events.>).
const EventsStream = "TOLLGATE_EVENTS"

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
		// One subject per pool, priority, tenant and kind: the per-subject
		// cap is the per-tenant limit, and a task over it is refused.
		MaxMsgsPerSubject:    c.MaxPendingPerTenant,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
	})
	if err != nil {
		return fmt.Errorf("create stream %q: %w", c.Stream, err)
	}
	// Events (a live release's verdict got worse) are kept for a month for
	// whoever subscribes: the guard's and on-call's tooling.
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: EventsStream, Subjects: []string{"tollgate.events.>"}, Retention: jetstream.LimitsPolicy,
		Storage: jetstream.FileStorage, Replicas: c.Replicas, MaxAge: 30 * 24 * time.Hour, Duplicates: 2 * time.Minute,
	}); err != nil {
		return fmt.Errorf("create stream %q: %w", EventsStream, err)
	}
	// Dead letters: the tasks that reached MaxDeliver, and the advisories
	// that say which they are, kept a month. A task over MaxDeliver would
	// otherwise stay in the work queue, never delivered again, counting
	// against its tenant's cap until MaxAge.
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: c.DeadStream, Subjects: []string{c.DeadSubjectPrefix + ".>", c.maxDeliveriesAdvisory()}, Retention: jetstream.LimitsPolicy,
		Storage: jetstream.FileStorage, Replicas: c.Replicas, MaxAge: 30 * 24 * time.Hour, Duplicates: 2 * time.Minute,
	}); err != nil {
		return fmt.Errorf("create stream %q: %w", c.DeadStream, err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, c.DeadStream, jetstream.ConsumerConfig{
		Durable: DeadLetterConsumer, FilterSubject: c.maxDeliveriesAdvisory(), AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: c.AckWait, MaxAckPending: 1000,
	}); err != nil {
		return fmt.Errorf("create consumer %q on stream %q: %w", DeadLetterConsumer, c.DeadStream, err)
	}
	for _, pool := range []string{PoolFast, PoolDeep} {
		for _, prio := range []string{PriorityCI, PriorityBulk} {
			_, err := js.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
				Durable:       c.Consumer(pool, prio),
				FilterSubject: c.filter(pool, prio),
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       c.AckWait,
				MaxDeliver:    c.MaxDeliver,
				MaxAckPending: 10_000,
			})
			if err != nil {
				return fmt.Errorf("create consumer %q on stream %q: %w", c.Consumer(pool, prio), c.Stream, err)
			}
		}
	}
	return nil
}

// errCodeStreamStoreFailed is JetStream's error code for a message the
// stream would not store (NATS's JSStreamStoreFailedErr); a per-subject cap
// under discard-new is one of its causes.
const errCodeStreamStoreFailed = 10077

// IsTenantBacklog reports whether a publish was refused because its subject
// (its tenant's pending tasks in one pool at one priority) is at the cap.
func IsTenantBacklog(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStreamStoreFailed &&
		strings.Contains(apiErr.Description, "maximum messages per subject")
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

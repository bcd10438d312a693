package tasks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// QueueStatus is one pool's queue at one priority, at one time.
type QueueStatus struct {
	Priority string `json:"priority,omitempty"`
	// Consumer is the JetStream durable consumer the queue is read by.
	Consumer string `json:"consumer,omitempty"`
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

// TenantTasks is how many tasks one tenant has not yet done (queued or
// running) in a pool at a priority: what the per-tenant cap counts.
type TenantTasks struct {
	Tenant   string `json:"tenant"`
	Priority string `json:"priority"`
	Tasks    uint64 `json:"tasks"`
}

// PoolStatus is one pool's queue at one time: the totals over both
// priorities, each priority's queue, and the tenants with work in it.
type PoolStatus struct {
	Pool string `json:"pool"`
	QueueStatus
	Priorities []QueueStatus `json:"priorities"`
	// Tenants with tasks not yet done, the most first. The API shows a
	// caller only its own tenant's rows (ForTenant).
	Tenants []TenantTasks `json:"tenants,omitempty"`
	// TenantsWithWork counts the tenants with tasks not yet done (set by
	// ForTenant, where Tenants no longer shows them all).
	TenantsWithWork int `json:"tenants_with_work,omitempty"`
	// TenantCap is the cap on one tenant's tasks at one priority.
	TenantCap int64 `json:"tenant_cap"`
}

// ForTenant is the status as one tenant may see it: the pool's totals, which
// name no tenant, the number of tenants with work (TenantsWithWork), and of
// the per-tenant rows only that tenant's own.
func (p PoolStatus) ForTenant(tenant string) PoolStatus {
	seen := map[string]bool{}
	var own []TenantTasks
	for _, t := range p.Tenants {
		seen[t.Tenant] = true
		if t.Tenant == tenant {
			own = append(own, t)
		}
	}
	p.TenantsWithWork = len(seen)
	p.Tenants = own
	return p
}

// Status reads a pool's queues. What is queued comes from the work-queue
// stream itself, which holds exactly the tasks not yet done (acked tasks are
// deleted) and counts them as soon as a publish is acknowledged; what is in
// progress, redelivered and delivered comes from the pool's consumers.
func Status(ctx context.Context, js jetstream.JetStream, c StreamConfig, pool string) (PoolStatus, error) {
	c = c.withDefaults()
	stream, err := js.Stream(ctx, c.Stream)
	if err != nil {
		return PoolStatus{}, fmt.Errorf("pool %s: stream %s: %w", pool, c.Stream, err)
	}
	st := PoolStatus{Pool: pool, TenantCap: stream.CachedInfo().Config.MaxMsgsPerSubject}
	sinfo, err := stream.Info(ctx, jetstream.WithSubjectFilter(c.filter(pool, "")))
	if err != nil {
		return st, fmt.Errorf("pool %s: stream info: %w", pool, err)
	}
	queued := map[string]uint64{}
	for subject, n := range sinfo.State.Subjects {
		// <prefix>.<pool>.<priority>.<tenant>.<kind>
		tokens := strings.Split(strings.TrimPrefix(subject, c.SubjectPrefix+"."), ".")
		if len(tokens) != 4 {
			continue // not a task subject of this version
		}
		queued[tokens[1]] += n
		tenant, err := TenantFromToken(tokens[2])
		if err != nil {
			tenant = tokens[2]
		}
		st.Tenants = append(st.Tenants, TenantTasks{Tenant: tenant, Priority: tokens[1], Tasks: n})
	}
	slices.SortFunc(st.Tenants, func(a, b TenantTasks) int {
		return cmp.Or(cmp.Compare(b.Tasks, a.Tasks), cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Priority, b.Priority))
	})
	for _, prio := range []string{PriorityCI, PriorityBulk} {
		q, err := queueStatus(ctx, js, stream, c, pool, prio, queued[prio])
		if err != nil {
			return st, err
		}
		st.Priorities = append(st.Priorities, q)
		st.Pending += q.Pending
		st.AckPending += q.AckPending
		st.Redelivered += q.Redelivered
		st.Waiting += q.Waiting
		st.Delivered += q.Delivered
		if !q.Oldest.IsZero() && (st.Oldest.IsZero() || q.Oldest.Before(st.Oldest)) {
			st.Oldest = q.Oldest
		}
	}
	return st, nil
}

func queueStatus(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, c StreamConfig, pool, prio string, queued uint64) (QueueStatus, error) {
	name := c.Consumer(pool, prio)
	cons, err := js.Consumer(ctx, c.Stream, name)
	if err != nil {
		return QueueStatus{}, fmt.Errorf("pool %s: consumer %s: %w", pool, name, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return QueueStatus{}, fmt.Errorf("pool %s: consumer %s info: %w", pool, name, err)
	}
	q := QueueStatus{
		Priority: prio, Consumer: name, AckPending: info.NumAckPending, Redelivered: info.NumRedelivered,
		Waiting: info.NumWaiting, Delivered: info.Delivered.Consumer,
	}
	// Tasks a worker holds are still in the stream until acked.
	q.Pending = queued - min(queued, uint64(q.AckPending))
	if queued == 0 {
		return q, nil
	}
	msg, err := stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(c.filter(pool, prio)))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return q, fmt.Errorf("pool %s: oldest %s task: %w", pool, prio, err)
	default:
		q.Oldest = msg.Time
	}
	return q, nil
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

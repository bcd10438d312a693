package loadtest

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate/tollgate/tasks"
)

// poolSampler reads both pools' queues from the fleet's NATS; it keeps
// reconnecting through NATS restarts.
type poolSampler struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func newPoolSampler(url string) (*poolSampler, error) {
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond), nats.PingInterval(3*time.Second), nats.MaxPingsOutstanding(2))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &poolSampler{nc: nc, js: js}, nil
}

// sample reads the pools; a pool that cannot be read (NATS restarting) is
// left out of this second.
func (p *poolSampler) sample(ctx context.Context) map[string]PoolStats {
	ctx, cancel := context.WithTimeout(ctx, 900*time.Millisecond)
	defer cancel()
	out := map[string]PoolStats{}
	for _, pool := range []string{tasks.PoolFast, tasks.PoolDeep} {
		st, err := tasks.Status(ctx, p.js, tasks.StreamConfig{}, pool)
		if err != nil {
			continue
		}
		ps := PoolStats{Pending: st.Pending, AckPending: st.AckPending, Redelivered: st.Redelivered}
		if !st.Oldest.IsZero() {
			ps.OldestAgeS = time.Since(st.Oldest).Seconds()
		}
		out[pool] = ps
	}
	return out
}

func (p *poolSampler) Close() { p.nc.Close() }

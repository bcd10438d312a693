package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate/tollgate/tasks"
)

// TestMain lets the NATS cluster run this test binary as its nats-server
// (see NATSServerMain).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "nats-server" {
		if err := NATSServerMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startNATSCluster starts a three-node cluster (of the nats-server binary
// $TOLLGATE_NATS_SERVER names, else of this test binary) and connects to
// it with every node's URL, reconnecting at once when a node goes. It
// skips the test with -short.
func startNATSCluster(t *testing.T) (*NATSCluster, jetstream.JetStream) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a test that starts a 3-node NATS cluster")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	command := []string{self, "nats-server"}
	if os.Getenv("TOLLGATE_NATS_SERVER") != "" {
		command = nil
	}
	begin := time.Now()
	c, err := StartNATSCluster(t.Context(), NATSClusterOptions{Dir: t.TempDir(), Command: command})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	t.Logf("3-node JetStream cluster healthy %s after the start", time.Since(begin).Round(time.Millisecond))
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return c, js
}

// eventually polls fn until it returns nil, and fails the test with its
// last error after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 10 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(delay) // a poll of the servers' state, not a wait for time to pass
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// newLeader waits for a running node other than old to lead, and says
// how long that took.
func newLeader(t *testing.T, old *NATSNode, leader func(context.Context) (*NATSNode, error)) (*NATSNode, time.Duration) {
	t.Helper()
	begin := time.Now()
	var n *NATSNode
	eventually(t, 60*time.Second, "a new leader after "+old.Name+" went", func() (err error) {
		n, err = leader(t.Context())
		if err == nil && n == old {
			err = fmt.Errorf("%s still leads", old.Name)
		}
		return err
	})
	return n, time.Since(begin)
}

// TestNATSClusterSurvivesLeaderKills: a replicas-3 stream of a 3-node
// cluster keeps every message, once each, through a SIGKILL of its leader;
// the killed node catches up when it comes back; the meta group elects a
// new leader when its leader is killed, and creates streams again.
func TestNATSClusterSurvivesLeaderKills(t *testing.T) {
	c, js := startNATSCluster(t)
	ctx := t.Context()
	const stream = "DRILL"
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{"drill.>"},
		Storage: jetstream.FileStorage, Replicas: 3, Duplicates: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "drill", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	// A publish is retried until JetStream acknowledges it; its message id
	// makes a retry of a publish that did land a duplicate JetStream drops.
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			id := strconv.Itoa(i)
			eventually(t, 60*time.Second, "publish "+id, func() error {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				_, err := js.Publish(pctx, "drill.msg", []byte(id), jetstream.WithMsgID(id))
				return err
			})
		}
	}
	publish(0, 50)

	var leader *NATSNode
	eventually(t, 30*time.Second, "the stream's leader", func() (err error) {
		leader, err = c.StreamLeader(ctx, stream)
		return err
	})
	leader.Kill()
	if leader.Running() {
		t.Fatalf("%s runs after Kill", leader.Name)
	}
	next, took := newLeader(t, leader, func(ctx context.Context) (*NATSNode, error) { return c.StreamLeader(ctx, stream) })
	t.Logf("stream leader %s SIGKILLed: %s leads after %s", leader.Name, next.Name, took.Round(time.Millisecond))

	begin := time.Now()
	publish(50, 100)
	t.Logf("50 publishes on 2 nodes in %s", time.Since(begin).Round(time.Millisecond))
	seen := map[string]int{}
	eventually(t, 60*time.Second, "consume 100 messages", func() error {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			return err
		}
		for m := range batch.Messages() {
			seen[string(m.Data())]++
			if err := m.DoubleAck(ctx); err != nil {
				return err
			}
		}
		if len(seen) < 100 {
			return fmt.Errorf("%d of 100 messages consumed", len(seen))
		}
		return batch.Error()
	})
	for i := range 100 {
		if n := seen[strconv.Itoa(i)]; n != 1 {
			t.Errorf("message %d consumed %d times", i, n)
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 100 {
		t.Errorf("the stream holds %d messages, want 100 (none lost, none twice)", info.State.Msgs)
	}

	// The killed node comes back with its store, and catches up.
	begin = time.Now()
	if err := leader.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, leader.Name+" catches up", func() error {
		return streamOnNode(ctx, leader, stream, 100)
	})
	t.Logf("%s restarted and caught up in %s", leader.Name, time.Since(begin).Round(time.Millisecond))

	// The meta leader goes: another takes over, and once the node is back
	// a new replicas-3 stream can be placed.
	var meta *NATSNode
	eventually(t, 30*time.Second, "the meta leader", func() (err error) {
		meta, err = c.MetaLeader(ctx)
		return err
	})
	meta.Kill()
	nextMeta, took := newLeader(t, meta, c.MetaLeader)
	t.Logf("meta leader %s SIGKILLed: %s leads after %s", meta.Name, nextMeta.Name, took.Round(time.Millisecond))
	if err := meta.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "create a second replicas-3 stream", func() error {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "DRILL2", Subjects: []string{"drill2.>"}, Replicas: 3})
		return err
	})
	eventually(t, 30*time.Second, "the first stream on "+meta.Name, func() error {
		return streamOnNode(ctx, meta, stream, 100)
	})
}

// streamOnNode checks that node holds a replica of stream with msgs
// messages, the last one number msgs.
func streamOnNode(ctx context.Context, node *NATSNode, stream string, msgs uint64) error {
	js, err := node.JetStream(ctx)
	if err != nil {
		return err
	}
	for _, acc := range js.AccountDetails {
		for _, s := range acc.Streams {
			if s.Name != stream {
				continue
			}
			if s.State.Msgs != msgs || s.State.LastSeq != msgs {
				return fmt.Errorf("%s holds %d messages of %s, last %d; want %d", node.Name, s.State.Msgs, stream, s.State.LastSeq, msgs)
			}
			return nil
		}
	}
	return fmt.Errorf("%s holds no replica of %s", node.Name, stream)
}

func TestNATSClusterNeedsADirAndAServer(t *testing.T) {
	if _, err := StartNATSCluster(t.Context(), NATSClusterOptions{}); err == nil {
		t.Fatal("a cluster without a dir started")
	}
	missing := filepath.Join(t.TempDir(), "no-such-nats-server")
	t.Setenv("TOLLGATE_NATS_SERVER", missing)
	if _, err := StartNATSCluster(t.Context(), NATSClusterOptions{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("a cluster with a missing $TOLLGATE_NATS_SERVER: %v", err)
	}
}

// TestNATSClusterHoldsTollgateStreamsAtReplicas3: tollgate's own set-up
// of its streams (what every fleet process runs with TOLLGATE_NATS_REPLICAS=3)
// places each of them on all three nodes.
func TestNATSClusterHoldsTollgateStreamsAtReplicas3(t *testing.T) {
	_, js := startNATSCluster(t)
	ctx := t.Context()
	cfg := tasks.StreamConfig{Replicas: 3}
	if err := tasks.EnsureStream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{cfg.Name(), tasks.EventsStream, cfg.DeadStreamName()} {
		eventually(t, 30*time.Second, name+" on every node", func() error {
			s, err := js.Stream(ctx, name)
			if err != nil {
				return err
			}
			info := s.CachedInfo()
			if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
				return fmt.Errorf("%s: replicas %d, cluster %+v", name, info.Config.Replicas, info.Cluster)
			}
			for _, r := range info.Cluster.Replicas {
				if !r.Current {
					return fmt.Errorf("%s: replica on %s not current", name, r.Name)
				}
			}
			return nil
		})
	}
}

package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
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

// natsBundle is a running cluster and what a test of it uses: a
// client connected with every node's URL, and the events a wait on the
// cluster's state wakes on.
type natsBundle struct {
	c  *NATSCluster
	nc *nats.Conn
	js jetstream.JetStream
	// events fires at each line of any node's output, each JetStream
	// advisory (a leader elected, a stream created or updated; not the
	// API audit, which every check would raise), and each reconnect of nc.
	events *wakeup
}

// startNATSCluster starts a three-node cluster (of the nats-server binary
// $TOLLGATE_NATS_SERVER names, else of this test binary) and connects to
// it with every node's URL, reconnecting at once when a node goes. It
// skips the test with -short.
func startNATSCluster(t *testing.T) *natsBundle {
	return startNATSClusterWith(t, NATSClusterOptions{})
}

// startNATSClusterWith is startNATSCluster with opts (Dir and Command are
// set here). It skips the test when opts isolates nodes and this machine
// cannot (ErrNoNetns).
func startNATSClusterWith(t *testing.T, opts NATSClusterOptions) *natsBundle {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a test that starts a 3-node NATS cluster")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	opts.Command = []string{self, "nats-server"}
	if os.Getenv("TOLLGATE_NATS_SERVER") != "" {
		opts.Command = nil
	}
	opts.Dir = t.TempDir()
	begin := time.Now()
	c, err := StartNATSCluster(t.Context(), opts)
	if errors.Is(err, ErrNoNetns) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	t.Logf("3-node JetStream cluster healthy %s after the start", time.Since(begin).Round(time.Millisecond))
	b := &natsBundle{c: c, events: &wakeup{}}
	// The cluster's output wakes the bundle's waiters too.
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case <-c.Output():
				b.events.fire()
			case <-done:
				return
			}
		}
	}()
	// A connection to each node, for its advisories: whichever nodes
	// survive a drill deliver them.
	for _, n := range c.Nodes {
		b.advisories(t, n.URL)
	}
	b.nc = b.connect(t, c.URL())
	if b.js, err = jetstream.New(b.nc); err != nil {
		t.Fatal(err)
	}
	return b
}

// connect connects to url (one node's URL or several), reconnecting at
// once when its node goes; each reconnect fires b.events.
func (b *natsBundle) connect(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { b.events.fire() })}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// advisories fires b.events at each JetStream advisory that the node at
// url delivers, but for the API audit.
func (b *natsBundle) advisories(t *testing.T, url string) {
	t.Helper()
	nc := b.connect(t, url)
	if _, err := nc.Subscribe("$JS.EVENT.ADVISORY.>", func(m *nats.Msg) {
		if !strings.HasPrefix(m.Subject, "$JS.EVENT.ADVISORY.API") {
			b.events.fire()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// waitUntil checks cond, and again each time b.events fires, until it
// holds; it fails the test when timeout passes first. cond's ctx ends
// with the wait.
func (b *natsBundle) waitUntil(t *testing.T, timeout time.Duration, what string, cond func(context.Context) error) {
	t.Helper()
	waitUntil(t, timeout, what, b.events, cond)
}

// waitUntil checks cond, and again each time wake fires, until it holds;
// it fails the test when timeout passes first, or the test's context ends.
// A check that failed by timing out (a request no server answered in
// time) has waited already: it is made again at once.
func waitUntil(t *testing.T, timeout time.Duration, what string, wake *wakeup, cond func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for {
		woken := wake.next() // before the check: an event during it wakes the wait
		err := cond(ctx)
		if err == nil {
			return
		}
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			continue
		}
		select {
		case <-woken:
		case <-ctx.Done():
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
	}
}

// attempt runs one JetStream API request under its own timeout. A
// request sent while a group has no leader goes unanswered, and nats.go
// does not send it again: under the whole wait's deadline one such request
// would use up the wait, while a short one is timed out and made again
// (see waitUntil) once a leader is elected.
func attempt(ctx context.Context, request func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return request(ctx)
}

// newLeader waits for a running node other than old to lead, and says
// how long that took.
func (b *natsBundle) newLeader(t *testing.T, old *NATSNode, leader func(context.Context) (*NATSNode, error)) (*NATSNode, time.Duration) {
	t.Helper()
	begin := time.Now()
	var n *NATSNode
	b.waitUntil(t, 60*time.Second, "a new leader after "+old.Name+" went", func(ctx context.Context) (err error) {
		n, err = leader(ctx)
		if err == nil && n == old {
			err = fmt.Errorf("%s still leads", old.Name)
		}
		return err
	})
	return n, time.Since(begin)
}

// publish publishes messages from to to-1 on subject, each with its number
// as its data and message id. A publish is retried until JetStream
// acknowledges it (its id makes a retry of a publish that did land a
// duplicate JetStream drops): at once when it timed out waiting for its
// acknowledgement, else at the next event (see waitUntil).
func (b *natsBundle) publish(t *testing.T, js jetstream.JetStream, subject string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		id := strconv.Itoa(i)
		b.waitUntil(t, 60*time.Second, "publish "+id, func(ctx context.Context) error {
			return attempt(ctx, func(ctx context.Context) error {
				_, err := js.Publish(ctx, subject, []byte(id), jetstream.WithMsgID(id))
				return err
			})
		})
	}
}

// createStream creates the replicas-3 stream name on subjects
// "drill.>", asking again while the cluster places it (see attempt).
func (b *natsBundle) createStream(t *testing.T, name string) jetstream.Stream {
	t.Helper()
	var s jetstream.Stream
	b.waitUntil(t, 60*time.Second, "create stream "+name, func(ctx context.Context) error {
		return attempt(ctx, func(ctx context.Context) (err error) {
			s, err = b.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"drill.>"},
				Storage: jetstream.FileStorage, Replicas: 3, Duplicates: 5 * time.Minute})
			return err
		})
	})
	return s
}

// createConsumer creates the durable consumer "drill" on s. A fresh
// replicas-3 stream's first consumer can outlast a request while its group
// elects a leader: the same (idempotent) request is made again.
func (b *natsBundle) createConsumer(t *testing.T, s jetstream.Stream) jetstream.Consumer {
	t.Helper()
	var cons jetstream.Consumer
	b.waitUntil(t, 60*time.Second, "create the consumer", func(ctx context.Context) error {
		return attempt(ctx, func(ctx context.Context) (err error) {
			cons, err = s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "drill", AckPolicy: jetstream.AckExplicitPolicy})
			return err
		})
	})
	return cons
}

// consume fetches from cons until it has seen want distinct messages,
// double-acking each, and returns how often it saw each. A fetch waits on
// the server for messages; a failed one is tried again at the next event.
func (b *natsBundle) consume(t *testing.T, cons jetstream.Consumer, want int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	b.waitUntil(t, 60*time.Second, fmt.Sprintf("consume %d messages", want), func(ctx context.Context) error {
		for len(seen) < want {
			batch, err := cons.Fetch(want, jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				return err
			}
			for m := range batch.Messages() {
				seen[string(m.Data())]++
				if err := m.DoubleAck(ctx); err != nil {
					return err
				}
			}
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
				return err
			}
			if ctx.Err() != nil {
				return fmt.Errorf("%d of %d messages consumed", len(seen), want)
			}
		}
		return nil
	})
	return seen
}

// TestNATSClusterSurvivesLeaderKills: a replicas-3 stream of a 3-node
// cluster keeps every message, once each, through a SIGKILL of its leader;
// the killed node catches up when it comes back; the meta group elects a
// new leader when its leader is killed, and creates streams again.
func TestNATSClusterSurvivesLeaderKills(t *testing.T) {
	b := startNATSCluster(t)
	c, js := b.c, b.js
	ctx := t.Context()
	const stream = "DRILL"
	s := b.createStream(t, stream)
	cons := b.createConsumer(t, s)
	b.publish(t, js, "drill.msg", 0, 50)

	var leader *NATSNode
	b.waitUntil(t, 30*time.Second, "the stream's leader", func(ctx context.Context) (err error) {
		leader, err = c.StreamLeader(ctx, stream)
		return err
	})
	leader.Kill()
	if leader.Running() {
		t.Fatalf("%s runs after Kill", leader.Name)
	}
	next, took := b.newLeader(t, leader, func(ctx context.Context) (*NATSNode, error) { return c.StreamLeader(ctx, stream) })
	t.Logf("stream leader %s SIGKILLed: %s leads after %s", leader.Name, next.Name, took.Round(time.Millisecond))

	begin := time.Now()
	b.publish(t, js, "drill.msg", 50, 100)
	t.Logf("50 publishes on 2 nodes in %s", time.Since(begin).Round(time.Millisecond))
	checkOnce(t, b.consume(t, cons, 100), 100)
	checkStreamHolds(t, s, 100)

	// The killed node comes back with its store, and catches up.
	begin = time.Now()
	if err := leader.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b.catchUp(t, leader, stream, 100)
	t.Logf("%s restarted and caught up in %s", leader.Name, time.Since(begin).Round(time.Millisecond))

	// The meta leader goes: another takes over (the nodes log "JetStream
	// cluster new metadata leader"; its advisory goes to the system account
	// only), and once the node is back a new replicas-3 stream can be placed.
	var meta *NATSNode
	b.waitUntil(t, 30*time.Second, "the meta leader", func(ctx context.Context) (err error) {
		meta, err = c.MetaLeader(ctx)
		return err
	})
	meta.Kill()
	nextMeta, took := b.newLeader(t, meta, c.MetaLeader)
	t.Logf("meta leader %s SIGKILLed: %s leads after %s", meta.Name, nextMeta.Name, took.Round(time.Millisecond))
	if err := meta.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	b.waitUntil(t, 30*time.Second, "create a second replicas-3 stream", func(ctx context.Context) error {
		return attempt(ctx, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "DRILL2", Subjects: []string{"drill2.>"}, Replicas: 3})
			return err
		})
	})
	b.catchUp(t, meta, stream, 100)
}

// catchUp waits until node holds stream's msgs messages. A node catching
// up may log nothing: the wait wakes too on each write in its store.
func (b *natsBundle) catchUp(t *testing.T, node *NATSNode, stream string, msgs uint64) {
	t.Helper()
	woken := watchTree(t, node.StoreDir, b.events)
	waitUntil(t, 60*time.Second, node.Name+" catches up", woken, func(ctx context.Context) error {
		return streamOnNode(ctx, node, stream, msgs)
	})
}

// TestNATSClusterSurvivesAPartition: a node cut off from the other two
// (its network namespace's veth down) while it leads a replicas-3 stream:
// the two others elect a leader and take publishes and fetches, with no
// message lost or twice; a client given every URL, connected to the cut
// node, fails over to them; once healed, the node catches up.
func TestNATSClusterSurvivesAPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that starts a 3-node NATS cluster")
	}
	if err := netnsAvailable(); err != nil {
		t.Skip(err)
	}
	before := namespaces(t)
	t.Cleanup(func() {
		if left := slices.DeleteFunc(namespaces(t), func(ns string) bool { return slices.Contains(before, ns) }); len(left) > 0 {
			t.Errorf("network namespaces left after Stop: %q", left)
		}
	})
	b := startNATSClusterWith(t, NATSClusterOptions{Isolated: []string{"n3"}})
	c := b.c
	ctx := t.Context()
	n1, n2, n3 := c.Node("n1"), c.Node("n2"), c.Node("n3")
	checkInOwnNetns(t, n3)

	const stream = "DRILL"
	s := b.createStream(t, stream)
	b.createConsumer(t, s)
	b.publish(t, b.js, "drill.msg", 0, 50)

	// n3 leads the stream: its leader is asked to hand over to n3 until
	// it does.
	b.waitUntil(t, 60*time.Second, "n3 leads "+stream, func(ctx context.Context) error {
		l, err := c.StreamLeader(ctx, stream)
		if err != nil || l == n3 {
			return err
		}
		if err := attempt(ctx, func(ctx context.Context) error {
			_, err := b.nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, []byte(`{"placement":{"preferred":"n3"}}`))
			return err
		}); err != nil {
			return err
		}
		return fmt.Errorf("%s leads, asked to hand over to n3", l.Name)
	})

	// A client as tollgate's fleet makes one: every node's URL, here in
	// order and n3 first so that it is on n3; with pings every second (the
	// nats.go default, every 2 minutes and 2 unanswered, takes minutes to
	// notice a silent peer).
	var failedOver atomic.Pointer[time.Time]
	client := b.connect(t, n3.URL+","+n1.URL+","+n2.URL, nats.DontRandomize(), nats.PingInterval(time.Second), nats.MaxPingsOutstanding(2),
		nats.ReconnectHandler(func(*nats.Conn) {
			now := time.Now()
			failedOver.CompareAndSwap(nil, &now)
			b.events.fire()
		}))
	if client.ConnectedUrl() != n3.URL {
		t.Fatalf("the client is on %s, want n3 (%s)", client.ConnectedUrl(), n3.URL)
	}
	// A client of the majority only.
	majority, err := jetstream.New(b.connect(t, n1.URL+","+n2.URL))
	if err != nil {
		t.Fatal(err)
	}

	cut := time.Now()
	if err := n3.Partition(ctx); err != nil {
		t.Fatal(err)
	}
	next, took := b.newLeader(t, n3, func(ctx context.Context) (*NATSNode, error) { return c.StreamLeader(ctx, stream) })
	t.Logf("stream leader n3 partitioned: %s leads after %s", next.Name, took.Round(time.Millisecond))
	b.waitUntil(t, 60*time.Second, "a meta leader in the majority", func(ctx context.Context) error {
		_, err := c.MetaLeader(ctx)
		return err
	})

	begin := time.Now()
	b.publish(t, majority, "drill.msg", 50, 75)
	t.Logf("25 publishes through the majority in %s", time.Since(begin).Round(time.Millisecond))

	// The client on n3 fails over.
	b.waitUntil(t, 60*time.Second, "the client leaves n3", func(context.Context) error {
		if u := client.ConnectedUrl(); !client.IsConnected() || u == n3.URL {
			return fmt.Errorf("the client is on %q (connected: %v)", u, client.IsConnected())
		}
		return nil
	})
	t.Logf("the client on n3 (pings every 1s, 2 unanswered) failed over to %s %s after the partition",
		client.ConnectedUrl(), failedOver.Load().Sub(cut).Round(time.Millisecond))
	cjs, err := jetstream.New(client)
	if err != nil {
		t.Fatal(err)
	}
	b.publish(t, cjs, "drill.msg", 75, 100)
	// The consumer's leader may have been n3 too: its info answers once
	// the majority elected another.
	var cons jetstream.Consumer
	b.waitUntil(t, 60*time.Second, "the consumer through the majority", func(ctx context.Context) error {
		return attempt(ctx, func(ctx context.Context) (err error) {
			cons, err = majority.Consumer(ctx, stream, "drill")
			return err
		})
	})
	checkOnce(t, b.consume(t, cons, 100), 100)
	ms, err := majority.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	checkStreamHolds(t, ms, 100)

	// Healed, n3 catches up with the messages it missed.
	healed := time.Now()
	if err := n3.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	b.catchUp(t, n3, stream, 100)
	t.Logf("n3 healed: healthy and caught up %s after", time.Since(healed).Round(time.Millisecond))
	if _, err := c.StreamLeader(ctx, stream); err != nil {
		t.Fatalf("after the heal: %v", err)
	}

	// An isolated node is killed and started again like any other, in its
	// namespace.
	n3.Kill()
	if err := n3.Start(ctx); err != nil {
		t.Fatal(err)
	}
	checkInOwnNetns(t, n3)
	b.catchUp(t, n3, stream, 100)
}

// TestNATSClusterIsolatesItsOwnNodesAndCleansUp: Isolated names nodes of
// the cluster; a cluster whose start fails leaves no network namespace
// behind; only an isolated node can be partitioned.
func TestNATSClusterIsolatesItsOwnNodesAndCleansUp(t *testing.T) {
	for _, isolated := range [][]string{{"n4"}, {"n1", "n1"}, {"x"}, {"n01"}, {"n0"}} {
		if _, err := StartNATSCluster(t.Context(), NATSClusterOptions{Dir: t.TempDir(), Command: []string{"true"}, Isolated: isolated}); err == nil || !strings.Contains(err.Error(), "not one of n1 to n3") {
			t.Errorf("isolated %q: %v", isolated, err)
		}
	}
	if err := netnsAvailable(); err != nil {
		t.Skip(err)
	}
	before := namespaces(t)
	missing := filepath.Join(t.TempDir(), "no-such-nats-server")
	_, err := StartNATSCluster(t.Context(), NATSClusterOptions{Dir: t.TempDir(), Command: []string{missing}, Isolated: []string{"n2"}})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("a cluster of a missing server: %v", err)
	}
	if left := slices.DeleteFunc(namespaces(t), func(ns string) bool { return slices.Contains(before, ns) }); len(left) > 0 {
		t.Errorf("network namespaces left after a failed start: %q", left)
	}
	n := &NATSNode{Name: "n1"}
	if err := n.Partition(t.Context()); err == nil {
		t.Error("a node not isolated was partitioned")
	}
}

// namespaces are the names of the network namespaces `ip netns` knows.
func namespaces(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var names []string
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// checkInOwnNetns fails the test unless node's pid is its nats-server (ip
// netns exec execs it) and runs in another network namespace than this
// test.
func checkInOwnNetns(t *testing.T, node *NATSNode) {
	t.Helper()
	pid := strconv.Itoa(node.Pid())
	cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if args := strings.Split(string(cmdline), "\x00"); slices.Contains(args, "netns") || !slices.Contains(args, "-c") {
		t.Errorf("%s's pid %s runs %q, not its server", node.Name, pid, args)
	}
	theirs, err := os.Readlink("/proc/" + pid + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	ours, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if theirs == ours {
		t.Errorf("%s runs in this test's network namespace (%s)", node.Name, ours)
	}
}

// checkOnce fails the test unless seen holds messages 0 to want-1, each once.
func checkOnce(t *testing.T, seen map[string]int, want int) {
	t.Helper()
	for i := range want {
		if n := seen[strconv.Itoa(i)]; n != 1 {
			t.Errorf("message %d consumed %d times", i, n)
		}
	}
}

// checkStreamHolds fails the test unless s holds want messages.
func checkStreamHolds(t *testing.T, s jetstream.Stream, want uint64) {
	t.Helper()
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != want {
		t.Errorf("the stream holds %d messages, want %d (none lost, none twice)", info.State.Msgs, want)
	}
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
	b := startNATSCluster(t)
	js := b.js
	ctx := t.Context()
	cfg := tasks.StreamConfig{Replicas: 3}
	if err := tasks.EnsureStream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	// Every node healthy is every node current with the streams it holds.
	if err := b.c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{cfg.Name(), tasks.EventsStream, cfg.DeadStreamName()} {
		b.waitUntil(t, 30*time.Second, name+" on every node", func(ctx context.Context) error {
			var s jetstream.Stream
			if err := attempt(ctx, func(ctx context.Context) (err error) {
				s, err = js.Stream(ctx, name)
				return err
			}); err != nil {
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

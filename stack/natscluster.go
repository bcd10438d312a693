package stack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrNoNATSServer is returned when no nats-server binary can be found.
var ErrNoNATSServer = errors.New("nats-server not found: set NATSClusterOptions.Command or TOLLGATE_NATS_SERVER, or put nats-server on PATH")

// ErrNoLeader is a JetStream group (the meta group or a stream's) with no
// running node that says it leads it: an election is under way, or the
// group lost its quorum.
var ErrNoLeader = errors.New("no leader")

// FindNATSServer returns the path of the nats-server to run: explicit, else
// $TOLLGATE_NATS_SERVER, else `nats-server` on PATH, else the tool cache's
// nats-server-v<the version in go.mod>.
func FindNATSServer(explicit string) (string, error) {
	return findTool(explicit, "TOLLGATE_NATS_SERVER", "nats-server", "v"+server.VERSION, ErrNoNATSServer)
}

// NATSServerMain runs one nats-server with the nats-server binary's command
// line (`-c FILE`, ...) in this process, until SIGTERM or SIGINT. It lets a
// program that links stack be its own nats-server: its main calls it for a
// subcommand of its choosing, and NATSClusterOptions.Command names that
// subcommand. The load test and this package's tests do so, which spares
// them a second binary of the same library.
func NATSServerMain(args []string) error {
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	opts, err := server.ConfigureOptions(fs, args, server.PrintServerAndExit, fs.Usage, server.PrintTLSHelpAndDie)
	if err != nil {
		return fmt.Errorf("nats-server %q: %w", args, err)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats-server %q: %w", args, err)
	}
	s.ConfigureLogger()
	if err := server.Run(s); err != nil {
		return fmt.Errorf("nats-server %q: %w", args, err)
	}
	s.WaitForShutdown()
	return nil
}

// NATSClusterOptions configure a JetStream cluster of nats-server processes
// on loopback.
type NATSClusterOptions struct {
	// Nodes is how many servers (default 3), named n1, n2, ...
	Nodes int
	// Dir holds each node's configuration file and JetStream store
	// (required); a node started again keeps its store.
	Dir string
	// Name is the cluster's name (default "tollgate").
	Name string
	// Command runs one server: a program and its first arguments, to which
	// "-c <node's config file>" is added (default: the nats-server binary
	// FindNATSServer finds). See NATSServerMain.
	Command []string
	// StartTimeout bounds the wait for every node to be healthy (default 60s).
	StartTimeout time.Duration
	// Isolated names nodes to run each in a network namespace of its own,
	// joined to this one by a veth pair, so that NATSNode.Partition can cut
	// it off from the others and from clients. It needs root and
	// iproute2's ip (else StartNATSCluster fails with ErrNoNetns), and
	// two isolated nodes or more need IPv4 forwarding on. The other nodes
	// then listen on every address (0.0.0.0) rather than on 127.0.0.1
	// only, so that an isolated node reaches them.
	Isolated []string
	Logger   *slog.Logger
}

// NATSCluster is a running JetStream cluster: one process per node, so that
// a node can be killed, paused or restarted alone.
type NATSCluster struct {
	// Name is the cluster's name.
	Name  string
	Nodes []*NATSNode

	output *wakeup
	nets   []*netns // the namespaces made for Isolated nodes, which Stop removes
	logger *slog.Logger
}

// NATSNode is one server of a NATSCluster. Its ports and store stay the
// same across restarts.
type NATSNode struct {
	// Name is the server's name (n1, n2, ...), the one JetStream reports
	// as a group's leader.
	Name string
	// URL is the client URL, nats://127.0.0.1:<port>, or for an isolated
	// node nats://<its veth address>:<port>: reachable from this network
	// namespace either way.
	URL string
	// ClusterPort takes the routes from the other nodes; MonitorPort
	// serves /healthz and /jsz.
	ClusterPort, MonitorPort int
	// StoreDir is the node's JetStream store.
	StoreDir string

	config     string
	command    []string
	logger     *slog.Logger
	timeout    time.Duration
	output     *wakeup
	host       string // the address it listens on, and is reached at from the root namespace
	clientPort int
	ns         *netns // for an isolated node

	mu          sync.Mutex
	proc        *child
	tail        *lastLines
	partitioned bool
}

// StartNATSCluster writes a configuration for each node (server name,
// client, route and monitoring ports on 127.0.0.1, its JetStream store, the
// routes to every node), starts them all, and waits until every node is
// healthy: a meta leader is elected and each node is current with it.
// An isolated node (opts.Isolated) runs in a network namespace made for it,
// and listens on its veth's address there.
func StartNATSCluster(ctx context.Context, opts NATSClusterOptions) (*NATSCluster, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("start nats cluster: no dir")
	}
	nodes := cmp.Or(opts.Nodes, 3)
	if nodes < 1 {
		return nil, fmt.Errorf("start nats cluster in %q: %d nodes", opts.Dir, nodes)
	}
	command := opts.Command
	if len(command) == 0 {
		bin, err := FindNATSServer("")
		if err != nil {
			return nil, err
		}
		command = []string{bin}
	}
	logger := cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	c := &NATSCluster{Name: cmp.Or(opts.Name, "tollgate"), output: &wakeup{}, logger: logger}
	timeout := cmp.Or(opts.StartTimeout, 60*time.Second)
	if err := checkIsolated(opts.Isolated, nodes); err != nil {
		return nil, fmt.Errorf("start nats cluster in %q: %w", opts.Dir, err)
	}
	// Three free ports a node, all taken before any server starts: the
	// routes name every node's cluster port. With isolated nodes, the
	// others listen on every address: the ports must be free on all.
	portHost := "127.0.0.1"
	if len(opts.Isolated) > 0 {
		portHost = "0.0.0.0"
	}
	taken := map[int]bool{}
	for i := range nodes {
		var ports [3]int
		for j := range ports {
			p, err := listenablePort(portHost, taken)
			if err != nil {
				return nil, fmt.Errorf("start nats cluster: %w", err)
			}
			ports[j], taken[p] = p, true
		}
		name := "n" + strconv.Itoa(i+1)
		c.Nodes = append(c.Nodes, &NATSNode{
			Name:        name,
			host:        "127.0.0.1",
			clientPort:  ports[0],
			ClusterPort: ports[1],
			MonitorPort: ports[2],
			StoreDir:    filepath.Join(opts.Dir, name, "jetstream"),
			config:      filepath.Join(opts.Dir, name, "nats-server.conf"),
			command:     command,
			logger:      logger.With("nats", name),
			timeout:     timeout,
			output:      c.output,
		})
	}
	if err := c.isolate(ctx, opts.Isolated); err != nil {
		c.Stop()
		return nil, fmt.Errorf("start nats cluster in %q: %w", opts.Dir, err)
	}
	for _, n := range c.Nodes {
		n.URL = "nats://" + net.JoinHostPort(n.host, strconv.Itoa(n.clientPort))
	}
	for _, n := range c.Nodes {
		if err := c.writeConfig(n); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for _, n := range c.Nodes {
		if err := n.launch(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for _, n := range c.Nodes {
		if err := n.waitHealthy(ctx); err != nil {
			c.Stop()
			return nil, fmt.Errorf("start nats cluster %q in %q: %w", c.Name, opts.Dir, err)
		}
	}
	logger.DebugContext(ctx, "nats cluster ready", "cluster", c.Name, "urls", c.URL())
	return c, nil
}

// writeConfig writes n's configuration file.
func (c *NATSCluster) writeConfig(n *NATSNode) error {
	routes := make([]string, 0, len(c.Nodes))
	for _, o := range c.Nodes {
		routes = append(routes, strconv.Quote("nats-route://"+net.JoinHostPort(c.routeHost(n, o), strconv.Itoa(o.ClusterPort))))
	}
	// A node in the root namespace listens on every address when some
	// node is isolated: that node reaches it at its veth's host side.
	listen := n.host
	if n.ns == nil && len(c.nets) > 0 {
		listen = "0.0.0.0"
	}
	q := strconv.Quote
	conf := fmt.Sprintf(`server_name: %s
listen: %s
http: %s
jetstream {
  store_dir: %s
}
cluster {
  name: %s
  listen: %s
  routes: [%s]
  no_advertise: true
}
`, q(n.Name), q(net.JoinHostPort(listen, strconv.Itoa(n.clientPort))), q(net.JoinHostPort(n.host, strconv.Itoa(n.MonitorPort))),
		q(n.StoreDir), q(c.Name), q(net.JoinHostPort(listen, strconv.Itoa(n.ClusterPort))), strings.Join(routes, ", "))
	if err := os.MkdirAll(n.StoreDir, 0o700); err != nil {
		return fmt.Errorf("create nats store %q: %w", n.StoreDir, err)
	}
	if err := os.WriteFile(n.config, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("write nats config %q: %w", n.config, err)
	}
	return nil
}

// listenablePort is a port free on host now, not in taken, and below the
// kernel's range of ephemeral ports: every outgoing connection on this
// machine takes its local port from that range (FreePort's too), and one
// that took a node's port between the choice and the node's start makes
// the node fail with "address already in use" (seen under -race with the
// 0.0.0.0 listeners of a cluster with isolated nodes).
func listenablePort(host string, taken map[int]bool) (int, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11024 {
				low = n
			}
		}
	}
	for range 200 {
		p := 10000 + rand.IntN(low-10000)
		if taken[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, fmt.Errorf("find a free port on %s below %d: none of 200 tried", host, low)
}

// routeHost is the address node from dials to reach node to's route
// port: an isolated node's own veth address; a node of the root namespace
// from an isolated node, the host side of that node's veth; else loopback.
func (c *NATSCluster) routeHost(from, to *NATSNode) string {
	switch {
	case to.ns != nil:
		return to.ns.nodeAddr
	case from.ns != nil:
		return from.ns.hostAddr
	default:
		return "127.0.0.1"
	}
}

// checkIsolated checks that isolated names nodes n1 ... n<nodes>, each
// once, and that this machine can isolate them.
func checkIsolated(isolated []string, nodes int) error {
	if len(isolated) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, name := range isolated {
		i, err := strconv.Atoi(strings.TrimPrefix(name, "n"))
		if err != nil || name != "n"+strconv.Itoa(i) || i < 1 || i > nodes || seen[name] {
			return fmt.Errorf("isolate nats nodes %q: %q is not one of n1 to n%d, once", isolated, name, nodes)
		}
		seen[name] = true
	}
	if err := netnsAvailable(); err != nil {
		return fmt.Errorf("isolate nats nodes %q: %w", isolated, err)
	}
	if len(isolated) > 1 && !ipForwarding() {
		return fmt.Errorf("isolate nats nodes %q: %w: more than one needs IPv4 forwarding (net.ipv4.ip_forward=1) for them to reach each other", isolated, ErrNoNetns)
	}
	return nil
}

// isolate makes a network namespace for each node isolated names, and
// records it for Stop.
func (c *NATSCluster) isolate(ctx context.Context, isolated []string) error {
	if len(isolated) == 0 {
		return nil
	}
	plan, err := newNetnsPlan()
	if err != nil {
		return err
	}
	for i, name := range isolated {
		n := c.Node(name)
		ns, err := plan.namespace(i, name)
		if err != nil {
			return err
		}
		if err := ns.create(ctx); err != nil {
			return err
		}
		c.nets = append(c.nets, ns)
		n.ns, n.host = ns, ns.nodeAddr
		c.logger.DebugContext(ctx, "nats node isolated", "nats", name, "netns", ns.name, "addr", ns.nodeAddr, "host_addr", ns.hostAddr)
	}
	return nil
}

// URLs are the nodes' client URLs.
func (c *NATSCluster) URLs() []string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL
	}
	return urls
}

// URL is every node's client URL, comma-separated: the form nats.Connect
// and TOLLGATE_NATS_URL take.
func (c *NATSCluster) URL() string { return strings.Join(c.URLs(), ",") }

// Node is the node named name, or nil.
func (c *NATSCluster) Node(name string) *NATSNode {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Output is a channel closed when a node of the cluster writes its next
// line of output. The servers log what changes in the cluster (a leader
// elected, a route up or down, a stream caught up): a wait on the
// cluster's state checks it again each time this fires, rather than on a
// timer.
func (c *NATSCluster) Output() <-chan struct{} { return c.output.next() }

// Stop stops every node, then removes the network namespaces made for
// isolated nodes. Close the cluster's clients first: once the namespaces
// are gone, nothing routes an isolated node's address on this machine.
func (c *NATSCluster) Stop() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Go(n.Stop)
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ns := range c.nets {
		if err := ns.remove(ctx); err != nil {
			c.logger.WarnContext(ctx, "stop nats cluster", "cluster", c.Name, "err", err)
		}
	}
	c.nets = nil
}

// WaitHealthy waits until every running node that is not partitioned is
// healthy (see NATSNode.Healthy).
func (c *NATSCluster) WaitHealthy(ctx context.Context) error {
	for _, n := range c.Nodes {
		if !n.Running() || n.Partitioned() {
			continue
		}
		if err := n.waitHealthy(ctx); err != nil {
			return err
		}
	}
	return nil
}

// MetaLeader is the node that leads JetStream's meta group (the one that
// creates streams and places them), by the word of the running nodes: the
// node that says it leads. ErrNoLeader while none does.
func (c *NATSCluster) MetaLeader(ctx context.Context) (*NATSNode, error) {
	return c.leader(ctx, "jetstream meta group", func(n *NATSNode, js *server.JSInfo) bool {
		return js.Meta != nil && js.Meta.Leader == n.Name
	})
}

// StreamLeader is the node that leads stream's replicas (every write to
// the stream goes through it), by the word of the running nodes.
// ErrNoLeader while none does.
func (c *NATSCluster) StreamLeader(ctx context.Context, stream string) (*NATSNode, error) {
	return c.leader(ctx, "stream "+strconv.Quote(stream), func(n *NATSNode, js *server.JSInfo) bool {
		for _, acc := range js.AccountDetails {
			for _, s := range acc.Streams {
				if s.Name == stream && s.Cluster != nil && s.Cluster.Leader == n.Name {
					return true
				}
			}
		}
		return false
	})
}

// leader asks every running node whether it leads group, but for a
// partitioned node, which cannot be asked (and would not know). Two nodes
// can both say so for a moment, when an old leader cut off from the others
// has not yet stepped down: that is no leader either.
func (c *NATSCluster) leader(ctx context.Context, group string, leads func(*NATSNode, *server.JSInfo) bool) (*NATSNode, error) {
	var found []*NATSNode
	var errs []error
	for _, n := range c.Nodes {
		if !n.Running() || n.Partitioned() {
			continue
		}
		js, err := n.JetStream(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if leads(n, js) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("leader of %s in nats cluster %q: %w", group, c.Name, errors.Join(append([]error{ErrNoLeader}, errs...)...))
	default:
		return nil, fmt.Errorf("leader of %s in nats cluster %q: %s and %s both lead: %w", group, c.Name, found[0].Name, found[1].Name, ErrNoLeader)
	}
}

// Start starts the node again (after Kill or Stop) on the same ports and
// store, and waits until it is healthy: caught up with the meta leader and
// with every stream it holds. That needs a majority of the nodes running,
// and a partitioned node healed: this process cannot reach it before.
func (n *NATSNode) Start(ctx context.Context) error {
	if err := n.launch(); err != nil {
		return err
	}
	if err := n.waitHealthy(ctx); err != nil {
		n.Kill()
		return err
	}
	return nil
}

// launch starts the node's process.
func (n *NATSNode) launch() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil && !n.proc.hasExited() {
		return fmt.Errorf("start nats node %s: already running (pid %d)", n.Name, n.proc.Pid())
	}
	argv := append(append([]string(nil), n.command...), "-c", n.config)
	if n.ns != nil {
		argv = n.ns.command(argv)
	}
	proc, tail := &child{}, &lastLines{}
	logger := slog.New(outputTap{Handler: n.logger.Handler(), output: n.output})
	if err := proc.startLogged(exec.Command(argv[0], argv[1:]...), logger, "nats-server", tail); err != nil {
		return fmt.Errorf("start nats node %s: %q: %w", n.Name, n.command, err)
	}
	n.proc, n.tail = proc, tail
	return nil
}

func (n *NATSNode) running() *child {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// Running says whether the node's process is running (it may be paused).
func (n *NATSNode) Running() bool {
	p := n.running()
	return p != nil && !p.hasExited()
}

// Pid is the node's process id, or 0 when it never started.
func (n *NATSNode) Pid() int {
	if p := n.running(); p != nil {
		return p.Pid()
	}
	return 0
}

// Kill ends the node at once (SIGKILL), as a crash would.
func (n *NATSNode) Kill() {
	if p := n.running(); p != nil {
		p.Kill()
	}
}

// Stop ends the node cleanly (SIGTERM).
func (n *NATSNode) Stop() {
	if p := n.running(); p != nil {
		p.Stop()
	}
}

// Pause stops the node's process (SIGSTOP), as a hung server: its
// connections stay open and nothing answers. Resume continues it.
func (n *NATSNode) Pause() error {
	if p := n.running(); p != nil {
		return p.Pause()
	}
	return fmt.Errorf("pause nats node %s: not started", n.Name)
}

// Resume continues a paused node.
func (n *NATSNode) Resume() error {
	if p := n.running(); p != nil {
		return p.Resume()
	}
	return fmt.Errorf("resume nats node %s: not started", n.Name)
}

// Partition cuts an isolated node off from the other nodes and from every
// client: its veth goes down inside its namespace (see netns.cut). Its
// connections stall rather than close; the node itself runs on, and a
// majority of the other nodes elects leaders without it. MetaLeader,
// StreamLeader and WaitHealthy leave it out until Heal.
func (n *NATSNode) Partition(ctx context.Context) error {
	return n.partition(ctx, "partition", (*netns).cut, true)
}

// Heal joins a partitioned node to the others again. Its stalled
// connections resume, or time out and are made again; it then catches up
// with the leaders: wait for that with WaitHealthy, or on the node's
// JetStream state.
func (n *NATSNode) Heal(ctx context.Context) error {
	return n.partition(ctx, "heal", (*netns).heal, false)
}

// partition changes the node's link with change, and records whether it
// is now cut off.
func (n *NATSNode) partition(ctx context.Context, op string, change func(*netns, context.Context) error, cut bool) error {
	if n.ns == nil {
		return fmt.Errorf("%s nats node %s: not isolated (NATSClusterOptions.Isolated)", op, n.Name)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := change(n.ns, ctx); err != nil {
		return fmt.Errorf("%s nats node %s: %w", op, n.Name, err)
	}
	n.partitioned = cut
	n.logger.InfoContext(ctx, "nats node "+op, "netns", n.ns.name, "partitioned", cut)
	return nil
}

// Partitioned says whether the node is cut off by Partition.
func (n *NATSNode) Partitioned() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.partitioned
}

// Healthy is nil when the node's /healthz says ok: JetStream is up, the
// node knows the meta leader and is current with it and with its streams.
func (n *NATSNode) Healthy(ctx context.Context) error {
	var health struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	err := n.monitor(ctx, "/healthz", &health)
	if err == nil && health.Status != "ok" {
		err = fmt.Errorf("%s: %s", health.Status, health.Error)
	}
	if err != nil {
		return fmt.Errorf("health of nats node %s: %w", n.Name, err)
	}
	return nil
}

// JetStream is the node's view of JetStream (its /jsz, with every
// account's streams): the meta group, and the streams it holds a replica
// of with their state and cluster.
func (n *NATSNode) JetStream(ctx context.Context) (*server.JSInfo, error) {
	var js server.JSInfo
	if err := n.monitor(ctx, "/jsz?accounts=true&streams=true", &js); err != nil {
		return nil, fmt.Errorf("jetstream info of nats node %s: %w", n.Name, err)
	}
	return &js, nil
}

// monitor GETs path from the node's monitoring port into v. /healthz
// answers 503 with its JSON when unhealthy: that body is read too.
func (n *NATSNode) monitor(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(n.host, strconv.Itoa(n.MonitorPort)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", url, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: %s: %w", url, resp.Status, err)
	}
	return nil
}

// waitHealthy polls /healthz until it says ok, the process exits, or the
// start timeout passes.
func (n *NATSNode) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	n.mu.Lock()
	proc, tail := n.proc, n.tail
	n.mu.Unlock()
	delay := 20 * time.Millisecond
	for {
		err := n.Healthy(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-proc.exited:
			return fmt.Errorf("nats node %s: %w%s", n.Name, proc.exitErr(), tail.String())
		case <-ctx.Done():
			return fmt.Errorf("nats node %s not healthy after %s: %w%s", n.Name, n.timeout, err, tail.String())
		case <-time.After(delay):
		}
		delay = min(2*delay, 250*time.Millisecond)
	}
}

// wakeup wakes every waiter at once, each time it fires: the waiters of
// an event that may come many times (a line of output), which check what
// they wait for again when woken.
type wakeup struct {
	mu sync.Mutex
	ch chan struct{}
}

// next is a channel closed when fire is next called.
func (w *wakeup) next() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// fire wakes everyone waiting on a channel next gave.
func (w *wakeup) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// outputTap passes a node's log records on to its logger, and fires
// output at each line of the server's output (startLogged logs each at
// debug, whatever level the logger keeps).
type outputTap struct {
	slog.Handler
	output *wakeup
}

func (h outputTap) Enabled(context.Context, slog.Level) bool { return true }

func (h outputTap) Handle(ctx context.Context, r slog.Record) error {
	h.output.fire()
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h outputTap) WithAttrs(attrs []slog.Attr) slog.Handler {
	return outputTap{Handler: h.Handler.WithAttrs(attrs), output: h.output}
}

func (h outputTap) WithGroup(name string) slog.Handler {
	return outputTap{Handler: h.Handler.WithGroup(name), output: h.output}
}

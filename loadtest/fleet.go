package loadtest

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/api/enums/v1"
	tclient "go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/internal/syncbuf"
	"github.com/tollgate/tollgate/stack"
)

// Components the CPU table reports, in order.
// "workers" are the worker processes themselves; "scanners" are their
// sandboxed children, which run the scanners (the scanners-alone
// baseline's work).
// "postgres" is Temporal's database, on the production-shaped stack only
// (the dev server keeps its own SQLite file).
var Components = []string{"api", "orchestrator", "temporal", "postgres", "nats", "minio", "workers", "scanners"}

// Driver is the load generator's own CPU: this process, its clients and its
// queue sampling (NATS is a process of its own). It shares the cores with
// the fleet, so the table shows it, beside the components' total.
const Driver = "driver"

// FleetOptions configure the fleet under test.
type FleetOptions struct {
	// Bin is the tollgate binary; Self is this program, re-run as the NATS
	// server so that NATS has a process (and a CPU count) of its own.
	Bin, Self string
	// Dir holds every server's state.
	Dir string
	// DBDir is the workers' vulnerability DB.
	DBDir string
	// WorkersPerPool is how many worker processes each pool gets (default 1).
	WorkersPerPool int
	// Concurrency is each worker's tasks at once (default: the CPUs).
	Concurrency int
	// Production runs the fleet on the production-shaped stack
	// (stack.StartProduction: PostgreSQL, the Temporal server, a 3-node
	// JetStream cluster with replicas 3, MinIO on four drives) instead of
	// the development servers. NATSIsolated names the NATS nodes placed in
	// network namespaces of their own, for the partition drill.
	Production   bool
	NATSIsolated []string
	// SigningKey signs every scan's attestation (empty: unsigned).
	SigningKey string
	Logger     *slog.Logger
}

// Fleet is the distributed stack as separate processes on this host.
type Fleet struct {
	opts     FleetOptions
	logger   *slog.Logger
	URL      string // the API's base URL
	Token    string
	natsPort int
	env      []string
	temporal *stack.TemporalDev
	prod     *stack.Production
	history  tclient.Client // reads scans' workflow histories
	minio    *stack.MinIO

	mu    sync.Mutex
	procs map[string][]*proc // component → its processes (restarts append)
	// gone holds the CPU seconds of processes that ended, per component.
	gone map[string]float64
	// servers is the last CPU reading of each server process (by
	// component and pid): a server killed or restarted by a drill keeps
	// what it used.
	servers map[string]map[int]float64
}

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
	cpu  float64 // CPU seconds, set when it ended
	// kids is the CPU of its live descendants when last read: a process
	// killed with its children (chaos) takes theirs with it, and its exit
	// status counts only the children it reaped.
	kids float64
}

// StartFleet starts NATS, the Temporal dev server, MinIO, the API, the
// orchestrator and the workers, and waits for the API to be ready.
func StartFleet(ctx context.Context, o FleetOptions) (_ *Fleet, err error) {
	o.WorkersPerPool = cmp.Or(o.WorkersPerPool, 1)
	f := &Fleet{opts: o, logger: cmp.Or(o.Logger, slog.New(slog.DiscardHandler)), procs: map[string][]*proc{}, gone: map[string]float64{},
		servers: map[string]map[int]float64{}}
	defer func() {
		if err != nil {
			f.Stop()
		}
	}()
	var servers []string // TOLLGATE_* settings naming the servers
	if o.Production {
		servers, err = f.startProduction(ctx)
	} else {
		servers, err = f.startDev(ctx)
	}
	if err != nil {
		return nil, err
	}
	temporalAddr, namespace := f.temporalAddr()
	if f.history, err = tclient.Dial(tclient.Options{HostPort: temporalAddr, Namespace: namespace,
		Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))}); err != nil {
		return nil, fmt.Errorf("dial temporal at %s: %w", temporalAddr, err)
	}
	port, err := stack.FreePort()
	if err != nil {
		return nil, err
	}
	f.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	f.Token = "tg_loadtest_token"
	tokens := filepath.Join(o.Dir, "tokens.yaml")
	if err := os.WriteFile(tokens, fmt.Appendf(nil, "- name: loadtest\n  tenant: load\n  roles: [ci, sre]\n  sha256: %s\n", api.HashToken(f.Token)), 0o600); err != nil {
		return nil, err
	}
	// The clients are many and fast, and all of one tenant: the
	// per-principal rate limit and the per-tenant cap on pending tasks would
	// be what the test measures. Re-matching has no releases to match here.
	config := filepath.Join(o.Dir, "tollgate.yaml")
	if err := os.WriteFile(config, []byte("api:\n  rate_per_second: 100000\n  burst: 100000\nnats:\n  tenant_max_pending: 100000\nrematch:\n  interval: \"off\"\n"), 0o600); err != nil {
		return nil, err
	}
	f.env = append(append(os.Environ(), servers...),
		"TOLLGATE_RETENTION_DAYS=1", "TOLLGATE_DB_DIR="+o.DBDir, "TOLLGATE_LISTEN="+strings.TrimPrefix(f.URL, "http://"),
		"TOLLGATE_TOKENS_FILE="+tokens, "TOLLGATE_CONFIG="+config, "TOLLGATE_LOG_LEVEL=warn",
		"TOLLGATE_METRICS_LISTEN=127.0.0.1:0", // not the API's default 9464, which another run may hold
		"TOLLGATE_SECRET_FINGERPRINT_KEY=tollgate-loadtest-fingerprint-key-32b",
		"TOLLGATE_WORKER_CONCURRENCY="+strconv.Itoa(cmp.Or(o.Concurrency, 0)),
	)
	if o.Concurrency == 0 {
		f.env = f.env[:len(f.env)-1]
	}
	if o.SigningKey != "" {
		f.env = append(f.env, "TOLLGATE_SIGNING_KEY="+o.SigningKey)
	}
	if _, err := f.start("api", "serve"); err != nil {
		return nil, err
	}
	if _, err := f.start("orchestrator", "orchestrator"); err != nil {
		return nil, err
	}
	for _, pool := range []string{"fast", "deep"} {
		for range o.WorkersPerPool {
			if _, err := f.start("workers", "worker", "--pool", pool); err != nil {
				return nil, err
			}
		}
	}
	if err := f.waitReady(ctx, f.URL); err != nil {
		return nil, err
	}
	return f, nil
}

// startDev starts the development servers: one NATS server (this program
// re-run), the Temporal dev server and MinIO on one drive.
func (f *Fleet) startDev(ctx context.Context) ([]string, error) {
	var err error
	if f.natsPort, err = stack.FreePort(); err != nil {
		return nil, err
	}
	if err := f.startNATS(); err != nil {
		return nil, err
	}
	if f.temporal, err = stack.StartTemporalDev(ctx, stack.TemporalDevOptions{DBFile: filepath.Join(f.opts.Dir, "temporal.db"), Logger: f.logger}); err != nil {
		return nil, err
	}
	if f.minio, err = stack.StartMinIO(ctx, stack.MinIOOptions{DataDir: filepath.Join(f.opts.Dir, "minio"), PublicMetrics: true, Logger: f.logger}); err != nil {
		return nil, err
	}
	return []string{fmt.Sprintf("TOLLGATE_NATS_URL=nats://127.0.0.1:%d", f.natsPort), "TOLLGATE_TEMPORAL_ADDRESS=" + f.temporal.Addr,
		"TOLLGATE_MINIO_ENDPOINT=" + f.minio.Endpoint, "TOLLGATE_MINIO_ACCESS_KEY=" + f.minio.AccessKey, "TOLLGATE_MINIO_SECRET_KEY=" + f.minio.SecretKey}, nil
}

// startProduction starts the production-shaped stack. NATS runs as the
// pinned nats-server when it is installed, else as this program re-run
// (its nats-cluster-node subcommand: the same library).
func (f *Fleet) startProduction(ctx context.Context) ([]string, error) {
	natsOpts := stack.NATSClusterOptions{Nodes: 3, Isolated: f.opts.NATSIsolated, Logger: f.logger}
	if _, err := stack.FindNATSServer(""); err != nil {
		natsOpts.Command = []string{f.opts.Self, NATSClusterNodeCommand}
	}
	dir := filepath.Join(f.opts.Dir, "servers")
	if err := letThrough(dir); err != nil {
		return nil, err
	}
	var err error
	f.prod, err = stack.StartProduction(ctx, stack.ProductionOptions{Dir: dir, NATS: natsOpts,
		PublicMinIOMetrics: true, Logger: f.logger})
	if err != nil {
		return nil, err
	}
	f.minio = f.prod.MinIO
	return f.prod.Env(), nil
}

// letThrough makes dir and the folders above it inside the temporary
// folder passable (o+x) for PostgreSQL, which runs as its own unprivileged
// user when the load test runs as root: the load test's scratch folders are
// made 0700. A folder outside the temporary folder is not changed: one that
// does not let others through is an error that names it.
func letThrough(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("create %q: %w", dir, err)
	}
	if os.Getuid() != 0 {
		return nil // PostgreSQL runs as this user
	}
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); d != "/" && d != "." && d != tmp; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("let postgres through %q: %w", d, err)
		}
		if fi.Mode().Perm()&0o001 != 0 {
			continue
		}
		if !strings.HasPrefix(d, tmp+string(filepath.Separator)) {
			return fmt.Errorf("let postgres through %q: it does not let other users through; chmod o+x it, or give the load test a -work folder under %s", d, tmp)
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
			return fmt.Errorf("let postgres through %q: %w", d, err)
		}
	}
	return nil
}

// temporalAddr is the Temporal frontend's address and the namespace.
func (f *Fleet) temporalAddr() (string, string) {
	if f.prod != nil {
		return f.prod.Temporal.Addr, f.prod.Temporal.Namespace
	}
	return f.temporal.Addr, f.temporal.Namespace
}

// StartFullAPI starts a second API on the same fleet whose scans all run
// the deep stage, also after a fast-stage block (TOLLGATE_SCAN_FULL), and
// returns its base URL. Its CPU counts as the API's.
func (f *Fleet) StartFullAPI(ctx context.Context) (string, error) {
	port, err := stack.FreePort()
	if err != nil {
		return "", err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(f.opts.Bin, "serve")
	cmd.Env = append(slices.Clip(f.env), "TOLLGATE_LISTEN="+strings.TrimPrefix(url, "http://"), "TOLLGATE_SCAN_FULL=true")
	if _, err := f.startCmd("api", cmd); err != nil {
		return "", err
	}
	return url, f.waitReady(ctx, url)
}

// NATSURL is the NATS server's URL.
func (f *Fleet) NATSURL() string {
	if f.prod != nil {
		return f.prod.NATS.URL()
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", f.natsPort)
}

func (f *Fleet) startNATS() error {
	_, err := f.startCmd("nats", exec.Command(f.opts.Self, "nats-server", "--port", strconv.Itoa(f.natsPort), "--store", filepath.Join(f.opts.Dir, "jetstream")))
	if err != nil {
		return err
	}
	// Ready when it accepts connections.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", f.natsPort), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats-server on port %d did not start: %w", f.natsPort, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *Fleet) start(component string, args ...string) (*proc, error) {
	cmd := exec.Command(f.opts.Bin, args...)
	cmd.Env = f.env
	return f.startCmd(component, cmd)
}

func (f *Fleet) startCmd(component string, cmd *exec.Cmd) (*proc, error) {
	// Keep the last MiB of each process's output.
	p := &proc{name: component + " " + strings.Join(cmd.Args[1:], " "), cmd: cmd, out: &syncbuf.Buffer{Limit: 1 << 20}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", p.name, err)
	}
	go func() {
		cmd.Wait()
		f.mu.Lock()
		if st := cmd.ProcessState; st != nil {
			p.cpu = (st.UserTime() + st.SystemTime()).Seconds()
		}
		f.gone[component] += p.cpu
		f.gone[kidsComponent(component)] += p.kids
		f.mu.Unlock()
		close(p.done)
	}()
	f.mu.Lock()
	f.procs[component] = append(f.procs[component], p)
	f.mu.Unlock()
	return p, nil
}

func (f *Fleet) waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the API at %s is not ready: %v; output:\n%s", url, err, f.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CPU returns the CPU seconds each component has used so far: running
// processes and every process they started from /proc (the workers'
// sandboxed children as "scanners"), ended ones from their exit status.
func (f *Fleet) CPU() map[string]float64 {
	procs := readProcs()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]float64{}
	for c, s := range f.gone {
		out[c] = s
	}
	for c, ps := range f.procs {
		for _, p := range ps {
			select {
			case <-p.done:
				continue // counted in gone
			default:
			}
			pid := p.cmd.Process.Pid
			if own, ok := procs.cpu[pid]; ok {
				p.kids = procs.treeCPU(pid) - own
				out[c] += own
			}
			out[kidsComponent(c)] += p.kids
		}
	}
	for c, pids := range f.serverPids() {
		seen := f.servers[c]
		if seen == nil {
			seen = map[int]float64{}
			f.servers[c] = seen
		}
		now := map[int]float64{}
		for _, pid := range pids {
			if pid > 0 {
				if _, ok := procs.cpu[pid]; ok {
					now[pid] = procs.treeCPU(pid)
				}
			}
		}
		// A server that ended since the last reading keeps what it used then.
		for pid, cpu := range seen {
			if _, ok := now[pid]; !ok {
				f.gone[c] += cpu
				out[c] += cpu
				delete(seen, pid)
			}
		}
		for pid, cpu := range now {
			seen[pid] = cpu
			out[c] += cpu
		}
	}
	return out
}

// serverPids are the server processes by component: Temporal (and its
// database), NATS and MinIO, as running now.
func (f *Fleet) serverPids() map[string][]int {
	pids := map[string][]int{}
	if f.temporal != nil {
		pids["temporal"] = []int{f.temporal.Pid()}
	}
	if f.minio != nil {
		pids["minio"] = []int{f.minio.Pid()}
	}
	if f.prod != nil {
		pids["temporal"] = []int{f.prod.Temporal.Pid()}
		pids["postgres"] = []int{f.prod.Postgres.Pid()}
		for _, n := range f.prod.NATS.Nodes {
			pids["nats"] = append(pids["nats"], n.Pid())
		}
	}
	return pids
}

// kidsComponent is the component a process's descendants count in: a
// worker's are the scanners.
func kidsComponent(c string) string {
	if c == "workers" {
		return "scanners"
	}
	return c
}

// procTable is one reading of /proc: each process's parent and CPU.
type procTable struct {
	parent map[int]int
	cpu    map[int]float64
}

// readProcs reads every process's /proc/PID/stat once.
func readProcs() procTable {
	t := procTable{parent: map[int]int{}, cpu: map[int]float64{}}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return t
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, cpu, ok := procStat(pid); ok {
			t.parent[pid], t.cpu[pid] = ppid, cpu
		}
	}
	return t
}

// treeCPU is the CPU of pid and of every live process under it. Each
// process's own figure holds its reaped children, and a live process is
// in no one's, so nothing is counted twice.
func (t procTable) treeCPU(pid int) float64 {
	sum := t.cpu[pid]
	for p, pp := range t.parent {
		if p != pid && t.descends(pp, pid) {
			sum += t.cpu[p]
		}
	}
	return sum
}

// descends reports whether p is root or one of its descendants.
func (t procTable) descends(p, root int) bool {
	for range 64 { // a bound against a cycle read across a pid's reuse
		if p == root {
			return true
		}
		next, ok := t.parent[p]
		if !ok || next == p {
			return false
		}
		p = next
	}
	return false
}

// procStat reads a process's parent and its utime+stime with those of
// its waited-for children from /proc/PID/stat, in seconds.
func procStat(pid int) (ppid int, cpu float64, ok bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may hold spaces.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(s[i+1:])
	// After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
	if len(fields) < 15 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(fields[1])
	var ticks float64
	for _, k := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseFloat(fields[k], 64)
		ticks += v
	}
	return ppid, ticks / clockTicks, true
}

// selfCPU is this process's user and system CPU time so far, in seconds
// (its children, the fleet's servers, are not in it); 0 when it cannot.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// clockTicks is USER_HZ, 100 on every Linux tollgate runs on.
const clockTicks = 100

// S3Requests is how many S3 requests the fleet's MinIO has served.
func (f *Fleet) S3Requests(ctx context.Context) (float64, error) { return f.minio.S3Requests(ctx) }

// HistoryEvents counts the events in a scan's workflow history: what
// Temporal stores, and bills, per scan.
func (f *Fleet) HistoryEvents(ctx context.Context, scanID string) (int, error) {
	id := control.WorkflowID(scanID)
	it := f.history.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		if _, err := it.Next(); err != nil {
			return 0, fmt.Errorf("read the history of workflow %s: %w", id, err)
		}
		n++
	}
	return n, nil
}

// KillWorker SIGKILLs the first running worker of a pool and starts a
// replacement, as a crashed pod would be.
func (f *Fleet) KillWorker(pool string) (string, error) {
	return f.killAndReplace("workers", func(p *proc) bool { return strings.HasSuffix(p.name, "--pool "+pool) })
}

// killAndReplace SIGKILLs the first running process of a component that
// pick accepts and starts one with the same arguments, as a crashed pod is
// replaced.
func (f *Fleet) killAndReplace(component string, pick func(*proc) bool) (string, error) {
	f.mu.Lock()
	var victim *proc
	for _, p := range f.procs[component] {
		select {
		case <-p.done:
			continue
		default:
		}
		if pick(p) {
			victim = p
			break
		}
	}
	f.mu.Unlock()
	if victim == nil {
		return "", fmt.Errorf("no running %s to kill", component)
	}
	f.CPU() // its children's CPU so far, which dies with them
	victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.done
	if _, err := f.start(component, victim.cmd.Args[1:]...); err != nil {
		return "", err
	}
	return fmt.Sprintf("SIGKILL %s (pid %d) and start a new one", strings.TrimPrefix(victim.name, component+" "), victim.cmd.Process.Pid), nil
}

// StopWorkers SIGTERMs every running worker and waits for them to drain.
func (f *Fleet) StopWorkers() {
	f.mu.Lock()
	ps := slices.Clone(f.procs["workers"])
	f.mu.Unlock()
	for _, p := range ps {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range ps {
		<-p.done
	}
}

// StartWorkers starts n workers per pool.
func (f *Fleet) StartWorkers(n int) error {
	for range n {
		for _, pool := range []string{"fast", "deep"} {
			if _, err := f.start("workers", "worker", "--pool", pool); err != nil {
				return err
			}
		}
	}
	return nil
}

// RestartNATS stops the NATS server and starts it again on the same port
// and store.
func (f *Fleet) RestartNATS() (string, error) {
	f.mu.Lock()
	ps := f.procs["nats"]
	f.mu.Unlock()
	p := ps[len(ps)-1]
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	if err := f.startNATS(); err != nil {
		return "", err
	}
	return "restart NATS", nil
}

// PauseMinIO stops MinIO for d (SIGSTOP, then SIGCONT).
func (f *Fleet) PauseMinIO(d time.Duration) (string, error) {
	if err := f.minio.Pause(); err != nil {
		return "", err
	}
	time.AfterFunc(d, func() { f.minio.Resume() })
	return fmt.Sprintf("pause MinIO for %s", d), nil
}

// Output is every process's output, for a failed run.
func (f *Fleet) Output() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, c := range Components {
		for _, p := range f.procs[c] {
			fmt.Fprintf(&b, "--- %s\n%s\n", p.name, p.out.String())
		}
	}
	return b.String()
}

// Stop ends every process: the tollgate ones first, then the servers.
func (f *Fleet) Stop() {
	f.mu.Lock()
	var all []*proc
	for _, c := range []string{"api", "workers", "orchestrator", "nats"} {
		all = append(all, f.procs[c]...)
	}
	f.mu.Unlock()
	for _, p := range all {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range all {
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	if f.history != nil {
		f.history.Close()
	}
	if f.temporal != nil {
		f.temporal.Stop()
	}
	if f.prod != nil {
		f.prod.Stop() // MinIO with it
		return
	}
	if f.minio != nil {
		f.minio.Stop()
	}
}

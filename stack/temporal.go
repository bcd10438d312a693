package stack

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
)

// TemporalCLIVersion is the Temporal CLI release the project pins and
// scripts/tools.sh installs.
const TemporalCLIVersion = "v1.5.1"

// ErrNoTemporalCLI is returned when no Temporal CLI binary can be found.
var ErrNoTemporalCLI = errors.New("temporal CLI not found: run `make tools` (or scripts/tools.sh), or set TOLLGATE_TEMPORAL_CLI")

// TemporalSearchAttributes are the custom search attributes (name: type)
// tollgate's workflows carry (workflows.SearchTenant, workflows.SearchApp);
// every dev server started here registers them. A Temporal cluster needs
// them created once with `temporal operator search-attribute create`.
var TemporalSearchAttributes = map[string]string{"TollgateTenant": "Keyword", "TollgateApp": "Keyword"}

// TemporalDevOptions configure the dev server child process.
type TemporalDevOptions struct {
	// Binary is the temporal CLI (default: $TOLLGATE_TEMPORAL_CLI, then
	// `temporal` on PATH, then the project's tool cache).
	Binary string
	// DBFile keeps history across restarts; empty keeps it in memory.
	DBFile string
	// Port for the frontend on 127.0.0.1 (default: a free port).
	Port int
	// Namespace to use (default "default", which always exists).
	Namespace string
	// StartTimeout bounds the wait for the server to be healthy (default 30s).
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// TemporalDev is a running dev server.
type TemporalDev struct {
	// Addr is the frontend's host:port.
	Addr      string
	Namespace string
	inMemory  bool
	child
}

// FindTemporalCLI returns the path of the temporal CLI to run: explicit,
// else $TOLLGATE_TEMPORAL_CLI, else `temporal` on PATH, else the tool cache.
func FindTemporalCLI(explicit string) (string, error) {
	return findTool(explicit, "TOLLGATE_TEMPORAL_CLI", "temporal", TemporalCLIVersion, ErrNoTemporalCLI)
}

// ToolsDir is where scripts/tools.sh installs pinned tools:
// $TOLLGATE_TOOLS_DIR, else the user cache dir's tollgate/tools.
func ToolsDir() string {
	if d := os.Getenv("TOLLGATE_TOOLS_DIR"); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "tollgate", "tools")
}

// StartTemporalDev starts `temporal server start-dev` on loopback and waits
// until its frontend answers health checks. On a port it picks itself, a
// server that dies while starting is started again on other ports, up to
// three times: the dev server picks more free ports of its own (HTTP,
// metrics, membership), and another process can take one in between.
func StartTemporalDev(ctx context.Context, opts TemporalDevOptions) (*TemporalDev, error) {
	for attempt := 1; ; attempt++ {
		d, err := startTemporalDev(ctx, opts)
		if err == nil || opts.Port != 0 || attempt == 3 || !errors.Is(err, ErrExited) || ctx.Err() != nil {
			return d, err
		}
	}
}

func startTemporalDev(ctx context.Context, opts TemporalDevOptions) (*TemporalDev, error) {
	bin, err := FindTemporalCLI(opts.Binary)
	if err != nil {
		return nil, err
	}
	logger := cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	ns := cmp.Or(opts.Namespace, "default")
	port := opts.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, fmt.Errorf("start temporal dev server: %w", err)
		}
	}
	cmd := exec.Command(bin, opts.args(port, ns)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("start temporal dev server: %w", err)
	}
	cmd.Stdout = io.Discard
	d := &TemporalDev{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Namespace: ns, inMemory: opts.DBFile == ""}
	if err := d.start(cmd); err != nil {
		return nil, fmt.Errorf("start temporal dev server %q: %w", bin, err)
	}
	var tail lastLines
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			tail.add(sc.Text())
			logger.Debug("temporal dev server", "line", sc.Text())
		}
	}()

	timeout := cmp.Or(opts.StartTimeout, 30*time.Second)
	if err := d.waitHealthy(ctx, timeout); err != nil {
		d.Stop()
		return nil, fmt.Errorf("start temporal dev server on %s: %w%s", d.Addr, err, tail.String())
	}
	logger.DebugContext(ctx, "temporal dev server ready", "addr", d.Addr, "pid", cmd.Process.Pid)
	return d, nil
}

// temporalDynamicConfig is the dynamic config every Temporal server started
// here runs with, the dev server and the real one alike.
var temporalDynamicConfig = map[string]any{
	// Measured on 2 cores (shared/NOTES-dependencies.md): one task-queue
	// partition stops tasks waiting in partitions nobody polls, and a
	// faster transfer processor removes a ~50 ms floor per dispatch.
	"matching.numTaskqueueReadPartitions":  1,
	"matching.numTaskqueueWritePartitions": 1,
	"history.transferProcessorMaxPollRPS":  200,
	// An activity a workflow task schedules on the worker's own task queue
	// comes back in the answer to that task's completion (the Go SDK asks
	// for it by default): the orchestrator runs the scan workflow and its
	// Dispatch and Finalize, so each skips a trip through matching and a
	// poll.
	"system.enableActivityEagerExecution": true,
}

// args are the dev server's command line on port. A server on a DB file
// runs SQLite with a write-ahead log and synchronous=normal, as the load test
// measured it: `tollgate dev`, the load test and the tests share this tuning.
func (opts TemporalDevOptions) args(port int, ns string) []string {
	args := []string{"server", "start-dev",
		"--ip", "127.0.0.1", "--port", strconv.Itoa(port), "--headless",
		"--log-level", "error", "--log-format", "json",
		"--disable-config-file", "--disable-config-env",
	}
	for _, key := range slices.Sorted(maps.Keys(temporalDynamicConfig)) {
		args = append(args, "--dynamic-config-value", fmt.Sprintf("%s=%v", key, temporalDynamicConfig[key]))
	}
	for _, name := range slices.Sorted(maps.Keys(TemporalSearchAttributes)) {
		args = append(args, "--search-attribute", name+"="+TemporalSearchAttributes[name])
	}
	if ns != "default" {
		args = append(args, "--namespace", ns)
	}
	if opts.DBFile != "" {
		args = append(args, "--db-filename", opts.DBFile,
			"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
	}
	return args
}

func (d *TemporalDev) waitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 20 * time.Millisecond
	for {
		c, err := client.Dial(client.Options{HostPort: d.Addr, Namespace: d.Namespace, Logger: quietLogger{},
			ConnectionOptions: client.ConnectionOptions{}})
		if err == nil {
			_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
			if err == nil {
				// The namespace must be registered too.
				_, err = c.WorkflowService().DescribeNamespace(ctx, describeNamespace(d.Namespace))
			}
			c.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-d.exited:
			return d.exitErr()
		case <-ctx.Done():
			return fmt.Errorf("not healthy after %s: %w", timeout, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// Stop ends the server. A server that keeps its state in memory has nothing
// to save and is killed at once; one with a database file is asked to stop.
func (d *TemporalDev) Stop() {
	if d.inMemory {
		d.Kill()
		return
	}
	d.child.Stop()
}

// FreePort returns a TCP port free on 127.0.0.1 now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lastLines keeps the server's last stderr lines for error messages.
type lastLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *lastLines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
	if len(l.lines) > 10 {
		l.lines = l.lines[1:]
	}
}

func (l *lastLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 0 {
		return ""
	}
	return "; server said: " + strings.Join(l.lines, " | ")
}

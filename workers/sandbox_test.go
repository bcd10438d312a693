package workers_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workers/sandbox"
	"github.com/tollgate/tollgate/workers/sandbox/sandboxtest"
	"github.com/tollgate/tollgate/workflows"
)

// startSandboxWorker runs a fast-pool worker whose scanners run in a
// sandbox of this test binary's children (sandboxtest's scanner).
func (e *env) startSandboxWorker(cfg sandbox.Config) *sandbox.Pool {
	cfg.Command = []string{os.Args[0], sandbox.ChildCommand}
	cfg.WorkDir = e.t.TempDir()
	cfg.ReadRoots = []string{e.dir}
	cfg.Slots = 1
	p, err := sandbox.Start(context.Background(), cfg, quiet())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(p.Close)
	w, err := workers.New(workers.Config{Pool: tasks.PoolFast, Name: "sandboxed", Concurrency: 1, HeartbeatInterval: 300 * time.Millisecond, Stream: e.stream, ShutdownGrace: time.Second},
		workers.Deps{JetStream: e.jetstream(), Temporal: e.client, Evidence: e.evidence, Sandbox: p, Logger: quiet()})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return p
}

// tree writes a source tree whose sandboxtest scanner does what behave says.
func (e *env) tree(name, behave string) string {
	dir := filepath.Join(e.dir, "trees", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, sandboxtest.BehaveFile), []byte(behave), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

func (e *env) scanTree(id, dir string) (workflows.ScanResult, error) {
	req := scanRequest(id)
	req.Input = tasks.Input{Dir: dir}
	run := e.start(req)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var res workflows.ScanResult
	err := run.Get(ctx, &res)
	return res, err
}

// TestSandboxLimitBlocksTheScan is the sandbox's acceptance test, one case
// per limit: the scanner's child is stopped (or its attempt refused), the
// task is tried once more, then the scan ends block with a reason naming
// the limit; the same worker serves the next scan, and no task is left in
// the queue.
func TestSandboxLimitBlocksTheScan(t *testing.T) {
	e := newEnv(t)
	var calls sync.Map
	e.startWorker(tasks.PoolDeep, "deep", e.jetstream(), e.client, map[string]workers.Scanner{tasks.KindDeep: deepScanner(&calls, "deep")})
	p := e.startSandboxWorker(sandbox.Config{TaskMemory: 256 << 20, TaskCPU: time.Second, TaskTimeout: 20 * time.Second})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Errorf("a sandboxed scanner connected out")
			c.Close()
		}
	}()
	outside := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(outside, []byte("aws_secret_access_key=..."), 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, behave, reason string
		skip                 string
	}{
		{name: "memory-bomb", behave: "membomb", reason: "memory limit (256 MiB"},
		{name: "cpu-spin", behave: "spin", reason: "CPU time limit (1s)"},
		{name: "deadline", behave: "hang", reason: "time limit (20s)"},
		{name: "outbound-connection", behave: "dial " + ln.Addr().String(), reason: "refused the scanner",
			skip: map[bool]string{true: "", false: "no network namespace and no Landlock TCP rules here"}[p.Isolation().Network || p.Isolation().Landlock >= 4]},
		{name: "read-outside-tree", behave: "read " + outside, reason: "permission denied",
			skip: map[bool]string{true: "", false: "no Landlock on this kernel"}[p.Isolation().Landlock > 0]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.skip != "" {
				t.Skip(c.skip)
			}
			res, err := e.scanTree("limit-"+c.name, e.tree(c.name, c.behave))
			if err != nil {
				t.Fatalf("scan ended in an error, want a block verdict: %v", err)
			}
			if res.Verdict != report.VerdictBlock || !hasReason(res, "sandbox.limit", c.reason) {
				t.Fatalf("verdict %s, reasons %+v; want block with %q", res.Verdict, res.Reasons, c.reason)
			}
			// The same worker, its child started again, serves the next scan.
			next, err := e.scanTree("after-"+c.name, e.tree("after-"+c.name, "ok"))
			if err != nil {
				t.Fatal(err)
			}
			if next.Verdict != report.VerdictBlock || !hasReason(next, "", "secret") {
				// sandboxtest reports one secret per file: the default policy blocks it.
				t.Fatalf("next scan: verdict %s, reasons %+v", next.Verdict, next.Reasons)
			}
			waitQueueEmpty(t, e)
		})
	}
}

func hasReason(res workflows.ScanResult, policy, text string) bool {
	for _, r := range res.Reasons {
		if (policy == "" || r.Policy == policy) && strings.Contains(strings.ToLower(r.Message), strings.ToLower(text)) {
			return true
		}
	}
	return false
}

// waitQueueEmpty waits until the task stream holds no message: nothing is
// left counting against the tenant.
func waitQueueEmpty(t *testing.T, e *env) {
	t.Helper()
	js := e.jetstream()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := js.Stream(ctx, e.stream.Name())
		if err == nil {
			info, err := st.Info(ctx)
			if err == nil && info.State.Msgs == 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("the task stream still holds messages")
		case <-tick.C:
		}
	}
}

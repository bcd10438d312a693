package sandbox_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workers/sandbox"
	"github.com/tollgate/tollgate/workers/sandbox/sandboxtest"
)

// TestMain serves sandbox children when the pool re-executes this binary.
func TestMain(m *testing.M) {
	if sandbox.IsChild(os.Args) {
		os.Exit(sandbox.ServeChild(context.Background(), sandboxtest.Load))
	}
	os.Exit(m.Run())
}

func startPool(t *testing.T, cfg sandbox.Config) *sandbox.Pool {
	t.Helper()
	cfg.Command = []string{os.Args[0], sandbox.ChildCommand}
	cfg.WorkDir = t.TempDir()
	p, err := sandbox.Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// scan runs one task in a slot, over a tree in the slot's dir whose
// scanner does what behave says (see sandboxtest).
func scan(t *testing.T, p *sandbox.Pool, behave string) (workers.Output, error) {
	t.Helper()
	s, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	dir, err := os.MkdirTemp(s.Dir(), "scan-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, sandboxtest.BehaveFile), []byte(behave), 0o600); err != nil {
		t.Fatal(err)
	}
	return s.Scan(context.Background(), tasks.Task{ScanID: "s", Kind: tasks.KindSecrets, TaskToken: []byte("secret-token")}, dir)
}

// limited asserts err is the sandbox stopping the scanner for limit, and
// that the pool still serves the next task.
func limited(t *testing.T, p *sandbox.Pool, err error, limit, reason string) {
	t.Helper()
	le, ok := errors.AsType[*workers.LimitError](err)
	if !ok {
		t.Fatalf("err = %v, want a sandbox limit %q", err, limit)
	}
	if le.Limit != limit || !strings.Contains(le.Reason, reason) {
		t.Fatalf("limit %q, reason %q; want %q with %q", le.Limit, le.Reason, limit, reason)
	}
	out, err := scan(t, p, "ok")
	if err != nil || len(out.Result.Secrets) != 1 {
		t.Fatalf("next task after the limit: %+v, %v", out.Result, err)
	}
}

func TestSandboxServesTasksWarm(t *testing.T) {
	p := startPool(t, sandbox.Config{Slots: 2})
	for range 3 {
		out, err := scan(t, p, "ok")
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Result.Secrets) != 1 || len(out.Files) != 1 || string(out.Files[0].Data) != "ok" {
			t.Fatalf("output %+v", out)
		}
	}
}

func TestSandboxMemoryBombKillsOnlyTheChild(t *testing.T) {
	p := startPool(t, sandbox.Config{TaskMemory: 256 << 20})
	_, err := scan(t, p, "membomb")
	limited(t, p, err, "memory", "memory limit (256 MiB")
}

func TestSandboxCPUSpinIsStopped(t *testing.T) {
	p := startPool(t, sandbox.Config{TaskCPU: time.Second})
	_, err := scan(t, p, "spin")
	limited(t, p, err, "cpu", "CPU time limit (1s)")
}

func TestSandboxDeadlineKillsTheChild(t *testing.T) {
	p := startPool(t, sandbox.Config{TaskTimeout: time.Second})
	_, err := scan(t, p, "hang")
	limited(t, p, err, "time", "time limit (1s)")
}

func TestSandboxRefusesOutboundConnections(t *testing.T) {
	p := startPool(t, sandbox.Config{})
	if !p.Isolation().Network && p.Isolation().Landlock < 4 {
		t.Skip("neither a network namespace nor Landlock's TCP rules are permitted here")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	_, err = scan(t, p, "dial "+ln.Addr().String())
	limited(t, p, err, "refused", "dial")
	select {
	case <-accepted:
		t.Fatal("the child connected out of the sandbox")
	default:
	}
}

func TestSandboxRefusesReadsOutsideTheTree(t *testing.T) {
	p := startPool(t, sandbox.Config{})
	if p.Isolation().Landlock == 0 {
		t.Skip("Landlock is not available on this kernel")
	}
	outside := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(outside, []byte("aws_secret_access_key=..."), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := scan(t, p, "read "+outside)
	limited(t, p, err, "refused", "permission denied")
	for _, f := range []string{"/etc/hostname", "/proc/1/environ", "/proc/self/environ"} {
		_, err = scan(t, p, "read "+f)
		if _, ok := errors.AsType[*workers.LimitError](err); !ok {
			t.Errorf("read %s: %v, want refused", f, err)
		}
	}
}

func TestSandboxChildHasNoCredentials(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
	p := startPool(t, sandbox.Config{ReadRoots: []string{"/proc"}})
	// The child's own environ is readable to it here: it must be empty of
	// the worker's variables.
	out, err := scan(t, p, "read /proc/self/environ")
	if err != nil {
		t.Fatal(err)
	}
	env := string(out.Files[0].Data)
	if strings.Contains(env, "do-not-leak") || !strings.Contains(env, "TMPDIR=") {
		t.Fatalf("child environment %q", env)
	}
}

// TestSandboxChildReadsTheRulesDir: a configured SAST rules folder is
// readable to the child under Landlock (the engine loads its rules there),
// while its neighbours stay refused.
func TestSandboxChildReadsTheRulesDir(t *testing.T) {
	base := t.TempDir()
	rules := filepath.Join(base, "rules")
	if err := os.Mkdir(rules, 0o700); err != nil {
		t.Fatal(err)
	}
	rule := filepath.Join(rules, "js-eval.yaml")
	if err := os.WriteFile(rule, []byte("id: js-eval\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	beside := filepath.Join(base, "credentials")
	if err := os.WriteFile(beside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startPool(t, sandbox.Config{RulesDir: rules})
	out, err := scan(t, p, "read "+rule)
	if err != nil {
		t.Fatalf("read the rules dir: %v", err)
	}
	if len(out.Files) != 1 || string(out.Files[0].Data) != "id: js-eval\n" {
		t.Fatalf("output %+v", out.Files)
	}
	if p.Isolation().Landlock == 0 {
		t.Skip("Landlock is not available on this kernel: reads outside are not refused")
	}
	_, err = scan(t, p, "read "+beside)
	limited(t, p, err, "refused", "permission denied")
}

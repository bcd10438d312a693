package sandbox

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
)

// Config of a pool of sandboxed scanner processes. Zero fields take the
// documented defaults.
type Config struct {
	// Command starts a child: the binary and its arguments (default: this
	// executable with ChildCommand).
	Command []string
	// Slots is the number of children (default 1): one per worker slot.
	Slots int
	// Name tells the pool's directories apart (default "pool").
	Name string
	// WorkDir holds each slot's tree and scratch directories (default
	// os.TempDir()).
	WorkDir string
	// DBDir is the vulnerability DB the children load (read-only to them).
	DBDir   string
	Version string
	// RulesDir is a folder of SAST rule files the children load instead of
	// the embedded ones (read-only to them; empty: the embedded rules).
	RulesDir string
	// Kinds are the task kinds the children serve; they load only those
	// kinds' scanners (empty: every kind the child's loader has).
	Kinds []string
	// ReadRoots are directories a child may read besides its tree: the
	// embedded mode's scanned directories. An input directory outside
	// them and outside the slot's tree is refused.
	ReadRoots []string
	// TaskMemory is the memory one task may use above the warm scanners
	// (default 1 GiB).
	TaskMemory int64
	// TaskCPU is the CPU time one task may use (default 5m).
	TaskCPU time.Duration
	// TaskTimeout is one task's wall-clock deadline; the parent kills a
	// child that overruns it (default 10m).
	TaskTimeout time.Duration
	// StartTimeout bounds a child's start: loading the scanners (default 5m).
	StartTimeout time.Duration
	// LogLevel is the children's log level (default "warn").
	LogLevel string
	// SecretFingerprintKey keys the fingerprints of secrets (see
	// scanners.Options); the children get it over their pipe.
	SecretFingerprintKey []byte
	// Procs is each child's GOMAXPROCS (default: the machine's CPUs
	// shared among the slots, at least 1). A child with every CPU, times
	// the slots, ran more Go schedulers than cores: each child's garbage
	// collector took the "idle" processors it saw while the other slots'
	// children were busy on the same cores, which cost a quarter more CPU
	// than the same scanners in one process.
	Procs int
	// CPUProfile, when set, makes each child write a CPU profile of the
	// tasks it serves to CPUProfile.slotN (a measuring aid: the load test's
	// -cpuprofile).
	CPUProfile string
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Slots < 0 || c.Procs < 0 || c.TaskMemory < 0 || c.TaskCPU < 0 || c.TaskTimeout < 0 {
		return fmt.Errorf("sandbox: slots %d, task memory %d, task CPU %s and task timeout %s must not be negative", c.Slots, c.TaskMemory, c.TaskCPU, c.TaskTimeout)
	}
	for _, r := range c.ReadRoots {
		if !filepath.IsAbs(r) {
			return fmt.Errorf("sandbox: read root %q is not absolute", r)
		}
	}
	return nil
}

func (c Config) withDefaults() (Config, error) {
	if len(c.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("sandbox: find this executable: %w", err)
		}
		c.Command = []string{exe, ChildCommand}
	}
	c.Slots = cmp.Or(c.Slots, 1)
	c.Name = cmp.Or(c.Name, "pool")
	c.WorkDir = cmp.Or(c.WorkDir, os.TempDir())
	c.TaskMemory = cmp.Or(c.TaskMemory, 1<<30)
	c.TaskCPU = cmp.Or(c.TaskCPU, 5*time.Minute)
	c.TaskTimeout = cmp.Or(c.TaskTimeout, 10*time.Minute)
	c.StartTimeout = cmp.Or(c.StartTimeout, 5*time.Minute)
	c.LogLevel = cmp.Or(c.LogLevel, "warn")
	c.Procs = cmp.Or(c.Procs, max(1, runtime.GOMAXPROCS(0)/c.Slots))
	return c, nil
}

// Pool is a set of warm sandboxed children, one per slot.
type Pool struct {
	cfg    Config
	logger *slog.Logger
	free   chan *slot
	all    []*slot
	base   string
	// closed is set first thing in Close: a restart still queued behind a
	// slot's lock must not start a child in a work dir being removed.
	closed atomic.Bool
}

var _ workers.Sandbox = (*Pool)(nil)

// Start starts every slot's child and waits until each has loaded its
// scanners.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	base, err := os.MkdirTemp(cfg.WorkDir, "sandbox-"+cfg.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("sandbox: create work dir: %w", err)
	}
	p := &Pool{cfg: cfg, logger: logger.With("sandbox", cfg.Name), free: make(chan *slot, cfg.Slots), base: base}
	errs := make([]error, cfg.Slots)
	var wg sync.WaitGroup
	for i := range cfg.Slots {
		s := &slot{pool: p, n: i, tree: filepath.Join(base, fmt.Sprintf("slot-%d", i)), scratch: filepath.Join(base, fmt.Sprintf("scratch-%d", i))}
		for _, d := range []string{s.tree, s.scratch} {
			if err := os.Mkdir(d, 0o700); err != nil {
				p.Close()
				return nil, fmt.Errorf("sandbox: create %s: %w", d, err)
			}
		}
		p.all = append(p.all, s)
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.start(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.Close()
		return nil, err
	}
	for _, s := range p.all {
		p.free <- s
	}
	iso := p.all[0].iso
	p.logger.InfoContext(ctx, "sandbox ready", "slots", cfg.Slots, "landlock_abi", iso.Landlock, "own_network", iso.Network, "own_user_ns", iso.UserNS)
	return p, nil
}

// CPUSeconds is the CPU time the pool's live children have used so far
// (from /proc; 0 where it cannot be read).
func (p *Pool) CPUSeconds() float64 {
	total := 0.0
	for _, s := range p.all {
		s.mu.Lock()
		if s.proc != nil {
			total += procCPU(s.proc.cmd.Process.Pid)
		}
		s.mu.Unlock()
	}
	return total
}

// procCPU is a process's user and system time, from /proc/PID/stat.
func procCPU(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

// Isolation is what the children run under.
func (p *Pool) Isolation() Isolation { return p.all[0].iso }

// Acquire waits for a free slot.
func (p *Pool) Acquire(ctx context.Context) (workers.Slot, error) {
	select {
	case s := <-p.free:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close kills every child and removes the pool's directories.
func (p *Pool) Close() {
	p.closed.Store(true)
	for _, s := range p.all {
		s.mu.Lock()
		s.stop()
		s.mu.Unlock()
	}
	_ = os.RemoveAll(p.base)
}

// slot is one child process and its directories.
type slot struct {
	pool    *Pool
	n       int
	tree    string
	scratch string

	mu   sync.Mutex // held while the child serves a task or restarts
	proc *child
	iso  Isolation
}

var _ workers.Slot = (*slot)(nil)

// Dir is where the task's input goes: the only tree the child can read,
// besides the configured read roots.
func (s *slot) Dir() string { return s.tree }

// Release hands the slot back to the pool.
func (s *slot) Release() { s.pool.free <- s }

// Scan runs one task in the slot's child: starting it again first if it
// died, and killing it if it overruns the deadline. A child killed or
// stopped by a limit is a *workers.LimitError.
func (s *slot) Scan(ctx context.Context, t tasks.Task, dir string) (workers.Output, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.readable(dir) {
		return workers.Output{}, fmt.Errorf("sandbox: input dir %q is outside the slot's tree and the sandbox's read roots", dir)
	}
	if s.proc == nil {
		if err := s.start(ctx); err != nil {
			return workers.Output{}, err
		}
	}
	t.TaskToken = nil
	tctx, cancel := context.WithTimeout(ctx, s.pool.cfg.TaskTimeout)
	defer cancel()
	began := time.Now()
	resp, err := s.proc.call(tctx, request{Task: t, Dir: dir})
	if err == nil {
		switch resp.Class {
		case "":
			if resp.Error != "" {
				return workers.Output{}, errors.New(resp.Error)
			}
			if resp.Output.Files, err = s.outputFiles(resp.Files); err != nil {
				return workers.Output{}, err
			}
			scannerSpans(ctx, began, resp.Output.Result.Timings)
			return resp.Output, nil
		case classBadInput:
			return workers.Output{}, workers.BadInput(errors.New(resp.Error))
		case classRefused:
			return workers.Output{}, &workers.LimitError{Limit: "refused", Reason: "the sandbox refused the scanner an operation on this input: " + resp.Error}
		}
		return workers.Output{}, fmt.Errorf("sandbox: child answered class %q: %s", resp.Class, resp.Error)
	}
	// The child is dead or must die: find out why, and start another.
	p := s.proc
	s.proc = nil
	timedOut := tctx.Err() != nil && ctx.Err() == nil
	p.kill()
	limitErr := p.limit(timedOut, s.pool.cfg)
	s.pool.logger.WarnContext(ctx, "sandbox child ended during a task", "slot", s.n, "scan_id", t.ScanID, "kind", t.Kind, "err", err, "reason", limitErr)
	go s.restart(context.WithoutCancel(ctx))
	if ctx.Err() != nil {
		return workers.Output{}, ctx.Err()
	}
	return workers.Output{}, limitErr
}

// outDir is the folder of a child's scratch directory where it writes a
// task's output documents.
const outDir = "out"

// maxOutputFile bounds one output document a child hands over.
const maxOutputFile = 512 << 20

// outputFiles reads the output documents a child wrote to its OutDir and
// removes them. The child controls that folder, so a name must be a plain
// base name, and the file is opened beneath the scratch directory without
// following any symlink (the child could point one at the worker's own
// credentials): it must be a regular file with one link, within
// maxOutputFile.
func (s *slot) outputFiles(refs []fileRef) ([]workers.File, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	files := make([]workers.File, 0, len(refs))
	for _, r := range refs {
		if r.File == "" || r.File != filepath.Base(r.File) || r.File == "." || r.File == ".." {
			return nil, fmt.Errorf("sandbox: child named output %q outside its folder", r.File)
		}
		data, err := readBeneath(s.scratch, filepath.Join(outDir, r.File), maxOutputFile)
		if err != nil {
			return nil, fmt.Errorf("sandbox: read child's output %s: %w", r.Name, err)
		}
		files = append(files, workers.File{Name: r.Name, ContentType: r.ContentType, Data: data})
	}
	return files, nil
}

// scannerSpans records the child's scanners in the task's trace, from the
// timings it reports: the child has no tracer (nor any connection to send
// spans on). The scanners ran one after another from began.
func scannerSpans(ctx context.Context, began time.Time, timings map[string]float64) {
	tracer := trace.SpanFromContext(ctx).TracerProvider().Tracer("tollgate/scanners")
	at := began
	for _, s := range []struct{ timing, span string }{{"secrets", "gitleaks"}, {"sbom", "syft"}, {"vulnerabilities", "trivy"}, {"misconfig", "trivy-misconfig"}, {"rematch", "trivy-sbom"}} {
		secs, ok := timings[s.timing]
		if !ok {
			continue
		}
		end := at.Add(time.Duration(secs * float64(time.Second)))
		_, sp := tracer.Start(ctx, s.span, trace.WithTimestamp(at))
		sp.End(trace.WithTimestamp(end))
		at = end
	}
}

// restart starts the slot's child again in the background, so that it is
// warm before the slot's next task.
func (s *slot) restart(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil || s.pool.closed.Load() {
		return
	}
	if err := s.start(ctx); err != nil {
		s.pool.logger.ErrorContext(ctx, "restart sandbox child; the next task tries again", "slot", s.n, "err", err)
	}
}

func (s *slot) readable(dir string) bool {
	for _, root := range append([]string{s.tree}, s.pool.cfg.ReadRoots...) {
		if rel, err := filepath.Rel(root, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}

func (s *slot) stop() {
	if s.proc != nil {
		s.proc.stop()
		s.proc = nil
	}
}

// start starts the child and waits until it has loaded its scanners and
// restricted itself. Called with mu held, or before the slot is shared.
func (s *slot) start(ctx context.Context) error {
	if s.pool.closed.Load() {
		return errors.New("sandbox: pool is closed")
	}
	cfg := s.pool.cfg
	// A fresh scratch dir: nothing a previous child left is kept.
	_ = os.RemoveAll(s.scratch)
	for _, d := range []string{s.scratch, filepath.Join(s.scratch, "tmp"), filepath.Join(s.scratch, "gopath"), filepath.Join(s.scratch, outDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("sandbox: create scratch dir: %w", err)
		}
	}
	opts := ChildOptions{DBDir: cfg.DBDir, Version: cfg.Version, RulesDir: cfg.RulesDir, Kinds: cfg.Kinds, Tree: s.tree, ReadRoots: cfg.ReadRoots, Scratch: s.scratch,
		TaskMemory: cfg.TaskMemory, TaskCPU: cfg.TaskCPU, LogLevel: cfg.LogLevel, SecretFingerprintKey: cfg.SecretFingerprintKey}
	if canReadBeneath() {
		opts.OutDir = filepath.Join(s.scratch, outDir)
	}
	if cfg.CPUProfile != "" {
		opts.CPUProfile = fmt.Sprintf("%s.slot%d", cfg.CPUProfile, s.n)
	}
	var lastErr error
	for _, mode := range isolationModes() {
		c, err := startChild(ctx, cfg.Command, opts, cfg.Procs, mode, s.pool.logger.With("slot", s.n))
		if err != nil {
			if mode.fallbackOn(err) {
				lastErr = err
				continue
			}
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
		r, err := c.ready(sctx)
		cancel()
		if err != nil {
			c.kill()
			return fmt.Errorf("sandbox: start child %d: %w", s.n, err)
		}
		if mode.weaker() {
			s.pool.logger.WarnContext(ctx, "sandbox: running the scanners in a weaker mode", "mode", mode.name, "why", lastErr)
		}
		s.proc, s.iso = c, r.Isolation
		s.iso.Network, s.iso.UserNS = mode.network(), mode.userNS()
		if s.iso.Landlock == 0 {
			s.pool.logger.WarnContext(ctx, "sandbox: Landlock unavailable; the scanners are not kept from reading outside their tree", "slot", s.n)
		}
		return nil
	}
	return fmt.Errorf("sandbox: start child %d: %w", s.n, lastErr)
}

// child is one running child process.
type child struct {
	cmd  *exec.Cmd
	in   *json.Encoder
	out  *json.Decoder
	tail *tailBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit, once done is closed
	mu   sync.Mutex
	kill func()
	// stop ends the child gracefully: its stdin closes, it finishes and
	// exits; kill if it does not within stopGrace.
	stop func()
}

// stopGrace is how long a child closed by its pool may take to exit.
const stopGrace = 5 * time.Second

func startChild(ctx context.Context, command []string, opts ChildOptions, procs int, mode isolationMode, logger *slog.Logger) (*child, error) {
	cmd := exec.Command(command[0], command[1:]...)
	// Nothing of the worker's environment: no credentials. GOPATH is an
	// empty dir: trivy's go.mod analyzer would otherwise read the host's
	// module cache, making findings depend on the machine (and costing
	// about half a second per Go app); licences come from syft.
	cmd.Env = []string{
		"TMPDIR=" + filepath.Join(opts.Scratch, "tmp"),
		"HOME=" + opts.Scratch,
		"GOPATH=" + filepath.Join(opts.Scratch, "gopath"),
		"PATH=/nonexistent",
		"GOMAXPROCS=" + strconv.Itoa(procs),
	}
	cmd.Dir = opts.Scratch
	cmd.SysProcAttr = mode.procAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", command[0], err)
	}
	c := &child{cmd: cmd, in: json.NewEncoder(stdin), out: json.NewDecoder(bufio.NewReader(stdout)), tail: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		// A dying Go process prints every goroutine's stack: the log gets
		// the first lines of it, the tail keeps the last.
		dying := -1
		for n := 0; sc.Scan(); n++ {
			line := sc.Text()
			c.tail.add(line)
			if dying < 0 && (strings.HasPrefix(line, "fatal error: ") || strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "SIG")) {
				dying = n
			}
			switch {
			case dying >= 0 && n-dying < maxLoggedLines:
				logger.Error("scanner child: " + line)
			case dying >= 0 && n-dying == maxLoggedLines:
				logger.Error("scanner child: the rest of its stack dump is not logged")
			case dying < 0 && strings.Contains(line, "level=ERROR"):
				logger.Warn("scanner child: " + line)
			case dying < 0:
				// The scanners' warnings are about the input (trivy's
				// "no site-packages" on every Python app), not about the
				// worker: one per task at WARN buried the worker's log.
				logger.Debug("scanner child: " + line)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-logged
		c.err = cmd.Wait()
		close(c.done)
	}()
	var once sync.Once
	c.kill = func() {
		once.Do(func() {
			_ = stdin.Close()
			if cmd.Process != nil {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				_ = cmd.Process.Kill()
			}
		})
		<-c.done
	}
	c.stop = func() {
		_ = stdin.Close()
		select {
		case <-c.done:
		case <-time.After(stopGrace):
			c.kill()
		}
	}
	if err := c.in.Encode(opts); err != nil {
		c.kill()
		return nil, fmt.Errorf("send options to child: %w", err)
	}
	return c, nil
}

// ready waits for the child's ready frame.
func (c *child) ready(ctx context.Context) (ready, error) {
	var r ready
	if err := c.read(ctx, &r); err != nil {
		return r, fmt.Errorf("%w (child's last words: %s)", err, c.tail.String())
	}
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}

// call sends one request and reads its response, or fails when ctx ends
// or the child dies.
func (c *child) call(ctx context.Context, req request) (response, error) {
	var resp response
	if err := c.in.Encode(req); err != nil {
		return resp, fmt.Errorf("send task to child: %w", err)
	}
	return resp, c.read(ctx, &resp)
}

// read decodes the next frame into v, unless ctx ends first.
func (c *child) read(ctx context.Context, v any) error {
	errc := make(chan error, 1)
	go func() { errc <- c.out.Decode(v) }()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("read from child: %w", err)
		}
		return nil
	case <-ctx.Done():
		c.kill()
		<-errc
		return ctx.Err()
	}
}

// limit says which limit ended the child.
func (c *child) limit(timedOut bool, cfg Config) *workers.LimitError {
	<-c.done
	if timedOut {
		return &workers.LimitError{Limit: "time", Reason: fmt.Sprintf("scanner exceeded the time limit (%s) on this input", cfg.TaskTimeout)}
	}
	code := -1
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		code = ee.ExitCode()
	}
	switch {
	case code == exitCPU:
		return &workers.LimitError{Limit: "cpu", Reason: fmt.Sprintf("scanner exceeded the CPU time limit (%s) on this input", cfg.TaskCPU)}
	case code == exitMemory || c.tail.outOfMemory():
		return &workers.LimitError{Limit: "memory", Reason: fmt.Sprintf("scanner exceeded the memory limit (%s over the warm scanners) on this input", bytesIEC(cfg.TaskMemory))}
	}
	why := "crashed"
	if ee != nil {
		why = ee.ProcessState.String()
	}
	if fatal := c.tail.fatalLine(); fatal != "" {
		why += ": " + fatal
	}
	return &workers.LimitError{Limit: "crash", Reason: fmt.Sprintf("scanner process died on this input (%s)", why)}
}

func bytesIEC(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// maxLoggedLines bounds how much of a dying child's stack dump goes into
// the worker's log.
const maxLoggedLines = 40

// tailBuffer keeps the last max bytes of a child's stderr, to tell why it
// died.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	oom bool
	// fatal is the Go runtime's first "fatal error:" line, if any.
	fatal string
}

func (t *tailBuffer) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// The Go runtime's last words on a failed allocation come before its
	// goroutine dump, which may be longer than the tail kept.
	if strings.HasPrefix(line, "fatal error: ") && (strings.Contains(line, "out of memory") || strings.Contains(line, "cannot allocate memory")) ||
		strings.HasPrefix(line, "runtime: out of memory") {
		t.oom = true
	}
	if t.fatal == "" && (strings.HasPrefix(line, "fatal error: ") || strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "SIG")) {
		t.fatal = line
	}
	t.buf = append(append(t.buf, line...), '\n')
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
}

func (t *tailBuffer) fatalLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fatal
}

func (t *tailBuffer) outOfMemory() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.oom
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

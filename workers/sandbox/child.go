package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"

	"github.com/tollgate/tollgate/workers"
)

// Loader loads a child's scanners once, before the child restricts
// itself; close releases them.
type Loader func(ctx context.Context, opts ChildOptions, logger *slog.Logger) (scanners map[string]workers.Scanner, close func() error, err error)

// IsChild reports whether this process was started as a sandbox child
// (its first argument is ChildCommand). A test binary whose tests start
// sandboxes calls ServeChild from TestMain when it is.
func IsChild(args []string) bool { return len(args) > 1 && args[1] == ChildCommand }

// ServeChild is a child's whole life: it reads its options from stdin,
// loads the scanners with load, restricts itself, answers that it is
// ready, and serves tasks until stdin closes. It returns the process's exit
// code. Standard output carries the protocol alone: the process's own
// standard output is moved to stderr first.
func ServeChild(ctx context.Context, load Loader) int {
	proto, err := takeStdout()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox child:", err)
		return 1
	}
	in := json.NewDecoder(bufio.NewReader(os.Stdin))
	out := json.NewEncoder(proto)
	var opts ChildOptions
	if err := in.Decode(&opts); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox child: read options:", err)
		return 1
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(opts.LogLevel))
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)

	scanners, closeFn, err := load(ctx, opts, logger)
	if err != nil {
		_ = out.Encode(ready{Error: fmt.Sprintf("load scanners: %v", err)})
		return 1
	}
	defer func() { _ = closeFn() }()
	var profile *os.File
	if opts.CPUProfile != "" {
		if profile, err = os.Create(opts.CPUProfile); err != nil {
			_ = out.Encode(ready{Error: fmt.Sprintf("create CPU profile: %v", err)})
			return 1
		}
		defer profile.Close()
	}
	iso, err := restrict(opts)
	if err != nil {
		_ = out.Encode(ready{Error: err.Error()})
		return 1
	}
	watchCPU()
	if profile != nil {
		if err := pprof.StartCPUProfile(profile); err == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if err := out.Encode(ready{Isolation: iso}); err != nil {
		return 1
	}
	for {
		var req request
		if err := in.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return 0
			}
			fmt.Fprintln(os.Stderr, "sandbox child: read task:", err)
			return 1
		}
		if err := out.Encode(serve(ctx, scanners, req, opts)); err != nil {
			fmt.Fprintln(os.Stderr, "sandbox child: write result:", err)
			return 1
		}
	}
}

// serve runs one task under the task's CPU budget.
func serve(ctx context.Context, scanners map[string]workers.Scanner, req request, opts ChildOptions) response {
	sc, ok := scanners[req.Task.Kind]
	if !ok {
		return response{Error: fmt.Sprintf("no scanner for task kind %q", req.Task.Kind), Class: classBadInput}
	}
	limitCPU(opts)
	defer unlimitCPU()
	defer watchMemory()()
	out, err := sc.Scan(ctx, req.Task, req.Dir)
	if err != nil {
		return response{Error: err.Error(), Class: classify(err)}
	}
	if opts.OutDir == "" || len(out.Files) == 0 {
		return response{Output: out}
	}
	refs := make([]fileRef, 0, len(out.Files))
	for i, f := range out.Files {
		name := strconv.Itoa(i)
		if err := os.WriteFile(filepath.Join(opts.OutDir, name), f.Data, 0o600); err != nil {
			return response{Error: fmt.Sprintf("write output %s: %v", f.Name, err)}
		}
		refs = append(refs, fileRef{Name: f.Name, ContentType: f.ContentType, File: name})
	}
	out.Files = nil
	return response{Output: out, Files: refs}
}

// classify says whose fault a scanner's error is. An operation the sandbox
// refused (a read outside the tree, a connection) is the input's: a parser
// that follows the input out of its tree is what the sandbox is for.
func classify(err error) string {
	switch {
	case workers.IsBadInput(err):
		return classBadInput
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENETDOWN):
		return classRefused
	}
	return classFailed
}

// takeStdout returns the protocol's stream (the original standard output)
// and points file descriptor 1, and os.Stdout, at stderr.
func takeStdout() (*os.File, error) {
	fd, err := unix.Dup(1)
	if err != nil {
		return nil, fmt.Errorf("dup stdout: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.Dup2(2, 1); err != nil {
		return nil, fmt.Errorf("redirect stdout: %w", err)
	}
	os.Stdout = os.NewFile(1, "/dev/stdout")
	return os.NewFile(uintptr(fd), "protocol"), nil
}

// restrict applies the memory limit and Landlock. It runs after the
// scanners have loaded, so that everything they keep open (the DB) was
// opened before.
func restrict(opts ChildOptions) (Isolation, error) {
	var iso Isolation
	// Memory: the warm scanners' data segment now, plus the task margin.
	// RLIMIT_DATA counts the Go heap's mappings (not the DB's file-backed
	// mmap); the soft Go limit makes the collector work hard before the
	// hard limit ends the process.
	//
	// The watchdog (watchMemory) ends a task over warm+TaskMemory with a
	// known exit code; the rlimit, a quarter higher, is the backstop for
	// what the watchdog does not see in time. The Go runtime does not die
	// cleanly when the kernel refuses it memory (it may fault in the
	// collector), so the rlimit alone would not say which limit it was.
	warm, heap := vmData(), goMemory()
	backstop := warm + opts.TaskMemory + max(opts.TaskMemory/4, 256<<20)
	if err := unix.Setrlimit(unix.RLIMIT_DATA, &unix.Rlimit{Cur: uint64(backstop), Max: uint64(backstop)}); err != nil {
		return iso, fmt.Errorf("set RLIMIT_DATA: %w", err)
	}
	debug.SetMemoryLimit(heap + opts.TaskMemory*9/10)
	memoryCeiling = heap + opts.TaskMemory
	// A core dump of a scanner would hold the input's data outside the tree.
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})

	abi, err := llsys.LandlockGetABIVersion()
	if err != nil || abi < 1 {
		return iso, nil
	}
	rules := []landlock.Rule{
		landlock.RODirs(append([]string{opts.Tree}, opts.ReadRoots...)...).IgnoreIfMissing(),
		landlock.RWDirs(opts.Scratch),
		landlock.RWFiles("/dev/null").IgnoreIfMissing(),
	}
	for _, dir := range []string{opts.DBDir, opts.RulesDir} {
		if dir != "" {
			rules = append(rules, landlock.RODirs(dir).IgnoreIfMissing())
		}
	}
	// BestEffort: the strongest ABI the kernel has (network rules from
	// ABI 4, signal and abstract-socket scoping from 6).
	if err := landlock.V11.BestEffort().Restrict(rules...); err != nil {
		return iso, fmt.Errorf("landlock: %w", err)
	}
	iso.Landlock = abi
	return iso, nil
}

// memoryCeiling is the Go memory (goMemory) a task may reach.
var memoryCeiling int64

// goMemory is the memory the Go runtime holds from the OS and has not
// released.
func goMemory() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}

// watchMemory ends the process with exitMemory when the task's memory goes
// over memoryCeiling, until stop is called. It looks every 5ms: a bomb
// that outruns it meets the rlimit backstop.
func watchMemory() (stop func()) {
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if memoryCeiling > 0 && goMemory() > memoryCeiling {
				fmt.Fprintln(os.Stderr, "sandbox child: memory limit exceeded")
				os.Exit(exitMemory)
			}
		}
	}()
	return func() { close(done) }
}

// vmData is this process's data segment (VmData), in bytes.
func vmData() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmData:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// limitCPU lets the coming task use opts.TaskCPU of CPU time: the kernel
// sends SIGXCPU past it.
func limitCPU(opts ChildOptions) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return
	}
	used := ru.Utime.Sec + ru.Stime.Sec + 1
	soft := uint64(used) + uint64(math.Ceil(opts.TaskCPU.Seconds()))
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CPU, &cur); err != nil {
		return
	}
	_ = unix.Setrlimit(unix.RLIMIT_CPU, &unix.Rlimit{Cur: min(soft, cur.Max), Max: cur.Max})
}

func unlimitCPU() {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CPU, &cur); err == nil {
		_ = unix.Setrlimit(unix.RLIMIT_CPU, &unix.Rlimit{Cur: cur.Max, Max: cur.Max})
	}
}

// watchCPU ends the process with exitCPU on SIGXCPU (Go ignores the signal
// by default).
func watchCPU() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGXCPU)
	go func() {
		<-ch
		fmt.Fprintln(os.Stderr, "sandbox child: CPU time limit exceeded")
		os.Exit(exitCPU)
	}()
}

package stack

import (
	"bufio"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// startLogged starts cmd as c with its stdout and stderr on one pipe, whose
// lines go to logger at debug level (as name), to onLine when it is not nil,
// and to the returned tail for error messages. The reader sees EOF when the
// server exits.
func (c *child) startLogged(cmd *exec.Cmd, logger *slog.Logger, name string, onLine func(string)) (*lastLines, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := c.start(cmd); err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	pw.Close()
	tail := &lastLines{}
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			tail.add(line)
			logger.Debug(name, "line", line)
			if onLine != nil {
				onLine(line)
			}
		}
	}()
	return tail, nil
}

// restartable holds a server's current process, which a restart replaces:
// Pid and stopWith act on whichever runs now, from any goroutine.
type restartable struct {
	mu   sync.Mutex
	proc *child
}

func (r *restartable) set(c *child) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.proc = c
}

// Pid is the current process's id, or 0 before the first start.
func (r *restartable) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return 0
	}
	return r.proc.Pid()
}

// stopWith stops the current process: sig, then SIGKILL after grace.
func (r *restartable) stopWith(sig syscall.Signal, grace time.Duration) {
	r.mu.Lock()
	c := r.proc
	r.mu.Unlock()
	if c != nil {
		c.stopWith(sig, grace)
	}
}

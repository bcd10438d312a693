package stack

import (
	"sync"
	"syscall"
	"time"
)

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

package stack

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// findTool returns the binary to run: explicit, else $envVar, else name on
// PATH, else the one scripts/tools.sh installed as <ToolsDir>/<name>-<version>/<name>.
func findTool(explicit, envVar, name, version string, notFound error) (string, error) {
	if explicit = cmp.Or(explicit, os.Getenv(envVar)); explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("%s %q: %w", name, explicit, err)
		}
		return explicit, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join(ToolsDir(), name+"-"+version, name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", notFound
}

// child is a server running as a child process.
type child struct {
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// start starts cmd and watches for its exit. A credential set on cmd is
// kept: the child runs as that user.
func (c *child) start(cmd *exec.Cmd) error {
	attr := childProcAttr()
	if cmd.SysProcAttr != nil {
		attr.Credential = cmd.SysProcAttr.Credential
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return err
	}
	c.cmd, c.exited = cmd, make(chan struct{})
	go func() { c.waitErr = cmd.Wait(); close(c.exited) }()
	return nil
}

// Pid is the server's process id, or 0 before it started.
func (c *child) Pid() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// exitErr describes how the process ended, once it has.
func (c *child) exitErr() error {
	return errors.Join(ErrExited, c.waitErr)
}

// ErrExited is a server that exited while it was starting.
var ErrExited = errors.New("server exited")

// Stop ends the server: SIGTERM, then SIGKILL after five seconds.
func (c *child) Stop() { c.stopWith(syscall.SIGTERM, 5*time.Second) }

// stopWith sends sig, then SIGKILL if the server has not exited after grace.
func (c *child) stopWith(sig syscall.Signal, grace time.Duration) {
	c.stopOnce.Do(func() {
		if c.cmd == nil || c.cmd.Process == nil {
			return
		}
		_ = c.cmd.Process.Signal(sig)
		select {
		case <-c.exited:
		case <-time.After(grace):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	})
}

// Kill ends the server at once, as a crash would.
func (c *child) Kill() {
	c.stopOnce.Do(func() {
		if c.cmd == nil || c.cmd.Process == nil {
			return
		}
		_ = c.cmd.Process.Kill()
		<-c.exited
	})
}

// Pause stops the server's process (SIGSTOP), as a hung server would be:
// connections stay open and nothing answers. Resume continues it.
func (c *child) Pause() error { return c.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (c *child) Resume() error { return c.cmd.Process.Signal(syscall.SIGCONT) }

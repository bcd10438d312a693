package sandbox

import (
	"errors"
	"os"
	"syscall"
)

// unshareAll is the strongest mode: the child gets its own user namespace
// (it is root only there, so it cannot raise the rlimits it set itself or
// act on the host as root) and its own network namespace (no interface but
// a loopback that is down: no connection leaves it).
const unshareAll = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET

// isolationMode is one way to start a child, strongest first.
type isolationMode struct {
	name  string
	flags uintptr
}

func (m isolationMode) weaker() bool  { return m.flags != unshareAll }
func (m isolationMode) network() bool { return m.flags&syscall.CLONE_NEWNET != 0 }
func (m isolationMode) userNS() bool  { return m.flags&syscall.CLONE_NEWUSER != 0 }

// isolationModes are tried in order until one starts: where user
// namespaces are not permitted (some container runtimes), a root worker
// still gets the network namespace; where neither is permitted, the child
// runs in the host's network with only Landlock's TCP rules, and the pool
// logs the weaker mode.
func isolationModes() []isolationMode {
	return []isolationMode{
		{name: "user and network namespaces", flags: unshareAll},
		{name: "network namespace only", flags: syscall.CLONE_NEWNET},
		{name: "no namespaces (Landlock only)", flags: 0},
	}
}

func (m isolationMode) procAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Cloneflags: m.flags,
	}
	if m.flags&syscall.CLONE_NEWUSER != 0 {
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
	return a
}

// fallbackOn tells whether a start failure means the kernel or the
// runtime does not permit this mode, so that a weaker one is tried.
func (m isolationMode) fallbackOn(err error) bool {
	return m.flags != 0 && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EACCES))
}

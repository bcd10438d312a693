package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
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

// canReadBeneath says whether readBeneath works here (openat2, Linux 5.6).
func canReadBeneath() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// readBeneath reads name, a path below dir, and removes it. No component
// of name may be a symlink, and the file must be a regular file with one
// link and at most limit bytes: dir is written by a sandboxed child, and
// this runs in the worker, which can read what the child cannot.
func readBeneath(dir, name string, limit int64) ([]byte, error) {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("%s is not a regular file", name)
	case st.Nlink != 1:
		return nil, fmt.Errorf("%s has %d links", name, st.Nlink)
	case st.Size > limit:
		return nil, fmt.Errorf("%s has %d bytes, over the limit of %d", name, st.Size, limit)
	}
	data := make([]byte, st.Size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if err := unix.Unlinkat(root, name, 0); err != nil {
		return nil, fmt.Errorf("remove %s: %w", name, err)
	}
	return data, nil
}

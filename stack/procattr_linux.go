package stack

import "syscall"

// childProcAttr makes the child die with this process, so a killed tollgate
// never leaves a dev server behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

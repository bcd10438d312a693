//go:build !linux

package sandbox

import (
	"errors"
	"syscall"
)

// isolationMode: without Linux namespaces, a child is only a separate
// process with an empty environment (and whatever Landlock's stubs do:
// nothing); the pool logs it as a weaker mode.
type isolationMode struct{ name string }

func isolationModes() []isolationMode { return []isolationMode{{name: "no namespaces"}} }

func (isolationMode) weaker() bool                   { return true }
func (isolationMode) network() bool                  { return false }
func (isolationMode) userNS() bool                   { return false }
func (isolationMode) procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
func (isolationMode) fallbackOn(error) bool          { return false }

// canReadBeneath: without openat2 the children send output documents
// inline.
func canReadBeneath() bool { return false }

func readBeneath(dir, name string, limit int64) ([]byte, error) {
	return nil, errors.New("reading a child's output files needs Linux")
}

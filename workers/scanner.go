// Package workers runs scanner tasks pulled from a pool's JetStream consumer
// and completes the Temporal activity that dispatched each one. A worker
// heartbeats to both while it scans, so the task of a worker that dies is
// dispatched again and nothing is lost.
package workers

import (
	"context"

	"github.com/tollgate/tollgate/tasks"
)

// Scanner runs one kind of task over a source tree.
type Scanner interface {
	Scan(ctx context.Context, task tasks.Task, dir string) (Output, error)
}

// ScannerFunc adapts a function to Scanner.
type ScannerFunc func(ctx context.Context, task tasks.Task, dir string) (Output, error)

// Scan calls f.
func (f ScannerFunc) Scan(ctx context.Context, task tasks.Task, dir string) (Output, error) {
	return f(ctx, task, dir)
}

var _ Scanner = ScannerFunc(nil)

// Output is a scanner's result plus the files to keep as evidence; the worker
// stores the files and adds their references to the result.
type Output struct {
	Result tasks.Result
	Files  []File
}

// File is one output document.
type File struct {
	Name        string
	ContentType string
	Data        []byte
}

// Sandbox runs scanners out of the worker's process: one slot per running
// task, each a warm child process without the worker's credentials or
// network (package workers/sandbox).
type Sandbox interface {
	// Acquire waits for a free slot.
	Acquire(ctx context.Context) (Slot, error)
}

// Slot is one sandboxed scanner process, held by one task at a time.
type Slot interface {
	// Dir is where the task's input is prepared: the tree the slot's
	// scanners may read.
	Dir() string
	// Scan runs the task's scanner over dir. An input that made the
	// sandbox stop the scanner (a limit, a refused operation, a crash)
	// is a *LimitError.
	Scanner
	// Release hands the slot back.
	Release()
}

// LimitError is a task whose scanner the sandbox stopped: its process
// exceeded a limit (memory, CPU time, the deadline), crashed, or was refused
// an operation (a read outside its tree, a connection). It is the input's
// fault: after at most one more try, the scan is blocked with Reason.
type LimitError struct {
	// Limit names it: memory, cpu, time, refused or crash.
	Limit  string
	Reason string
}

func (e *LimitError) Error() string { return e.Reason }

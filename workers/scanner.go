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

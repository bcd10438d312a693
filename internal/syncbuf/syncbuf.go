// Package syncbuf is a bytes.Buffer that a process's output (or a logger)
// and a reader can share.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is safe for concurrent writes and reads. With Limit set, a write
// that would take it past Limit bytes first drops what it holds: it keeps the
// latest output of a long-running process.
type Buffer struct {
	Limit int
	mu    sync.Mutex
	buf   bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Limit > 0 && b.buf.Len()+len(p) > b.Limit {
		b.buf.Reset()
	}
	return b.buf.Write(p)
}

// String returns what the buffer holds.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

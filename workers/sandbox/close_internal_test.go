package sandbox

import (
	"context"
	"os"
	"testing"

	"github.com/tollgate/tollgate/tasks"
)

// A child that died during a task is restarted in the background. If the
// pool closes before that restart gets the slot, the restart must not start
// a child in the work dir Close removed (it did, and the test's TempDir
// cleanup then found files appearing under it).
func TestRestartQueuedBehindCloseStartsNoChild(t *testing.T) {
	ctx := context.Background()
	p, err := Start(ctx, Config{Command: []string{os.Args[0], ChildCommand}, WorkDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := p.all[0]
	p.Close()
	s.restart(ctx)
	if s.proc != nil {
		s.stop()
		t.Fatal("restart after Close started a child")
	}
	if _, err := os.Stat(p.base); !os.IsNotExist(err) {
		t.Fatalf("work dir %s after Close and a restart: %v, want it gone", p.base, err)
	}
	if _, err := s.Scan(ctx, tasks.Task{ScanID: "after-close"}, s.tree); err == nil {
		t.Fatal("a scan on a closed pool succeeded")
	}
}

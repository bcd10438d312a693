package sandbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workers/sandbox"
)

// Scanner kinds this test binary registers in its sandbox children, to
// misbehave on purpose. A task's App carries the scanner's argument.
const (
	kindOK      = "test-ok"      // reports one secret per file in the tree
	kindMemBomb = "test-membomb" // allocates until it is stopped
	kindSpin    = "test-spin"    // spins the CPU forever
	kindHang    = "test-hang"    // blocks forever
	kindDial    = "test-dial"    // connects to App (host:port)
	kindRead    = "test-read"    // reads the file App
)

// TestMain serves sandbox children when the pool re-executes this binary.
func TestMain(m *testing.M) {
	if sandbox.IsChild(os.Args) {
		os.Exit(sandbox.ServeChild(context.Background(), loadTestScanners))
	}
	os.Exit(m.Run())
}

func loadTestScanners(context.Context, sandbox.ChildOptions, *slog.Logger) (map[string]workers.Scanner, func() error, error) {
	return misbehaving(), func() error { return nil }, nil
}

// misbehaving are the misbehaving scanners.
func misbehaving() map[string]workers.Scanner {
	return map[string]workers.Scanner{
		kindOK: workers.ScannerFunc(func(_ context.Context, t tasks.Task, dir string) (workers.Output, error) {
			entries, err := os.ReadDir(dir)
			if err != nil {
				return workers.Output{}, err
			}
			res := tasks.Result{Kind: t.Kind}
			for _, e := range entries {
				if _, err := os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
					return workers.Output{}, err
				}
				res.Secrets = append(res.Secrets, report.Secret{Rule: "test", File: e.Name(), Line: 1})
			}
			return workers.Output{Result: res, Files: []workers.File{{Name: "out.txt", ContentType: "text/plain", Data: []byte("ok")}}}, nil
		}),
		kindMemBomb: workers.ScannerFunc(func(context.Context, tasks.Task, string) (workers.Output, error) {
			var keep [][]byte
			for {
				b := make([]byte, 64<<20)
				for i := range b {
					if i%4096 == 0 {
						b[i] = 1
					}
				}
				keep = append(keep, b)
			}
		}),
		kindSpin: workers.ScannerFunc(func(context.Context, tasks.Task, string) (workers.Output, error) {
			n := 0
			for {
				n++
			}
		}),
		kindHang: workers.ScannerFunc(func(context.Context, tasks.Task, string) (workers.Output, error) {
			select {}
		}),
		kindDial: workers.ScannerFunc(func(_ context.Context, t tasks.Task, _ string) (workers.Output, error) {
			c, err := net.DialTimeout("tcp", t.App, 5*time.Second)
			if err != nil {
				return workers.Output{}, fmt.Errorf("dial %s: %w", t.App, err)
			}
			c.Close()
			return workers.Output{Result: tasks.Result{Kind: t.Kind}}, nil
		}),
		kindRead: workers.ScannerFunc(func(_ context.Context, t tasks.Task, _ string) (workers.Output, error) {
			data, err := os.ReadFile(t.App)
			if err != nil {
				return workers.Output{}, fmt.Errorf("read %s: %w", t.App, err)
			}
			return workers.Output{Result: tasks.Result{Kind: t.Kind}, Files: []workers.File{{Name: "read", Data: data}}}, nil
		}),
	}
}

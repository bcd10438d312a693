package api_test

import (
	"context"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/storage"
)

// temporalEnv is what the tests of the API on real servers share: a
// Temporal dev server and local evidence and inputs stores, all closed when
// the test ends.
type temporalEnv struct {
	addr string
	ev   *storage.Local
	in   *storage.LocalInputs
}

func newTemporalEnv(ctx context.Context, t *testing.T) temporalEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the Temporal dev server")
	}
	tdev, err := stack.StartTemporalDev(ctx, stack.TemporalDevOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tdev.Stop)
	dir := t.TempDir()
	ev, err := storage.OpenLocal(filepath.Join(dir, "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	in, err := storage.OpenLocalInputs(filepath.Join(dir, "inputs"))
	if err != nil {
		t.Fatal(err)
	}
	return temporalEnv{addr: tdev.Addr, ev: ev, in: in}
}

// dial connects a client to the dev server, closed when the test ends.
func (e temporalEnv) dial(t *testing.T, opts client.Options) client.Client {
	t.Helper()
	opts.HostPort = e.addr
	c, err := client.Dial(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

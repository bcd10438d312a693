package orchestrator_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
)

// servers are the real servers an end-to-end test of the orchestrator
// runs on: nats-server with tollgate's streams, the Temporal dev server and
// a local evidence store under dir, all stopped when the test ends.
type servers struct {
	tc client.Client
	nc *nats.Conn
	js jetstream.JetStream
	ev *storage.Local
}

func startServers(ctx context.Context, t *testing.T, dir string, logger *slog.Logger) servers {
	t.Helper()
	ns, err := stack.StartNATS(ctx, stack.NATSOptions{StoreDir: filepath.Join(dir, "js")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	tdev, err := stack.StartTemporalDev(ctx, stack.TemporalDevOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tdev.Stop)
	tc, err := client.Dial(client.Options{HostPort: tdev.Addr, Logger: tlog.NewStructuredLogger(logger)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := tasks.EnsureStream(ctx, js, tasks.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	ev, err := storage.OpenLocal(filepath.Join(dir, "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	return servers{tc: tc, nc: nc, js: js, ev: ev}
}

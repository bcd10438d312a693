package loadtest

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/tollgate/tollgate/stack"
)

// RunNATSServer runs a JetStream-enabled nats-server on 127.0.0.1:port
// until ctx ends. The load test runs it as a process of its own (its binary
// re-run with the nats-server subcommand), so that NATS's CPU is counted
// apart from the driver's.
func RunNATSServer(ctx context.Context, port int, store string) error {
	ns, err := stack.StartNATS(ctx, stack.NATSOptions{StoreDir: store, Port: port})
	if err != nil {
		return err
	}
	<-ctx.Done()
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}

// natsServerMain is the nats-server subcommand: --port P --store DIR, until
// SIGTERM or SIGINT.
func natsServerMain(args []string) error {
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	port := fs.Int("port", 4222, "port on 127.0.0.1")
	store := fs.String("store", "", "JetStream store directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return RunNATSServer(ctx, *port, *store)
}

// NATSServerMain runs the nats-server subcommand of a program that embeds
// the load test.
func NATSServerMain(args []string) error { return natsServerMain(args) }

// NATSClusterNodeCommand is the subcommand that runs one node of the
// production-shaped stack's NATS cluster (stack.NATSServerMain: the
// nats-server command line) when no nats-server binary is installed.
const NATSClusterNodeCommand = "nats-cluster-node"

// Package stack starts the servers of tollgate's embedded mode in and beside
// the process: an in-process nats-server with JetStream and a Temporal CLI dev
// server as a child process. `tollgate scan`, `tollgate dev` and the
// end-to-end tests use it; the fleet connects to servers run elsewhere.
package stack

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSOptions configure the embedded nats-server.
type NATSOptions struct {
	// StoreDir is JetStream's storage directory (required).
	StoreDir string
	// Port to listen on, on 127.0.0.1 (default: a free port).
	Port int
}

// StartNATS starts an in-process nats-server with JetStream on loopback.
func StartNATS(ctx context.Context, opts NATSOptions) (*server.Server, error) {
	if opts.StoreDir == "" {
		return nil, fmt.Errorf("start nats-server: no JetStream store dir")
	}
	port := opts.Port
	if port == 0 {
		port = -1
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "tollgate-embedded",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("start nats-server in %q: %w", opts.StoreDir, err)
	}
	go ns.Start()
	wait := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	if !ns.ReadyForConnections(wait) {
		ns.Shutdown()
		return nil, fmt.Errorf("start nats-server in %q: not ready after %s", opts.StoreDir, wait)
	}
	return ns, nil
}

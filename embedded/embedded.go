// Package embedded runs the whole pipeline in one process, on real servers:
// an in-process nats-server, a Temporal dev server child process, the
// orchestrator (workflows and activities), one worker per pool with the
// scanners warm in sandboxed child processes (package workers/sandbox), and
// a local write-once evidence store. It is what
// `tollgate scan` runs, and what the end-to-end tests drive.
package embedded

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"golang.org/x/sync/errgroup"

	"github.com/tollgate/tollgate/fleet"
	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/telemetry"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workers/sandbox"
	"github.com/tollgate/tollgate/workers/scanners"
)

// Config of the embedded stack. Zero fields take the documented defaults.
type Config struct {
	// Orchestrator and Worker configure the roles as in the fleet (see
	// fleet.Orchestrator and fleet.Worker): the stack starts them through
	// the same fleet functions as `tollgate orchestrator` and `worker`.
	// Worker.DBDir "" means no DB: vulnerabilities are not checked and the
	// report says so. An empty Worker.SecretFingerprintKey is a random one
	// for this stack, logged.
	Orchestrator fleet.Orchestrator
	Worker       fleet.Worker
	// Version is written into SBOMs and SARIF.
	Version string
	// EvidenceDir is the local write-once evidence store (required).
	EvidenceDir string
	// InputsDir keeps submitted archives by digest (default: a directory in
	// StateDir). Scans of a directory do not use it.
	InputsDir string
	// Store, when set, replaces the local evidence and inputs stores (MinIO
	// for `tollgate dev` with TOLLGATE_MINIO_ENDPOINT set).
	Store Store
	// StateDir holds NATS's JetStream files (default: a temporary
	// directory removed on Close; a given one is created and kept).
	StateDir string
	// TemporalCLI is the temporal binary (default: see stack.FindTemporalCLI).
	TemporalCLI string
	// TemporalDBFile keeps workflow history in a file (default: in memory).
	TemporalDBFile string
	// ScanRoots are the directories whose scans (tasks.Input.Dir) the
	// sandboxed scanners may read (default: the working directory). An
	// archive's tree is always readable to them.
	ScanRoots []string
	// SandboxCommand starts a sandboxed scanner process (default: this
	// executable's `sandbox-child`; a test binary serves it from TestMain,
	// see sandbox.IsChild).
	SandboxCommand []string
	// Metrics, when set, receives the Temporal SDK's metrics and the
	// workflows' own (guard and rollback counters).
	Metrics *telemetry.Metrics
	// Tracing, when set, traces every scan across Temporal, NATS and the
	// workers.
	Tracing *telemetry.Tracing
	Logger  *slog.Logger
}

// fleet is the stack's roles' configuration, as the fleet wires them: the
// stack's workers are named for it and stop sooner than a fleet's.
func (c Config) fleet() fleet.Config {
	w := c.Worker
	w.Name = cmp.Or(w.Name, "embedded")
	w.ShutdownGrace = cmp.Or(w.ShutdownGrace, 5*time.Second)
	w.SandboxCommand, w.ReadRoots = c.SandboxCommand, c.ScanRoots
	return fleet.Config{Orchestrator: c.Orchestrator, Worker: w, Version: c.Version}
}

// TemporalOptions are the options the stack starts its Temporal dev server
// with: on TemporalDBFile when set (tuned as stack.TemporalDevOptions says),
// else in memory.
func (c Config) TemporalOptions() stack.TemporalDevOptions {
	return stack.TemporalDevOptions{Binary: c.TemporalCLI, DBFile: c.TemporalDBFile, Logger: c.Logger}
}

// Store keeps evidence and input archives.
type Store interface {
	storage.Evidence
	PutInput(ctx context.Context, r io.Reader, size int64) (storage.Object, error)
	FetchTo(ctx context.Context, key, path string) error
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.EvidenceDir == "" && c.Store == nil {
		return errors.New("embedded stack: no evidence dir")
	}
	if err := c.fleet().Validate(); err != nil {
		return fmt.Errorf("embedded stack: %w", err)
	}
	return nil
}

// Stack is a running embedded pipeline.
type Stack struct {
	cfg       Config
	logger    *slog.Logger
	nats      *server.Server
	nc        *nats.Conn
	js        jetstream.JetStream
	temporal  *stack.TemporalDev
	client    client.Client
	orch      worker.Worker
	sandboxes []*sandbox.Pool
	evidence  storage.Evidence
	inputs    Store
	workers   []*workers.Worker
	stateDir  string
	ownState  bool
	closers   []func()

	cancelWorkers context.CancelFunc
	workersDone   sync.WaitGroup
}

// Start brings the whole stack up. Servers and scanners start concurrently.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Stack{cfg: cfg, logger: cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.stateDir = cfg.StateDir
	if s.stateDir == "" {
		if s.stateDir, err = os.MkdirTemp("", "tollgate-state-*"); err != nil {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
		s.ownState = true
	} else if err := os.MkdirAll(s.stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir %q: %w", s.stateDir, err)
	}
	if cfg.Store != nil {
		s.evidence, s.inputs = cfg.Store, cfg.Store
	} else {
		local, err := storage.OpenLocal(cfg.EvidenceDir)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { local.Close() })
		inputs, err := storage.OpenLocalInputs(cmp.Or(cfg.InputsDir, filepath.Join(s.stateDir, "inputs")))
		if err != nil {
			return nil, err
		}
		s.evidence, s.inputs = local, localStore{Local: local, LocalInputs: inputs}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		s.nats, err = stack.StartNATS(gctx, stack.NATSOptions{StoreDir: filepath.Join(s.stateDir, "jetstream")})
		return err
	})
	g.Go(func() error {
		var err error
		s.temporal, err = stack.StartTemporalDev(gctx, cfg.TemporalOptions())
		return err
	})
	if cfg.ScanRoots == nil {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("embedded stack: working directory: %w", err)
		}
		cfg.ScanRoots = []string{wd}
	}
	// Every sandboxed child must fingerprint secrets with the same key, or
	// one scan's fingerprints would differ between its children: without a
	// configured key the stack makes one for its own lifetime.
	if len(cfg.Worker.SecretFingerprintKey) == 0 {
		cfg.Worker.SecretFingerprintKey = make([]byte, scanners.MinFingerprintKeyBytes)
		rand.Read(cfg.Worker.SecretFingerprintKey)
		s.logger.WarnContext(ctx, "no secret fingerprint key configured: generated one for this stack; "+
			"secret fingerprints, and exceptions made from them, hold only for its own scans (set $TOLLGATE_SECRET_FINGERPRINT_KEY)")
	}
	fcfg := cfg.fleet()
	pools := []string{tasks.PoolFast, tasks.PoolDeep}
	s.sandboxes = make([]*sandbox.Pool, len(pools))
	for i, pool := range pools {
		g.Go(func() error {
			var err error
			s.sandboxes[i], err = fleet.StartSandbox(gctx, fcfg, pool, s.logger)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	if s.nc, err = nats.Connect(s.nats.ClientURL(), nats.Name("tollgate-embedded")); err != nil {
		return nil, fmt.Errorf("connect to embedded nats-server: %w", err)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	streamCfg := tasks.StreamConfig{}
	if err := tasks.EnsureStream(ctx, s.js, streamCfg); err != nil {
		return nil, err
	}
	copts, err := fleet.TemporalOptions(fleet.Temporal{Address: s.temporal.Addr, Namespace: s.temporal.Namespace},
		fleet.Observability{Logger: s.logger, Metrics: cfg.Metrics, Tracing: cfg.Tracing})
	if err != nil {
		return nil, err
	}
	if s.client, err = client.Dial(copts); err != nil {
		return nil, fmt.Errorf("connect to temporal at %s: %w", s.temporal.Addr, err)
	}

	clients := fleet.Clients{Temporal: s.client, JetStream: s.js, Stream: streamCfg, Evidence: s.evidence, Inputs: s.inputs}
	if s.orch, err = fleet.StartOrchestrator(ctx, fcfg, clients, fleet.Observability{Logger: s.logger, Metrics: cfg.Metrics}); err != nil {
		return nil, err
	}

	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancelWorkers = cancel
	for i, pool := range pools {
		// The workers report no metrics here: two pools share the process.
		w, err := fleet.NewWorker(fcfg, pool, clients, s.sandboxes[i], fleet.Observability{Logger: s.logger, Tracing: cfg.Tracing})
		if err != nil {
			return nil, err
		}
		s.workers = append(s.workers, w)
		s.workersDone.Add(1)
		go func() {
			defer s.workersDone.Done()
			if err := w.Run(wctx); err != nil {
				s.logger.Error("worker stopped", "pool", pool, "err", err)
			}
		}()
	}
	return s, nil
}

// Client is the stack's Temporal client.
func (s *Stack) Client() client.Client { return s.client }

// Evidence is the stack's evidence store.
func (s *Stack) Evidence() storage.Evidence { return s.evidence }

// Inputs is the stack's store of submitted archives.
func (s *Stack) Inputs() Store { return s.inputs }

// localStore joins the local evidence and inputs stores into one Store.
type localStore struct {
	*storage.Local
	*storage.LocalInputs
}

// JetStream is the stack's JetStream context.
func (s *Stack) JetStream() jetstream.JetStream { return s.js }

// NATSURL is the embedded nats-server's client URL.
func (s *Stack) NATSURL() string { return s.nats.ClientURL() }

// TemporalAddr is the dev server's frontend address.
func (s *Stack) TemporalAddr() string { return s.temporal.Addr }

// Close stops everything, workers first.
func (s *Stack) Close() {
	if s.cancelWorkers != nil {
		s.cancelWorkers()
		s.workersDone.Wait()
	}
	if s.orch != nil {
		s.orch.Stop()
	}
	if s.client != nil {
		s.client.Close()
	}
	for _, p := range s.sandboxes {
		if p != nil {
			p.Close()
		}
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.nats != nil {
		s.nats.Shutdown()
		s.nats.WaitForShutdown()
	}
	if s.temporal != nil {
		s.temporal.Stop()
	}
	for _, c := range s.closers {
		c()
	}
	if s.ownState {
		_ = os.RemoveAll(s.stateDir)
	}
}

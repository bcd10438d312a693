package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"
)

// ProductionOptions configure the production-shaped stack on one machine.
type ProductionOptions struct {
	// Dir holds every server's state (required): postgres/, temporal/,
	// nats/, minio/.
	Dir string
	// NATS configures the JetStream cluster (Dir defaults to Dir/nats,
	// Nodes to 3); tollgate's streams get replicas 3, or one per node when
	// fewer.
	NATS NATSClusterOptions
	// PublicMinIOMetrics serves MinIO's metrics without a token (the load
	// test counts S3 requests): never for a deployment.
	PublicMinIOMetrics bool
	Logger             *slog.Logger
}

// Production is the fleet's servers in their production shape, each a
// process of its own on loopback: PostgreSQL, the Temporal server on it
// (history and SQL visibility), a JetStream cluster and MinIO over several
// drives with Object Lock.
type Production struct {
	Postgres *Postgres
	Temporal *TemporalServer
	NATS     *NATSCluster
	MinIO    *MinIO
	replicas int
}

// StartProduction starts PostgreSQL, then the Temporal server on it, the
// NATS cluster and MinIO, and returns when all of them serve. On an error
// it stops what it started.
func StartProduction(ctx context.Context, opts ProductionOptions) (_ *Production, err error) {
	if opts.Dir == "" {
		return nil, errors.New("start production stack: no dir")
	}
	logger := cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	p := &Production{}
	defer func() {
		if err != nil {
			p.Stop()
		}
	}()
	begin := time.Now()
	// The NATS cluster and MinIO do not depend on the database: they
	// start while PostgreSQL and then Temporal come up.
	type started struct {
		what string
		err  error
	}
	done := make(chan started, 2)
	natsOpts := opts.NATS
	natsOpts.Dir = cmp.Or(natsOpts.Dir, filepath.Join(opts.Dir, "nats"))
	natsOpts.Logger = cmp.Or(natsOpts.Logger, logger)
	go func() {
		c, err := StartNATSCluster(ctx, natsOpts)
		p.NATS = c
		done <- started{"nats cluster", err}
	}()
	go func() {
		m, err := StartMinIO(ctx, MinIOOptions{DataDir: filepath.Join(opts.Dir, "minio"), Drives: 4,
			PublicMetrics: opts.PublicMinIOMetrics, Logger: logger})
		p.MinIO = m
		done <- started{"minio", err}
	}()
	var errs []error
	if p.Postgres, err = StartPostgres(ctx, PostgresOptions{DataDir: filepath.Join(opts.Dir, "postgres"), Logger: logger}); err != nil {
		errs = append(errs, err)
	} else if p.Temporal, err = StartTemporalServer(ctx, TemporalServerOptions{Postgres: p.Postgres.PostgresConn,
		Dir: filepath.Join(opts.Dir, "temporal"), Logger: logger}); err != nil {
		errs = append(errs, err)
	}
	for range 2 {
		if s := <-done; s.err != nil {
			errs = append(errs, fmt.Errorf("start %s: %w", s.what, s.err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("start production stack in %q: %w", opts.Dir, err)
	}
	p.replicas = min(3, len(p.NATS.Nodes))
	logger.InfoContext(ctx, "production stack ready", "took", time.Since(begin).Round(time.Millisecond),
		"temporal", p.Temporal.Addr, "nats", p.NATS.URL(), "minio", p.MinIO.Endpoint)
	return p, nil
}

// Env is the TOLLGATE_* settings that point a tollgate process at the
// stack, as a user would set them.
func (p *Production) Env() []string {
	return []string{
		"TOLLGATE_NATS_URL=" + p.NATS.URL(),
		"TOLLGATE_NATS_REPLICAS=" + strconv.Itoa(p.replicas),
		"TOLLGATE_TEMPORAL_ADDRESS=" + p.Temporal.Addr,
		"TOLLGATE_TEMPORAL_NAMESPACE=" + p.Temporal.Namespace,
		"TOLLGATE_MINIO_ENDPOINT=" + p.MinIO.Endpoint,
		"TOLLGATE_MINIO_ACCESS_KEY=" + p.MinIO.AccessKey,
		"TOLLGATE_MINIO_SECRET_KEY=" + p.MinIO.SecretKey,
	}
}

// Stop stops every server it started: Temporal before its database.
func (p *Production) Stop() {
	if p.Temporal != nil {
		p.Temporal.Stop()
	}
	if p.Postgres != nil {
		p.Postgres.Stop()
	}
	if p.NATS != nil {
		p.NATS.Stop()
	}
	if p.MinIO != nil {
		p.MinIO.Stop()
	}
}

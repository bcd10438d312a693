// Package orchestrator is the orchestrator process: a Temporal worker on the
// orchestrator task queue that runs the workflows and the orchestration
// activities (dispatch, policy, finalize). `tollgate orchestrator` runs it on
// its own; the embedded stack runs it in-process.
package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tollgate/tollgate/activities"
	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/vex"
	"github.com/tollgate/tollgate/workflows"
)

// Config of the orchestrator.
type Config struct {
	// PolicyDir replaces the embedded policy bundle when set.
	PolicyDir string
	// LicenseDeny replaces the bundle's licence deny list when not nil.
	LicenseDeny []string
	// Stream is the JetStream topology tasks are published to.
	Stream tasks.StreamConfig
	// MaxConcurrentActivities bounds activities run at once (default 200:
	// dispatches and finalizes are cheap).
	MaxConcurrentActivities int
	// SigningKey is a PEM PKCS#8 private key (Ed25519 or ECDSA P-256) that
	// signs each scan's in-toto attestation; empty leaves evidence unsigned.
	SigningKey string
	// Version is tollgate's version, written into SARIF.
	Version string
	// Targets are the deploy targets rollbacks switch, keyed "tenant/app"
	// only (see ParseTargetKey).
	Targets map[string]deployers.Target
	// DefaultTarget, when set, is the operator's deploy target for every
	// app of every tenant without its own entry in Targets (the request it
	// gets names the tenant).
	DefaultTarget *deployers.Target
	// Health pulls guard samples from Prometheus; nil turns pulling off
	// (guards whose rules have queries then record inconclusive windows).
	Health activities.HealthPuller
	// HealthLag is how far behind samples are pulled (see
	// activities.Guard.PullLag).
	HealthLag time.Duration
	// RematchInterval is how often the live releases' SBOMs are matched
	// against the workers' DB again (default 1h; negative: never).
	RematchInterval time.Duration
	// TTLInterval is how often the idle-app TTL sweeps the apps (default
	// 1h; negative: never). The periods come from policy data (ttl).
	TTLInterval time.Duration
	// EventsWebhookURL, when set, receives each verdict event, signed
	// with EventsWebhookSecret (at least 32 bytes). Redirects are not
	// followed, and the URL is redacted in errors and logs.
	EventsWebhookURL    string
	EventsWebhookSecret string
}

// Validate checks the configuration Start cannot default.
func (c Config) Validate() error {
	if err := activities.ValidateEventsWebhook(c.EventsWebhookURL, []byte(c.EventsWebhookSecret)); err != nil {
		return fmt.Errorf("orchestrator config: %w", err)
	}
	return nil
}

// Deps are the orchestrator's clients.
type Deps struct {
	Temporal  client.Client
	Publisher activities.Publisher
	Evidence  storage.Evidence
	// Meter receives the scan metrics (none when nil).
	Meter  metric.Meter
	Logger *slog.Logger
}

// Start compiles the policies and starts the Temporal worker. Stop the
// returned worker to shut down.
func Start(ctx context.Context, cfg Config, deps Deps) (worker.Worker, error) {
	if deps.Temporal == nil || deps.Publisher == nil || deps.Evidence == nil {
		return nil, errors.New("orchestrator needs a Temporal client, a NATS publisher and an evidence store")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cmp.Or(deps.Logger, slog.New(slog.DiscardHandler))
	bundle, err := policies.Load(cfg.PolicyDir, cfg.LicenseDeny)
	if err != nil {
		return nil, err
	}
	engine, err := policies.NewEngine(ctx, bundle)
	if err != nil {
		return nil, err
	}
	policyDigest, err := bundle.Digest()
	if err != nil {
		return nil, err
	}
	w := worker.New(deps.Temporal, workflows.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: cmp.Or(cfg.MaxConcurrentActivities, 200),
	})
	// New scans start as ScanWorkflowV2; ScanWorkflow runs those started
	// before it to their end.
	w.RegisterWorkflowWithOptions(workflows.ScanWorkflowV2, workflow.RegisterOptions{Name: workflows.ScanWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.ScanWorkflow, workflow.RegisterOptions{Name: workflows.ScanWorkflowV1Name})
	w.RegisterWorkflow(workflows.GuardWorkflow)
	w.RegisterWorkflow(workflows.RollbackWorkflow)
	w.RegisterWorkflow(workflows.RematchWorkflow)
	w.RegisterWorkflow(workflows.RematchAppWorkflow)
	w.RegisterWorkflow(workflows.TTLWorkflow)
	w.RegisterWorkflow(workflows.ReviveWorkflow)
	queued := &activities.QueuedTasks{Heartbeater: deps.Temporal, Logger: logger}
	acts := &activities.Activities{Publisher: deps.Publisher, Stream: cfg.Stream, Policies: engine, Evidence: deps.Evidence, Logger: logger, Version: cfg.Version, Meter: deps.Meter,
		Queued: queued, PolicyDigest: policyDigest}
	lister, ok := deps.Evidence.(storage.Lister)
	if !ok {
		return nil, errors.New("orchestrator: the evidence store cannot list releases")
	}
	rels := &releases.Store{Evidence: deps.Evidence, Lister: lister}
	acts.Exceptions = &exceptions.Store{Evidence: deps.Evidence, Lister: lister}
	acts.VEX = &vex.Store{Evidence: deps.Evidence, Lister: lister}
	if cfg.SigningKey != "" {
		signer, err := attest.LoadSigner(cfg.SigningKey)
		if err != nil {
			return nil, fmt.Errorf("load signing key: %w", err)
		}
		acts.Signer = signer
		// Releases roll back only to scans signed with this key.
		if rels.Verifier, err = attest.NewVerifier(signer.Public()); err != nil {
			return nil, fmt.Errorf("load signing key: %w", err)
		}
	}
	targets, err := newTargets(cfg.Targets, cfg.DefaultTarget, logger)
	if err != nil {
		return nil, err
	}
	acts.Register(w)
	guard := &activities.Guard{
		Releases: rels, Rollbacks: &control.Guards{Temporal: deps.Temporal}, Targets: targets,
		Policy: engine, Evidence: deps.Evidence, Health: cfg.Health, PullLag: cfg.HealthLag, Logger: logger,
	}
	guard.Register(w)
	(&activities.Rematch{
		Releases: rels, Evidence: deps.Evidence, Lister: lister, Publisher: deps.Publisher,
		Policy: acts, Exceptions: acts.Exceptions,
		WebhookURL: cfg.EventsWebhookURL, WebhookSecret: []byte(cfg.EventsWebhookSecret), Logger: logger,
	}).Register(w)
	(&activities.TTL{
		Apps: rels, Scans: &control.Scans{Temporal: deps.Temporal}, Guards: &control.Guards{Temporal: deps.Temporal},
		Policy: engine, Targets: targets, Logger: logger,
		Events: &activities.Events{Publisher: deps.Publisher, WebhookURL: cfg.EventsWebhookURL, WebhookSecret: []byte(cfg.EventsWebhookSecret), Logger: logger},
	}).Register(w)
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start orchestrator on task queue %q: %w", workflows.TaskQueue, err)
	}
	if err := EnsureRematchSchedule(ctx, deps.Temporal, cfg.RematchInterval); err != nil {
		w.Stop()
		return nil, err
	}
	if err := EnsureTTLSchedule(ctx, deps.Temporal, cfg.TTLInterval); err != nil {
		w.Stop()
		return nil, err
	}
	beatCtx, stopBeats := context.WithCancel(context.WithoutCancel(ctx))
	beats := make(chan struct{})
	go func() {
		defer close(beats)
		queued.Run(beatCtx)
	}()
	logger.InfoContext(ctx, "orchestrator started", "task_queue", workflows.TaskQueue, "policy", bundle.Source)
	return &running{Worker: w, stop: func() { stopBeats(); <-beats }}, nil
}

// running is the orchestrator's Temporal worker and the heartbeats of the
// tasks it dispatched, stopped together.
type running struct {
	worker.Worker
	stop func()
}

// Stop stops the worker, then the heartbeats: the tasks' activities time
// out and are dispatched again by another orchestrator.
func (r *running) Stop() {
	r.Worker.Stop()
	r.stop()
}

// EnsureRematchSchedule creates the Temporal Schedule that starts
// RematchWorkflow every interval (default 1h; negative: no schedule). An
// existing schedule is left as it is; delete it to change its interval.
func EnsureRematchSchedule(ctx context.Context, c client.Client, every time.Duration) error {
	// Every tenant. A schedule created before the request existed starts
	// runs with no input, which decodes as this same value.
	return ensureSchedule(ctx, c, every, workflows.RematchScheduleID, workflows.RematchWorkflowID, workflows.RematchWorkflow, workflows.RematchRequest{})
}

// EnsureTTLSchedule creates the Temporal Schedule that starts the idle-app
// TTL's sweep (TTLWorkflow, every tenant) every interval (default 1h;
// negative: no schedule). An existing schedule is left as it is; delete it
// to change its interval.
func EnsureTTLSchedule(ctx context.Context, c client.Client, every time.Duration) error {
	return ensureSchedule(ctx, c, every, workflows.TTLScheduleID, workflows.TTLWorkflowID, workflows.TTLWorkflow, workflows.TTLRequest{})
}

// ensureSchedule creates schedule id, which starts workflow wf (as
// workflowID, with arg) every interval (default 1h; negative: none), one
// run at a time with at most one buffered. An existing schedule is kept.
func ensureSchedule(ctx context.Context, c client.Client, every time.Duration, id, workflowID string, wf, arg any) error {
	if every < 0 {
		return nil
	}
	every = cmp.Or(every, time.Hour)
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   id,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
		Action: &client.ScheduleWorkflowAction{
			ID: workflowID, Workflow: wf, TaskQueue: workflows.TaskQueue, Args: []any{arg},
		},
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create schedule %s: %w", id, err)
	}
	return nil
}

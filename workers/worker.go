package workers

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.temporal.io/sdk/temporal"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/telemetry"
)

// Completer completes and heartbeats activities by task token; a Temporal
// client.Client is one.
type Completer interface {
	CompleteActivity(ctx context.Context, taskToken []byte, result interface{}, err error) error
	RecordActivityHeartbeat(ctx context.Context, taskToken []byte, details ...interface{}) error
}

// Config of one worker process's pool consumer. Zero fields take defaults.
type Config struct {
	// Pool is "fast" or "deep".
	Pool string
	// Concurrency is how many tasks run at once (default: the number of CPUs).
	Concurrency int
	// Name identifies the worker in results and logs (default host-pid).
	Name string
	// HeartbeatInterval is how often a running task heartbeats to NATS and to
	// Temporal (default 5s). Keep it well under the stream's AckWait and the
	// dispatch activity's heartbeat timeout.
	HeartbeatInterval time.Duration
	// ShutdownGrace is how long running tasks may finish after Run's context
	// ends before they are cancelled and handed back (default 30s).
	ShutdownGrace time.Duration
	// WorkDir holds extracted archives (default os.TempDir()).
	WorkDir string
	// Limits bound archive extraction.
	Limits archive.Limits
	// Stream is the JetStream topology.
	Stream tasks.StreamConfig
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := tasks.ValidPool(c.Pool); err != nil {
		return err
	}
	if c.Concurrency < 0 {
		return fmt.Errorf("worker concurrency %d must not be negative", c.Concurrency)
	}
	return nil
}

func (c Config) withDefaults() Config {
	host, _ := os.Hostname()
	c.Concurrency = cmp.Or(c.Concurrency, runtime.NumCPU())
	c.Name = cmp.Or(c.Name, fmt.Sprintf("%s-%d", cmp.Or(host, "worker"), os.Getpid()))
	c.HeartbeatInterval = cmp.Or(c.HeartbeatInterval, 5*time.Second)
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, 30*time.Second)
	c.WorkDir = cmp.Or(c.WorkDir, os.TempDir())
	return c
}

// Deps are the worker's collaborators.
type Deps struct {
	JetStream jetstream.JetStream
	Temporal  Completer
	Evidence  storage.Evidence
	// Inputs fetches archives; nil when every input is a local directory.
	Inputs ArchiveSource
	// Sandbox runs the scanners in child processes without credentials or
	// network; when nil, Scanners run in this process (tests, and the
	// embedded mode with the sandbox off).
	Sandbox  Sandbox
	Scanners map[string]Scanner
	// Meter receives the worker's metrics (none when nil); Tracer its spans
	// (none when nil).
	Meter  metric.Meter
	Tracer trace.Tracer
	Logger *slog.Logger
}

// Worker consumes one pool's tasks.
type Worker struct {
	cfg  Config
	deps Deps
	met  *instruments
	busy atomic.Int64
	done atomic.Int64
}

// New checks the configuration and builds a worker.
func New(cfg Config, deps Deps) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.JetStream == nil || deps.Temporal == nil || deps.Evidence == nil || (len(deps.Scanners) == 0 && deps.Sandbox == nil) {
		return nil, errors.New("worker needs JetStream, Temporal, an evidence store and scanners (or a sandbox)")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	deps.Logger = deps.Logger.With("pool", cfg.Pool, "worker", cfg.Name)
	w := &Worker{cfg: cfg, deps: deps}
	met, err := newInstruments(deps.Meter, w)
	if err != nil {
		return nil, fmt.Errorf("worker metrics: %w", err)
	}
	w.met = met
	return w, nil
}

func (w *Worker) tracer() trace.Tracer {
	if w.deps.Tracer == nil {
		return noop.NewTracerProvider().Tracer("")
	}
	return w.deps.Tracer
}

// Busy is the number of tasks running now.
func (w *Worker) Busy() int64 { return w.busy.Load() }

// Completed is the number of tasks this worker finished (acknowledged).
func (w *Worker) Completed() int64 { return w.done.Load() }

// Run pulls and runs tasks until ctx ends, then lets running tasks finish for
// ShutdownGrace before cancelling them; a cancelled task goes back to the queue.
//
// CI tasks come first: a free slot takes a waiting CI task before any bulk
// task, and bulk tasks never hold every slot (one stays for CI when the
// worker has more than one), so a CI task waits behind at most the tasks
// already running.
func (w *Worker) Run(ctx context.Context) error {
	ci, err := w.openConsumer(ctx, tasks.PriorityCI)
	if ci == nil {
		return err
	}
	bulk, err := w.openConsumer(ctx, tasks.PriorityBulk)
	if bulk == nil {
		return err
	}
	w.deps.Logger.InfoContext(ctx, "worker started", "concurrency", w.cfg.Concurrency)
	deadDone := make(chan struct{})
	go func() { defer close(deadDone); w.runDeadLetters(ctx) }()
	defer func() { <-deadDone }()

	taskCtx, cancelTasks := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTasks()
	var wg sync.WaitGroup
	slots := make(chan struct{}, w.cfg.Concurrency)
	bulkCap := int64(max(1, w.cfg.Concurrency-1))
	var bulkBusy atomic.Int64
	// take starts the batch's tasks, each in a slot already reserved, and
	// says how many it started.
	take := func(batch jetstream.MessageBatch, isBulk bool) int {
		got := 0
		for msg := range batch.Messages() {
			got++
			wg.Add(1)
			if isBulk {
				bulkBusy.Add(1)
			}
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				if isBulk {
					defer bulkBusy.Add(-1)
				}
				w.handle(taskCtx, msg)
			}()
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			w.deps.Logger.WarnContext(ctx, "fetch tasks", "err", err)
		}
		return got
	}
loop:
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		// Take no more tasks than there are free slots: a task held but not
		// worked on would only age toward redelivery.
		free := 1
		for len(slots) < cap(slots) {
			slots <- struct{}{}
			free++
		}
		got, err := w.fetch(ctx, ci, free, take, false, true)
		if err == nil && got < free {
			if n := min(int64(free-got), bulkCap-bulkBusy.Load()); n > 0 {
				var more int
				more, err = w.fetch(ctx, bulk, int(n), take, true, true)
				got += more
			}
		}
		if err == nil && got == 0 {
			// Nothing waiting: wait for CI work, a bounded wait that also
			// ends at once when the worker is told to stop.
			got, err = w.fetch(ctx, ci, free, take, false, false)
		}
		for range free - got {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				break loop
			}
			w.deps.Logger.WarnContext(ctx, "fetch tasks", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}

	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(w.cfg.ShutdownGrace):
		w.deps.Logger.Warn("shutdown grace over; handing running tasks back")
		cancelTasks()
		<-finished
	}
	w.deps.Logger.Info("worker stopped", "completed", w.done.Load())
	return nil
}

// openConsumer opens the pool's consumer at a priority. NATS may be
// restarting: it keeps trying until the consumer opens or the worker is told
// to stop, which is then a clean stop (nil consumer, nil error).
func (w *Worker) openConsumer(ctx context.Context, priority string) (jetstream.Consumer, error) {
	stream := w.cfg.Stream.Name()
	name := w.cfg.Stream.Consumer(w.cfg.Pool, priority)
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		cons, err := w.deps.JetStream.Consumer(ctx, stream, name)
		if err == nil {
			return cons, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("open consumer %q on stream %q: %w", name, stream, err)
		}
		w.deps.Logger.WarnContext(ctx, "open consumer; retrying", "consumer", name, "err", err)
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(delay):
		}
	}
}

// fetch pulls up to n tasks from cons and starts them with take: at once
// with what is there (noWait), or waiting up to a second for the first.
func (w *Worker) fetch(ctx context.Context, cons jetstream.Consumer, n int, take func(jetstream.MessageBatch, bool) int, isBulk, noWait bool) (int, error) {
	if noWait {
		batch, err := cons.FetchNoWait(n)
		if err != nil {
			return 0, err
		}
		return take(batch, isBulk), nil
	}
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
	if err != nil {
		return 0, err
	}
	return take(batch, isBulk), nil
}

// handle runs one task message to its end: completed, failed, dropped as
// stale, or handed back to the queue.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	logger := w.deps.Logger
	var t tasks.Task
	if err := json.Unmarshal(msg.Data(), &t); err != nil || len(t.TaskToken) == 0 {
		logger.ErrorContext(ctx, "malformed task message; dropping it", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	logger = logger.With("scan_id", t.ScanID, "kind", t.Kind, "attempt", t.Attempt, "delivery", delivered)
	// The task continues the trace of the activity that dispatched it.
	ctx, span := w.tracer().Start(telemetry.ExtractNATS(ctx, msg.Headers()), "task "+t.Kind, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("tollgate.scan_id", t.ScanID), attribute.String("tollgate.pool", w.cfg.Pool), attribute.Int64("tollgate.delivery", int64(delivered))))
	defer span.End()
	logger = logger.With("trace_id", span.SpanContext().TraceID().String())
	if delivered > 1 {
		w.met.redelivered.Add(ctx, 1, metric.WithAttributes(w.met.pool))
	}

	// A redelivered message may belong to an attempt Temporal has already
	// given up on (the task was dispatched again): ask before working.
	if err := w.deps.Temporal.RecordActivityHeartbeat(ctx, t.TaskToken, "started by "+w.cfg.Name); err != nil {
		if activityGone(err) {
			logger.InfoContext(ctx, "task's activity is no longer waiting; dropping the stale task", "err", err)
			w.met.task(ctx, t.Kind, outcomeStale)
			_ = msg.Ack()
			return
		}
		logger.WarnContext(ctx, "temporal unreachable; handing the task back", "err", err)
		w.met.task(ctx, t.Kind, outcomeHandedBack)
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}

	w.busy.Add(1)
	defer w.busy.Add(-1)
	scanCtx, cancelScan := context.WithCancelCause(ctx)
	stopBeat := w.heartbeat(scanCtx, cancelScan, msg, t, logger)
	out, err := w.run(scanCtx, t)
	stopBeat()
	cause := context.Cause(scanCtx)
	cancelScan(nil)

	switch {
	case ctx.Err() != nil:
		logger.Warn("worker stopping; handing the task back")
		w.met.task(context.WithoutCancel(ctx), t.Kind, outcomeHandedBack)
		_ = msg.Nak()
		return
	case errors.Is(cause, errActivityGone):
		logger.InfoContext(ctx, "task's activity ended while scanning; dropping the task")
		w.met.task(ctx, t.Kind, outcomeStale)
		_ = msg.Ack()
		return
	}

	var failure error
	outcome := outcomeOK
	if limit, ok := errors.AsType[*LimitError](err); ok {
		// The sandbox stopped the scanner on this input. Once, it may be
		// this worker's fault: hand the task back for another try. The
		// second time, the input is to blame: the scan is blocked.
		if delivered < 2 {
			logger.WarnContext(ctx, "sandbox stopped the scanner; handing the task back for one more try", "limit", limit.Limit, "reason", limit.Reason)
			w.met.task(ctx, t.Kind, outcomeHandedBack)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		logger.WarnContext(ctx, "sandbox stopped the scanner again; blocking the scan", "limit", limit.Limit, "reason", limit.Reason)
		out, err, outcome = Output{Result: tasks.Result{Kind: t.Kind, Worker: w.cfg.Name, Limit: limit.Reason}}, nil, outcomeLimit
	}
	if err != nil {
		if isBadInput(err) {
			failure, outcome = temporal.NewNonRetryableApplicationError(err.Error(), tasks.ErrTypeBadInput, nil), outcomeBadInput
		} else {
			failure, outcome = temporal.NewApplicationError(err.Error(), "ScanFailed"), outcomeFailed
		}
		logger.WarnContext(ctx, "task failed", "err", err, "bad_input", isBadInput(err))
	}
	w.met.task(ctx, t.Kind, outcome)
	w.met.scanners(ctx, out.Result.Timings)
	if err := w.complete(ctx, t, out.Result, failure); err != nil {
		if activityGone(err) {
			logger.InfoContext(ctx, "task's activity ended before completion; dropping the result", "err", err)
			_ = msg.Ack()
			return
		}
		logger.ErrorContext(ctx, "complete activity; handing the task back", "err", err)
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	if err := msg.DoubleAck(ctx); err != nil {
		// The activity is complete: a redelivery will find it gone and drop it.
		logger.WarnContext(ctx, "ack task", "err", err)
	}
	w.done.Add(1)
}

// run prepares the input, runs the scanner and stores its files as evidence.
func (w *Worker) run(ctx context.Context, t tasks.Task) (Output, error) {
	var sc Scanner
	workDir := w.cfg.WorkDir
	if w.deps.Sandbox != nil {
		slot, err := w.deps.Sandbox.Acquire(ctx)
		if err != nil {
			return Output{}, fmt.Errorf("wait for a sandbox slot: %w", err)
		}
		defer slot.Release()
		// The input goes where the slot's child may read it.
		sc, workDir = slot, slot.Dir()
	} else {
		var ok bool
		if sc, ok = w.deps.Scanners[t.Kind]; !ok {
			return Output{}, badInput(fmt.Errorf("no scanner for task kind %q in pool %q", t.Kind, w.cfg.Pool))
		}
	}
	dir, cleanup, err := prepare(ctx, t.Input, w.deps.Inputs, w.deps.Evidence, workDir, w.cfg.Limits)
	if err != nil {
		return Output{}, err
	}
	// Only the deep pool's scanners open archives inside the tree (trivy a
	// packaged chart, syft a jar): there, each nested archive is checked
	// through the archive limits first. gitleaks in the fast pool does not
	// open them, so it pays nothing for this.
	var skipped []report.Skipped
	if t.Input.Archive != nil && w.cfg.Pool == tasks.PoolDeep {
		if skipped, err = skipNestedArchives(ctx, dir, w.cfg.Limits); err != nil {
			cleanup()
			return Output{}, err
		}
	}
	defer cleanup()
	sctx, span := w.tracer().Start(ctx, "scan "+t.Kind)
	out, err := sc.Scan(sctx, t, dir)
	span.End()
	if err != nil {
		return Output{}, fmt.Errorf("scan %s of %s: %w", t.Kind, t.ScanID, err)
	}
	for _, f := range out.Files {
		ev, err := w.store(ctx, t, f)
		if err != nil {
			return Output{}, err
		}
		out.Result.Evidence = append(out.Result.Evidence, ev)
	}
	out.Result.Kind = t.Kind
	out.Result.Worker = w.cfg.Name
	out.Result.Unscanned = skipped
	return out, nil
}

func (w *Worker) store(ctx context.Context, t tasks.Task, f File) (report.Evidence, error) {
	key := fmt.Sprintf("scans/%s/%s", t.ScanID, f.Name)
	ctx, span := w.tracer().Start(ctx, "evidence put "+f.Name)
	defer span.End()
	began := time.Now()
	obj, err := w.deps.Evidence.Put(ctx, key, f.ContentType, f.Data)
	if errors.Is(err, storage.ErrImmutable) {
		// An earlier attempt stored different bytes: keep both.
		key = fmt.Sprintf("scans/%s/attempt-%d/%s", t.ScanID, t.Attempt, f.Name)
		obj, err = w.deps.Evidence.Put(ctx, key, f.ContentType, f.Data)
	}
	w.met.evidenceWrite(ctx, began, err)
	if err != nil {
		return report.Evidence{}, fmt.Errorf("store %s of scan %s: %w", f.Name, t.ScanID, err)
	}
	return report.Evidence{Name: f.Name, Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, SHA256: obj.SHA256}, nil
}

// complete reports the result to Temporal, retrying while Temporal is
// unreachable for up to a minute.
func (w *Worker) complete(ctx context.Context, t tasks.Task, result tasks.Result, failure error) error {
	var err error
	delay := 200 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	for {
		if failure != nil {
			err = w.deps.Temporal.CompleteActivity(ctx, t.TaskToken, nil, failure)
		} else {
			err = w.deps.Temporal.CompleteActivity(ctx, t.TaskToken, result, nil)
		}
		if err == nil || activityGone(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

var errActivityGone = errors.New("activity no longer waiting")

// heartbeat keeps the task alive on both sides until stopped. When Temporal
// says the activity is gone (timed out, cancelled, workflow ended), it cancels
// the scan.
func (w *Worker) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, msg jetstream.Msg, t tasks.Task, logger *slog.Logger) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(w.cfg.HeartbeatInterval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := msg.InProgress(); err != nil {
				logger.WarnContext(ctx, "heartbeat to NATS", "err", err)
			}
			if err := w.deps.Temporal.RecordActivityHeartbeat(ctx, t.TaskToken, "running on "+w.cfg.Name); err != nil {
				if activityGone(err) {
					cancel(errActivityGone)
					return
				}
				logger.WarnContext(ctx, "heartbeat to Temporal", "err", err)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// activityGone tells whether Temporal no longer waits for this task token.
func activityGone(err error) bool { return tasks.ActivityGone(err) }

type badInputError struct{ err error }

func (e badInputError) Error() string { return e.err.Error() }
func (e badInputError) Unwrap() error { return e.err }

// badInput marks an error as the input's fault: it is not retried.
func badInput(err error) error { return badInputError{err} }

// BadInput marks a scanner's error as the input's fault (a hostile or
// runaway file): the task fails at once, without retries, and the scan
// reports bad input (exit 2).
func BadInput(err error) error { return badInput(err) }

// IsBadInput reports whether err is the input's fault (BadInput, or an
// archive refused as hostile).
func IsBadInput(err error) bool { return isBadInput(err) }

func isBadInput(err error) bool {
	var b badInputError
	return errors.As(err, &b) || errors.Is(err, archive.ErrRejected)
}

package workers_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tollgate/tollgate/activities"
	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workflows"
)

// These tests run the real ScanWorkflow, the real activities and real
// workers against a real nats-server and a real Temporal dev server; only the
// scanners are stand-ins, so that a test can hold one mid-scan.

type env struct {
	t        *testing.T
	ns       *server.Server
	temporal *stack.TemporalDev
	client   client.Client
	evidence *storage.Local
	stream   tasks.StreamConfig
	dir      string
	// meter, when set, receives the workers' metrics.
	meter metric.Meter
}

func quiet() *slog.Logger {
	if os.Getenv("TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("starts nats-server and a Temporal dev server")
	}
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir()}
	var err error
	if e.ns, err = stack.StartNATS(ctx, stack.NATSOptions{StoreDir: filepath.Join(e.dir, "js")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.ns.Shutdown)
	if e.temporal, err = stack.StartTemporalDev(ctx, stack.TemporalDevOptions{DBFile: filepath.Join(e.dir, "temporal.db")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.temporal.Stop() })
	e.client = e.dial()
	if e.evidence, err = storage.OpenLocal(filepath.Join(e.dir, "evidence")); err != nil {
		t.Fatal(err)
	}
	// A short ack wait, so a dead worker's message comes back within the test.
	e.stream = tasks.StreamConfig{AckWait: 3 * time.Second}
	js := e.jetstream()
	if err := tasks.EnsureStream(ctx, js, e.stream); err != nil {
		t.Fatal(err)
	}
	e.startOrchestrator(js)
	return e
}

func (e *env) dial() client.Client {
	c, err := client.Dial(client.Options{HostPort: e.temporal.Addr, Logger: tlog.NewStructuredLogger(quiet())})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

func (e *env) jetstream() jetstream.JetStream {
	nc, err := nats.Connect(e.ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	return js
}

func (e *env) startOrchestrator(js jetstream.JetStream) {
	b, err := policies.Default()
	if err != nil {
		e.t.Fatal(err)
	}
	engine, err := policies.NewEngine(context.Background(), b)
	if err != nil {
		e.t.Fatal(err)
	}
	w := worker.New(e.client, workflows.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.ScanWorkflowV2, workflow.RegisterOptions{Name: workflows.ScanWorkflowName})
	(&activities.Activities{Publisher: js, Stream: e.stream, Policies: engine, Evidence: e.evidence, Logger: quiet()}).Register(w)
	if err := w.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(w.Stop)
}

// startWorker runs a pool worker until the returned stop function is called.
func (e *env) startWorker(pool, name string, js jetstream.JetStream, c workers.Completer, scanners map[string]workers.Scanner) (stop func()) {
	w, err := workers.New(workers.Config{Pool: pool, Name: name, Concurrency: 2, HeartbeatInterval: 300 * time.Millisecond, Stream: e.stream, ShutdownGrace: time.Second},
		workers.Deps{JetStream: js, Temporal: c, Evidence: e.evidence, Scanners: scanners, Meter: e.meter, Logger: quiet()})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	stop = func() { cancel(); <-done }
	e.t.Cleanup(stop)
	return stop
}

func (e *env) start(req workflows.ScanRequest) client.WorkflowRun {
	run, err := e.client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: "scan-" + req.ScanID, TaskQueue: workflows.TaskQueue}, workflows.ScanWorkflowName, req)
	if err != nil {
		e.t.Fatal(err)
	}
	return run
}

func scanRequest(id string) workflows.ScanRequest {
	return workflows.ScanRequest{ScanID: id, App: "app", Input: tasks.Input{Dir: os.TempDir()}, SubmittedAt: time.Now().UTC()}
}

func secretsScanner() workers.Scanner {
	return workers.ScannerFunc(func(context.Context, tasks.Task, string) (workers.Output, error) {
		return workers.Output{Result: tasks.Result{Findings: report.Findings{Secrets: []report.Secret{}}}}, nil
	})
}

func deepScanner(calls *sync.Map, name string) workers.Scanner {
	return workers.ScannerFunc(func(_ context.Context, t tasks.Task, _ string) (workers.Output, error) {
		calls.Store(name, true)
		return workers.Output{
			Result: tasks.Result{Findings: report.Findings{Packages: []report.Package{{Name: "left-pad", Version: "1.3.0", Ecosystem: "npm", Licenses: []string{"MIT"}}}}, VulnDB: &report.VulnDB{Available: true}},
			Files:  []workers.File{{Name: "sbom.cdx.json", ContentType: "application/json", Data: []byte(`{"scan":"` + t.ScanID + `"}`)}},
		}, nil
	})
}

// killable is a worker's view of Temporal that can be cut, as when the
// worker's process dies: nothing it says reaches the server any more.
type killable struct {
	workers.Completer
	mu     sync.Mutex
	killed bool
}

var errKilled = errors.New("process killed")

func (k *killable) kill() { k.mu.Lock(); k.killed = true; k.mu.Unlock() }

func (k *killable) dead() bool { k.mu.Lock(); defer k.mu.Unlock(); return k.killed }

func (k *killable) CompleteActivity(ctx context.Context, token []byte, result interface{}, err error) error {
	if k.dead() {
		return errKilled
	}
	return k.Completer.CompleteActivity(ctx, token, result, err)
}

func (k *killable) RecordActivityHeartbeat(ctx context.Context, token []byte, details ...interface{}) error {
	if k.dead() {
		return errKilled
	}
	return k.Completer.RecordActivityHeartbeat(ctx, token, details...)
}

// TestWorkerKilledMidScanLosesNothing: the deep worker dies while it holds
// the task (no more heartbeats, no completion, no ack). JetStream's ack wait
// runs out, the same message goes to a second worker, and it finishes the
// scan with the still-valid task token.
func TestWorkerKilledMidScanLosesNothing(t *testing.T) {
	e := newEnv(t)
	var calls sync.Map

	e.startWorker(tasks.PoolFast, "fast", e.jetstream(), e.client, map[string]workers.Scanner{tasks.KindSecrets: secretsScanner()})

	// Worker A: takes the deep task, then "dies" in the middle of it.
	aConn, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	aJS, _ := jetstream.New(aConn)
	aTemporal := &killable{Completer: e.client}
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	e.startWorker(tasks.PoolDeep, "A", aJS, aTemporal, map[string]workers.Scanner{tasks.KindDeep: workers.ScannerFunc(
		func(context.Context, tasks.Task, string) (workers.Output, error) {
			once.Do(func() { close(started) })
			<-release // a dead process never returns; this one returns into a void
			return workers.Output{}, errKilled
		})})

	run := e.start(scanRequest("killed-worker"))
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("worker A never got the deep task")
	}
	aTemporal.kill()
	aConn.Close()
	close(release)

	// Worker B joins and must finish the scan.
	e.startWorker(tasks.PoolDeep, "B", e.jetstream(), e.client, map[string]workers.Scanner{tasks.KindDeep: deepScanner(&calls, "B")})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res workflows.ScanResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("scan did not finish after a worker died: %v", err)
	}
	if _, ok := calls.Load("B"); !ok {
		t.Fatal("worker B never ran the task")
	}
	if res.Verdict != report.VerdictPass {
		t.Fatalf("verdict %s, want pass: %+v", res.Verdict, res.Reasons)
	}
	if !hasEvidence(res, "sbom.cdx.json") {
		t.Fatalf("the SBOM B stored is not in the evidence: %+v", res.Evidence)
	}
}

// TestTemporalRestartMidScan: the Temporal server goes away while a worker
// scans and comes back on the same address and database. The worker's
// completion waits for it, and the scan finishes.
func TestTemporalRestartMidScan(t *testing.T) {
	e := newEnv(t)
	var calls sync.Map
	e.startWorker(tasks.PoolFast, "fast", e.jetstream(), e.client, map[string]workers.Scanner{tasks.KindSecrets: secretsScanner()})

	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	inner := deepScanner(&calls, "deep")
	e.startWorker(tasks.PoolDeep, "deep", e.jetstream(), e.client, map[string]workers.Scanner{tasks.KindDeep: workers.ScannerFunc(
		func(ctx context.Context, task tasks.Task, dir string) (workers.Output, error) {
			once.Do(func() { close(started) })
			<-release
			return inner.Scan(ctx, task, dir)
		})})

	run := e.start(scanRequest("temporal-restart"))
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the deep task never started")
	}
	addr := e.temporal.Addr
	e.temporal.Kill()
	close(release) // finishes while Temporal is down: completion must wait and retry
	port := addr[len("127.0.0.1:"):]
	var p int
	fmt.Sscan(port, &p)
	var err error
	if e.temporal, err = stack.StartTemporalDev(context.Background(), stack.TemporalDevOptions{DBFile: filepath.Join(e.dir, "temporal.db"), Port: p}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.temporal.Stop() })

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var res workflows.ScanResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("scan did not finish after Temporal restarted: %v", err)
	}
	if res.Verdict != report.VerdictPass || !hasEvidence(res, "sbom.cdx.json") {
		t.Fatalf("result %+v", res)
	}
}

// TestNATSRestartBeforeDeepStage: nats-server restarts (same store, same port) with
// a task waiting in the stream; JetStream keeps it and a worker runs it.
func TestNATSRestartBeforeDeepStage(t *testing.T) {
	e := newEnv(t)
	var calls sync.Map
	run := e.start(scanRequest("nats-restart"))

	// No workers yet: the fast task waits in the stream. Restart NATS.
	url := e.ns.ClientURL()
	var port int
	fmt.Sscanf(url, "nats://127.0.0.1:%d", &port)
	waitPending(t, e.jetstream(), e.stream, 1)
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	var err error
	if e.ns, err = stack.StartNATS(context.Background(), stack.NATSOptions{StoreDir: filepath.Join(e.dir, "js"), Port: port}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.ns.Shutdown)

	e.startWorker(tasks.PoolFast, "fast", e.jetstream(), e.client, map[string]workers.Scanner{tasks.KindSecrets: secretsScanner()})
	e.startWorker(tasks.PoolDeep, "deep", e.jetstream(), e.client, map[string]workers.Scanner{tasks.KindDeep: deepScanner(&calls, "deep")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res workflows.ScanResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("scan did not finish after NATS restarted: %v", err)
	}
	if res.Verdict != report.VerdictPass {
		t.Fatalf("result %+v", res)
	}
}

// waitPending waits until the fast pool's consumer has n tasks waiting. It
// watches the consumer's state; nothing sleeps a fixed time.
func waitPending(t *testing.T, js jetstream.JetStream, sc tasks.StreamConfig, n uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, sc.Name(), sc.Consumer(tasks.PoolFast, tasks.PriorityCI))
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := cons.Info(ctx)
		if err == nil && info.NumPending >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no pending task: %v", err)
		case <-tick.C:
		}
	}
}

func hasEvidence(res workflows.ScanResult, name string) bool {
	for _, e := range res.Evidence {
		if e.Name == name {
			return true
		}
	}
	return false
}

// TestBadInputIsNotRetried: an input the worker rejects ends the scan with a
// BadInput error at once.
func TestBadInputIsNotRetried(t *testing.T) {
	e := newEnv(t)
	e.startWorker(tasks.PoolFast, "fast", e.jetstream(), e.client, map[string]workers.Scanner{tasks.KindSecrets: secretsScanner()})
	req := scanRequest("bad-input")
	req.Input = tasks.Input{Dir: filepath.Join(e.dir, "does-not-exist")}
	run := e.start(req)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run.Get(ctx, nil)
	if err == nil {
		t.Fatal("scan of a missing dir succeeded")
	}
	if !isBadInput(err) {
		t.Fatalf("got %v, want a BadInput failure", err)
	}
}

// A scan through both pools shows in the workers' metrics: the tasks by
// outcome, each scanner's time, the evidence writes, and the slots.
func TestWorkerMetrics(t *testing.T) {
	e := newEnv(t)
	reader := sdkmetric.NewManualReader()
	e.meter = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test")
	var calls sync.Map
	timed := workers.ScannerFunc(func(ctx context.Context, t tasks.Task, dir string) (workers.Output, error) {
		out, err := deepScanner(&calls, "deep").Scan(ctx, t, dir)
		out.Result.Timings = map[string]float64{"sbom": 0.02, "vulnerabilities": 0.01}
		return out, err
	})
	e.startWorker(tasks.PoolFast, "fast", e.jetstream(), e.client, map[string]workers.Scanner{tasks.KindSecrets: secretsScanner()})
	e.startWorker(tasks.PoolDeep, "deep", e.jetstream(), e.client, map[string]workers.Scanner{tasks.KindDeep: timed})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.start(scanRequest("metrics")).Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					kind, _ := p.Attributes.Value("kind")
					outcome, _ := p.Attributes.Value("outcome")
					seen[m.Name+" "+kind.AsString()+" "+outcome.AsString()] = fmt.Sprint(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					for _, k := range []attribute.Key{"scanner", "outcome"} {
						if v, ok := p.Attributes.Value(k); ok {
							seen[m.Name+" "+v.AsString()] = fmt.Sprint(p.Count)
						}
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					pool, _ := p.Attributes.Value("pool")
					seen[m.Name+" "+pool.AsString()] = fmt.Sprint(p.Value)
				}
			}
		}
	}
	for k, want := range map[string]string{
		"tollgate.worker.tasks secrets ok":          "1",
		"tollgate.worker.tasks deep ok":             "1",
		"tollgate.scanner.duration sbom":            "1",
		"tollgate.scanner.duration vulnerabilities": "1",
		"tollgate.evidence.write.duration ok":       "1",
		"tollgate.worker.slots deep":                "2",
		"tollgate.worker.busy deep":                 "0",
	} {
		if seen[k] != want {
			t.Errorf("%s = %q, want %s (all: %v)", k, seen[k], want, seen)
		}
	}
}

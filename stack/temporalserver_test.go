package stack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"sigs.k8s.io/yaml"
)

// TestTemporalServerConfigIsLoopbackPostgres: the config the server is
// started with keeps history and visibility in PostgreSQL, binds every
// service to loopback, is readable by its owner alone (it holds the
// password), and carries the dev server's dynamic config.
func TestTemporalServerConfigIsLoopbackPostgres(t *testing.T) {
	dir := t.TempDir()
	opts := TemporalServerOptions{Postgres: PostgresConn{Host: "127.0.0.1", Port: 5999, User: "u", Password: "secret"},
		Dir: dir, HistoryShards: 4, DynamicConfig: map[string]any{"frontend.rps": 99}}
	ports, err := opts.pickPorts()
	if err != nil {
		t.Fatal(err)
	}
	s := &TemporalServer{dir: dir, opts: opts}
	if err := s.writeConfig(ports); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, temporalConfigDir, temporalConfigEnv+".yaml")
	var config struct {
		Persistence struct {
			DefaultStore, VisibilityStore string
			NumHistoryShards              int
			Datastores                    map[string]struct {
				SQL struct{ PluginName, DatabaseName, ConnectAddr, Password string }
			}
		}
		Services map[string]struct {
			RPC struct {
				BindOnIP string
				GRPCPort int `json:"grpcPort"`
			}
		}
		DynamicConfigClient struct{ Filepath string }
	}
	readYAML(t, path, &config)
	p := config.Persistence
	if p.NumHistoryShards != 4 || len(p.Datastores) != 2 {
		t.Errorf("persistence = %+v", p)
	}
	for _, store := range []string{p.DefaultStore, p.VisibilityStore} {
		sql := p.Datastores[store].SQL
		if sql.PluginName != "postgres12" || sql.ConnectAddr != "127.0.0.1:5999" || sql.Password != "secret" {
			t.Errorf("store %q = %+v", store, sql)
		}
	}
	if got := p.Datastores[p.VisibilityStore].SQL.DatabaseName; got != TemporalVisibilityDatabase {
		t.Errorf("visibility database = %q", got)
	}
	seen := map[int]bool{}
	for _, svc := range temporalServices {
		rpc := config.Services[svc].RPC
		if rpc.BindOnIP != "127.0.0.1" || rpc.GRPCPort == 0 || seen[rpc.GRPCPort] {
			t.Errorf("service %s rpc = %+v", svc, rpc)
		}
		seen[rpc.GRPCPort] = true
		if m := ports.membership[svc]; m == 0 || m >= 32768 {
			t.Errorf("service %s membership port %d: the schema keeps it in a smallint", svc, m)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config file mode: %v %v", fi.Mode(), err)
	}
	var dynamic map[string][]struct{ Value any }
	readYAML(t, config.DynamicConfigClient.Filepath, &dynamic)
	for key, want := range map[string]any{"system.enableActivityEagerExecution": true, "frontend.rps": float64(99),
		"matching.numTaskqueueReadPartitions": float64(1), "limit.maxIDLength": float64(255)} {
		if v := dynamic[key]; len(v) != 1 || v[0].Value != want {
			t.Errorf("dynamic config %s = %+v, want %v", key, v, want)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// greet is the tiny workflow the server test runs: one activity.
func greet(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var out string
	err := workflow.ExecuteActivity(ctx, "greeting", name).Get(ctx, &out)
	return out, err
}

// TestTemporalServerOnPostgresSurvivesRestarts: the real Temporal server on
// PostgreSQL runs a workflow with an activity to completion; after the
// server and then PostgreSQL are restarted, a second one runs, after the
// server is killed and started again a third, and the first one's result is
// still there.
func TestTemporalServerOnPostgresSurvivesRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that starts PostgreSQL and the Temporal server")
	}
	for _, find := range []func(string) (string, error){FindTemporalServer, FindTemporalSQLTool} {
		if _, err := find(""); errors.Is(err, ErrNoTemporalServer) {
			t.Skip(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	pg, _ := startTestPostgres(t)
	pgUp := time.Since(began)
	srv, err := StartTemporalServer(ctx, TemporalServerOptions{Postgres: pg.PostgresConn, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop) // before pg.Stop: cleanups run last first
	t.Logf("postgresql up in %s, temporal server (schema applied) in %s more, pid %d", pgUp, time.Since(began)-pgUp, srv.Pid())

	c, err := client.Dial(client.Options{HostPort: srv.Addr, Namespace: srv.Namespace, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const queue = "greetings"
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(greet, workflow.RegisterOptions{Name: "greet"})
	w.RegisterActivityWithOptions(func(_ context.Context, name string) (string, error) { return "hello " + name, nil },
		activity.RegisterOptions{Name: "greeting"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	run := func(id, name string) string {
		t.Helper()
		began := time.Now()
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, "greet", name)
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		var out string
		if err := r.Get(ctx, &out); err != nil {
			t.Fatalf("run %s: %v", id, err)
		}
		t.Logf("workflow %s done in %s", id, time.Since(began))
		return out
	}
	if got := run("first", "one"); got != "hello one" {
		t.Fatalf("first = %q", got)
	}

	pid := srv.Pid()
	began = time.Now()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal("restart the temporal server:", err)
	}
	t.Logf("temporal server restarted in %s", time.Since(began))
	if srv.Pid() == pid {
		t.Errorf("the server's pid is still %d after the restart", pid)
	}
	began = time.Now()
	if err := pg.Restart(ctx); err != nil {
		t.Fatal("restart postgresql:", err)
	}
	t.Logf("postgresql restarted in %s", time.Since(began))

	if got := run("second", "two"); got != "hello two" {
		t.Errorf("second = %q", got)
	}
	// A crash: the server's old membership rows name it, and its shards'
	// leases are taken over.
	srv.Kill()
	began = time.Now()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal("start the temporal server after a crash:", err)
	}
	t.Logf("temporal server started after a crash in %s", time.Since(began))
	if got := run("third", "three"); got != "hello three" {
		t.Errorf("third = %q", got)
	}
	var first string
	if err := c.GetWorkflow(ctx, "first", "").Get(ctx, &first); err != nil || first != "hello one" {
		t.Errorf("first again = %q, %v", first, err)
	}
	desc, err := c.DescribeWorkflowExecution(ctx, "first", "")
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("first's status = %v", st)
	}
	// The search attributes were registered, and survive the restarts.
	if _, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: srv.Namespace, Query: "TollgateTenant = 't1'",
	}); err != nil {
		t.Errorf("query by search attribute: %v", err)
	}
}

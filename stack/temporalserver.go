package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"
	"sigs.k8s.io/yaml"
)

// TemporalServerVersion is the Temporal server release the project pins
// (the one the pinned CLI and SDK pull in), and scripts/tools.sh builds with
// its SQL tool.
const TemporalServerVersion = "v1.29.1"

// ErrNoTemporalServer is returned when the Temporal server or its SQL tool
// cannot be found.
var ErrNoTemporalServer = errors.New("temporal server not found: run `scripts/tools.sh temporal-server`, or set TOLLGATE_TEMPORAL_SERVER and TOLLGATE_TEMPORAL_SQL_TOOL")

// The databases the server keeps its history and its visibility in.
const (
	TemporalDatabase           = "temporal"
	TemporalVisibilityDatabase = "temporal_visibility"
)

// FindTemporalServer returns the path of the Temporal server to run:
// explicit, else $TOLLGATE_TEMPORAL_SERVER, else `temporal-server` on PATH,
// else the tool cache.
func FindTemporalServer(explicit string) (string, error) {
	return findTool(explicit, "TOLLGATE_TEMPORAL_SERVER", "temporal-server", TemporalServerVersion, ErrNoTemporalServer)
}

// FindTemporalSQLTool returns the path of the server's temporal-sql-tool:
// explicit, else $TOLLGATE_TEMPORAL_SQL_TOOL, else PATH, else the tool cache.
func FindTemporalSQLTool(explicit string) (string, error) {
	return findTool(explicit, "TOLLGATE_TEMPORAL_SQL_TOOL", "temporal-sql-tool", TemporalServerVersion, ErrNoTemporalServer)
}

// TemporalServerOptions configure the Temporal server child process: every
// service (frontend, history, matching, worker) in one process, on
// PostgreSQL for history and visibility.
type TemporalServerOptions struct {
	// Binary and SQLTool are the server and its temporal-sql-tool (default:
	// FindTemporalServer, FindTemporalSQLTool).
	Binary  string
	SQLTool string
	// Postgres is the database server (required). The server's databases,
	// TemporalDatabase and TemporalVisibilityDatabase, are created there
	// and brought to the server's schema when they are not.
	Postgres PostgresConn
	// Dir holds the server's config files (required).
	Dir string
	// Port for the frontend on 127.0.0.1 (default: a free port).
	Port int
	// MetricsPort serves the server's Prometheus metrics on 127.0.0.1
	// (default: none).
	MetricsPort int
	// Namespace is registered, with tollgate's search attributes, when the
	// server starts (default "default").
	Namespace string
	// Retention of closed workflows in Namespace (default one day).
	Retention time.Duration
	// HistoryShards is fixed for the life of the databases (default 4).
	HistoryShards int
	// DynamicConfig is added to the dynamic config every server started here
	// runs with (the dev server's knobs that apply).
	DynamicConfig map[string]any
	// StartTimeout bounds the wait for the server to be usable (default 2m).
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// TemporalServer is a running Temporal server.
type TemporalServer struct {
	// Addr is the frontend's host:port.
	Addr      string
	Namespace string

	bin     string
	dir     string
	logger  *slog.Logger
	timeout time.Duration
	opts    TemporalServerOptions
	restartable
}

// temporalPorts are the server's listeners, all on 127.0.0.1, kept across
// restarts: the services find each other through the membership table.
type temporalPorts struct {
	frontend, frontendHTTP, metrics int
	// grpc and membership per service.
	grpc, membership map[string]int
}

var temporalServices = []string{"frontend", "history", "matching", "worker"}

// StartTemporalServer applies the schema, writes the server's config and
// starts `temporal-server start` with all four services in one process, then
// registers the namespace and tollgate's search attributes and waits until
// the frontend, history and matching answer. On ports it picks itself, a
// server that dies while starting is started again on others, up to three
// times.
func StartTemporalServer(ctx context.Context, opts TemporalServerOptions) (*TemporalServer, error) {
	if opts.Dir == "" {
		return nil, errors.New("start temporal server: no dir")
	}
	if opts.Postgres.Port == 0 {
		return nil, errors.New("start temporal server: no postgresql")
	}
	bin, err := FindTemporalServer(opts.Binary)
	if err != nil {
		return nil, err
	}
	tool, err := FindTemporalSQLTool(opts.SQLTool)
	if err != nil {
		return nil, err
	}
	opts.Namespace = cmp.Or(opts.Namespace, "default")
	opts.Retention = cmp.Or(opts.Retention, 24*time.Hour)
	opts.HistoryShards = cmp.Or(opts.HistoryShards, 4)
	s := &TemporalServer{
		Namespace: opts.Namespace,
		bin:       bin,
		dir:       opts.Dir,
		logger:    cmp.Or(opts.Logger, slog.New(slog.DiscardHandler)),
		timeout:   cmp.Or(opts.StartTimeout, 2*time.Minute),
		opts:      opts,
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("start temporal server: create dir %q: %w", s.dir, err)
	}
	if err := applyTemporalSchema(ctx, tool, opts.Postgres, s.logger); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		ports, err := opts.pickPorts()
		if err != nil {
			return nil, fmt.Errorf("start temporal server: %w", err)
		}
		if err := s.writeConfig(ports); err != nil {
			return nil, err
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports.frontend))
		err = s.start(ctx)
		if err == nil || opts.Port != 0 || attempt == 3 || !errors.Is(err, ErrExited) || ctx.Err() != nil {
			if err != nil {
				return nil, err
			}
			return s, nil
		}
	}
}

// applyTemporalSchema creates the server's two databases and brings them to
// the schema embedded in the SQL tool, which is the one its server expects.
// It is idempotent: a database already at that version is left alone.
func applyTemporalSchema(ctx context.Context, tool string, pg PostgresConn, logger *slog.Logger) error {
	for db, schema := range map[string]string{
		TemporalDatabase:           "postgresql/v12/temporal",
		TemporalVisibilityDatabase: "postgresql/v12/visibility",
	} {
		for _, step := range [][]string{
			{"create-database"},
			{"setup-schema", "--version", "0.0"},
			{"update-schema", "--schema-name", schema},
		} {
			args := append([]string{"--plugin", "postgres12", "--endpoint", pg.Host,
				"--port", strconv.Itoa(pg.Port), "--user", pg.User, "--database", db}, step...)
			cmd := exec.CommandContext(ctx, tool, args...)
			// The password goes in the environment, not on a command line
			// any process can read.
			cmd.Env = append(os.Environ(), "SQL_PASSWORD="+pg.Password)
			out, err := cmd.CombinedOutput()
			logger.DebugContext(ctx, "temporal-sql-tool", "db", db, "step", step[0], "output", string(out))
			if err != nil {
				return fmt.Errorf("apply temporal schema: %s %s on %s: %w\n%s", step[0], db, pg.Addr(), err, out)
			}
		}
	}
	return nil
}

// pickPorts are the listeners: the ones opts names, free ones for the rest.
func (opts TemporalServerOptions) pickPorts() (temporalPorts, error) {
	p := temporalPorts{frontend: opts.Port, metrics: opts.MetricsPort,
		grpc: map[string]int{}, membership: map[string]int{}}
	free := func(port *int) error {
		if *port != 0 {
			return nil
		}
		var err error
		*port, err = FreePort()
		return err
	}
	errs := []error{free(&p.frontend), free(&p.frontendHTTP)}
	for _, svc := range temporalServices {
		grpc := 0
		if svc == "frontend" {
			grpc = p.frontend
		}
		membership, err := freeMembershipPort()
		errs = append(errs, free(&grpc), err)
		p.grpc[svc], p.membership[svc] = grpc, membership
	}
	return p, errors.Join(errs...)
}

// freeMembershipPort is a free port on 127.0.0.1 under 32768: the SQL
// schema keeps a member's membership port in a smallint
// (cluster_membership.rpc_port), and the kernel's ephemeral ports, which
// FreePort gets, start at 32768.
func freeMembershipPort() (int, error) {
	var err error
	for range 50 {
		port := 20000 + rand.IntN(32768-20000)
		var l net.Listener
		if l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("find a free membership port under 32768: %w", err)
}

// configDir is where the server's config lives, relative to s.dir: the
// server reads <dir>/<configDir>/<env>.yaml.
const (
	temporalConfigDir = "config"
	temporalConfigEnv = "tollgate"
)

// writeConfig writes the server's config and dynamic config into s.dir.
func (s *TemporalServer) writeConfig(ports temporalPorts) error {
	pg := s.opts.Postgres
	sqlStore := func(db string, conns int) map[string]any {
		return map[string]any{"sql": map[string]any{
			"pluginName": "postgres12", "databaseName": db,
			"connectAddr": pg.Addr(), "connectProtocol": "tcp",
			"user": pg.User, "password": pg.Password,
			"maxConns": conns, "maxIdleConns": conns, "maxConnLifetime": "1h",
		}}
	}
	services := map[string]any{}
	for _, svc := range temporalServices {
		rpc := map[string]any{"grpcPort": ports.grpc[svc], "membershipPort": ports.membership[svc], "bindOnIP": "127.0.0.1"}
		if svc == "frontend" {
			rpc["httpPort"] = ports.frontendHTTP
		}
		services[svc] = map[string]any{"rpc": rpc}
	}
	frontend := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports.frontend))
	global := map[string]any{"membership": map[string]any{"maxJoinDuration": "30s", "broadcastAddress": "127.0.0.1"}}
	if ports.metrics != 0 {
		global["metrics"] = map[string]any{"prometheus": map[string]any{
			"framework": "tally", "timerType": "histogram",
			"listenAddress": net.JoinHostPort("127.0.0.1", strconv.Itoa(ports.metrics)),
		}}
	}
	dynamicFile := filepath.Join(s.dir, "dynamicconfig.yaml")
	disabled := map[string]any{"state": "disabled"}
	config := map[string]any{
		"log": map[string]any{"stdout": true, "level": "warn", "format": "json"},
		"persistence": map[string]any{
			"defaultStore":     "postgres-default",
			"visibilityStore":  "postgres-visibility",
			"numHistoryShards": s.opts.HistoryShards,
			"datastores": map[string]any{
				"postgres-default":    sqlStore(TemporalDatabase, 20),
				"postgres-visibility": sqlStore(TemporalVisibilityDatabase, 10),
			},
		},
		"global":   global,
		"services": services,
		"clusterMetadata": map[string]any{
			"enableGlobalNamespace":    false,
			"failoverVersionIncrement": 10,
			"masterClusterName":        "active",
			"currentClusterName":       "active",
			"clusterInformation": map[string]any{"active": map[string]any{
				"enabled": true, "initialFailoverVersion": 1, "rpcName": "frontend", "rpcAddress": frontend,
			}},
		},
		"dcRedirectionPolicy": map[string]any{"policy": "noop"},
		"archival":            map[string]any{"history": disabled, "visibility": disabled},
		"namespaceDefaults":   map[string]any{"archival": map[string]any{"history": disabled, "visibility": disabled}},
		"publicClient":        map[string]any{"hostPort": frontend},
		"dynamicConfigClient": map[string]any{"filepath": dynamicFile, "pollInterval": "10s"},
	}
	dynamic := map[string]any{}
	for key, v := range temporalDynamicConfig {
		dynamic[key] = []any{map[string]any{"value": v}}
	}
	// The SQL schema's ids are varchar(255): refuse longer ones up front,
	// as upstream's SQL config does, rather than fail in the database.
	dynamic["limit.maxIDLength"] = []any{map[string]any{"value": 255}}
	for key, v := range s.opts.DynamicConfig {
		dynamic[key] = []any{map[string]any{"value": v}}
	}
	if err := os.MkdirAll(filepath.Join(s.dir, temporalConfigDir), 0o700); err != nil {
		return fmt.Errorf("start temporal server: %w", err)
	}
	for path, v := range map[string]any{
		filepath.Join(s.dir, temporalConfigDir, temporalConfigEnv+".yaml"): config,
		dynamicFile: dynamic,
	} {
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("start temporal server: write %q: %w", path, err)
		}
		// The config holds the database password.
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return fmt.Errorf("start temporal server: %w", err)
		}
	}
	return nil
}

// start runs the server on the config in s.dir and waits until it is
// usable.
func (s *TemporalServer) start(ctx context.Context) error {
	cmd := exec.Command(s.bin, "--root", s.dir, "--config", temporalConfigDir, "--env", temporalConfigEnv,
		"--allow-no-auth", "start")
	cmd.Dir = s.dir
	cmd.Env = temporalServerEnv()
	c, tail := &child{}, &lastLines{}
	if err := c.startLogged(cmd, s.logger, "temporal server", tail); err != nil {
		return fmt.Errorf("start temporal server %q: %w", s.bin, err)
	}
	s.set(c)
	if err := s.waitUsable(ctx, c); err != nil {
		c.Kill()
		return fmt.Errorf("start temporal server on %s: %w%s", s.Addr, err, tail.String())
	}
	s.logger.DebugContext(ctx, "temporal server ready", "addr", s.Addr, "pid", cmd.Process.Pid)
	return nil
}

// temporalServerEnv is this process's environment without the TEMPORAL_
// settings the server's command line would read (root, config dir, env).
func temporalServerEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "TEMPORAL_") })
}

// waitUsable waits for the frontend, registers the namespace and the search
// attributes (both idempotent), and waits until a request reaches history,
// one reaches matching, and a visibility query knows the search attributes.
func (s *TemporalServer) waitUsable(ctx context.Context, c *child) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		err := s.probe(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-c.exited:
			return c.exitErr()
		case <-ctx.Done():
			return fmt.Errorf("not usable after %s: %w", s.timeout, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

func (s *TemporalServer) probe(ctx context.Context) error {
	c, err := client.Dial(client.Options{HostPort: s.Addr, Namespace: s.Namespace, Logger: quietLogger{}})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return err
	}
	ws, ops := c.WorkflowService(), c.OperatorService()
	_, err = ws.RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        s.Namespace,
		WorkflowExecutionRetentionPeriod: durationpb.New(s.opts.Retention),
	})
	if _, exists := errors.AsType[*serviceerror.NamespaceAlreadyExists](err); err != nil && !exists {
		return fmt.Errorf("register namespace %q: %w", s.Namespace, err)
	}
	attrs := map[string]enumspb.IndexedValueType{}
	for name, typ := range TemporalSearchAttributes {
		if attrs[name], err = enumspb.IndexedValueTypeFromString(typ); err != nil {
			return fmt.Errorf("search attribute %s: %w", name, err)
		}
	}
	if _, err := ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: s.Namespace, SearchAttributes: attrs,
	}); err != nil {
		return fmt.Errorf("add search attributes to %q: %w", s.Namespace, err)
	}
	// History answers for a workflow it does not have...
	_, err = c.DescribeWorkflowExecution(ctx, "tollgate-probe-"+randomHex(6), "")
	if _, notFound := errors.AsType[*serviceerror.NotFound](err); !notFound {
		return fmt.Errorf("describe a missing workflow: want not found, got %w", err)
	}
	// ...matching for a task queue nobody polls...
	if _, err := c.DescribeTaskQueue(ctx, "tollgate-probe", enumspb.TASK_QUEUE_TYPE_WORKFLOW); err != nil {
		return fmt.Errorf("describe a task queue: %w", err)
	}
	// ...and visibility takes a query on every search attribute once the
	// namespace's aliases have reached the frontend's cache.
	var query []string
	for _, name := range slices.Sorted(maps.Keys(TemporalSearchAttributes)) {
		query = append(query, name+" = 'probe'")
	}
	if _, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: s.Namespace, Query: strings.Join(query, " AND "),
	}); err != nil {
		return fmt.Errorf("count workflows by search attribute: %w", err)
	}
	return nil
}

// Stop asks the server to stop (SIGTERM: it leaves the membership ring and
// drains), and kills it after 30 seconds.
func (s *TemporalServer) Stop() { s.stopWith(syscall.SIGTERM, 30*time.Second) }

// Kill ends the server at once (SIGKILL), as a crash would.
func (s *TemporalServer) Kill() { s.stopWith(syscall.SIGKILL, 0) }

// Restart stops the server and starts it again on the same ports and
// databases, and waits until it is usable. After a Kill it only starts it.
func (s *TemporalServer) Restart(ctx context.Context) error {
	s.Stop()
	return s.start(ctx)
}

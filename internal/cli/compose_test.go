package cli

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/stack"
)

// These tests check docker-compose.yml, deploy/Dockerfile and .dockerignore
// against the code: there is no Docker engine in CI, so the files are read as
// data. They need no servers.

const (
	composePath    = "../../docker-compose.yml"
	dockerfilePath = "../../deploy/Dockerfile"
	repoRoot       = "../.."
	demoToken      = "tg_demo_token"
)

// composeTollgate maps each tollgate service to the command it must run.
var composeTollgate = map[string][]string{
	"api":          {"serve"},
	"orchestrator": {"orchestrator"},
	"worker-fast":  {"worker", "--pool", "fast"},
	"worker-deep":  {"worker", "--pool", "deep"},
}

var composeInfra = []string{"nats", "temporal", "minio"}

// The profile `production` (opt-in): the production-shaped stack, its
// tollgate services and its servers. Services without a profile are the
// default stack, which the profile leaves as it is.
const composeProfile = "production"

var composeTollgateProduction = map[string][]string{
	"prod-api":          {"serve"},
	"prod-orchestrator": {"orchestrator"},
	"prod-worker-fast":  {"worker", "--pool", "fast"},
	"prod-worker-deep":  {"worker", "--pool", "deep"},
}

var (
	composeNATSProduction  = []string{"prod-nats1", "prod-nats2", "prod-nats3"}
	composeInfraProduction = append([]string{"prod-postgres", "prod-temporal", "prod-minio"}, composeNATSProduction...)
	// composeJobsProduction run once and exit; the tollgate services wait
	// for them to have succeeded.
	composeJobsProduction = []string{"prod-temporal-setup"}
)

// composeTollgateAll is every tollgate service, of both stacks.
func composeTollgateAll() map[string][]string {
	all := maps.Clone(composeTollgate)
	maps.Copy(all, composeTollgateProduction)
	return all
}

// composeExtraEnv are the variables loadConfig reads besides Config.env().
var composeExtraEnv = []string{"TOLLGATE_RETENTION_DAYS", "TOLLGATE_WORKER_CONCURRENCY", "TOLLGATE_WORKER_TASK_MEMORY_MIB", "TOLLGATE_NATS_REPLICAS", "TOLLGATE_MINIO_TLS",
	"TOLLGATE_SCAN_FULL", "TOLLGATE_DEPLOY_WEBHOOK_URL", "TOLLGATE_DEPLOY_WEBHOOK_SECRET", "TOLLGATE_TOKENS_FILE", "TOLLGATE_OIDC_ROLE_MAP", "TOLLGATE_CONFIG",
	"TOLLGATE_CONSOLE", "TOLLGATE_CONSOLE_TOKEN_SIGNIN", "TOLLGATE_CONSOLE_CLIENT_SECRET_FILE"}

// composeVar is a compose interpolation; the file must give every one a
// default, so that `docker compose up` works without an .env file.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-)([^}]*)\}`)

// composeInterpolate replaces ${VAR:-default} and ${VAR-default} with their
// defaults, as compose does with VAR unset.
func composeInterpolate(t *testing.T, s string) string {
	t.Helper()
	out := composeVar.ReplaceAllString(s, "$3")
	if rest := strings.ReplaceAll(out, "$$", ""); strings.Contains(rest, "$") {
		t.Fatalf("%q: a variable without a default (want ${VAR:-default})", s)
	}
	return strings.ReplaceAll(out, "$$", "$")
}

// composeServices parses docker-compose.yml into generic maps.
func composeServices(t *testing.T) map[string]map[string]any {
	t.Helper()
	raw, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse %s: %v", composePath, err)
	}
	if _, ok := doc["version"]; ok {
		t.Errorf("compose file has a `version:` key; the compose spec has none")
	}
	svcs, ok := doc["services"].(map[string]any)
	if !ok {
		t.Fatalf("no services in %s", composePath)
	}
	out := map[string]map[string]any{}
	for name, s := range svcs {
		m, ok := s.(map[string]any)
		if !ok {
			t.Fatalf("service %s is not a mapping", name)
		}
		out[name] = m
	}
	return out
}

// composeStrings reads a list of strings (or a single string, split on
// spaces, as compose does for command).
func composeStrings(t *testing.T, v any) []string {
	t.Helper()
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				t.Fatalf("list item %v is not a string", e)
			}
			out[i] = s
		}
		return out
	}
	t.Fatalf("%v (%T): want a string or a list of strings", v, v)
	return nil
}

// composeEnv returns a service's environment, interpolated.
func composeEnv(t *testing.T, svc map[string]any) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch e := svc["environment"].(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			s, ok := v.(string)
			if !ok {
				t.Fatalf("environment %s: %v (%T) is not a string; quote it", k, v, v)
			}
			env[k] = composeInterpolate(t, s)
		}
	case []any:
		for _, kv := range composeStrings(t, e) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = composeInterpolate(t, v)
		}
	default:
		t.Fatalf("environment is %T", e)
	}
	return env
}

type composeMount struct {
	source, target string
	readOnly       bool
}

// composeVolumes returns a service's volume mounts (short or long syntax).
func composeVolumes(t *testing.T, svc map[string]any) []composeMount {
	t.Helper()
	list, _ := svc["volumes"].([]any)
	var out []composeMount
	for _, v := range list {
		switch v := v.(type) {
		case string:
			parts := strings.Split(composeInterpolate(t, v), ":")
			switch len(parts) {
			case 1:
				out = append(out, composeMount{target: parts[0]})
			case 2:
				out = append(out, composeMount{source: parts[0], target: parts[1]})
			default:
				out = append(out, composeMount{source: parts[0], target: parts[1], readOnly: slices.Contains(strings.Split(parts[2], ","), "ro")})
			}
		case map[string]any:
			src, _ := v["source"].(string)
			dst, _ := v["target"].(string)
			ro, _ := v["read_only"].(bool)
			out = append(out, composeMount{source: src, target: dst, readOnly: ro})
		default:
			t.Fatalf("volume %v (%T)", v, v)
		}
	}
	return out
}

// composeAllowedEnv is every variable loadConfig reads.
func composeAllowedEnv(t *testing.T) map[string]bool {
	t.Helper()
	allowed := map[string]bool{}
	for name := range (&Config{}).env() {
		allowed[name] = true
	}
	for _, name := range composeExtraEnv {
		allowed[name] = true
	}
	// envNames (the help text) lists the same set: if loadConfig gains a
	// variable, composeExtraEnv must learn it too.
	if got, want := strings.Split(envNames(), ", "), slices.Sorted(maps.Keys(allowed)); !slices.Equal(got, want) {
		t.Fatalf("envNames() = %v, but the test allows %v: update composeExtraEnv", got, want)
	}
	return allowed
}

func TestComposeServices(t *testing.T) {
	svcs := composeServices(t)
	byProfile := map[string][]string{}
	for name, svc := range svcs {
		profiles := composeStrings(t, svc["profiles"])
		switch {
		case len(profiles) == 0:
			byProfile[""] = append(byProfile[""], name)
		case len(profiles) == 1 && profiles[0] == composeProfile:
			byProfile[composeProfile] = append(byProfile[composeProfile], name)
		default:
			t.Errorf("%s: profiles %q, want none (the default stack) or [%s]", name, profiles, composeProfile)
		}
	}
	want := append(slices.Collect(maps.Keys(composeTollgate)), composeInfra...)
	if got := slices.Sorted(slices.Values(byProfile[""])); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("default services %v, want %v", got, slices.Sorted(slices.Values(want)))
	}
	want = slices.Concat(slices.Collect(maps.Keys(composeTollgateProduction)), composeInfraProduction, composeJobsProduction)
	if got := slices.Sorted(slices.Values(byProfile[composeProfile])); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("%s services %v, want %v", composeProfile, got, slices.Sorted(slices.Values(want)))
	}
	for name, cmd := range composeTollgateAll() {
		svc := svcs[name]
		if got := composeStrings(t, svc["command"]); !slices.Equal(got, cmd) {
			t.Errorf("%s: command %q, want %q", name, got, cmd)
		}
		if svc["image"] != "tollgate:dev" {
			t.Errorf("%s: image %v, want the shared tollgate:dev", name, svc["image"])
		}
		build, _ := svc["build"].(map[string]any)
		if build["context"] != "." || build["dockerfile"] != "deploy/Dockerfile" {
			t.Errorf("%s: build %v, want context . and dockerfile deploy/Dockerfile", name, build)
		}
		if _, ok := svc["entrypoint"]; ok {
			t.Errorf("%s: overrides the image's entrypoint", name)
		}
	}
}

func TestComposeTollgateEnv(t *testing.T) {
	svcs := composeServices(t)
	allowed := composeAllowedEnv(t)
	for name, svc := range svcs {
		for k := range composeEnv(t, svc) {
			if strings.HasPrefix(k, "TOLLGATE_") && !allowed[k] {
				t.Errorf("%s: %s is not a variable loadConfig reads", name, k)
			}
		}
	}
	minio := composeEnv(t, svcs["minio"])
	for name := range composeTollgate {
		env := composeEnv(t, svcs[name])
		for k := range env {
			if !strings.HasPrefix(k, "TOLLGATE_") {
				t.Errorf("%s: %s: the tollgate services take only TOLLGATE_* variables", name, k)
			}
		}
		for _, k := range []string{"TOLLGATE_NATS_URL", "TOLLGATE_TEMPORAL_ADDRESS", "TOLLGATE_MINIO_ENDPOINT", "TOLLGATE_MINIO_ACCESS_KEY", "TOLLGATE_MINIO_SECRET_KEY"} {
			if env[k] == "" {
				t.Errorf("%s: %s is not set", name, k)
			}
		}
		// Each address names the compose service that serves it.
		if u, err := url.Parse(env["TOLLGATE_NATS_URL"]); err != nil || u.Scheme != "nats" || u.Host != "nats:4222" {
			t.Errorf("%s: TOLLGATE_NATS_URL %q, want nats://nats:4222", name, env["TOLLGATE_NATS_URL"])
		}
		if host, _, _ := net.SplitHostPort(env["TOLLGATE_TEMPORAL_ADDRESS"]); host != "temporal" {
			t.Errorf("%s: TOLLGATE_TEMPORAL_ADDRESS %q, want the temporal service", name, env["TOLLGATE_TEMPORAL_ADDRESS"])
		}
		if env["TOLLGATE_MINIO_ENDPOINT"] != "minio:9000" {
			t.Errorf("%s: TOLLGATE_MINIO_ENDPOINT %q, want minio:9000", name, env["TOLLGATE_MINIO_ENDPOINT"])
		}
		if env["TOLLGATE_MINIO_ACCESS_KEY"] != minio["MINIO_ROOT_USER"] || env["TOLLGATE_MINIO_SECRET_KEY"] != minio["MINIO_ROOT_PASSWORD"] {
			t.Errorf("%s: MinIO keys differ from the minio service's root credentials", name)
		}
	}
}

func TestComposeDependsOnHealthy(t *testing.T) {
	svcs := composeServices(t)
	for name, svc := range svcs {
		deps, ok := svc["depends_on"].(map[string]any)
		if !ok {
			if svc["depends_on"] != nil {
				t.Errorf("%s: depends_on must be the long form, with conditions", name)
			}
			continue
		}
		for dep, v := range deps {
			m, _ := v.(map[string]any)
			cond, _ := m["condition"].(string)
			// A one-shot job is waited for to have succeeded; a server, to
			// be healthy.
			if slices.Contains(composeJobsProduction, dep) {
				if cond != "service_completed_successfully" {
					t.Errorf("%s: depends on the job %s with condition %q, want service_completed_successfully", name, dep, cond)
				}
				if r, _ := svcs[dep]["restart"].(string); r != "no" {
					t.Errorf("%s: restart %q, want \"no\": it runs once", dep, r)
				}
				continue
			}
			if cond != "service_healthy" {
				t.Errorf("%s: depends on %s with condition %q, want service_healthy", name, dep, cond)
			}
			if _, ok := svcs[dep]["healthcheck"]; !ok {
				t.Errorf("%s: depends on %s being healthy, which has no healthcheck", name, dep)
			}
			// Each stack depends only on its own services: the default
			// stack starts without the profile, and the profile's services
			// do not pull in the demo stack's.
			if a, b := composeStrings(t, svc["profiles"]), composeStrings(t, svcs[dep]["profiles"]); !slices.Equal(a, b) {
				t.Errorf("%s (profiles %q) depends on %s (profiles %q)", name, a, dep, b)
			}
		}
	}
	// The tollgate services wait for every server they call (Temporal's
	// PostgreSQL is Temporal's own).
	stacks := []struct {
		tollgate map[string][]string
		needs    []string
	}{
		{composeTollgate, composeInfra},
		{composeTollgateProduction, slices.Concat(composeNATSProduction, []string{"prod-temporal", "prod-minio"}, composeJobsProduction)},
	}
	for _, st := range stacks {
		for name := range st.tollgate {
			deps, _ := svcs[name]["depends_on"].(map[string]any)
			for _, need := range st.needs {
				if _, ok := deps[need]; !ok {
					t.Errorf("%s: does not depend on %s", name, need)
				}
			}
		}
	}
	for _, name := range slices.Concat(composeInfra, composeInfraProduction) {
		hc, _ := svcs[name]["healthcheck"].(map[string]any)
		test := composeStrings(t, hc["test"])
		if len(test) < 2 || (test[0] != "CMD" && test[0] != "CMD-SHELL") || hc["disable"] == true {
			t.Errorf("%s: healthcheck %v, want a CMD test", name, hc)
		}
		// prod-temporal keeps its state in prod-postgres.
		if len(composeVolumes(t, svcs[name])) == 0 && name != "prod-temporal" {
			t.Errorf("%s: no volume: its data is lost with the container", name)
		}
	}
}

func TestComposeTemporal(t *testing.T) {
	svc := composeServices(t)["temporal"]
	cmd := composeStrings(t, svc["command"])
	flag := func(name string) []string { return composeFlag(cmd, name) }
	if len(cmd) < 2 || cmd[0] != "server" || cmd[1] != "start-dev" || !slices.Contains(cmd, "--headless") || !slices.Equal(flag("--ip"), []string{"0.0.0.0"}) {
		t.Errorf("temporal: command %q, want server start-dev --ip 0.0.0.0 --headless", cmd)
	}
	// The tuning stack.StartTemporalDev measured (shared/NOTES-dependencies.md).
	dyn := flag("--dynamic-config-value")
	for _, want := range []string{"matching.numTaskqueueReadPartitions=1", "matching.numTaskqueueWritePartitions=1", "history.transferProcessorMaxPollRPS=200"} {
		if !slices.Contains(dyn, want) {
			t.Errorf("temporal: no --dynamic-config-value %s", want)
		}
	}
	// The search attributes the API sets on every scan: without them, no
	// submission starts.
	attrs := flag("--search-attribute")
	for name, typ := range stack.TemporalSearchAttributes {
		if !slices.Contains(attrs, name+"="+typ) {
			t.Errorf("temporal: no --search-attribute %s=%s", name, typ)
		}
	}
	// The SQLite file must be on a volume, or history is lost with the container.
	db := flag("--db-filename")
	onVolume := false
	for _, m := range composeVolumes(t, svc) {
		onVolume = onVolume || (len(db) == 1 && strings.HasPrefix(db[0], strings.TrimSuffix(m.target, "/")+"/"))
	}
	if !onVolume {
		t.Errorf("temporal: --db-filename %q is not on a volume", db)
	}
}

func TestComposeHardening(t *testing.T) {
	svcs := composeServices(t)
	for name := range composeTollgateAll() {
		svc := svcs[name]
		if svc["read_only"] != true {
			t.Errorf("%s: read_only is not true", name)
		}
		if !slices.Contains(composeStrings(t, svc["cap_drop"]), "ALL") {
			t.Errorf("%s: cap_drop %v, want ALL", name, svc["cap_drop"])
		}
		if caps := composeStrings(t, svc["cap_add"]); len(caps) > 0 {
			t.Errorf("%s: cap_add %v", name, caps)
		}
		opts := composeStrings(t, svc["security_opt"])
		if !slices.Contains(opts, "no-new-privileges:true") && !slices.Contains(opts, "no-new-privileges") {
			t.Errorf("%s: security_opt %v, want no-new-privileges:true", name, opts)
		}
		user, _ := svc["user"].(string)
		uid, _, _ := strings.Cut(user, ":")
		if n, err := strconv.Atoi(uid); err != nil || n == 0 {
			t.Errorf("%s: user %q, want a numeric non-root uid", name, user)
		}
		if svc["privileged"] == true {
			t.Errorf("%s: privileged", name)
		}
		tmpfs := composeStrings(t, svc["tmpfs"])
		if !slices.ContainsFunc(tmpfs, func(s string) bool { return s == "/tmp" || strings.HasPrefix(s, "/tmp:") }) {
			t.Errorf("%s: tmpfs %v, want /tmp (the root filesystem is read-only)", name, tmpfs)
		}
		if r, _ := svc["restart"].(string); r == "" || r == "no" {
			t.Errorf("%s: restart %q", name, r)
		}
		grace, err := time.ParseDuration(fmt.Sprint(svc["stop_grace_period"]))
		if err != nil {
			t.Errorf("%s: stop_grace_period %v: %v", name, svc["stop_grace_period"], err)
		}
		if strings.HasPrefix(name, "worker-") && grace < 45*time.Second {
			t.Errorf("%s: stop_grace_period %s, want at least 45s for the workers to drain", name, grace)
		}
		if _, ok := svc["healthcheck"]; ok {
			t.Errorf("%s: a healthcheck, but the distroless image has nothing to run it with", name)
		}
	}
}

func TestComposeAPI(t *testing.T) {
	svc := composeServices(t)["api"]
	env := composeEnv(t, svc)
	host, port, err := net.SplitHostPort(env["TOLLGATE_LISTEN"])
	if err != nil || port != "8080" || (host != "0.0.0.0" && host != "" && host != "::") {
		t.Errorf("api: TOLLGATE_LISTEN %q, want 0.0.0.0:8080 (loopback is unreachable from outside the container)", env["TOLLGATE_LISTEN"])
	}
	// The metrics name tenants: on a port of their own, never the API's.
	if _, mport, err := net.SplitHostPort(env["TOLLGATE_METRICS_LISTEN"]); err != nil || mport == port {
		t.Errorf("api: TOLLGATE_METRICS_LISTEN %q, want its own port", env["TOLLGATE_METRICS_LISTEN"])
	}
	published := false
	ports, _ := svc["ports"].([]any)
	for _, p := range ports {
		switch p := p.(type) {
		case string:
			parts := strings.Split(strings.TrimSuffix(p, "/tcp"), ":")
			published = published || (len(parts) >= 2 && parts[len(parts)-1] == "8080" && parts[len(parts)-2] == "8080")
		case map[string]any:
			published = published || (fmt.Sprint(p["target"]) == "8080" && fmt.Sprint(p["published"]) == "8080")
		}
	}
	if !published {
		t.Errorf("api: ports %v, want 8080 published on 8080", svc["ports"])
	}
	tokens := env["TOLLGATE_TOKENS_FILE"]
	var mount *composeMount
	for _, m := range composeVolumes(t, svc) {
		if m.target == tokens {
			mount = &m
		}
	}
	if tokens == "" || mount == nil {
		t.Fatalf("api: TOLLGATE_TOKENS_FILE %q is not a mounted file", tokens)
	}
	if !mount.readOnly || !strings.HasPrefix(mount.source, "./") {
		t.Errorf("api: tokens mount %+v, want a read-only file from the repository", *mount)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, mount.source)); err != nil {
		t.Errorf("api: tokens file: %v", err)
	}
}

// TestComposeWorkerDB: trivy-db opens the DB read-write with an exclusive
// lock, so each worker needs its own writable copy: an anonymous volume, not
// the read-only root filesystem and not a named volume two containers share.
func TestComposeWorkerDB(t *testing.T) {
	svcs := composeServices(t)
	imageDB := dockerfileFinalEnv(t)["TOLLGATE_DB_DIR"]
	for _, name := range []string{"worker-fast", "worker-deep", "prod-worker-fast", "prod-worker-deep"} {
		dir := composeEnv(t, svcs[name])["TOLLGATE_DB_DIR"]
		if dir == "" {
			dir = imageDB
		}
		if dir != imageDB {
			t.Errorf("%s: TOLLGATE_DB_DIR %q differs from the image's DB at %q", name, dir, imageDB)
		}
		found := false
		for _, m := range composeVolumes(t, svcs[name]) {
			if m.target == dir {
				found = true
				if m.source != "" || m.readOnly {
					t.Errorf("%s: DB mount %+v, want an anonymous writable volume (one per container)", name, m)
				}
			}
		}
		if !found {
			t.Errorf("%s: no volume on its DB directory %q: the read-only root filesystem cannot hold trivy's lock", name, dir)
		}
	}
}

// TestComposeLoadConfig configures each tollgate service as compose would
// (with every ${VAR:-default} at its default) and runs loadConfig on it.
func TestComposeLoadConfig(t *testing.T) {
	svcs := composeServices(t)
	allowed := composeAllowedEnv(t)
	for _, name := range slices.Sorted(maps.Keys(composeTollgateAll())) {
		t.Run(name, func(t *testing.T) {
			for k := range allowed {
				t.Setenv(k, "") // restored after the test
				os.Unsetenv(k)
			}
			svc := svcs[name]
			env := composeEnv(t, svc)
			for k, v := range env {
				if k == "TOLLGATE_TOKENS_FILE" {
					// The container path is a mount of a repository file.
					for _, m := range composeVolumes(t, svc) {
						if m.target == v {
							v = filepath.Join(repoRoot, m.source)
						}
					}
				}
				t.Setenv(k, v)
			}
			cfg, err := loadConfig("")
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if cfg.NATS.URL != env["TOLLGATE_NATS_URL"] || cfg.Temporal.Address != env["TOLLGATE_TEMPORAL_ADDRESS"] || cfg.MinIO.Endpoint != env["TOLLGATE_MINIO_ENDPOINT"] {
				t.Errorf("config %+v does not match the environment", cfg)
			}
			if err := cfg.MinIO.Validate(); err != nil {
				t.Errorf("MinIO config: %v", err)
			}
			if _, prod := composeTollgateProduction[name]; prod && cfg.NATS.Replicas != len(composeNATSProduction) {
				t.Errorf("NATS replicas %d, want one per node of the cluster (%d)", cfg.NATS.Replicas, len(composeNATSProduction))
			}
			if name != "api" && name != "prod-api" {
				return
			}
			if cfg.API.Listen != "0.0.0.0:8080" {
				t.Errorf("listen %q", cfg.API.Listen)
			}
			if len(cfg.API.Tokens) == 0 {
				t.Fatal("no API tokens: the API would accept nobody")
			}
			demo := false
			for _, tok := range cfg.API.Tokens {
				if err := tok.Validate(); err != nil {
					t.Error(err)
				}
				demo = demo || (tok.SHA256 == api.HashToken(demoToken) && tok.Tenant == "demo" && slices.Contains(tok.Roles, api.RoleCI))
			}
			if !demo {
				t.Errorf("tokens %+v: none is the documented demo token %q for tenant demo with role ci", cfg.API.Tokens, demoToken)
			}
		})
	}
}

type dockerInstr struct {
	cmd  string // upper case
	args string
}

// dockerfileStages reads deploy/Dockerfile into stages of instructions
// (comments dropped, continuation lines joined).
func dockerfileStages(t *testing.T) [][]dockerInstr {
	t.Helper()
	raw, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]dockerInstr
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := dockerInstr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			return // ARGs before the first FROM
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	for line := range strings.Lines(string(raw)) {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	if len(stages) < 2 {
		t.Fatalf("%s: %d stages, want a build stage and a runtime stage", dockerfilePath, len(stages))
	}
	return stages
}

// dockerfileFinalEnv is the ENV of the final stage.
func dockerfileFinalEnv(t *testing.T) map[string]string {
	t.Helper()
	stages := dockerfileStages(t)
	env := map[string]string{}
	for _, in := range stages[len(stages)-1] {
		if in.cmd == "ENV" {
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = strings.Trim(v, `"`)
			}
		}
	}
	return env
}

func TestDockerfile(t *testing.T) {
	stages := dockerfileStages(t)
	final := stages[len(stages)-1]
	base := strings.Fields(final[0].args)
	if len(base) == 0 || !strings.HasPrefix(base[0], "gcr.io/distroless/") || !strings.Contains(base[0], "nonroot") {
		t.Errorf("final stage FROM %q, want a distroless nonroot image", final[0].args)
	}
	var user, entrypoint string
	var copies []string
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "COPY":
			copies = append(copies, in.args)
		case "RUN":
			t.Errorf("final stage RUN %q: distroless has no shell", in.args)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("final stage USER %q, want a numeric non-root uid", user)
	}
	if entrypoint != `["/tollgate"]` {
		t.Errorf("ENTRYPOINT %s, want [\"/tollgate\"]", entrypoint)
	}
	dbDir := dockerfileFinalEnv(t)["TOLLGATE_DB_DIR"]
	if dbDir == "" || !slices.ContainsFunc(copies, func(c string) bool { return strings.HasSuffix(c, " "+dbDir) }) {
		t.Errorf("TOLLGATE_DB_DIR %q is not where the image's DB is copied (%q)", dbDir, copies)
	}
	if !slices.ContainsFunc(copies, func(c string) bool { return strings.HasSuffix(c, " /tollgate") }) {
		t.Errorf("the binary is not copied to /tollgate: %q", copies)
	}

	// The build stage: Go at least go.mod's, jsonv2, no cgo, cache mounts, the
	// version stamped into the variable that exists, and the demo DB.
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	build := stages[0]
	if goLine == nil || !strings.HasPrefix(build[0].args, "golang:"+string(goLine[1])) {
		t.Errorf("build stage FROM %q, want golang:%s (go.mod)", build[0].args, goLine[1])
	}
	var all strings.Builder
	for _, in := range build {
		fmt.Fprintf(&all, "%s %s\n", in.cmd, in.args)
	}
	_ = Version // the -X target below
	for _, want := range []string{"GOEXPERIMENT=jsonv2",
		// cgo for tree-sitter, linked statically for distroless/static
		"CGO_ENABLED=1", "-tags netgo,osusergo", "-extldflags -static", "--mount=type=cache,target=/go/pkg/mod",
		"--mount=type=cache,target=/root/.cache/go-build", "-X github.com/tollgate/tollgate/internal/cli.Version=",
		"./cmd/tollgate", "db import --osv testdata/osv"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("build stage lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "testdata", "osv")); err != nil {
		t.Error(err)
	}
}

// TestDockerfileBuildContext: .dockerignore keeps the context small and free
// of secrets, but keeps what the build reads.
func TestDockerfileBuildContext(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(string(raw)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	for _, want := range []string{".git", "bin", "examples", "!testdata/osv"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore lacks %q", want)
		}
	}
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "internal", "testdata/osv", "policies", "*", "**"} {
		if slices.Contains(lines, needed) || slices.Contains(lines, needed+"/") {
			t.Errorf(".dockerignore excludes %q, which the build needs", needed)
		}
	}
}

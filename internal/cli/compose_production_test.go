package cli

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tollgate/tollgate/stack"
)

// These tests check docker-compose.yml's profile `production` (the
// production-shaped stack of issue 15) as data, like compose_test.go checks
// the default stack: the servers are the versions the code runs, they are
// wired as stack/ wires them, and the tollgate services reach them through
// the settings loadConfig reads (TestComposeLoadConfig loads them).

// composeFlag returns the values of every occurrence of flag in cmd.
func composeFlag(cmd []string, flag string) []string {
	var vals []string
	for i, a := range cmd {
		if a == flag && i+1 < len(cmd) {
			vals = append(vals, cmd[i+1])
		}
	}
	return vals
}

// composeReleaseTag is a tag that names one release: a version with at
// least a minor (a distribution suffix allowed), or MinIO's RELEASE stamp.
var composeReleaseTag = regexp.MustCompile(`^(\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)$`)

// TestComposeImagesArePinned: no image is `latest` or untagged, and the
// profile's servers are pinned to one release each.
func TestComposeImagesArePinned(t *testing.T) {
	svcs := composeServices(t)
	tollgate := composeTollgateAll()
	for name, svc := range svcs {
		if _, ok := tollgate[name]; ok {
			continue // built here (tollgate:dev)
		}
		image, _ := svc["image"].(string)
		_, tag, ok := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
		if !ok || tag == "" || tag == "latest" {
			t.Errorf("%s: image %q has no pinned tag", name, image)
			continue
		}
		if slices.Contains(composeStrings(t, svc["profiles"]), composeProfile) && !composeReleaseTag.MatchString(tag) {
			t.Errorf("%s: image %q: want the tag of one release", name, image)
		}
	}
}

// TestComposeProductionTemporal: the Temporal server stack pins, on the
// profile's PostgreSQL for history and SQL visibility, with tollgate's
// namespace and search attributes.
func TestComposeProductionTemporal(t *testing.T) {
	svcs := composeServices(t)
	temporal, pg := svcs["prod-temporal"], svcs["prod-postgres"]
	if want := "temporalio/auto-setup:" + strings.TrimPrefix(stack.TemporalServerVersion, "v"); temporal["image"] != want {
		t.Errorf("prod-temporal: image %v, want %s (stack.TemporalServerVersion)", temporal["image"], want)
	}
	env, pgEnv := composeEnv(t, temporal), composeEnv(t, pg)
	if env["DB"] != "postgres12" || env["POSTGRES_SEEDS"] != "prod-postgres" {
		t.Errorf("prod-temporal: DB %q on %q, want postgres12 on prod-postgres", env["DB"], env["POSTGRES_SEEDS"])
	}
	if env["POSTGRES_USER"] != pgEnv["POSTGRES_USER"] || env["POSTGRES_PWD"] != pgEnv["POSTGRES_PASSWORD"] {
		t.Errorf("prod-temporal: PostgreSQL credentials differ from prod-postgres's")
	}
	// SQL visibility: the image puts visibility in Elasticsearch with ENABLE_ES.
	if env["ENABLE_ES"] == "true" || env["SKIP_SCHEMA_SETUP"] == "true" || env["DBNAME"] == "" || env["DBNAME"] == env["VISIBILITY_DBNAME"] {
		t.Errorf("prod-temporal: ENABLE_ES %q, SKIP_SCHEMA_SETUP %q, DBNAME %q, VISIBILITY_DBNAME %q: want the schema set up in two PostgreSQL databases",
			env["ENABLE_ES"], env["SKIP_SCHEMA_SETUP"], env["DBNAME"], env["VISIBILITY_DBNAME"])
	}
	if !strings.HasPrefix(fmt.Sprint(pg["image"]), "postgres:") || len(composeVolumes(t, pg)) == 0 {
		t.Errorf("prod-postgres: image %v, volumes %v: want PostgreSQL with its data on a volume", pg["image"], pg["volumes"])
	}

	// The job creates the search attributes the API sets on every scan, in
	// the namespace tollgate uses.
	script := strings.Join(composeStrings(t, svcs["prod-temporal-setup"]["command"]), " ")
	ns := env["DEFAULT_NAMESPACE"]
	if !strings.Contains(script, "--namespace "+ns) {
		t.Errorf("prod-temporal-setup: does not act on the namespace %q", ns)
	}
	for name, typ := range stack.TemporalSearchAttributes {
		if !strings.Contains(script, name) || !strings.Contains(script, "--type "+typ) {
			t.Errorf("prod-temporal-setup: does not create the search attribute %s (%s)", name, typ)
		}
	}
	for name := range composeTollgateProduction {
		tenv := composeEnv(t, svcs[name])
		if tenv["TOLLGATE_TEMPORAL_NAMESPACE"] != ns {
			t.Errorf("%s: TOLLGATE_TEMPORAL_NAMESPACE %q, want %q", name, tenv["TOLLGATE_TEMPORAL_NAMESPACE"], ns)
		}
		if tenv["TOLLGATE_TEMPORAL_ADDRESS"] != "prod-temporal:7233" {
			t.Errorf("%s: TOLLGATE_TEMPORAL_ADDRESS %q, want prod-temporal:7233", name, tenv["TOLLGATE_TEMPORAL_ADDRESS"])
		}
	}
}

// TestComposeProductionNATS: three nats-server nodes of go.mod's release in
// one JetStream cluster, each routed to the other two with its store on a
// volume, and every tollgate service listing all three with its streams at
// one replica per node.
func TestComposeProductionNATS(t *testing.T) {
	svcs := composeServices(t)
	clusters, names := map[string]bool{}, map[string]bool{}
	var clientURLs []string
	for _, node := range composeNATSProduction {
		svc := svcs[node]
		if want := "nats:" + server.VERSION + "-alpine"; svc["image"] != want {
			t.Errorf("%s: image %v, want %s (go.mod's nats-server)", node, svc["image"], want)
		}
		cmd := composeStrings(t, svc["command"])
		if !slices.Contains(cmd, "-js") {
			t.Errorf("%s: no JetStream (-js)", node)
		}
		store := composeFlag(cmd, "-sd")
		if len(store) != 1 || !slices.ContainsFunc(composeVolumes(t, svc), func(m composeMount) bool { return m.source != "" && m.target == store[0] }) {
			t.Errorf("%s: store %q is not on a named volume", node, store)
		}
		for _, n := range composeFlag(cmd, "--cluster_name") {
			clusters[n] = true
		}
		for _, n := range composeFlag(cmd, "--name") {
			names[n] = true
		}
		listen := composeFlag(cmd, "--cluster")
		if len(listen) != 1 {
			t.Fatalf("%s: --cluster %q, want one listen URL", node, listen)
		}
		_, port, err := net.SplitHostPort(strings.TrimPrefix(listen[0], "nats://"))
		if err != nil {
			t.Fatalf("%s: --cluster %q: %v", node, listen[0], err)
		}
		var want []string
		for _, other := range composeNATSProduction {
			if other != node {
				want = append(want, "nats://"+net.JoinHostPort(other, port))
			}
		}
		if routes := composeFlag(cmd, "--routes"); len(routes) != 1 || !slices.Equal(strings.Split(routes[0], ","), want) {
			t.Errorf("%s: --routes %q, want %q", node, routes, strings.Join(want, ","))
		}
		clientURLs = append(clientURLs, "nats://"+node+":4222")
	}
	if len(clusters) != 1 || len(names) != len(composeNATSProduction) {
		t.Errorf("cluster names %v, server names %v: want one cluster of %d distinctly named servers", clusters, names, len(composeNATSProduction))
	}
	for name := range composeTollgateProduction {
		env := composeEnv(t, svcs[name])
		if got := strings.Split(env["TOLLGATE_NATS_URL"], ","); !slices.Equal(got, clientURLs) {
			t.Errorf("%s: TOLLGATE_NATS_URL %q, want every node: %q", name, got, clientURLs)
		}
		if env["TOLLGATE_NATS_REPLICAS"] != strconv.Itoa(len(composeNATSProduction)) {
			t.Errorf("%s: TOLLGATE_NATS_REPLICAS %q, want %d", name, env["TOLLGATE_NATS_REPLICAS"], len(composeNATSProduction))
		}
	}
}

// composeDriveRange is MinIO's ellipsis notation, /data{1...4}.
var composeDriveRange = regexp.MustCompile(`^(.*)\{(\d+)\.\.\.(\d+)\}(.*)$`)

// TestComposeProductionMinIO: MinIO erasure-coded over four drives or more,
// each its own volume, the image the default stack runs, and tollgate
// pointed at it with its root credentials.
func TestComposeProductionMinIO(t *testing.T) {
	svcs := composeServices(t)
	svc := svcs["prod-minio"]
	if svc["image"] != svcs["minio"]["image"] {
		t.Errorf("prod-minio: image %v, want the minio service's %v", svc["image"], svcs["minio"]["image"])
	}
	cmd := composeStrings(t, svc["command"])
	if len(cmd) < 2 || cmd[0] != "server" {
		t.Fatalf("prod-minio: command %q, want server DRIVES...", cmd)
	}
	var drives []string
	for _, a := range cmd[1:] {
		if strings.HasPrefix(a, "-") {
			break
		}
		m := composeDriveRange.FindStringSubmatch(a)
		if m == nil {
			drives = append(drives, a)
			continue
		}
		lo, _ := strconv.Atoi(m[2])
		hi, _ := strconv.Atoi(m[3])
		for i := lo; i <= hi; i++ {
			drives = append(drives, m[1]+strconv.Itoa(i)+m[4])
		}
	}
	if len(drives) < 4 {
		t.Errorf("prod-minio: drives %q, want 4 or more (erasure coding)", drives)
	}
	sources := map[string]bool{}
	for _, d := range drives {
		i := slices.IndexFunc(composeVolumes(t, svc), func(m composeMount) bool { return m.target == d })
		if i < 0 || composeVolumes(t, svc)[i].source == "" {
			t.Errorf("prod-minio: drive %s is not a named volume", d)
			continue
		}
		sources[composeVolumes(t, svc)[i].source] = true
	}
	if len(sources) != len(drives) {
		t.Errorf("prod-minio: %d drives on %d volumes, want one volume each", len(drives), len(sources))
	}
	root := composeEnv(t, svc)
	for name := range composeTollgateProduction {
		env := composeEnv(t, svcs[name])
		if env["TOLLGATE_MINIO_ENDPOINT"] != "prod-minio:9000" {
			t.Errorf("%s: TOLLGATE_MINIO_ENDPOINT %q, want prod-minio:9000", name, env["TOLLGATE_MINIO_ENDPOINT"])
		}
		if env["TOLLGATE_MINIO_ACCESS_KEY"] != root["MINIO_ROOT_USER"] || env["TOLLGATE_MINIO_SECRET_KEY"] != root["MINIO_ROOT_PASSWORD"] {
			t.Errorf("%s: MinIO keys differ from prod-minio's root credentials", name)
		}
	}
}

// TestComposeProductionAPI: the profile's API is published on loopback,
// beside the default stack's (both can run at once).
func TestComposeProductionAPI(t *testing.T) {
	svcs := composeServices(t)
	env := composeEnv(t, svcs["prod-api"])
	if env["TOLLGATE_LISTEN"] != composeEnv(t, svcs["api"])["TOLLGATE_LISTEN"] {
		t.Errorf("prod-api: TOLLGATE_LISTEN %q differs from api's", env["TOLLGATE_LISTEN"])
	}
	hostPorts := func(name string) []string {
		var out []string
		for _, p := range composeStrings(t, svcs[name]["ports"]) {
			parts := strings.Split(p, ":")
			if len(parts) != 3 || parts[0] != "127.0.0.1" {
				t.Errorf("%s: port %q, want 127.0.0.1:HOST:CONTAINER", name, p)
				continue
			}
			out = append(out, parts[1])
		}
		return out
	}
	prod, def := hostPorts("prod-api"), slices.Concat(hostPorts("api"), hostPorts("orchestrator"))
	if len(prod) == 0 {
		t.Error("prod-api: publishes nothing")
	}
	for _, p := range prod {
		if slices.Contains(def, p) {
			t.Errorf("prod-api: host port %s is the default stack's too", p)
		}
	}
}

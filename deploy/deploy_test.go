// The deployment files are checked here, offline and in well under a
// second: every Kubernetes manifest under k8s/ parses and names its
// apiVersion, kind and metadata.name; every pod runs hardened (non-root,
// read-only root filesystem, no privilege escalation, no capabilities,
// seccomp RuntimeDefault, no service account token) with resource requests
// and limits; the API has probes; the kustomizations list files that exist
// and build with kustomize's own library, as `kubectl apply -k` would; the
// KEDA ScaledObjects target existing Deployments and the pools' JetStream
// consumers; the TOLLGATE_* variables set are ones tollgate reads; the
// Collector's pipelines use only defined components; the dashboard's panels
// all have queries.
//
// schema_test.go also validates every built resource with kubeconform, in
// strict mode, against schemas made from the pinned Kubernetes OpenAPI spec
// and KEDA's CRD (scripts/tools.sh k8s-schemas fetches them through the Go
// module proxy; kubeconform's own schemas are on GitHub, which our machines
// cannot reach).
package deploy_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/tollgate/tollgate/tasks"
)

// object is one Kubernetes manifest, with the fields the checks read.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
	Spec struct {
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec podSpec `json:"spec"`
		} `json:"template"`
		// ScaledObject
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		Triggers []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`

	file string
}

type podSpec struct {
	AutomountServiceAccountToken *bool `json:"automountServiceAccountToken"`
	SecurityContext              struct {
		RunAsNonRoot   *bool  `json:"runAsNonRoot"`
		RunAsUser      *int64 `json:"runAsUser"`
		RunAsGroup     *int64 `json:"runAsGroup"`
		SeccompProfile *struct {
			Type string `json:"type"`
		} `json:"seccompProfile"`
	} `json:"securityContext"`
	InitContainers []container `json:"initContainers"`
	Containers     []container `json:"containers"`
	Volumes        []struct {
		Name     string          `json:"name"`
		EmptyDir json.RawMessage `json:"emptyDir"`
	} `json:"volumes"`
}

type container struct {
	Name  string   `json:"name"`
	Image string   `json:"image"`
	Args  []string `json:"args"`
	Env   []struct {
		Name string `json:"name"`
	} `json:"env"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `json:"drop"`
		} `json:"capabilities"`
	} `json:"securityContext"`
	Resources struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
	LivenessProbe  json.RawMessage `json:"livenessProbe"`
	ReadinessProbe json.RawMessage `json:"readinessProbe"`
	VolumeMounts   []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
	} `json:"volumeMounts"`
}

// splitDocuments splits a YAML stream on its "---" separators and drops
// documents that are only comments or blank.
func splitDocuments(raw []byte) [][]byte {
	var docs [][]byte
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		var content bool
		for _, line := range strings.Split(doc, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				content = true
			}
		}
		if content {
			docs = append(docs, []byte(doc))
		}
	}
	return docs
}

// manifests reads every manifest under k8s/ but the kustomizations.
func manifests(t *testing.T) []object {
	t.Helper()
	var objs []object
	err := filepath.WalkDir("k8s", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" || d.Name() == "kustomization.yaml" {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range splitDocuments(raw) {
			var o object
			if err := yaml.Unmarshal(doc, &o); err != nil {
				t.Errorf("%s document %d: %v", path, i, err)
				continue
			}
			// Strictly into a map: catches duplicate keys, which the
			// API server would silently resolve.
			var generic map[string]any
			if err := yaml.UnmarshalStrict(doc, &generic); err != nil {
				t.Errorf("%s document %d: %v", path, i, err)
			}
			o.file = path
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s document %d: want apiVersion, kind and metadata.name, have %q %q %q", path, i, o.APIVersion, o.Kind, o.Metadata.Name)
			}
			objs = append(objs, o)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatal("no manifests under k8s/")
	}
	return objs
}

func ofKind(objs []object, kind string) map[string]object {
	m := map[string]object{}
	for _, o := range objs {
		if o.Kind == kind {
			m[o.Metadata.Name] = o
		}
	}
	return m
}

func TestDeploymentsAreHardened(t *testing.T) {
	t.Parallel()
	deployments := ofKind(manifests(t), "Deployment")
	for _, name := range []string{"tollgate-api", "tollgate-orchestrator", "tollgate-worker-fast", "tollgate-worker-deep"} {
		if _, ok := deployments[name]; !ok {
			t.Errorf("no Deployment %s", name)
		}
	}
	for name, d := range deployments {
		pod := d.Spec.Template.Spec
		sc := pod.SecurityContext
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", name)
		}
		if sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsGroup == nil || *sc.RunAsGroup != 65532 {
			t.Errorf("%s: pod does not run as 65532:65532, the image's user", name)
		}
		if sc.SeccompProfile == nil || sc.SeccompProfile.Type != "RuntimeDefault" {
			t.Errorf("%s: pod seccompProfile is not RuntimeDefault", name)
		}
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken is not false", name)
		}
		volumes := map[string]bool{}
		for _, v := range pod.Volumes {
			volumes[v.Name] = true
		}
		if len(pod.Containers) == 0 {
			t.Errorf("%s: no containers", name)
		}
		for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
			where := name + " container " + c.Name
			csc := c.SecurityContext
			if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if !slices.Equal(csc.Capabilities.Drop, []string{"ALL"}) {
				t.Errorf("%s: capabilities.drop is %v, want [ALL]", where, csc.Capabilities.Drop)
			}
			for _, r := range []string{"cpu", "memory"} {
				if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
					t.Errorf("%s: no %s request and limit", where, r)
				}
			}
			if !strings.HasPrefix(c.Image, "ghcr.io/tollgate/tollgate") {
				t.Errorf("%s: image %q is not tollgate's (kustomize's images: would not tag it)", where, c.Image)
			}
			var tmp bool
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					t.Errorf("%s: mounts undefined volume %q", where, m.Name)
				}
				tmp = tmp || m.MountPath == "/tmp"
			}
			if !tmp {
				t.Errorf("%s: no writable /tmp (the root filesystem is read-only)", where)
			}
		}
	}
	api := deployments["tollgate-api"].Spec.Template.Spec.Containers
	if len(api) != 1 || len(api[0].LivenessProbe) == 0 || len(api[0].ReadinessProbe) == 0 {
		t.Errorf("tollgate-api: want one container with liveness and readiness probes")
	} else if !bytes.Contains(api[0].LivenessProbe, []byte("/healthz")) || !bytes.Contains(api[0].ReadinessProbe, []byte("/readyz")) {
		t.Errorf("tollgate-api: liveness must probe /healthz and readiness /readyz")
	}
}

// TestEnvironmentIsRead checks every TOLLGATE_* variable the manifests set is
// one tollgate reads (internal/cli).
func TestEnvironmentIsRead(t *testing.T) {
	t.Parallel()
	var source []byte
	files, err := filepath.Glob(filepath.Join("..", "internal", "cli", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no internal/cli sources: %v", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		source = append(source, raw...)
	}
	check := func(where, name string) {
		if strings.HasPrefix(name, "TOLLGATE_") && !bytes.Contains(source, []byte(`"`+name+`"`)) {
			t.Errorf("%s sets %s, which tollgate does not read", where, name)
		}
	}
	for _, o := range manifests(t) {
		for k := range o.Data {
			check(o.file, k)
		}
		pod := o.Spec.Template.Spec
		for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
			for _, e := range c.Env {
				check(o.file, e.Name)
			}
		}
	}
}

func TestKustomizations(t *testing.T) {
	t.Parallel()
	var dirs []string
	err := filepath.WalkDir("k8s", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		dir := filepath.Dir(path)
		dirs = append(dirs, dir)
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var k struct {
			Resources []string `json:"resources"`
		}
		if err := yaml.Unmarshal(raw, &k); err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		if len(k.Resources) == 0 {
			t.Errorf("%s: no resources", path)
		}
		for _, r := range k.Resources {
			if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
				t.Errorf("%s lists %s: %v", path, r, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dirs, filepath.Join("k8s", "base")) || !slices.Contains(dirs, filepath.Join("k8s", "keda")) {
		t.Fatalf("kustomizations found: %v, want k8s/base and k8s/keda", dirs)
	}
	for _, dir := range dirs {
		resmap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
		if err != nil {
			t.Errorf("kustomize build %s: %v", dir, err)
			continue
		}
		out, err := resmap.AsYaml()
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range splitDocuments(out) {
			var o object
			if err := yaml.Unmarshal(doc, &o); err != nil {
				t.Fatalf("kustomize build %s output: %v", dir, err)
			}
			if o.Kind != "Namespace" && o.Metadata.Namespace != "tollgate" {
				t.Errorf("kustomize build %s: %s %s is in namespace %q, want tollgate", dir, o.Kind, o.Metadata.Name, o.Metadata.Namespace)
			}
			if o.Kind == "Secret" {
				t.Errorf("kustomize build %s: includes Secret %s; secrets are created out of band", dir, o.Metadata.Name)
			}
			pod := o.Spec.Template.Spec
			for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
				if c.Image != "ghcr.io/tollgate/tollgate:latest" {
					t.Errorf("kustomize build %s: %s container %s has image %q", dir, o.Metadata.Name, c.Name, c.Image)
				}
			}
		}
	}
}

func TestScaledObjects(t *testing.T) {
	t.Parallel()
	objs := manifests(t)
	deployments := ofKind(objs, "Deployment")
	scaled := ofKind(objs, "ScaledObject")
	if len(scaled) != 2 {
		t.Errorf("have %d ScaledObjects, want one per pool (2)", len(scaled))
	}
	var cfg tasks.StreamConfig
	consumers := map[string]bool{}
	for name, so := range scaled {
		if so.APIVersion != "keda.sh/v1alpha1" {
			t.Errorf("%s: apiVersion %q", name, so.APIVersion)
		}
		target, ok := deployments[so.Spec.ScaleTargetRef.Name]
		if !ok {
			t.Errorf("%s: targets %q, which is not a Deployment", name, so.Spec.ScaleTargetRef.Name)
			continue
		}
		// The target's workers pull from both of its pool's consumers, and
		// it scales on both.
		args := target.Spec.Template.Spec.Containers[0].Args
		pool := ""
		if len(args) == 3 && args[0] == "worker" && args[1] == "--pool" {
			pool = args[2]
		}
		want := map[string]bool{cfg.Consumer(pool, tasks.PriorityCI): true, cfg.Consumer(pool, tasks.PriorityBulk): true}
		if len(so.Spec.Triggers) != len(want) {
			t.Errorf("%s: %d triggers, want one per consumer of pool %q", name, len(so.Spec.Triggers), pool)
		}
		for _, tr := range so.Spec.Triggers {
			md := tr.Metadata
			if tr.Type != "nats-jetstream" {
				t.Errorf("%s: trigger type %q, want nats-jetstream", name, tr.Type)
			}
			if !want[md["consumer"]] {
				t.Errorf("%s: scales %s, which runs %q, on consumer %q", name, target.Metadata.Name, strings.Join(args, " "), md["consumer"])
			}
			consumers[md["consumer"]] = true
			if md["stream"] != cfg.Name() || md["natsServerMonitoringEndpoint"] == "" || md["lagThreshold"] == "" {
				t.Errorf("%s: trigger metadata %v lacks the stream %s, the monitoring endpoint or lagThreshold", name, md, cfg.Name())
			}
		}
	}
	for _, pool := range []string{tasks.PoolFast, tasks.PoolDeep} {
		for _, prio := range []string{tasks.PriorityCI, tasks.PriorityBulk} {
			if !consumers[cfg.Consumer(pool, prio)] {
				t.Errorf("no ScaledObject scales on consumer %s (have %v)", cfg.Consumer(pool, prio), consumers)
			}
		}
	}
}

func TestCollectorConfig(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("otel", "collector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Receivers  map[string]any `json:"receivers"`
		Processors map[string]any `json:"processors"`
		Exporters  map[string]any `json:"exporters"`
		Service    struct {
			Pipelines map[string]struct {
				Receivers  []string `json:"receivers"`
				Processors []string `json:"processors"`
				Exporters  []string `json:"exporters"`
			} `json:"pipelines"`
		} `json:"service"`
	}
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		t.Fatalf("collector.yaml: %v", err)
	}
	for _, p := range []string{"traces", "metrics"} {
		if _, ok := c.Service.Pipelines[p]; !ok {
			t.Errorf("no %s pipeline", p)
		}
	}
	for name, p := range c.Service.Pipelines {
		for kind, pair := range map[string]struct {
			used    []string
			defined map[string]any
		}{"receiver": {p.Receivers, c.Receivers}, "processor": {p.Processors, c.Processors}, "exporter": {p.Exporters, c.Exporters}} {
			if kind != "processor" && len(pair.used) == 0 {
				t.Errorf("pipeline %s: no %ss", name, kind)
			}
			for _, id := range pair.used {
				if _, ok := pair.defined[id]; !ok {
					t.Errorf("pipeline %s: %s %q is not defined", name, kind, id)
				}
			}
		}
		if len(p.Processors) == 0 || p.Processors[0] != "memory_limiter" {
			t.Errorf("pipeline %s: memory_limiter must come first, have %v", name, p.Processors)
		}
	}
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("grafana", "tollgate.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var d struct {
		UID           string  `json:"uid"`
		Title         string  `json:"title"`
		SchemaVersion int     `json:"schemaVersion"`
		Panels        []panel `json:"panels"`
		Templating    struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("tollgate.json: %v", err)
	}
	if d.UID != "tollgate" || d.Title != "tollgate" || d.SchemaVersion != 39 {
		t.Errorf("uid %q, title %q, schemaVersion %d; want tollgate, tollgate, 39", d.UID, d.Title, d.SchemaVersion)
	}
	if len(d.Templating.List) == 0 || d.Templating.List[0].Name != "DS_PROMETHEUS" {
		t.Errorf("want the datasource variable DS_PROMETHEUS")
	}
	ids := map[int]bool{}
	var queries int
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q: datasource %q, want ${DS_PROMETHEUS}", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no targets", p.Title)
		}
		for _, target := range p.Targets {
			if strings.TrimSpace(target.Expr) == "" {
				t.Errorf("panel %q: empty expr", p.Title)
			}
			queries++
		}
	}
	if queries == 0 {
		t.Error("no queries")
	}
}

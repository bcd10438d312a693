package deploy_test

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"sigs.k8s.io/yaml"

	"github.com/tollgate/tollgate/stack"
)

// helm/ names the production layout: Temporal, NATS and MinIO from their
// own charts (helmfile.yaml picks chart and version, a values file each),
// and k8s/production points tollgate at the Services they make. These tests
// read the files as data: no cluster, no helm.

// helmfile is the part of helmfile.yaml the checks read.
type helmfile struct {
	Repositories []struct {
		Name string `json:"name"`
		URL  string `json:"url"`
	} `json:"repositories"`
	Releases []helmRelease `json:"releases"`
}

type helmRelease struct {
	Name      string   `json:"name"`
	Namespace string   `json:"namespace"`
	Chart     string   `json:"chart"`
	Version   string   `json:"version"`
	Values    []string `json:"values"`
	Needs     []string `json:"needs"`
}

// exactVersion is a chart version pinned to one release: no range, no
// "latest", no pre-release.
var exactVersion = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

func readHelmfile(t *testing.T) helmfile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("helm", "helmfile.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var h helmfile
	if err := yaml.UnmarshalStrict(raw, &h); err != nil {
		t.Fatalf("helm/helmfile.yaml: %v", err)
	}
	return h
}

// release returns the release of chart (repo/name).
func (h helmfile) release(t *testing.T, chart string) helmRelease {
	t.Helper()
	i := slices.IndexFunc(h.Releases, func(r helmRelease) bool { return r.Chart == chart })
	if i < 0 {
		t.Fatalf("helm/helmfile.yaml has no release of %s", chart)
	}
	return h.Releases[i]
}

// readValues reads a release's one values file into v (and, strictly, into a
// map: a key given twice is an error, as helm would silently keep one).
func readValues(t *testing.T, r helmRelease, v any) {
	t.Helper()
	if len(r.Values) != 1 {
		t.Fatalf("release %s: values %v, want one file", r.Name, r.Values)
	}
	raw, err := os.ReadFile(filepath.Join("helm", r.Values[0]))
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := yaml.UnmarshalStrict(raw, &generic); err != nil {
		t.Fatalf("helm/%s: %v", r.Values[0], err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("helm/%s: %v", r.Values[0], err)
	}
}

// productionConfig is tollgate-config as kustomize builds k8s/production.
func productionConfig(t *testing.T) map[string]string {
	t.Helper()
	for _, doc := range built(t)[filepath.Join("k8s", "production")] {
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatal(err)
		}
		if o.Kind == "ConfigMap" && o.Metadata.Name == "tollgate-config" {
			return o.Data
		}
	}
	t.Fatal("kustomize build k8s/production: no ConfigMap tollgate-config")
	return nil
}

// imageTags collects every image tag a values document sets (any mapping
// with a "tag" beside a "repository").
func imageTags(v any, path string, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["repository"]; ok {
			out[path] = fmt.Sprint(v["tag"])
		}
		for k, e := range v {
			imageTags(e, path+"."+k, out)
		}
	case []any:
		for i, e := range v {
			imageTags(e, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

func TestHelmReleasesArePinned(t *testing.T) {
	t.Parallel()
	h := readHelmfile(t)
	repos := map[string]bool{}
	for _, r := range h.Repositories {
		if !strings.HasPrefix(r.URL, "https://") {
			t.Errorf("repository %s: %q is not https", r.Name, r.URL)
		}
		repos[r.Name] = true
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range h.Releases {
		names[r.Namespace+"/"+r.Name] = true
		repo, _, _ := strings.Cut(r.Chart, "/")
		if !repos[repo] {
			t.Errorf("release %s: chart %q is from no listed repository", r.Name, r.Chart)
		}
		if !exactVersion.MatchString(r.Version) {
			t.Errorf("release %s: chart version %q is not pinned to one release", r.Name, r.Version)
		}
		if r.Namespace == "" || r.Namespace == "tollgate" {
			t.Errorf("release %s: namespace %q, want one of its own (tollgate's enforces Pod Security restricted)", r.Name, r.Namespace)
		}
		// deploy/README.md gives the same install as helm commands.
		if cmd := fmt.Sprintf("helm upgrade --install %s %s --version %s --namespace %s", r.Name, r.Chart, r.Version, r.Namespace); !strings.Contains(string(readme), cmd) {
			t.Errorf("README.md lacks %q", cmd)
		}
		for _, f := range r.Values {
			if !strings.Contains(string(readme), "-f deploy/helm/"+f) {
				t.Errorf("README.md does not pass -f deploy/helm/%s", f)
			}
			raw, err := os.ReadFile(filepath.Join("helm", f))
			if err != nil {
				t.Errorf("release %s: %v", r.Name, err)
				continue
			}
			var doc map[string]any
			if err := yaml.UnmarshalStrict(raw, &doc); err != nil {
				t.Errorf("helm/%s: %v", f, err)
				continue
			}
			tags := map[string]string{}
			imageTags(doc, "", tags)
			for path, tag := range tags {
				if tag == "" || tag == "<nil>" || tag == "latest" || strings.HasSuffix(tag, ":latest") {
					t.Errorf("helm/%s: image %s has tag %q, want a pinned release", f, path, tag)
				}
			}
		}
	}
	for _, r := range h.Releases {
		for _, n := range r.Needs {
			if !names[n] {
				t.Errorf("release %s needs %q, which is not a release here", r.Name, n)
			}
		}
	}
	if len(h.Releases) != 4 {
		t.Errorf("%d releases, want temporal, nats, the MinIO operator and its tenant", len(h.Releases))
	}
}

// TestHelmTemporal: Temporal's chart, at the server the tests run, on
// PostgreSQL for history and visibility, and tollgate calls its frontend.
func TestHelmTemporal(t *testing.T) {
	t.Parallel()
	h := readHelmfile(t)
	r := h.release(t, "temporal/temporal")
	type sqlStore struct {
		Driver string `json:"driver"`
		SQL    struct {
			Driver         string `json:"driver"`
			Host           string `json:"host"`
			Port           int    `json:"port"`
			Database       string `json:"database"`
			User           string `json:"user"`
			Password       string `json:"password"`
			ExistingSecret string `json:"existingSecret"`
		} `json:"sql"`
	}
	type enabled struct {
		Enabled bool `json:"enabled"`
	}
	var v struct {
		Server struct {
			Image struct {
				Repository string `json:"repository"`
				Tag        string `json:"tag"`
			} `json:"image"`
			Config struct {
				Persistence struct {
					Default    sqlStore `json:"default"`
					Visibility sqlStore `json:"visibility"`
				} `json:"persistence"`
				Namespaces struct {
					Create    bool                `json:"create"`
					Namespace []temporalNamespace `json:"namespace"`
				} `json:"namespaces"`
			} `json:"config"`
		} `json:"server"`
		Schema struct {
			CreateDatabase enabled `json:"createDatabase"`
			Setup          enabled `json:"setup"`
			Update         enabled `json:"update"`
		} `json:"schema"`
		Cassandra     enabled `json:"cassandra"`
		MySQL         enabled `json:"mysql"`
		Elasticsearch enabled `json:"elasticsearch"`
	}
	readValues(t, r, &v)

	// The chart's appVersion is the server the project pins; the values pin
	// the image to it too.
	want := strings.TrimPrefix(stack.TemporalServerVersion, "v")
	if v.Server.Image.Repository != "temporalio/server" || v.Server.Image.Tag != want {
		t.Errorf("server image %s:%s, want temporalio/server:%s (stack.TemporalServerVersion)", v.Server.Image.Repository, v.Server.Image.Tag, want)
	}
	if appVersion, ok := temporalChartAppVersions[r.Version]; !ok || appVersion != want {
		t.Errorf("chart temporal %s: server %q, want a chart release of server %s", r.Version, appVersion, want)
	}
	stores := map[string]sqlStore{"default": v.Server.Config.Persistence.Default, "visibility": v.Server.Config.Persistence.Visibility}
	for name, s := range stores {
		if s.Driver != "sql" || s.SQL.Driver != "postgres12" {
			t.Errorf("%s store: driver %q/%q, want sql/postgres12", name, s.Driver, s.SQL.Driver)
		}
		if s.SQL.Host == "" || s.SQL.Port == 0 || s.SQL.Database == "" || s.SQL.User == "" {
			t.Errorf("%s store: %+v lacks the host, port, database or user", name, s.SQL)
		}
		if s.SQL.Password != "" || s.SQL.ExistingSecret == "" {
			t.Errorf("%s store: the password must come from an existing Secret, not the values", name)
		}
	}
	if stores["default"].SQL.Database == stores["visibility"].SQL.Database {
		t.Errorf("history and visibility share the database %q", stores["default"].SQL.Database)
	}
	// SQL visibility: with Elasticsearch on, the chart puts visibility there.
	if v.Elasticsearch.Enabled || v.Cassandra.Enabled || v.MySQL.Enabled {
		t.Errorf("elasticsearch %v, cassandra %v, mysql %v: want PostgreSQL alone", v.Elasticsearch.Enabled, v.Cassandra.Enabled, v.MySQL.Enabled)
	}
	if !v.Schema.CreateDatabase.Enabled || !v.Schema.Setup.Enabled || !v.Schema.Update.Enabled {
		t.Errorf("schema %+v: want the chart's Job to create the databases and set up and update the schema", v.Schema)
	}
	cfg := productionConfig(t)
	ns := cmp.Or(cfg["TOLLGATE_TEMPORAL_NAMESPACE"], "default")
	if !v.Server.Config.Namespaces.Create || !slices.ContainsFunc(v.Server.Config.Namespaces.Namespace, func(n temporalNamespace) bool { return n.Name == ns }) {
		t.Errorf("the chart does not create tollgate's Temporal namespace %q", ns)
	}
	if want := fmt.Sprintf("%s-frontend.%s.svc:7233", r.Name, r.Namespace); cfg["TOLLGATE_TEMPORAL_ADDRESS"] != want {
		t.Errorf("TOLLGATE_TEMPORAL_ADDRESS %q, want the chart's frontend Service %s", cfg["TOLLGATE_TEMPORAL_ADDRESS"], want)
	}
}

type temporalNamespace struct {
	Name string `json:"name"`
}

// tenantBucket is a bucket the MinIO Tenant creates.
type tenantBucket struct {
	Name       string `json:"name"`
	ObjectLock bool   `json:"objectLock"`
}

// temporalChartAppVersions maps temporalio/helm-charts releases of the
// temporal chart to the server they install (their Chart.yaml appVersion):
// bumping the chart means looking its server up.
var temporalChartAppVersions = map[string]string{
	"0.72.0": "1.29.1",
}

// TestHelmNATS: three nats-server pods with JetStream on files, the server
// tollgate links, tollgate's streams at replicas 3 and every pod in its URL
// list, and KEDA reading monitoring from the chart's Service.
func TestHelmNATS(t *testing.T) {
	t.Parallel()
	h := readHelmfile(t)
	r := h.release(t, "nats/nats")
	var v struct {
		Config struct {
			Cluster struct {
				Enabled     bool  `json:"enabled"`
				Replicas    int   `json:"replicas"`
				NoAdvertise *bool `json:"noAdvertise"`
			} `json:"cluster"`
			JetStream struct {
				Enabled   bool `json:"enabled"`
				FileStore struct {
					Enabled bool `json:"enabled"`
					PVC     struct {
						Enabled bool   `json:"enabled"`
						Size    string `json:"size"`
					} `json:"pvc"`
				} `json:"fileStore"`
				MemoryStore struct {
					Enabled bool `json:"enabled"`
				} `json:"memoryStore"`
			} `json:"jetstream"`
			Monitor struct {
				Enabled bool `json:"enabled"`
				Port    int  `json:"port"`
			} `json:"monitor"`
		} `json:"config"`
		Container struct {
			Image struct {
				Repository string `json:"repository"`
				Tag        string `json:"tag"`
			} `json:"image"`
		} `json:"container"`
		Service struct {
			Ports struct {
				Monitor struct {
					Enabled bool `json:"enabled"`
				} `json:"monitor"`
			} `json:"ports"`
		} `json:"service"`
	}
	readValues(t, r, &v)
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("cluster enabled %v with %d replicas, want a cluster of 3", c.Cluster.Enabled, c.Cluster.Replicas)
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled || c.JetStream.MemoryStore.Enabled {
		t.Errorf("jetstream %+v: want JetStream on a file store on a volume, no memory store", c.JetStream)
	}
	if want := server.VERSION + "-alpine"; v.Container.Image.Repository != "nats" || v.Container.Image.Tag != want {
		t.Errorf("image %s:%s, want nats:%s (go.mod's nats-server)", v.Container.Image.Repository, v.Container.Image.Tag, want)
	}
	if c.Cluster.NoAdvertise == nil || *c.Cluster.NoAdvertise {
		t.Errorf("config.cluster.noAdvertise is not false: KEDA's scaler cannot find a consumer's leader in a cluster without the advertised addresses")
	}
	if !c.Monitor.Enabled || c.Monitor.Port != 8222 || !v.Service.Ports.Monitor.Enabled {
		t.Errorf("monitoring %+v, service port %v: want 8222 on the Service for KEDA", c.Monitor, v.Service.Ports.Monitor.Enabled)
	}

	cfg := productionConfig(t)
	if cfg["TOLLGATE_NATS_REPLICAS"] != strconv.Itoa(c.Cluster.Replicas) {
		t.Errorf("TOLLGATE_NATS_REPLICAS %q, want the cluster's %d", cfg["TOLLGATE_NATS_REPLICAS"], c.Cluster.Replicas)
	}
	var want []string
	for i := range c.Cluster.Replicas {
		want = append(want, fmt.Sprintf("nats://%s-%d.%s-headless.%s.svc:4222", r.Name, i, r.Name, r.Namespace))
	}
	if got := strings.Split(cfg["TOLLGATE_NATS_URL"], ","); !slices.Equal(got, want) {
		t.Errorf("TOLLGATE_NATS_URL %q, want every pod: %q", got, want)
	}
	for _, doc := range built(t)[filepath.Join("k8s", "production")] {
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatal(err)
		}
		for _, tr := range o.Spec.Triggers {
			if ep, want := tr.Metadata["natsServerMonitoringEndpoint"], fmt.Sprintf("%s.%s.svc:8222", r.Name, r.Namespace); ep != want {
				t.Errorf("ScaledObject %s: monitoring endpoint %q, want %s", o.Metadata.Name, ep, want)
			}
		}
	}
}

// TestHelmMinIO: a Tenant over four servers or more (erasure coding), the
// evidence bucket with Object Lock, credentials from a Secret, and tollgate
// pointed at the Tenant's Service with the TLS setting it serves.
func TestHelmMinIO(t *testing.T) {
	t.Parallel()
	h := readHelmfile(t)
	op := h.release(t, "minio-operator/operator")
	r := h.release(t, "minio-operator/tenant")
	if op.Version != r.Version {
		t.Errorf("operator chart %s, tenant chart %s: want the same release", op.Version, r.Version)
	}
	var v struct {
		Tenant struct {
			Image struct {
				Repository string `json:"repository"`
				Tag        string `json:"tag"`
			} `json:"image"`
			ConfigSecret struct {
				Name           string `json:"name"`
				ExistingSecret bool   `json:"existingSecret"`
				AccessKey      string `json:"accessKey"`
				SecretKey      string `json:"secretKey"`
			} `json:"configSecret"`
			Pools []struct {
				Servers          int `json:"servers"`
				VolumesPerServer int `json:"volumesPerServer"`
			} `json:"pools"`
			Certificate struct {
				RequestAutoCert *bool `json:"requestAutoCert"`
			} `json:"certificate"`
			Buckets []tenantBucket `json:"buckets"`
		} `json:"tenant"`
	}
	readValues(t, r, &v)
	ten := v.Tenant
	if len(ten.Pools) != 1 || ten.Pools[0].Servers < 4 || ten.Pools[0].Servers*ten.Pools[0].VolumesPerServer < 4 {
		t.Errorf("pools %+v: want one pool of 4 servers or more", ten.Pools)
	}
	if !ten.ConfigSecret.ExistingSecret || ten.ConfigSecret.Name == "" || ten.ConfigSecret.AccessKey != "" || ten.ConfigSecret.SecretKey != "" {
		t.Errorf("configSecret %+v: want an existing Secret and no keys in the values", ten.ConfigSecret)
	}
	// The image docker-compose.yml runs.
	compose, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if image := ten.Image.Repository + ":" + ten.Image.Tag; !strings.HasPrefix(ten.Image.Tag, "RELEASE.") || !strings.Contains(string(compose), "image: "+image+"\n") {
		t.Errorf("tenant image %s: want a RELEASE tag, the one docker-compose.yml runs", image)
	}

	cfg := productionConfig(t)
	evidence := cmp.Or(cfg["TOLLGATE_EVIDENCE_BUCKET"], "tollgate-evidence")
	i := slices.IndexFunc(ten.Buckets, func(b tenantBucket) bool { return b.Name == evidence })
	if i < 0 || !ten.Buckets[i].ObjectLock {
		t.Errorf("buckets %+v: want %s with Object Lock", ten.Buckets, evidence)
	}
	// Without certificates the Tenant's Service serves plain HTTP on 80.
	plain := ten.Certificate.RequestAutoCert != nil && !*ten.Certificate.RequestAutoCert
	want, tls := fmt.Sprintf("minio.%s.svc:80", r.Namespace), "false"
	if !plain {
		want, tls = fmt.Sprintf("minio.%s.svc:443", r.Namespace), "true"
	}
	if cfg["TOLLGATE_MINIO_ENDPOINT"] != want || cfg["TOLLGATE_MINIO_TLS"] != tls {
		t.Errorf("TOLLGATE_MINIO_ENDPOINT %q, TLS %q: want %s, TLS %s", cfg["TOLLGATE_MINIO_ENDPOINT"], cfg["TOLLGATE_MINIO_TLS"], want, tls)
	}
}

package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yannh/kubeconform/pkg/resource"
	"github.com/yannh/kubeconform/pkg/validator"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/tollgate/tollgate/internal/k8sschema"
	"github.com/tollgate/tollgate/stack"
)

// The Kubernetes and KEDA versions the manifests are validated against;
// scripts/tools.sh k8s-schemas fetches their specs (keep in step).
const (
	KubernetesVersion = "v1.34.2"
	KEDAVersion       = "v2.18.1"
)

// schemaValidator is kubeconform in strict mode, reading schemas made from
// the pinned Kubernetes OpenAPI spec and KEDA's ScaledObject CRD, for the
// kinds named (apiVersion and kind of each resource).
func schemaValidator(t *testing.T, docs [][]byte) validator.Validator {
	t.Helper()
	specs := filepath.Join(stack.ToolsDir(), fmt.Sprintf("k8s-schemas-%s-keda-%s", KubernetesVersion, KEDAVersion))
	swagger, err := os.ReadFile(filepath.Join(specs, "swagger.json"))
	if err != nil {
		t.Fatalf("the Kubernetes OpenAPI spec is not in the tool cache (run scripts/tools.sh k8s-schemas): %v", err)
	}
	crd, err := os.ReadFile(filepath.Join(specs, "keda.sh_scaledobjects.yaml"))
	if err != nil {
		t.Fatalf("the KEDA CRD is not in the tool cache (run scripts/tools.sh k8s-schemas): %v", err)
	}
	spec, err := k8sschema.ParseSwagger(swagger)
	if err != nil {
		t.Fatal(err)
	}
	keda, err := k8sschema.FromCRD(crd)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, doc := range docs {
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatal(err)
		}
		group, version, found := strings.Cut(o.APIVersion, "/")
		if !found {
			group, version = "", group
		}
		file := k8sschema.FileName(group, version, o.Kind)
		data, ok := keda[file]
		if !ok {
			if data, err = spec.Schema(file); err != nil {
				t.Fatalf("%s %s: %v", o.APIVersion, o.Kind, err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v, err := validator.New([]string{filepath.Join(dir, "{{ .ResourceKind }}{{ .KindSuffix }}.json")},
		validator.Opts{Strict: true, KubernetesVersion: strings.TrimPrefix(KubernetesVersion, "v")})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// built is what `kubectl kustomize` makes of each kustomization.
func built(t *testing.T) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	for _, dir := range []string{filepath.Join("k8s", "base"), filepath.Join("k8s", "keda"), filepath.Join("k8s", "production")} {
		resmap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
		if err != nil {
			t.Fatalf("kustomize build %s: %v", dir, err)
		}
		raw, err := resmap.AsYaml()
		if err != nil {
			t.Fatal(err)
		}
		out[dir] = splitDocuments(raw)
	}
	return out
}

// Every resource kustomize builds validates, in kubeconform's strict mode,
// against the Kubernetes 1.34 schemas (KEDA's for ScaledObjects): no unknown
// field, no wrong type, nothing missing that the API requires.
func TestManifestsMatchKubernetesSchemas(t *testing.T) {
	t.Parallel()
	var all [][]byte
	builds := built(t)
	for _, docs := range builds {
		all = append(all, docs...)
	}
	v := schemaValidator(t, all)
	for dir, docs := range builds {
		kinds := map[string]int{}
		for _, doc := range docs {
			res := v.ValidateResource(resource.Resource{Path: dir, Bytes: doc})
			sig, _ := res.Resource.Signature()
			name := "?"
			if sig != nil {
				name = sig.Kind + " " + sig.Name
				kinds[sig.Kind]++
			}
			if res.Status != validator.Valid {
				t.Errorf("%s: %s: status %d: %v %v", dir, name, res.Status, res.Err, res.ValidationErrors)
			}
		}
		t.Logf("%s: %d resources valid, by kind %v", dir, len(docs), kinds)
	}
}

// The validation has teeth: a misspelt field, a wrong type and a
// ScaledObject without its target are each refused.
func TestSchemaValidationRefuses(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"misspelt field": `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers: [{name: x, image: x, securityContxt: {runAsNonRoot: true}}]
`,
		"wrong type": `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replicas: two
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers: [{name: x, image: x}]
`,
		"scaledobject without target": `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  triggers: [{type: nats-jetstream, metadata: {stream: s}}]
`,
	}
	good := `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers: [{name: x, image: x, resources: {limits: {cpu: 1, memory: 1Gi}}, ports: [{containerPort: 80}]}]
`
	var docs [][]byte
	for _, d := range bad {
		docs = append(docs, []byte(d))
	}
	v := schemaValidator(t, append(docs, []byte(good)))
	if res := v.ValidateResource(resource.Resource{Path: "good", Bytes: []byte(good)}); res.Status != validator.Valid {
		t.Fatalf("a valid Deployment (cpu: 1 is a quantity): %v %v", res.Err, res.ValidationErrors)
	}
	for name, d := range bad {
		if res := v.ValidateResource(resource.Resource{Path: name, Bytes: []byte(d)}); res.Status != validator.Invalid {
			t.Errorf("%s: status %d, want invalid (%v)", name, res.Status, res.Err)
		}
	}
}

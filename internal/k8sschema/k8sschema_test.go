package k8sschema

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestFileName(t *testing.T) {
	for _, c := range []struct{ group, version, kind, want string }{
		{"", "v1", "Service", "service-v1.json"},
		{"apps", "v1", "Deployment", "deployment-apps-v1.json"},
		{"networking.k8s.io", "v1", "NetworkPolicy", "networkpolicy-networking-v1.json"},
		{"keda.sh", "v1alpha1", "ScaledObject", "scaledobject-keda-v1alpha1.json"},
	} {
		if got := FileName(c.group, c.version, c.kind); got != c.want {
			t.Errorf("FileName(%q, %q, %q) = %q, want %q", c.group, c.version, c.kind, got, c.want)
		}
	}
}

const swagger = `{"definitions": {
  "io.k8s.api.core.v1.Thing": {
    "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Thing"}],
    "properties": {
      "port": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
      "size": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"},
      "labels": {"type": "object", "additionalProperties": {"type": "string"}},
      "spec": {"$ref": "#/definitions/io.k8s.api.core.v1.ThingSpec"}
    }
  },
  "io.k8s.api.core.v1.ThingSpec": {"properties": {"properties": {"type": "string", "default": {"properties": 1}}}},
  "io.k8s.api.core.v1.Unrelated": {"properties": {"x": {"type": "string"}}},
  "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
  "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"}
}}`

func TestSchemaFromSwagger(t *testing.T) {
	spec, err := ParseSwagger([]byte(swagger))
	if err != nil {
		t.Fatal(err)
	}
	if files := spec.Files(); !reflect.DeepEqual(files, []string{"thing-v1.json"}) {
		t.Fatalf("files %v", files)
	}
	raw, err := spec.Schema("thing-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	defs := got["definitions"].(map[string]any)
	// Standalone: what it refers to, and nothing else.
	if len(defs) != 3 || defs["io.k8s.api.core.v1.Unrelated"] != nil {
		t.Errorf("definitions %v", defs)
	}
	// Strict: closed objects, but maps stay maps.
	if got["additionalProperties"] != false {
		t.Errorf("kind not closed: %v", got["additionalProperties"])
	}
	labels := got["properties"].(map[string]any)["labels"].(map[string]any)
	if labels["additionalProperties"].(map[string]any)["type"] != "string" {
		t.Errorf("labels: %v", labels)
	}
	// A property named "properties" is a property, and a default is left alone.
	spec2 := defs["io.k8s.api.core.v1.ThingSpec"].(map[string]any)
	prop := spec2["properties"].(map[string]any)["properties"].(map[string]any)
	if prop["type"] != "string" || !reflect.DeepEqual(prop["default"], map[string]any{"properties": 1.0}) || spec2["additionalProperties"] != false {
		t.Errorf("ThingSpec: %v", spec2)
	}
	// int-or-string and Quantity take either.
	ios := defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"].(map[string]any)
	if ios["type"] != nil || len(ios["oneOf"].([]any)) != 2 {
		t.Errorf("IntOrString: %v", ios)
	}
	if q := defs["io.k8s.apimachinery.pkg.api.resource.Quantity"].(map[string]any); len(q["oneOf"].([]any)) != 2 {
		t.Errorf("Quantity: %v", q)
	}
	if _, err := spec.Schema("nothing-v1.json"); err == nil {
		t.Error("schema of an unknown kind")
	}
	if _, err := ParseSwagger([]byte(`{}`)); err == nil {
		t.Error("a spec without definitions")
	}
}

func TestSchemaFromCRD(t *testing.T) {
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  group: keda.sh
  names: {kind: ScaledObject}
  versions:
  - name: v1alpha1
    served: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              pollingInterval: {type: integer}
              target: {x-kubernetes-int-or-string: true}
              free: {type: object, x-kubernetes-preserve-unknown-fields: true, properties: {a: {type: string}}}
  - name: v0
    served: false
`
	out, err := FromCRD([]byte(crd))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out["scaledobject-keda-v1alpha1.json"] == nil {
		t.Fatalf("files %v", out)
	}
	var got map[string]any
	if err := json.Unmarshal(out["scaledobject-keda-v1alpha1.json"], &got); err != nil {
		t.Fatal(err)
	}
	spec := got["properties"].(map[string]any)["spec"].(map[string]any)
	props := spec["properties"].(map[string]any)
	if spec["additionalProperties"] != false || props["free"].(map[string]any)["additionalProperties"] != nil || props["target"].(map[string]any)["oneOf"] == nil {
		t.Errorf("spec %v", spec)
	}
	if _, err := FromCRD([]byte("kind: ConfigMap")); err == nil {
		t.Error("a ConfigMap taken for a CRD")
	}
}

// Package k8sschema turns the Kubernetes OpenAPI spec (swagger 2.0) and
// CustomResourceDefinitions into the standalone, strict JSON schemas that
// kubeconform validates manifests against: one schema per kind, in a file
// named the way kubeconform's registry looks for it.
//
// kubeconform ships its schemas from GitHub, made by its Python script
// openapi2jsonschema. Neither GitHub nor Python is reachable from our
// machines, and the spec itself comes pinned through the Go module proxy
// (k8s.io/kubernetes's api/openapi-spec). So this does the same conversion,
// in Go, with the same rules:
//   - standalone: a kind's schema carries every definition it refers to;
//   - strict: an object schema with properties admits no other properties,
//     unless the spec says it keeps unknown fields;
//   - int-or-string and Quantity accept an integer (a number) or a string,
//     as the API server does.
package k8sschema

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

const quantity = "io.k8s.apimachinery.pkg.api.resource.Quantity"

// FileName is the file kubeconform's registry reads the schema of a kind
// from: <kind>[-<first label of the group>]-<version>.json, lower case
// (its template "{{ .ResourceKind }}{{ .KindSuffix }}.json").
func FileName(group, version, kind string) string {
	suffix := "-" + strings.ToLower(version)
	if group != "" {
		suffix = "-" + strings.ToLower(strings.Split(group, ".")[0]) + suffix
	}
	return strings.ToLower(kind) + suffix + ".json"
}

type gvk struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// Spec is a parsed OpenAPI spec, ready to make the schema of any kind it
// defines. Making a schema costs: a Deployment's carries most of the pod
// spec, so schemas are made one at a time, as asked for.
type Spec struct {
	defs  map[string]any
	kinds map[string]string // file name -> definition name
}

// ParseSwagger reads the Kubernetes OpenAPI (swagger 2.0) spec.
func ParseSwagger(spec []byte) (*Spec, error) {
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("read OpenAPI spec: %w", err)
	}
	if len(doc.Definitions) == 0 {
		return nil, fmt.Errorf("read OpenAPI spec: no definitions")
	}
	s := &Spec{defs: map[string]any{}, kinds: map[string]string{}}
	for name, def := range doc.Definitions {
		if name == quantity {
			s.defs[name] = map[string]any{"description": def["description"], "oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
		} else {
			s.defs[name] = strict(def)
		}
		raw, _ := json.Marshal(def["x-kubernetes-group-version-kind"])
		var kinds []gvk
		if json.Unmarshal(raw, &kinds) != nil {
			continue // not a kind: only referred to
		}
		for _, k := range kinds {
			s.kinds[FileName(k.Group, k.Version, k.Kind)] = name
		}
	}
	return s, nil
}

// Files lists the schema file of every kind the spec defines.
func (s *Spec) Files() []string { return slices.Sorted(maps.Keys(s.kinds)) }

// Schema makes the schema in one file (see FileName).
func (s *Spec) Schema(file string) ([]byte, error) {
	name, ok := s.kinds[file]
	if !ok {
		return nil, fmt.Errorf("schema %s: the spec defines no such kind", file)
	}
	schema := maps.Clone(s.defs[name].(map[string]any))
	schema["$schema"] = "http://json-schema.org/draft-07/schema#"
	schema["definitions"] = closure(s.defs, name)
	data, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("encode schema of %s: %w", name, err)
	}
	return data, nil
}

// closure collects the definitions that name refers to, directly or not.
func closure(defs map[string]any, name string) map[string]any {
	seen := map[string]any{}
	var visit func(node any)
	visit = func(node any) {
		switch n := node.(type) {
		case map[string]any:
			if ref, ok := n["$ref"].(string); ok {
				target := strings.TrimPrefix(ref, "#/definitions/")
				if _, done := seen[target]; !done {
					if def, ok := defs[target]; ok {
						seen[target] = def
						visit(def)
					}
				}
			}
			for _, v := range n {
				visit(v)
			}
		case []any:
			for _, v := range n {
				visit(v)
			}
		}
	}
	visit(defs[name])
	return seen
}

// FromCRD makes a schema for every served version of a
// CustomResourceDefinition (YAML or JSON), keyed by file name.
func FromCRD(crd []byte) (map[string][]byte, error) {
	var doc struct {
		Kind string `json:"kind"`
		Spec struct {
			Group string `json:"group"`
			Names struct {
				Kind string `json:"kind"`
			} `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Served bool   `json:"served"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(crd, &doc); err != nil {
		return nil, fmt.Errorf("read CRD: %w", err)
	}
	if doc.Kind != "CustomResourceDefinition" || doc.Spec.Names.Kind == "" {
		return nil, fmt.Errorf("read CRD: kind %q, names.kind %q: not a CustomResourceDefinition", doc.Kind, doc.Spec.Names.Kind)
	}
	out := map[string][]byte{}
	for _, v := range doc.Spec.Versions {
		if !v.Served || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		schema := strict(v.Schema.OpenAPIV3Schema).(map[string]any)
		schema["$schema"] = "http://json-schema.org/draft-07/schema#"
		data, err := json.Marshal(schema)
		if err != nil {
			return nil, fmt.Errorf("encode schema of %s/%s %s: %w", doc.Spec.Group, v.Name, doc.Spec.Names.Kind, err)
		}
		out[FileName(doc.Spec.Group, v.Name, doc.Spec.Names.Kind)] = data
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read CRD %s: no served version has a schema", doc.Spec.Names.Kind)
	}
	return out, nil
}

// strict rewrites one schema (a copy): closed objects, and int-or-string as
// either. It walks only the keywords that hold schemas, so defaults,
// examples and enums stay as they are.
func strict(node any) any {
	n, ok := node.(map[string]any)
	if !ok {
		return node
	}
	out := make(map[string]any, len(n))
	for k, v := range n {
		switch k {
		case "properties", "patternProperties", "definitions":
			if m, ok := v.(map[string]any); ok {
				sub := make(map[string]any, len(m))
				for name, s := range m {
					sub[name] = strict(s)
				}
				v = sub
			}
		case "items", "additionalProperties", "not":
			v = strict(v)
		case "allOf", "anyOf", "oneOf":
			if l, ok := v.([]any); ok {
				sub := make([]any, len(l))
				for i, s := range l {
					sub[i] = strict(s)
				}
				v = sub
			}
		}
		out[k] = v
	}
	if n["format"] == "int-or-string" || n["x-kubernetes-int-or-string"] == true {
		delete(out, "type")
		delete(out, "format")
		out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
	}
	_, open := n["additionalProperties"]
	if _, ok := n["properties"]; ok && !open && n["x-kubernetes-preserve-unknown-fields"] != true {
		out["additionalProperties"] = false
	}
	return out
}

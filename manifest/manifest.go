// Package manifest reads a micro app's permission manifest: what files,
// network destinations and LLM scopes the app declares it needs. The fast
// stage checks it against a JSON Schema (schema.json, draft 2020-12), and
// the fast policy allows or denies what it declares.
//
// The manifest is `tollgate.yaml` (or `tollgate.yml`), or `app.manifest.json`,
// at the app's root. It is untrusted input: its size is bounded, YAML is
// decoded into plain JSON values, and a manifest that does not parse or does
// not match the schema is reported (with every schema error), never fatal.
package manifest

import (
	"bytes"
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/tollgate/tollgate/report"
)

// Names a manifest may have, in the order they win.
var Names = []string{"tollgate.yaml", "tollgate.yml", "app.manifest.json"}

// MaxBytes bounds a manifest.
const MaxBytes = 256 << 10

//go:embed schema.json
var schemaJSON []byte

var schema = func() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		panic(fmt.Sprintf("manifest schema: %v", err))
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		panic(fmt.Sprintf("manifest schema: %v", err))
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		panic(fmt.Sprintf("manifest schema: %v", err))
	}
	return s
}()

// Schema is the JSON Schema a manifest must match.
func Schema() []byte { return slices.Clone(schemaJSON) }

// Find reads the manifest at dir's root. A missing manifest is
// Present: false. Several present: the first of Names wins, and the others
// are named in the result's Ignored.
func Find(dir string) (report.Manifest, error) {
	var found []string
	for _, n := range Names {
		st, err := os.Lstat(filepath.Join(dir, n))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return report.Manifest{}, fmt.Errorf("look for manifest %s: %w", n, err)
		case !st.Mode().IsRegular():
			// A link or device is not read: it could point out of the tree.
			return report.Manifest{Present: true, File: n, Errors: []report.ManifestError{{Path: "/", Message: "the manifest is not a regular file"}}}, nil
		}
		found = append(found, n)
	}
	if len(found) == 0 {
		return report.Manifest{}, nil
	}
	f, err := os.Open(filepath.Join(dir, found[0]))
	if err != nil {
		return report.Manifest{}, fmt.Errorf("open manifest %s: %w", found[0], err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return report.Manifest{}, fmt.Errorf("read manifest %s: %w", found[0], err)
	}
	m := Parse(found[0], data)
	m.Ignored = found[1:]
	return m, nil
}

// Parse decodes and checks one manifest. It never fails: what is wrong is
// in the result's Errors, and Valid says whether there is none.
func Parse(name string, data []byte) report.Manifest {
	m := report.Manifest{Present: true, File: name}
	fail := func(path, msg string) report.Manifest {
		m.Errors = append(m.Errors, report.ManifestError{Path: path, Message: msg})
		return m
	}
	if len(data) > MaxBytes {
		return fail("/", fmt.Sprintf("the manifest is larger than %d KiB", MaxBytes>>10))
	}
	raw := data
	if !strings.HasSuffix(name, ".json") {
		// YAML becomes JSON first; anchors and aliases are refused, so a
		// small file cannot expand into a large document.
		if hasYAMLAnchor(data) {
			return fail("/", "YAML anchors and aliases are not allowed in a manifest")
		}
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return fail("/", "not valid YAML: "+firstLine(err.Error()))
		}
		raw = j
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fail("/", "not valid JSON: "+firstLine(err.Error()))
	}
	if err := schema.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return fail("/", err.Error())
		}
		for _, u := range ve.BasicOutput().Errors {
			if u.Error == nil {
				continue
			}
			m.Errors = append(m.Errors, report.ManifestError{Path: cmp.Or(u.InstanceLocation, "/"), Message: u.Error.String()})
		}
		if len(m.Errors) == 0 {
			m.Errors = append(m.Errors, report.ManifestError{Path: "/", Message: firstLine(err.Error())})
		}
		return m
	}
	var p struct {
		App         string                     `json:"app"`
		Permissions report.ManifestPermissions `json:"permissions"`
	}
	if err := yaml.Unmarshal(raw, &p); err != nil {
		return fail("/", "decode: "+firstLine(err.Error()))
	}
	m.Valid, m.App, m.Permissions = true, p.App, &p.Permissions
	return m
}

// hasYAMLAnchor reports an anchor (&name) or alias (*name) outside quotes,
// roughly: YAML's own grammar is not needed to refuse them conservatively.
func hasYAMLAnchor(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		for _, f := range strings.Fields(line) {
			f = strings.TrimLeft(f, "-[{,")
			if (strings.HasPrefix(f, "&") || strings.HasPrefix(f, "*")) && len(f) > 1 {
				return true
			}
		}
	}
	return false
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const good = `version: 1
app: todo
permissions:
  files:
    - {path: data/, access: write, purpose: the todo list}
  network:
    - {host: api.openai.com, ports: [443]}
  llm:
    - {provider: openai, models: [gpt-4o-mini], scopes: [chat.completions]}
`

func TestParseGood(t *testing.T) {
	for name, data := range map[string]string{
		"tollgate.yaml":     good,
		"app.manifest.json": `{"version": 1, "permissions": {"network": [{"host": "api.openai.com"}], "llm": [{"provider": "openai"}]}}`,
	} {
		m := Parse(name, []byte(data))
		if !m.Present || !m.Valid || len(m.Errors) != 0 || m.Permissions == nil || len(m.Permissions.Network) != 1 {
			t.Errorf("%s: %+v", name, m)
		}
	}
	m := Parse("tollgate.yaml", []byte(good))
	if m.App != "todo" || m.Permissions.Files[0].Path != "data/" || m.Permissions.LLM[0].Scopes[0] != "chat.completions" {
		t.Fatalf("decoded %+v", m.Permissions)
	}
}

func TestParseRefuses(t *testing.T) {
	for name, c := range map[string]struct{ file, data, want string }{
		"not yaml":        {"tollgate.yaml", "version: [1", "not valid YAML"},
		"not json":        {"app.manifest.json", "{", "not valid JSON"},
		"wrong version":   {"tollgate.yaml", "version: 2\npermissions: {}\n", "/version"},
		"unknown field":   {"tollgate.yaml", "version: 1\npermissions: {}\nextra: 1\n", "extra"},
		"bad access":      {"tollgate.yaml", "version: 1\npermissions:\n  files: [{path: a, access: delete}]\n", "/permissions/files/0/access"},
		"port range":      {"tollgate.yaml", "version: 1\npermissions:\n  network: [{host: a.com, ports: [70000]}]\n", "/permissions/network/0/ports/0"},
		"no permissions":  {"tollgate.yaml", "version: 1\n", "permissions"},
		"anchors":         {"tollgate.yaml", "version: 1\na: &x [1]\nb: *x\npermissions: {}\n", "anchors"},
		"too large":       {"tollgate.yaml", strings.Repeat("#", MaxBytes+1), "larger than"},
		"top-level array": {"app.manifest.json", "[]", "/"},
	} {
		m := Parse(c.file, []byte(c.data))
		if m.Valid || len(m.Errors) == 0 {
			t.Errorf("%s: taken as valid: %+v", name, m)
			continue
		}
		var all []string
		for _, e := range m.Errors {
			all = append(all, e.Path+" "+e.Message)
		}
		if !strings.Contains(strings.Join(all, "; "), c.want) {
			t.Errorf("%s: errors %v, want one naming %q", name, all, c.want)
		}
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	if m, err := Find(dir); err != nil || m.Present {
		t.Fatalf("no manifest: %+v %v", m, err)
	}
	for _, n := range []string{"app.manifest.json", "tollgate.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(good), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Find(dir)
	if err != nil || m.File != "tollgate.yaml" || !m.Valid || len(m.Ignored) != 1 || m.Ignored[0] != "app.manifest.json" {
		t.Fatalf("two manifests: %+v %v", m, err)
	}
	// A manifest that is a link is not followed.
	link := t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(link, "tollgate.yaml")); err != nil {
		t.Fatal(err)
	}
	if m, err := Find(link); err != nil || !m.Present || m.Valid {
		t.Fatalf("a linked manifest: %+v %v", m, err)
	}
}

// FuzzParse: any bytes under any of the names give a result, never a panic,
// and a valid result has its permissions.
func FuzzParse(f *testing.F) {
	f.Add("tollgate.yaml", []byte(good))
	f.Add("app.manifest.json", []byte(`{"version":1,"permissions":{}}`))
	f.Add("tollgate.yaml", []byte("a: &a [*a]"))
	f.Add("tollgate.yaml", []byte("version: 1\npermissions: {files: [{path: '/etc', access: read}]}"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if !strings.HasSuffix(name, ".json") {
			name = "tollgate.yaml"
		}
		m := Parse(name, data)
		if m.Valid != (len(m.Errors) == 0) || (m.Valid && m.Permissions == nil) {
			t.Fatalf("inconsistent result %+v", m)
		}
	})
}

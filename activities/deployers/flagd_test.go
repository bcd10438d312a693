package deployers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/tenant"
)

// flagdSchema is a subset of flagd's published schema; see its $comment.
var flagdSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	const loc = "testdata/flagd-flags.subset.schema.json"
	fh, err := os.Open(loc)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	doc, err := jsonschema.UnmarshalJSON(fh)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", loc, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	return c.Compile(loc)
})

// checkFlagdSchema fails the test unless data is valid under the schema.
func checkFlagdSchema(t testing.TB, data []byte) {
	t.Helper()
	sch, err := flagdSchema()
	if err != nil {
		t.Fatalf("compile flagd schema: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("flag file is not JSON: %v\n%s", err, data)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("flag file does not match flagd's schema: %v\n%s", err, data)
	}
}

type flagdBundle struct {
	path string
	f    *deployers.Flagd
}

func setupFlagd(t *testing.T, existing []byte, mode os.FileMode) *flagdBundle {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flags.json")
	if existing != nil {
		if err := os.WriteFile(path, existing, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	return &flagdBundle{path: path, f: newFlagd(t, path)}
}

func newFlagd(t testing.TB, path string) *deployers.Flagd {
	t.Helper()
	f, err := deployers.NewFlagd(deployers.Target{Type: "flagd", FlagFile: path}, deployers.WithLogger(testLogger(t, nil)))
	if err != nil {
		t.Fatalf("NewFlagd: %v", err)
	}
	return f
}

func flagRequest(app, release string) deployers.Request {
	return deployers.Request{Tenant: "acme", App: app, ReleaseID: release, RollbackID: "rb-" + app + "-" + release, Reason: "test", Trigger: "guard"}
}

// flagFile is the part of a flag file the tests look at.
type flagFile struct {
	Schema string `json:"$schema"`
	Flags  map[string]struct {
		State          string         `json:"state"`
		Variants       map[string]any `json:"variants"`
		DefaultVariant string         `json:"defaultVariant"`
	} `json:"flags"`
}

func readFlagFile(t testing.TB, path string) ([]byte, flagFile) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ff flagFile
	if err := json.Unmarshal(data, &ff); err != nil {
		t.Fatalf("flag file %s: %v\n%s", path, err, data)
	}
	return data, ff
}

func fileMode(t testing.TB, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestFlagdWritesFreshFile(t *testing.T) {
	t.Parallel()
	b := setupFlagd(t, nil, 0)
	ctx := context.Background()
	if _, err := b.f.Current(ctx, "acme", "shop"); !errors.Is(err, deployers.ErrNoRelease) {
		t.Fatalf("Current() before any deploy = %v, want ErrNoRelease", err)
	}
	rc, err := b.f.Deploy(ctx, flagRequest("shop", "r1"))
	if err != nil {
		t.Fatalf("Deploy() = %v", err)
	}
	want := deployers.Receipt{Target: "flagd " + b.path + "#acme.shop-release", Detail: "release r1 live"}
	if rc != want {
		t.Errorf("Receipt = %+v, want %+v", rc, want)
	}
	data, ff := readFlagFile(t, b.path)
	checkFlagdSchema(t, data)
	fl := ff.Flags["acme.shop-release"]
	if ff.Schema != deployers.FlagdSchema || fl.State != "ENABLED" || fl.DefaultVariant != "r1" ||
		!reflect.DeepEqual(fl.Variants, map[string]any{"r1": "r1"}) {
		t.Errorf("flag file = %s", data)
	}
	if m := fileMode(t, b.path); m != 0o644 {
		t.Errorf("mode = %v, want 0644", m)
	}
	if cur, err := b.f.Current(ctx, "acme", "shop"); err != nil || cur != "r1" {
		t.Errorf("Current() = %q, %v; want r1", cur, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(b.path))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"flags.json", "flags.json.lock"}) {
		t.Errorf("directory holds %q, want only the flag file and its lock", names)
	}
}

func TestFlagdKeepsOtherFlags(t *testing.T) {
	t.Parallel()
	existing, err := os.ReadFile("testdata/flags-existing.json")
	if err != nil {
		t.Fatal(err)
	}
	b := setupFlagd(t, existing, 0o640)
	checkFlagdSchema(t, existing)
	ctx := context.Background()

	rc, err := b.f.Deploy(ctx, flagRequest("shop", "r1"))
	if err != nil {
		t.Fatalf("Deploy() = %v", err)
	}
	if rc.Duplicate || rc.Detail != "release r1 live, was r2" {
		t.Errorf("Receipt = %+v", rc)
	}
	data, ff := readFlagFile(t, b.path)
	checkFlagdSchema(t, data)
	if fl := ff.Flags["acme.shop-release"]; fl.DefaultVariant != "r1" || !reflect.DeepEqual(fl.Variants, map[string]any{"r1": "r1", "r2": "r2"}) {
		t.Errorf("acme.shop-release = %+v", fl)
	}
	// Everything but acme.shop-release's defaultVariant is as it was, down to the
	// big integer and the unescaped "<->&".
	var before, after map[string]any
	dec := func(data []byte, v *map[string]any) {
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		if err := d.Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	dec(existing, &before)
	dec(data, &after)
	before["flags"].(map[string]any)["acme.shop-release"].(map[string]any)["defaultVariant"] = "r1"
	if !reflect.DeepEqual(before, after) {
		t.Errorf("flag file changed beyond the default variant:\n%s", data)
	}
	for _, s := range []string{"9007199254740993", "blue <-> green & back"} {
		if !bytes.Contains(data, []byte(s)) {
			t.Errorf("flag file lost %q:\n%s", s, data)
		}
	}
	if m := fileMode(t, b.path); m != 0o640 {
		t.Errorf("mode = %v, want the original 0640", m)
	}

	// A release with no variant yet gets one.
	if _, err := b.f.Deploy(ctx, flagRequest("shop", "r3")); err != nil {
		t.Fatalf("Deploy(r3) = %v", err)
	}
	data, ff = readFlagFile(t, b.path)
	checkFlagdSchema(t, data)
	if fl := ff.Flags["acme.shop-release"]; fl.DefaultVariant != "r3" || len(fl.Variants) != 3 || fl.Variants["r3"] != "r3" {
		t.Errorf("acme.shop-release = %+v", fl)
	}
	if cur, err := b.f.Current(ctx, "acme", "search"); err != nil || cur != "s5" {
		t.Errorf("Current(search) = %q, %v; want s5", cur, err)
	}
}

func TestFlagdSecondDeployIsDuplicate(t *testing.T) {
	t.Parallel()
	b := setupFlagd(t, nil, 0)
	ctx := context.Background()
	if _, err := b.f.Deploy(ctx, flagRequest("shop", "r1")); err != nil {
		t.Fatalf("Deploy() = %v", err)
	}
	before, _ := os.Stat(b.path)
	data, _ := readFlagFile(t, b.path)
	rc, err := b.f.Deploy(ctx, flagRequest("shop", "r1"))
	if err != nil {
		t.Fatalf("second Deploy() = %v", err)
	}
	if !rc.Duplicate || rc.Detail != "release r1 already live" {
		t.Errorf("second Receipt = %+v, want Duplicate", rc)
	}
	after, _ := os.Stat(b.path)
	again, _ := readFlagFile(t, b.path)
	if !os.SameFile(before, after) || !bytes.Equal(data, again) {
		t.Error("second Deploy rewrote the file")
	}
}

func TestFlagdEnablesDisabledFlag(t *testing.T) {
	t.Parallel()
	b := setupFlagd(t, []byte(`{"flags":{"acme.shop-release":{"state":"DISABLED","variants":{"r1":"r1"},"defaultVariant":"r1","targeting":{"if":[true,"r1"]}}}}`), 0o644)
	ctx := context.Background()
	if _, err := b.f.Current(ctx, "acme", "shop"); !errors.Is(err, deployers.ErrNoRelease) {
		t.Fatalf("Current() of a disabled flag = %v, want ErrNoRelease", err)
	}
	rc, err := b.f.Deploy(ctx, flagRequest("shop", "r1"))
	if err != nil || rc.Duplicate {
		t.Fatalf("Deploy() = %+v, %v; want a write", rc, err)
	}
	if !strings.Contains(rc.Detail, "now enabled") || !strings.Contains(rc.Detail, "targeting") {
		t.Errorf("Detail = %q, want it to mention the enabling and the targeting", rc.Detail)
	}
	data, ff := readFlagFile(t, b.path)
	checkFlagdSchema(t, data)
	if ff.Flags["acme.shop-release"].State != "ENABLED" || !bytes.Contains(data, []byte(`"targeting"`)) {
		t.Errorf("flag file = %s", data)
	}
}

func TestFlagdUsesConfiguredKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "flags.json")
	f, err := deployers.NewFlagd(deployers.Target{Type: "flagd", FlagFile: path, FlagKey: "edge-color"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Deploy(context.Background(), flagRequest("shop", "blue")); err != nil {
		t.Fatal(err)
	}
	if _, ff := readFlagFile(t, path); ff.Flags["edge-color"].DefaultVariant != "blue" {
		t.Errorf("flags = %+v, want edge-color = blue", ff.Flags)
	}
}

// Two tenants' apps of one name share a flag file: each switches only its
// own flag.
func TestFlagdDefaultKeyCarriesTheTenant(t *testing.T) {
	t.Parallel()
	b := setupFlagd(t, nil, 0)
	ctx := context.Background()
	if _, err := b.f.Deploy(ctx, flagRequest("shop", "a1")); err != nil {
		t.Fatal(err)
	}
	other := flagRequest("shop", "b1")
	other.Tenant = "globex"
	if _, err := b.f.Deploy(ctx, other); err != nil {
		t.Fatal(err)
	}
	_, ff := readFlagFile(t, b.path)
	if got := ff.Flags["acme.shop-release"].DefaultVariant; got != "a1" {
		t.Errorf("acme.shop-release = %q after globex's rollback, want a1", got)
	}
	if got := ff.Flags["globex.shop-release"].DefaultVariant; got != "b1" {
		t.Errorf("globex.shop-release = %q, want b1", got)
	}
	if _, ok := ff.Flags["shop-release"]; ok {
		t.Errorf("a flag without a tenant was written: %+v", ff.Flags)
	}
	if cur, err := b.f.Current(ctx, "globex", "shop"); err != nil || cur != "b1" {
		t.Errorf("Current(globex, shop) = %q, %v; want b1", cur, err)
	}
}

func TestFlagdDerivesNoKeyWithoutAValidTenant(t *testing.T) {
	t.Parallel()
	b := setupFlagd(t, nil, 0)
	for _, name := range []string{"", "x/../acme", "Acme", "a.b"} {
		req := flagRequest("shop", "r1")
		req.Tenant = name
		if _, err := b.f.Deploy(context.Background(), req); !errors.Is(err, deployers.ErrPermanent) || !errors.Is(err, tenant.ErrInvalid) {
			t.Errorf("Deploy(tenant %q) = %v, want ErrPermanent and tenant.ErrInvalid", name, err)
		}
		if _, err := b.f.Current(context.Background(), name, "shop"); !errors.Is(err, tenant.ErrInvalid) {
			t.Errorf("Current(tenant %q) = %v, want tenant.ErrInvalid", name, err)
		}
	}
	if _, err := os.Stat(b.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a flag file was written for a request without a valid tenant: %v", err)
	}
}

func TestFlagdRefusesMalformedFile(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"truncated":             `{"flags": {"acme.shop-release": {"state": "ENABLED"`,
		"empty":                 ``,
		"array":                 `[]`,
		"null":                  `null`,
		"yaml":                  "flags:\n  shop-release:\n    state: ENABLED\n",
		"trailing garbage":      `{"flags": {}} {}`,
		"flags is array":        `{"flags": []}`,
		"flags is null":         `{"flags": null}`,
		"flag is a string":      `{"flags": {"other": "on"}}`,
		"bad state":             `{"flags": {"other": {"state": "ON", "variants": {"a": true}}}}`,
		"empty variant name":    `{"flags": {"acme.shop-release": {"state": "ENABLED", "variants": {"": "r1"}}}}`,
		"number variants":       `{"flags": {"acme.shop-release": {"state": "ENABLED", "variants": {"one": 1}, "defaultVariant": "one"}}}`,
		"default not string":    `{"flags": {"acme.shop-release": {"state": "ENABLED", "variants": {"r1": "r1"}, "defaultVariant": 1}}}`,
		"variants is array":     `{"flags": {"acme.shop-release": {"state": "ENABLED", "variants": ["r1"]}}}`,
		"empty flag key":        `{"flags": {"": {"state": "ENABLED"}}}`,
		"other flag bad fields": `{"flags": {"x": {"state": "ENABLED", "defaultVariant": ["a"]}}}`,
		"duplicate flags":       `{"flags": {"x": {"state": "ENABLED"}}, "flags": {}}`,
		"duplicate variant":     `{"flags": {"acme.shop-release": {"state": "ENABLED", "variants": {"r1": "r1", "r1": "r0"}}}}`,
		"not UTF-8":             "{\"flags\": {\"x\xff\": {\"state\": \"ENABLED\"}}}",
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupFlagd(t, []byte(content), 0o644)
			_, err := b.f.Deploy(context.Background(), flagRequest("shop", "r1"))
			if !errors.Is(err, deployers.ErrPermanent) || !strings.Contains(err.Error(), b.path) {
				t.Fatalf("Deploy() = %v, want a permanent error naming %s", err, b.path)
			}
			got, _ := os.ReadFile(b.path)
			if string(got) != content {
				t.Errorf("file changed to %q", got)
			}
			entries, _ := os.ReadDir(filepath.Dir(b.path))
			if len(entries) != 2 {
				t.Errorf("directory holds %d entries, want the flag file and its lock", len(entries))
			}
		})
	}
}

func TestFlagdConcurrentDeploysAllLand(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "flags.json")
	// Half the goroutines share one Flagd (the in-process lock), the others
	// each have their own, as separate processes would (the flock).
	shared := newFlagd(t, path)
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		f := shared
		if i%2 == 1 {
			f = newFlagd(t, path)
		}
		wg.Go(func() {
			_, err := f.Deploy(context.Background(), flagRequest(fmt.Sprintf("app%02d", i), fmt.Sprintf("r%d", i)))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Deploy() = %v", err)
		}
	}
	data, ff := readFlagFile(t, path)
	checkFlagdSchema(t, data)
	if len(ff.Flags) != n {
		t.Fatalf("flag file has %d flags, want %d:\n%s", len(ff.Flags), n, data)
	}
	for i := range n {
		if got := ff.Flags[fmt.Sprintf("acme.app%02d-release", i)].DefaultVariant; got != fmt.Sprintf("r%d", i) {
			t.Errorf("acme.app%02d-release = %q, want r%d", i, got, i)
		}
	}
}

func TestFlagdRejectsInvalidRequest(t *testing.T) {
	t.Parallel()
	b := setupFlagd(t, nil, 0)
	_, err := b.f.Deploy(context.Background(), deployers.Request{App: "shop", RollbackID: "rb-1"})
	if !errors.Is(err, deployers.ErrPermanent) {
		t.Fatalf("Deploy() = %v, want ErrPermanent", err)
	}
	if _, err := os.Stat(b.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("flag file written for an invalid request: %v", err)
	}
}

func FuzzFlagFile(f *testing.F) {
	existing, err := os.ReadFile("testdata/flags-existing.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(existing)
	f.Add([]byte(`{"$schema":"https://flagd.dev/schema/v0/flags.json","flags":{}}`))
	f.Add([]byte(`{"flags":{"acme.shop-release":{"state":"ENABLED","variants":{"r9":"r9"},"defaultVariant":"r9"}}}`))
	f.Add([]byte(`{"flags":{"acme.shop-release":{"state":"DISABLED","variants":{"r1":"r1"},"defaultVariant":null}}}`))
	f.Add([]byte(`{"flags":{"acme.shop-release":{"state":"ENABLED","variants":{"a":1}}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"flags":`))
	f.Add([]byte(`{"flags":{"x":{"state":"ENABLED"}},"flags":{"y":{"state":"ENABLED"}}}`))
	f.Add([]byte("{\"flags\":{\"\xff\":{\"state\":\"ENABLED\"}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "flags.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := deployers.NewFlagd(deployers.Target{Type: "flagd", FlagFile: path})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		_, err = d.Deploy(ctx, flagRequest("shop", "r9"))
		after, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if !errors.Is(err, deployers.ErrPermanent) {
				t.Fatalf("Deploy() = %v, want ErrPermanent for a bad file", err)
			}
			if !bytes.Equal(after, data) {
				t.Fatalf("Deploy() failed (%v) but changed the file", err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Deploy() accepted invalid JSON %q", data)
		}
		if !json.Valid(after) {
			t.Fatalf("Deploy() wrote invalid JSON %q", after)
		}
		if cur, err := d.Current(ctx, "acme", "shop"); err != nil || cur != "r9" {
			t.Fatalf("Current() = %q, %v after deploying r9 over %q", cur, err, data)
		}
		var before, now struct {
			Flags map[string]json.RawMessage `json:"flags"`
		}
		_ = json.Unmarshal(data, &before)
		if err := json.Unmarshal(after, &now); err != nil {
			t.Fatal(err)
		}
		for k := range before.Flags {
			if _, ok := now.Flags[k]; !ok {
				t.Fatalf("flag %q lost: %q -> %q", k, data, after)
			}
		}
	})
}

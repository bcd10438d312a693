// Package corpus generates the load test's micro apps: mostly Node, with
// Python and Go mixed in, dependency counts spread like real apps (about 20
// to 1,500), real package names and versions, a known share with a planted
// secret and a known share with a vulnerable dependency. Each app comes with
// the verdict tollgate's default policy gives it against the DB built from
// testdata/osv. The same seed makes the same tree, byte for byte.
//
// The package universes in data/ were made once with the ecosystems' own
// tools (see data/README.md); clean apps draw only from packages no record
// in testdata/osv affects, and with no denied licence.
package corpus

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed data/npm-universe.json
var npmData []byte

//go:embed data/pypi-universe.json
var pypiData []byte

//go:embed data/go-universe.json
var goData []byte

type npmPkg struct {
	Name, Version, Resolved, Integrity, License string
}

type pypiPkg struct{ Name, Version string }

type goMod struct{ Module, Version, H1, GoMod string }

// Options of a corpus. Zero shares take the defaults.
type Options struct {
	Seed int64 `json:"seed"`
	Apps int   `json:"apps"`
	// SecretShare of apps carry a planted secret (default 0.1); VulnShare
	// a vulnerable dependency (default 0.25), half CRITICAL, half HIGH.
	SecretShare float64 `json:"secret_share"`
	VulnShare   float64 `json:"vuln_share"`
	// NodeShare and PythonShare of apps are Node and Python (defaults
	// 0.7 and 0.15); the rest are Go.
	NodeShare   float64 `json:"node_share"`
	PythonShare float64 `json:"python_share"`
}

func (o Options) withDefaults() Options {
	if o.SecretShare == 0 {
		o.SecretShare = 0.1
	}
	if o.VulnShare == 0 {
		o.VulnShare = 0.25
	}
	if o.NodeShare == 0 {
		o.NodeShare = 0.7
	}
	if o.PythonShare == 0 {
		o.PythonShare = 0.15
	}
	return o
}

// App is one generated app and what tollgate should decide about it.
type App struct {
	Name          string `json:"name"`
	Ecosystem     string `json:"ecosystem"` // npm, pypi or go
	Dir           string `json:"dir"`       // relative to the corpus root
	Packages      int    `json:"packages"`
	Secret        bool   `json:"secret"`
	Vuln          string `json:"vuln"`           // "", "critical" or "high"
	Expected      string `json:"expected"`       // pass, warn or block
	ExpectedStage string `json:"expected_stage"` // fast (a secret blocks there) or deep
}

// Manifest lists a corpus.
type Manifest struct {
	Seed    int64   `json:"seed"`
	Options Options `json:"options"`
	// DB names the advisories the expectations assume.
	DB   string `json:"db"`
	Apps []App  `json:"apps"`
}

// Planted vulnerable dependencies: versions the records in testdata/osv
// mark CRITICAL (minimist 1.2.5, GHSA-xvch-5gv4-984h) and HIGH only
// (path-to-regexp 0.1.7, GHSA-9wv6-86v2-598j).
var planted = map[string]npmPkg{
	"critical": {Name: "minimist", Version: "1.2.5", Resolved: "https://registry.npmjs.org/minimist/-/minimist-1.2.5.tgz",
		Integrity: "sha512-FM9nNUYrRBAELZQT3xeZQ7fmMOBg6nWNmJKTcgsJeaLstP/UODVpGsr5OhXhhXg6f+qtJ8uiZ+PUxkDWcgIXLw==", License: "MIT"},
	"high": {Name: "path-to-regexp", Version: "0.1.7", Resolved: "https://registry.npmjs.org/path-to-regexp/-/path-to-regexp-0.1.7.tgz",
		Integrity: "sha512-5DFkuoqlv1uYQKxy8omFBeJPQcdoE07Kv2sferDCrAq1ohOU+MSDswDIbnx3YAM60qIOnYa53wBhXW0EbMonrQ==", License: "MIT"},
}

// fakeToken is a GitHub token gitleaks' github-pat rule finds: "ghp_" and
// 36 characters. It is made from the seed, so it is fake and unique.
func fakeToken(r *rand.Rand) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 36)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return "ghp_" + string(b)
}

// Generate writes o.Apps apps under root/apps and root/manifest.json.
func Generate(ctx context.Context, root string, o Options) (Manifest, error) {
	o = o.withDefaults()
	if o.Apps < 1 || o.Apps > 100000 {
		return Manifest{}, fmt.Errorf("generate corpus: %d apps: want 1 to 100000", o.Apps)
	}
	var npm []npmPkg
	var pypi []pypiPkg
	var gomods []goMod
	for _, u := range []struct {
		raw []byte
		v   any
	}{{npmData, &npm}, {pypiData, &pypi}, {goData, &gomods}} {
		if err := json.Unmarshal(u.raw, u.v); err != nil {
			return Manifest{}, fmt.Errorf("generate corpus: package data: %w", err)
		}
	}
	r := rand.New(rand.NewPCG(uint64(o.Seed), 0x7011_9a7e))
	m := Manifest{Seed: o.Seed, Options: o, DB: "testdata/osv"}
	for i := range o.Apps {
		if err := ctx.Err(); err != nil {
			return Manifest{}, err
		}
		a := App{}
		switch x := r.Float64(); {
		case x < o.NodeShare:
			a.Ecosystem = "npm"
		case x < o.NodeShare+o.PythonShare:
			a.Ecosystem = "pypi"
		default:
			a.Ecosystem = "go"
		}
		a.Secret = r.Float64() < o.SecretShare
		if a.Ecosystem == "npm" && r.Float64() < o.VulnShare/o.NodeShare {
			a.Vuln = "high"
			if r.IntN(2) == 0 {
				a.Vuln = "critical"
			}
		}
		a.Name = fmt.Sprintf("app-%04d-%s", i, map[string]string{"npm": "node", "pypi": "py", "go": "go"}[a.Ecosystem])
		a.Dir = filepath.ToSlash(filepath.Join("apps", a.Name))
		dir := filepath.Join(root, a.Dir)
		if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
			return Manifest{}, err
		}
		var files map[string]string
		switch a.Ecosystem {
		case "npm":
			n := min(depCount(r, 20, 1500), len(npm))
			files, a.Packages = nodeApp(r, a, npm, n)
		case "pypi":
			n := min(depCount(r, 20, 1500), len(pypi))
			files, a.Packages = pythonApp(r, a, pypi, n)
		case "go":
			n := min(depCount(r, 20, 1500), len(gomods))
			files, a.Packages = goApp(r, a, gomods, n)
		}
		// Its handler code draws from its own stream, so the packages and
		// planted findings of a seed stay what they were before apps had code.
		for name, text := range codeFiles(rand.New(rand.NewPCG(uint64(o.Seed), uint64(i))), a.Ecosystem, a.Name) {
			files[name] = text
		}
		// Every app declares what it may touch (nothing): without a
		// manifest the fast policy warns, and clean apps are meant to pass.
		files["tollgate.yaml"] = "version: 1\npermissions: {}\n"
		if a.Secret {
			files["src/settings.txt"] = fmt.Sprintf("# deploy settings for %s\ngithub_token = %q\n", a.Name, fakeToken(r))
		}
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range files {
				if !yield(k) {
					return
				}
			}
		}) {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
				return Manifest{}, err
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(files[name]), 0o644); err != nil {
				return Manifest{}, err
			}
		}
		a.Expected, a.ExpectedStage = "pass", "deep"
		switch {
		case a.Secret:
			a.Expected, a.ExpectedStage = "block", "fast"
		case a.Vuln == "critical":
			a.Expected = "block"
		case a.Vuln == "high":
			a.Expected = "warn"
		}
		m.Apps = append(m.Apps, a)
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	if err := os.WriteFile(filepath.Join(root, "manifest.json"), append(raw, '\n'), 0o644); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// depCount draws a dependency count: log-normal, most apps between about
// 50 and 400, clamped to [lo, hi].
func depCount(r *rand.Rand, lo, hi int) int {
	n := int(math.Exp(math.Log(150) + 0.9*r.NormFloat64()))
	return min(max(n, lo), hi)
}

// pick returns n distinct indexes of a universe of size u, sorted.
func pick(r *rand.Rand, u, n int) []int {
	idx := r.Perm(u)[:n]
	slices.Sort(idx)
	return idx
}

func nodeApp(r *rand.Rand, a App, u []npmPkg, n int) (map[string]string, int) {
	var deps []npmPkg
	for _, i := range pick(r, len(u), n) {
		deps = append(deps, u[i])
	}
	if p, ok := planted[a.Vuln]; ok {
		deps = append(deps, p)
		slices.SortFunc(deps, func(x, y npmPkg) int { return strings.Compare(x.Name, y.Name) })
	}
	type entry struct {
		Version   string `json:"version,omitempty"`
		Resolved  string `json:"resolved,omitempty"`
		Integrity string `json:"integrity,omitempty"`
		License   string `json:"license,omitempty"`
		Name      string `json:"name,omitempty"`
		// The root entry's dependencies.
		Dependencies map[string]string `json:"dependencies,omitempty"`
	}
	direct := map[string]string{}
	packages := map[string]entry{}
	for i, d := range deps {
		packages["node_modules/"+d.Name] = entry{Version: d.Version, Resolved: d.Resolved, Integrity: d.Integrity, License: d.License}
		if i%4 == 0 || d.Name == planted[a.Vuln].Name {
			direct[d.Name] = "^" + d.Version
		}
	}
	packages[""] = entry{Name: a.Name, Version: "1.0.0", Dependencies: direct}
	lock, _ := json.MarshalIndent(map[string]any{"name": a.Name, "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": packages}, "", "  ")
	pkg, _ := json.MarshalIndent(map[string]any{"name": a.Name, "version": "1.0.0", "private": true, "main": "src/index.js", "dependencies": direct}, "", "  ")
	return map[string]string{
		"package.json":      string(pkg) + "\n",
		"package-lock.json": string(lock) + "\n",
	}, len(deps)
}

func pythonApp(r *rand.Rand, a App, u []pypiPkg, n int) (map[string]string, int) {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: pinned requirements\n", a.Name)
	for _, i := range pick(r, len(u), n) {
		fmt.Fprintf(&b, "%s==%s\n", u[i].Name, u[i].Version)
	}
	return map[string]string{
		"requirements.txt": b.String(),
	}, n
}

func goApp(r *rand.Rand, a App, u []goMod, n int) (map[string]string, int) {
	var mod, sum strings.Builder
	fmt.Fprintf(&mod, "module example.com/%s\n\ngo 1.22\n\nrequire (\n", a.Name)
	for _, i := range pick(r, len(u), n) {
		g := u[i]
		fmt.Fprintf(&mod, "\t%s %s\n", g.Module, g.Version)
		fmt.Fprintf(&sum, "%s %s %s\n%s %s/go.mod %s\n", g.Module, g.Version, g.H1, g.Module, g.Version, g.GoMod)
	}
	mod.WriteString(")\n")
	return map[string]string{
		"go.mod": mod.String(),
		"go.sum": sum.String(),
	}, n
}

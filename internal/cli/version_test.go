package cli

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
)

// onDisk is the files of dir under the given top folders (all when none),
// as an FS: the tree a go:embed of them holds.
func onDisk(t *testing.T, dir string, tops ...string) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		top, _, _ := strings.Cut(p, "/")
		if len(tops) > 0 && !strings.Contains(" "+strings.Join(tops, " ")+" ", " "+top+" ") {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(dir, p))
		out[p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVersionNamesWhatTheBinaryCarries: `tollgate version --format json`
// names the embedded policy bundle and SAST rules by the dirhash (h1:) of
// their files as they are on disk, so a changed rule changes what the
// version says; it names the trivy-db schema and the scanners linked; and
// `--version` prints the same report.
func TestVersionNamesWhatTheBinaryCarries(t *testing.T) {
	code, stdout, stderr := run(t, "version", "--format", "json")
	if code != 0 {
		t.Fatalf("version: exit %d: %s", code, stderr)
	}
	var r versionReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("version JSON %q: %v", stdout, err)
	}
	for name, c := range map[string]struct {
		got  treeDigest
		disk fs.FS
	}{
		"policy bundle": {r.PolicyBundle, onDisk(t, filepath.Join("..", "..", "policies", "bundle"))},
		"sast rules":    {r.SASTRules, onDisk(t, filepath.Join("..", "..", "sast"), "rules", "presets")},
	} {
		want, err := digestTree(c.disk)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(c.got.Digest, "h1:") || c.got != want {
			t.Errorf("%s: %+v, on disk %+v", name, c.got, want)
		}
	}
	if r.VulnDBSchema < 2 {
		t.Errorf("vulndb schema %d", r.VulnDBSchema)
	}
	// A test binary's build info lists no dependencies; a built tollgate's
	// does (the README's `tollgate version` and the release check it).
	if bi, ok := debug.ReadBuildInfo(); ok && len(bi.Deps) > 0 && (r.Scanners["trivy"] == "" || r.Scanners["syft"] == "" || r.Scanners["gitleaks"] == "" || r.Scanners["opa"] == "") {
		t.Errorf("scanners %v from build deps", r.Scanners)
	}
	code, text, _ := run(t, "--version")
	if code != 0 || !strings.Contains(text, r.PolicyBundle.Digest) || !strings.Contains(text, r.SASTRules.Digest) || !strings.Contains(text, "vulndb schema") {
		t.Errorf("--version (exit %d):\n%s", code, text)
	}
}

package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDBImportTakesSeveralOSVDirs: `--osv DIR...` takes the directories
// after the flag as well as a repeated flag, and all of them count.
func TestDBImportTakesSeveralOSVDirs(t *testing.T) {
	osv := filepath.Join("..", "..", "testdata", "osv")
	npm, pypi, golang := filepath.Join(osv, "npm"), filepath.Join(osv, "pypi"), filepath.Join(osv, "go")
	// The one-directory import of the whole folder is what the others must match.
	_, whole, _ := run(t, "db", "import", "--osv", osv, "--db", filepath.Join(t.TempDir(), "db"))
	want := filesLine(t, whole)
	cases := map[string][]string{
		"after one flag": {"db", "import", "--osv", npm, pypi, golang, "--db"},
		"repeated flag":  {"db", "import", "--osv", npm, "--osv", pypi, "--osv", golang, "--db"},
		"both":           {"db", "import", "--osv", npm, pypi, "--osv", golang, "--db"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := run(t, append(args, filepath.Join(t.TempDir(), "db"))...)
			if code != 0 {
				t.Fatalf("exit %d; stderr: %s", code, stderr)
			}
			if got := filesLine(t, stdout); got != want {
				t.Errorf("imported %q, want %q (as from %s alone)", got, want, osv)
			}
		})
	}
}

// TestDBImportNamesTheDirThatIsNot: a non-directory among several is a
// usage error that names it, wherever it stands.
func TestDBImportNamesTheDirThatIsNot(t *testing.T) {
	npm := filepath.Join("..", "..", "testdata", "osv", "npm")
	missing := filepath.Join(t.TempDir(), "nope")
	for name, args := range map[string][]string{
		"after the flag": {"--osv", npm, missing},
		"repeated":       {"--osv", npm, "--osv", missing},
		"a file":         {"--osv", npm, filepath.Join(npm, "NSWG-ECO-516.json")},
		"no flag":        {npm},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, stderr := run(t, append([]string{"db", "import", "--db", filepath.Join(t.TempDir(), "db")}, args...)...)
			if code != ExitBadInput {
				t.Fatalf("exit %d, want %d; stderr: %s", code, ExitBadInput, stderr)
			}
			if bad := args[len(args)-1]; !strings.Contains(stderr, bad) {
				t.Errorf("stderr does not name %q: %s", bad, stderr)
			}
		})
	}
}

// filesLine is the import's summary without the DB folder it names.
func filesLine(t *testing.T, stdout string) string {
	t.Helper()
	_, after, ok := strings.Cut(stdout, " from ")
	if !ok {
		t.Fatalf("no summary in %q", stdout)
	}
	return strings.TrimSpace(after)
}

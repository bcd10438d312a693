package stack

import (
	"os/exec"
	"regexp"
	"slices"
	"testing"
)

// TestMakeDemoInstallsOnlyWhatScanRuns: `make demo` on a fresh machine
// installs the one tool `tollgate scan` starts, the Temporal CLI (NATS runs
// in-process, evidence is local), not the tests' tools (MinIO, Prometheus,
// the Kubernetes schemas), which took most of its 23 minutes. `make test`
// still installs them all.
func TestMakeDemoInstallsOnlyWhatScanRuns(t *testing.T) {
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make:", err)
	}
	installs := func(target string) []string {
		cmd := exec.Command(mk, "-n", "--no-print-directory", target)
		cmd.Dir = ".." // the repository root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n %s: %v\n%s", target, err, out)
		}
		var tools []string
		for _, m := range regexp.MustCompile(`scripts/tools\.sh (\S+)`).FindAllSubmatch(out, -1) {
			tools = append(tools, string(m[1]))
		}
		return tools
	}
	if got := installs("demo"); !slices.Equal(got, []string{"temporal"}) {
		t.Errorf("make demo installs %q, want only the Temporal CLI (\"temporal\")", got)
	}
	if got := installs("test"); !slices.Contains(got, "all") {
		t.Errorf("make test installs %q, want every tool (\"all\")", got)
	}
}

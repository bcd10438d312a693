package cli

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tollgate/tollgate/workers/sandbox"
)

// TestMain serves the scanners' sandbox children: the embedded stacks these
// tests start re-execute this binary as `tollgate sandbox-child`. Copied
// under the name tollgate (as the CI test's release archive holds it), the
// binary is the command line.
func TestMain(m *testing.M) {
	if sandbox.IsChild(os.Args) || filepath.Base(os.Args[0]) == "tollgate" {
		os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	// tollgate scan goes to a running tollgate dev when it finds one: the
	// tests' scans never reach a dev the developer runs.
	state, err := os.MkdirTemp("", "tollgate-test-dev-state-*")
	if err != nil {
		panic(err)
	}
	os.Setenv("TOLLGATE_DEV_STATE_DIR", state)
	code := m.Run()
	os.RemoveAll(state)
	os.Exit(code)
}

package cli

import (
	"context"
	"os"
	"testing"

	"github.com/tollgate/tollgate/workers/sandbox"
)

// TestMain serves the scanners' sandbox children: the embedded stacks these
// tests start re-execute this binary as `tollgate sandbox-child`.
func TestMain(m *testing.M) {
	if sandbox.IsChild(os.Args) {
		os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

package workers_test

import (
	"context"
	"os"
	"testing"

	"github.com/tollgate/tollgate/workers/sandbox"
	"github.com/tollgate/tollgate/workers/sandbox/sandboxtest"
)

// TestMain serves sandbox children (the misbehaving sandboxtest scanner)
// when a test's sandbox re-executes this binary.
func TestMain(m *testing.M) {
	if sandbox.IsChild(os.Args) {
		os.Exit(sandbox.ServeChild(context.Background(), sandboxtest.Load))
	}
	os.Exit(m.Run())
}

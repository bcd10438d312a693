// Package testbin names how tollgate is built (its tags), and builds the
// binary for tests that run it as a separate process (the chaos test, the
// load test's smoke and drills).
package testbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// Tags are the build tags of the shipped binary (the Makefile's GOTAGS):
// a test runs what users run, and shares the compiled packages of go vet
// and go test instead of compiling every package that depends on
// gitleaks' regexp a second time.
const Tags = "gore2regex"

// Build builds cmd/tollgate into out with the shipped binary's tags and
// GOEXPERIMENT. It links without DWARF (-w), as the Makefile's test
// binaries do: half the linker's CPU, and nobody attaches a debugger here.
func Build(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", Tags, "-ldflags", "-w", "-o", out, "github.com/tollgate/tollgate/cmd/tollgate")
	cmd.Env = append(os.Environ(), "GOEXPERIMENT=jsonv2")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build tollgate into %s: %w\n%s", out, err, output)
	}
	return nil
}

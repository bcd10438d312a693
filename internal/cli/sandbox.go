package cli

import (
	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/workers/sandbox"
	"github.com/tollgate/tollgate/workers/scanners"
)

// newSandboxChildCmd is the hidden command a worker re-executes itself as,
// once per slot: the scanners' sandboxed process (package workers/sandbox).
// It speaks the sandbox protocol on stdin and stdout; nobody runs it by hand.
func newSandboxChildCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    sandbox.ChildCommand,
		Short:  "Serve scanner tasks from a worker over stdin and stdout (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if code := sandbox.ServeChild(cmd.Context(), scanners.LoadForSandbox); code != 0 {
				return verdictExit{code: code}
			}
			return nil
		},
	}
}

// Package cli is the tollgate command tree. Flags and environment variables
// map onto each subsystem's Config here, and nowhere else.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/telemetry"
)

// Exit codes: the contract of `tollgate scan` and `tollgate submit --wait`.
const (
	ExitPass     = 0 // pass or warn
	ExitBlocked  = 1 // blocked by policy
	ExitBadInput = 2 // bad input or usage
	ExitInternal = 3 // internal error
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=...".
var Version = "dev"

// exitError carries an exit code up to Main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks an error as bad input or usage (exit 2).
func usageErr(err error) error { return &exitError{code: ExitBadInput, err: err} }

// usageErrf formats a usage error.
func usageErrf(format string, args ...any) error { return usageErr(fmt.Errorf(format, args...)) }

// verdictExit ends the command with a verdict's exit code and no message.
type verdictExit struct{ code int }

func (v verdictExit) Error() string { return fmt.Sprintf("exit %d", v.code) }

type globals struct {
	stdout, stderr io.Writer
	logLevel       string
	logFormat      string
	logger         *slog.Logger
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitPass
	}
	var v verdictExit
	if errors.As(err, &v) {
		return v.code
	}
	var e *exitError
	code := ExitInternal
	if errors.As(err, &e) {
		code = e.code
	} else if isCobraUsageError(err) {
		code = ExitBadInput
	}
	fmt.Fprintf(stderr, "tollgate: %s\n", oneLine(err.Error()))
	return code
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "tollgate",
		Short:         "The security gate for micro apps",
		Long:          "tollgate scans source trees for secrets, vulnerable and denied-licence dependencies, decides a verdict with OPA policies, and keeps every output as write-once evidence.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(g.stderr, g.logLevel, g.logFormat)
			if err != nil {
				return usageErr(err)
			}
			g.logger = logger
			// Libraries that log through slog's default (trivy) go to the
			// same place, at warning level and above.
			slog.SetDefault(slog.New(minLevel{Handler: logger.Handler(), min: slog.LevelWarn}))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", envOr("TOLLGATE_LOG_LEVEL", "warn"), "log level: debug, info, warn, error ($TOLLGATE_LOG_LEVEL)")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", envOr("TOLLGATE_LOG_FORMAT", "text"), "log format: text or json ($TOLLGATE_LOG_FORMAT)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(newScanCmd(g), newDBCmd(g), newDevCmd(g), newSubmitCmd(g), newServeCmd(g), newOrchestratorCmd(g), newWorkerCmd(g), newVerifyCmd(g),
		newReleaseCmd(g), newRollbackCmd(g), newFreezeCmd(g), newUnfreezeCmd(g), newGuardCmd(g), newPoolsCmd(g), newExceptionCmd(g), newReviewCmd(g), newRematchCmd(g), newDiffCmd(g), newVEXCmd(g), newAppCmd(g), newVersionCmd(g), newSandboxChildCmd(g))
	setVersion(root)
	return root
}

func isCobraUsageError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.Contains(msg, "arg(s)") || strings.HasPrefix(msg, "required flag")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts))), nil
	case "json":
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts))), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
}

// minLevel raises a handler's threshold, for chatty libraries.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{Handler: m.Handler.WithAttrs(a), min: m.min}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: m.Handler.WithGroup(name), min: m.min}
}

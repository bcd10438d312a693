package scanners

import (
	"log/slog"
	"strings"

	"github.com/rs/zerolog"
	gitleakslog "github.com/zricethezav/gitleaks/v8/logging"
)

// routeGitleaksLogs sends gitleaks' logs (a package-level zerolog logger that
// writes to stderr by default) to tollgate's logger, warnings and above only.
// Its messages name files and rules, never secret values.
func routeGitleaksLogs(logger *slog.Logger) {
	gitleakslog.Logger = zerolog.New(slogWriter{logger.With("component", "gitleaks")}).Level(zerolog.WarnLevel)
}

type slogWriter struct{ logger *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.logger.Warn("gitleaks", "event", strings.TrimSpace(string(p)))
	return len(p), nil
}

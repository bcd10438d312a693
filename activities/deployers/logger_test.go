package deployers_test

import (
	"bytes"
	"io"
	"log/slog"
	"testing"

	"github.com/tollgate/tollgate/internal/syncbuf"
)

// testLogger logs into the test's output and into buf, when buf is not nil.
func testLogger(t testing.TB, buf *syncbuf.Buffer) *slog.Logger {
	var w io.Writer = testWriter{t}
	if buf != nil {
		w = io.MultiWriter(w, buf)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimSuffix(p, []byte("\n"))))
	return len(p), nil
}

package cli

import (
	"path/filepath"
	"testing"
)

// TestDevRunsTemporalOnAFileInItsState: `tollgate dev` keeps Temporal's
// history in a file in its state folder (beside NATS's streams), not in
// memory, and that file reaches the options Temporal is started with.
func TestDevRunsTemporalOnAFileInItsState(t *testing.T) {
	state := t.TempDir()
	cfg := (&devOptions{state: state}).stackConfig("")
	if cfg.StateDir != state {
		t.Errorf("state dir %q, want %q", cfg.StateDir, state)
	}
	topts := cfg.TemporalOptions()
	if want := filepath.Join(state, "temporal.db"); topts.DBFile != want {
		t.Errorf("Temporal runs on %q, want the file %q", topts.DBFile, want)
	}
}

// TestDevStateDefaultsToTheXDGStateHome: without --state, dev keeps its
// state under $TOLLGATE_DEV_STATE_DIR, else $XDG_STATE_HOME/tollgate/dev.
func TestDevStateDefaultsToTheXDGStateHome(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("TOLLGATE_DEV_STATE_DIR", "")
	t.Setenv("XDG_STATE_HOME", xdg)
	if got, want := defaultDevStateDir(), filepath.Join(xdg, "tollgate", "dev"); got != want {
		t.Errorf("default state %q, want %q", got, want)
	}
	t.Setenv("TOLLGATE_DEV_STATE_DIR", filepath.Join(xdg, "mine"))
	if got, want := defaultDevStateDir(), filepath.Join(xdg, "mine"); got != want {
		t.Errorf("default state %q, want %q", got, want)
	}
}

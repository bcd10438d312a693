package cli

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/fleet"
)

// TestDevRunsTemporalOnAFileInItsState: `tollgate dev` keeps Temporal's
// history in a file in its state folder (beside NATS's streams), not in
// memory, and that file reaches the options Temporal is started with.
func TestDevRunsTemporalOnAFileInItsState(t *testing.T) {
	state := t.TempDir()
	cfg := (&devOptions{state: state}).stackConfig("", fleet.Config{})
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

// TestScanIgnoresADeadDev: a dev link left by a dev that was killed names
// an API that does not answer; scan says so and is not sent there.
func TestScanIgnoresADeadDev(t *testing.T) {
	state := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if _, err := writeDevLink(state, devLink{API: "http://" + addr, Token: "t"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(state, devLinkFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dev link: %v, mode %v (it holds a token: owner only)", err, fi.Mode())
	}
	link, why := findDev(context.Background(), state)
	if link.API != "" || !strings.Contains(why, "does not answer") {
		t.Fatalf("dead dev: link %+v, why %q", link, why)
	}
	if link, why := findDev(context.Background(), t.TempDir()); link.API != "" || why != "" {
		t.Fatalf("no dev: link %+v, why %q", link, why)
	}
}

func TestLocalAddr(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:8080": "127.0.0.1:8080", ":8080": "127.0.0.1:8080", "0.0.0.0:9": "127.0.0.1:9", "[::]:9": "127.0.0.1:9", "example:1": "example:1"} {
		if got := localAddr(in); got != want {
			t.Errorf("localAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

package stack

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
)

// TestTemporalDevRegistersSearchAttributes: every dev server started here
// knows tollgate's search attributes (the API cannot start a scan without
// them), also when it is started again on the same database file.
func TestTemporalDevRegistersSearchAttributes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that starts a Temporal dev server")
	}
	if _, err := FindTemporalCLI(""); errors.Is(err, ErrNoTemporalCLI) {
		t.Skip(err)
	}
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "temporal.db")
	for run := range 2 {
		d, err := StartTemporalDev(ctx, TemporalDevOptions{DBFile: db})
		if err != nil {
			t.Fatalf("start %d: %v", run+1, err)
		}
		c, err := client.Dial(client.Options{HostPort: d.Addr, Logger: quietLogger{}})
		if err != nil {
			d.Stop()
			t.Fatal(err)
		}
		resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: d.Namespace})
		c.Close()
		d.Stop()
		if err != nil {
			t.Fatal(err)
		}
		for name, typ := range TemporalSearchAttributes {
			if got := resp.GetCustomAttributes()[name]; got.String() != typ {
				t.Errorf("start %d: search attribute %s is %v, want %s", run+1, name, got, typ)
			}
		}
	}
}

// TestTemporalDevOnAFileIsTuned: a dev server on a DB file runs SQLite with
// a write-ahead log and synchronous=normal (what the load test measured),
// and starts activities eagerly; without a file it keeps history in memory
// and names no file.
func TestTemporalDevOnAFileIsTuned(t *testing.T) {
	db := filepath.Join(t.TempDir(), "temporal.db")
	got := strings.Join(TemporalDevOptions{DBFile: db}.args(7233, "default"), " ")
	for _, want := range []string{"--db-filename " + db, "--sqlite-pragma journal_mode=wal", "--sqlite-pragma synchronous=normal",
		"--dynamic-config-value system.enableActivityEagerExecution=true"} {
		if !strings.Contains(got, want) {
			t.Errorf("args %q lack %q", got, want)
		}
	}
	if mem := strings.Join(TemporalDevOptions{}.args(7233, "default"), " "); strings.Contains(mem, "--db-filename") || strings.Contains(mem, "--sqlite-pragma") {
		t.Errorf("in-memory args name a file: %q", mem)
	}
}

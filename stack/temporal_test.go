package stack

import (
	"context"
	"errors"
	"path/filepath"
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

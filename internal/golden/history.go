package golden

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
)

// WriteHistory saves a workflow's history as JSON at path, for a replay
// test to read with worker.WorkflowReplayer.
func WriteHistory(ctx context.Context, t testing.TB, c client.Client, workflowID, path string) {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, workflowID, "", false, 0)
	var h history.History
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", workflowID, err)
		}
		h.Events = append(h.Events, ev)
	}
	data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

package activities

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"go.temporal.io/sdk/temporal"

	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/workflows"
)

// putFailing is an evidence store whose writes fail with err.
type putFailing struct {
	storage.Evidence
	err error
}

func (p putFailing) Put(context.Context, string, string, []byte) (storage.Object, error) {
	return storage.Object{}, p.err
}

func testRollbackRecord() workflows.RollbackRecord {
	return workflows.RollbackRecord{Schema: workflows.RollbackRecordSchema, RollbackID: "rollback/acme/todo", RunID: "run-1",
		Tenant: "acme", App: "todo", Outcome: workflows.OutcomeRecovered, StartedAt: time.Unix(1, 0).UTC()}
}

// A store error retrying cannot fix is a non-retryable refusal, so the
// rollback ends instead of retrying forever; a passing outage is retried.
func TestRecordRollbackPermanentStoreErrorIsNotRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ev, err := storage.OpenLocal(filepath.Join(t.TempDir(), "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	rec := testRollbackRecord()
	// Something else already holds the record's key (object lock: the key
	// cannot be written again).
	key, err := releases.RollbackKey("acme", "todo", "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.Put(ctx, key, "application/json", []byte(`{"other":true}`)); err != nil {
		t.Fatal(err)
	}
	badTenant := testRollbackRecord()
	badTenant.Tenant = "x/../victim"
	for _, tc := range []struct {
		name string
		ev   storage.Evidence
		rec  workflows.RollbackRecord
	}{
		{"key held under object lock", ev, rec},
		{"access denied", putFailing{err: fmt.Errorf("put evidence: %w", minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403})}, rec},
		{"object locked", putFailing{err: minio.ErrorResponse{Code: "ObjectLocked", StatusCode: 400}}, rec},
		{"invalid tenant", ev, badTenant},
	} {
		g := &Guard{Evidence: tc.ev}
		_, err := g.RecordRollback(ctx, tc.rec)
		var ae *temporal.ApplicationError
		if !errors.As(err, &ae) || !ae.NonRetryable() || ae.Type() != workflows.ErrTypeRecordRefused {
			t.Errorf("%s: error %v, want a non-retryable %s", tc.name, err, workflows.ErrTypeRecordRefused)
		}
	}
	g := &Guard{Evidence: putFailing{err: minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}}}
	_, err = g.RecordRollback(ctx, rec)
	var ae *temporal.ApplicationError
	if err == nil || (errors.As(err, &ae) && ae.NonRetryable()) {
		t.Errorf("a 503: error %v, want a retryable one", err)
	}
}

package releases

import (
	"context"
	"errors"
	"testing"
	"time"
)

// An app without a lifecycle record is active; the newest record is its
// state; a record stored again (a retried activity) is the same object,
// while other bytes at the same time and state are refused (write-once);
// one tenant's records are never another's.
func TestLifecycleNewestRecordIsTheState(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	s := f.store
	if lc, err := s.Lifecycle(ctx, "acme", "shop"); err != nil || lc.State != StateActive || !lc.At.IsZero() {
		t.Fatalf("unmarked app: %+v, %v", lc, err)
	}
	idle := Lifecycle{Tenant: "acme", App: "shop", State: StateIdle, At: f.clock, By: "ttl", Reason: "quiet", IdleAfter: 720 * time.Hour}
	o1, err := s.RecordLifecycle(ctx, idle)
	if err != nil {
		t.Fatal(err)
	}
	if o2, err := s.RecordLifecycle(ctx, idle); err != nil || o2.SHA256 != o1.SHA256 {
		t.Fatalf("same record again: %+v, %v", o2, err)
	}
	changed := idle
	changed.Reason = "other"
	if _, err := s.RecordLifecycle(ctx, changed); err == nil {
		t.Fatal("a record with other bytes under the same key was stored")
	}
	arch := Lifecycle{Tenant: "acme", App: "shop", State: StateArchived, At: f.clock.Add(7 * 24 * time.Hour), By: "ttl", GuardStopped: true}
	if _, err := s.RecordLifecycle(ctx, arch); err != nil {
		t.Fatal(err)
	}
	lc, err := s.Lifecycle(ctx, "acme", "shop")
	if err != nil || lc.State != StateArchived || !lc.GuardStopped || lc.Schema != LifecycleSchema {
		t.Fatalf("newest: %+v, %v", lc, err)
	}
	if lc, err := s.Lifecycle(ctx, "other", "shop"); err != nil || lc.State != StateActive {
		t.Fatalf("another tenant's app: %+v, %v", lc, err)
	}
	for name, bad := range map[string]Lifecycle{
		"state":  {Tenant: "acme", App: "shop", State: "gone", At: f.clock},
		"time":   {Tenant: "acme", App: "shop", State: StateIdle},
		"tenant": {Tenant: "../x", App: "shop", State: StateIdle, At: f.clock},
		"app":    {Tenant: "acme", App: "../shop", State: StateIdle, At: f.clock},
	} {
		if _, err := s.RecordLifecycle(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad %s: %v, want ErrInvalid", name, err)
		}
	}
	// The lifecycle records are not releases: the app list is unchanged.
	if apps, err := s.Apps(ctx, "acme"); err != nil || len(apps) != 0 {
		t.Fatalf("apps %v, %v", apps, err)
	}
}

package releases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// LifecycleSchema is the schema of an app's lifecycle records.
const LifecycleSchema = "tollgate/app-lifecycle/v1"

// Lifecycle states of an app. An app with no lifecycle record is active.
const (
	StateActive   = "active"
	StateIdle     = "idle"
	StateArchived = "archived"
)

// Lifecycle is one change of an app's lifecycle state, kept as write-once
// evidence under apps/<tenant>/<app>/lifecycle/: the idle-app TTL marks an
// app idle, archives it after the grace period, and clears idle on new
// activity; on-call revives it. The newest record is the app's state.
type Lifecycle struct {
	Schema string `json:"schema"`
	Tenant string `json:"tenant"`
	App    string `json:"app"`
	State  string `json:"state"`
	// At is when the state began.
	At time.Time `json:"at"`
	// By is "ttl" (the schedule) or the on-call principal who revived it.
	By     string `json:"by"`
	Reason string `json:"reason"`
	// LastActivity is the app's newest scan, release or health traffic
	// when the record was made; IdleAfter and Grace the periods policy
	// set for the app then.
	LastActivity time.Time     `json:"last_activity,omitzero"`
	IdleAfter    time.Duration `json:"idle_after,omitempty"`
	Grace        time.Duration `json:"grace,omitempty"`
	// ReleaseID is the live release an archive disabled or a revive
	// deployed again, and Target what its deploy target answered.
	ReleaseID string `json:"release_id,omitempty"`
	Target    string `json:"target,omitempty"`
	Detail    string `json:"detail,omitempty"`
	// GuardStopped is set on an archive that stopped the app's guard;
	// GuardStarted on a revive that started it again.
	GuardStopped bool `json:"guard_stopped,omitempty"`
	GuardStarted bool `json:"guard_started,omitempty"`
}

// lifecyclePrefix is "apps/<tenant>/<app>/lifecycle/".
func lifecyclePrefix(tenantName, app string) (string, error) {
	prefix, err := appPrefix(tenantName, app)
	if err != nil {
		return "", err
	}
	return prefix + "lifecycle/", nil
}

// RecordLifecycle stores a lifecycle change. Its key sorts by At, so the
// newest record is the app's state; the same record stored again (a
// retried activity) returns the stored object.
func (s *Store) RecordLifecycle(ctx context.Context, rec Lifecycle) (storage.Object, error) {
	prefix, err := lifecyclePrefix(rec.Tenant, rec.App)
	if err != nil {
		return storage.Object{}, err
	}
	if !slices.Contains([]string{StateActive, StateIdle, StateArchived}, rec.State) {
		return storage.Object{}, fmt.Errorf("%w: lifecycle state %q of %s", ErrInvalid, rec.State, rec.App)
	}
	if rec.At.IsZero() {
		return storage.Object{}, fmt.Errorf("%w: lifecycle record of %s has no time", ErrInvalid, rec.App)
	}
	rec.Schema, rec.At = LifecycleSchema, rec.At.UTC()
	doc, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return storage.Object{}, fmt.Errorf("encode %s lifecycle record of %s: %w", rec.State, rec.App, err)
	}
	key := prefix + rec.At.Format("20060102T150405.000000000Z") + "-" + rec.State + ".json"
	obj, err := s.Evidence.Put(ctx, key, "application/json", doc)
	if err != nil {
		return storage.Object{}, fmt.Errorf("store %s lifecycle record of %s/%s: %w", rec.State, rec.Tenant, rec.App, err)
	}
	return obj, nil
}

// Lifecycle returns the app's newest lifecycle record; an app that has
// none is active (a zero record with State active).
func (s *Store) Lifecycle(ctx context.Context, tenantName, app string) (Lifecycle, error) {
	prefix, err := lifecyclePrefix(tenantName, app)
	if err != nil {
		return Lifecycle{}, err
	}
	keys, err := s.Lister.List(ctx, prefix)
	if err != nil {
		return Lifecycle{}, fmt.Errorf("list lifecycle of %s/%s: %w", tenantName, app, err)
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return path.Ext(k) != ".json" || !strings.HasPrefix(k, prefix) })
	if len(keys) == 0 {
		return Lifecycle{Tenant: tenantName, App: app, State: StateActive}, nil
	}
	slices.Sort(keys)
	key := keys[len(keys)-1]
	raw, _, err := s.Evidence.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return Lifecycle{}, fmt.Errorf("read %s: %w", key, ErrNotFound)
	} else if err != nil {
		return Lifecycle{}, fmt.Errorf("read %s: %w", key, err)
	}
	var rec Lifecycle
	if err := json.Unmarshal(raw, &rec); err != nil {
		return Lifecycle{}, fmt.Errorf("decode %s: %w", key, err)
	}
	if rec.Tenant != tenantName || rec.App != app {
		return Lifecycle{}, fmt.Errorf("%w: %s names %s/%s", ErrInvalid, key, rec.Tenant, rec.App)
	}
	return rec, nil
}

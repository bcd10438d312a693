package releases

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tenant"
)

const artifact = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

type fixture struct {
	store  *Store
	ev     *storage.Local
	signer *attest.Signer
	clock  time.Time
}

func newFixture(t *testing.T, signed bool) *fixture {
	t.Helper()
	ev, err := storage.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	f := &fixture{ev: ev, clock: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	f.store = &Store{Evidence: ev, Lister: ev, Now: func() time.Time { return f.clock }}
	if signed {
		s, err := attest.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
		if err != nil {
			t.Fatal(err)
		}
		v, err := attest.NewVerifier(s.Public())
		if err != nil {
			t.Fatal(err)
		}
		f.signer, f.store.Verifier = s, v
	}
	return f
}

// scan stores a finished scan's verdict and report, and an attestation when
// the fixture signs.
func (f *fixture) scan(t *testing.T, id, app string, v report.Verdict) {
	t.Helper()
	ctx := context.Background()
	var objs []report.Evidence
	for _, name := range []string{"verdict.json", "report.json"} {
		doc, _ := json.Marshal(map[string]any{"scan_id": id, "app": app, "verdict": v})
		obj, err := f.ev.Put(ctx, "scans/"+id+"/"+name, "application/json", doc)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, report.Evidence{Name: name, Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, SHA256: obj.SHA256})
	}
	if f.signer == nil {
		return
	}
	env, err := f.signer.Sign(ctx, attest.NewStatement(report.Report{ScanID: id, App: app, Verdict: v, Stage: "deep"}, objs))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ev.Put(ctx, attest.AttestationKey(id), attest.EnvelopeMediaType, env); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) record(t *testing.T, scanID string) Release {
	t.Helper()
	f.clock = f.clock.Add(time.Minute)
	r, err := f.store.Record(context.Background(), Release{Tenant: "acme", App: "todo", Artifact: artifact, ScanID: scanID, RecordedBy: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) markGood(t *testing.T, r Release) {
	t.Helper()
	if _, err := f.store.MarkKnownGood(context.Background(), KnownGood{Tenant: r.Tenant, App: r.App, ReleaseID: r.ID, At: f.clock}); err != nil {
		t.Fatal(err)
	}
}

func TestRecordChecksTheScan(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	f.scan(t, "s-pass", "todo", report.VerdictPass)
	f.scan(t, "s-block", "todo", report.VerdictBlock)
	f.scan(t, "s-other", "notes", report.VerdictPass)

	r := f.record(t, "s-pass")
	if r.ID != "20261122T090100Z-111111111111" || r.Verdict != report.VerdictPass || r.Schema != ReleaseSchema {
		t.Fatalf("recorded %+v", r)
	}
	// The same record in the same second is the same release.
	again, err := f.store.Record(ctx, Release{Tenant: "acme", App: "todo", Artifact: artifact, ScanID: "s-pass", RecordedBy: "ci"})
	if err != nil || again.ID != r.ID {
		t.Fatalf("record again: %v %+v", err, again)
	}
	for name, tc := range map[string]struct {
		rel  Release
		want error
	}{
		"blocked scan":   {Release{Tenant: "acme", App: "todo", Artifact: artifact, ScanID: "s-block"}, ErrBlocked},
		"unknown scan":   {Release{Tenant: "acme", App: "todo", Artifact: artifact, ScanID: "s-none"}, ErrNotFound},
		"other app":      {Release{Tenant: "acme", App: "todo", Artifact: artifact, ScanID: "s-other"}, ErrInvalid},
		"bad artifact":   {Release{Tenant: "acme", App: "todo", Artifact: "latest", ScanID: "s-pass"}, ErrInvalid},
		"bad app":        {Release{Tenant: "acme", App: "../x", Artifact: artifact, ScanID: "s-pass"}, ErrInvalid},
		"bad scan id":    {Release{Tenant: "acme", App: "todo", Artifact: artifact, ScanID: "../s"}, ErrInvalid},
		"bad release id": {Release{ID: "a/b", Tenant: "acme", App: "todo", Artifact: artifact, ScanID: "s-pass"}, ErrInvalid},
	} {
		if _, err := f.store.Record(ctx, tc.rel); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	list, err := f.store.List(ctx, "acme", "todo")
	if err != nil || len(list) != 1 || list[0].ID != r.ID || list[0].KnownGood != nil {
		t.Fatalf("list: %v %+v", err, list)
	}
}

func TestPickTarget(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed=%v", signed), func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, signed)
			for _, id := range []string{"s1", "s2", "s3", "s4"} {
				f.scan(t, id, "todo", report.VerdictPass)
			}
			r1, r2, r3, r4 := f.record(t, "s1"), f.record(t, "s2"), f.record(t, "s3"), f.record(t, "s4")
			f.markGood(t, r1)
			f.markGood(t, r2)
			// r3 never became known-good; r2's evidence is tampered with
			// outside tollgate.
			if err := tamper(f.ev.Dir(), "scans/s2/report.json"); err != nil {
				t.Fatal(err)
			}
			pick, err := f.store.PickTarget(ctx, "acme", "todo", r4.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			if pick.Release.ID != r1.ID || len(pick.Skipped) != 2 || pick.Skipped[0].ReleaseID != r3.ID || pick.Skipped[1].ReleaseID != r2.ID {
				t.Fatalf("picked %s, skipped %+v", pick.Release.ID, pick.Skipped)
			}
			if !strings.Contains(pick.Skipped[1].Reason, "sha256") && !strings.Contains(pick.Skipped[1].Reason, "MISMATCH") && !strings.Contains(pick.Skipped[1].Reason, "ERROR") {
				t.Errorf("tampered release skipped for %q", pick.Skipped[1].Reason)
			}
			// Nothing before r1.
			if _, err := f.store.PickTarget(ctx, "acme", "todo", r1.ID, ""); !errors.Is(err, ErrNoTarget) {
				t.Fatalf("pick before the first: %v", err)
			}
			// By name: r3 is allowed (and flagged), r2 does not verify, r4
			// is the one being left.
			pick, err = f.store.PickTarget(ctx, "acme", "todo", r4.ID, r3.ID)
			if err != nil || pick.Release.ID != r3.ID || !strings.Contains(pick.Evidence, "never marked known-good") {
				t.Fatalf("pick r3 by name: %v %+v", err, pick)
			}
			if _, err := f.store.PickTarget(ctx, "acme", "todo", r4.ID, r2.ID); !errors.Is(err, ErrNoTarget) {
				t.Fatalf("pick tampered r2 by name: %v", err)
			}
			if _, err := f.store.PickTarget(ctx, "acme", "todo", r4.ID, r4.ID); !errors.Is(err, ErrNoTarget) {
				t.Fatalf("pick the current release: %v", err)
			}
			if _, err := f.store.PickTarget(ctx, "acme", "todo", r4.ID, "nope"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("pick unknown: %v", err)
			}
		})
	}
}

func TestMarkKnownGoodKeepsTheFirstMark(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	f.scan(t, "s1", "todo", report.VerdictWarn)
	r := f.record(t, "s1")
	first, err := f.store.MarkKnownGood(ctx, KnownGood{Tenant: "acme", App: "todo", ReleaseID: r.ID, At: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.store.MarkKnownGood(ctx, KnownGood{Tenant: "acme", App: "todo", ReleaseID: r.ID, At: f.clock.Add(time.Hour)})
	if err != nil || !second.At.Equal(first.At) {
		t.Fatalf("second mark: %v %+v", err, second)
	}
	if _, err := f.store.MarkKnownGood(ctx, KnownGood{Tenant: "acme", App: "todo", ReleaseID: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("mark unknown: %v", err)
	}
}

// tamper rewrites a stored object behind the store's back, as someone with
// disk access could.
func tamper(dir, key string) error {
	p := filepath.Join(dir, filepath.FromSlash(key))
	if err := os.Chmod(p, 0o644); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(`{"verdict":"pass","tampered":true}`), 0o644)
}

// A tenant name that path.Join would resolve ("x/../acme" is "acme") must
// never reach a key: every store function refuses it before any I/O, even
// when the tenant it climbs to has releases.
func TestStoreFunctionsRefuseATenantOutsideTheGrammar(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	f.scan(t, "s-pass", "todo", report.VerdictPass)
	r := f.record(t, "s-pass")
	for _, bad := range []string{"x/../acme", "..", "acme/..", "Acme", "a_b", ""} {
		checks := map[string]error{}
		_, checks["Record"] = f.store.Record(ctx, Release{Tenant: bad, App: "todo", Artifact: artifact, ScanID: "s-pass"})
		_, checks["Get"] = f.store.Get(ctx, bad, "todo", r.ID)
		_, checks["List"] = f.store.List(ctx, bad, "todo")
		_, checks["MarkKnownGood"] = f.store.MarkKnownGood(ctx, KnownGood{Tenant: bad, App: "todo", ReleaseID: r.ID, At: f.clock})
		_, checks["PickTarget"] = f.store.PickTarget(ctx, bad, "todo", r.ID, "")
		_, checks["RollbackKey"] = RollbackKey(bad, "todo", "run-1")
		for fn, err := range checks {
			if !errors.Is(err, tenant.ErrInvalid) || !errors.Is(err, ErrInvalid) {
				t.Errorf("%s(tenant %q) = %v, want tenant.ErrInvalid and ErrInvalid", fn, bad, err)
			}
		}
	}
	if st, err := f.store.Get(ctx, "acme", "todo", r.ID); err != nil || st.KnownGood != nil {
		t.Errorf("acme's release after the refusals: %+v, %v", st, err)
	}
}

func TestRollbackKeyIsBuiltFromCheckedSegments(t *testing.T) {
	key, err := RollbackKey("acme", "todo", "0b7a-run")
	if err != nil || key != "apps/acme/todo/rollbacks/0b7a-run/decision.json" {
		t.Errorf("RollbackKey = %q, %v", key, err)
	}
	for _, c := range [][3]string{{"acme", "../x", "r"}, {"acme", "todo", "../r"}, {"acme", "todo", ""}} {
		if _, err := RollbackKey(c[0], c[1], c[2]); !errors.Is(err, ErrInvalid) {
			t.Errorf("RollbackKey%q = %v, want ErrInvalid", c, err)
		}
	}
}

// rematch stores a re-match record of a release with a verdict, at a time.
func (f *fixture) rematch(t *testing.T, r Release, at time.Time, v report.Verdict) {
	t.Helper()
	doc, _ := json.Marshal(map[string]any{"schema": "tollgate/rematch/v1", "release_id": r.ID, "verdict": v})
	key := RematchPrefix(r.Tenant, r.App, r.ID) + at.UTC().Format("20060102T150405.000000000Z") + "-0000.json"
	if _, err := f.ev.Put(context.Background(), key, "application/json", doc); err != nil {
		t.Fatal(err)
	}
}

// A release that passed its scan but whose newest re-match is block is
// never rolled back to, by name or as the last known-good; an older block
// re-match that a newer one lifted does not count.
func TestPickTargetSkipsAReleaseWhoseNewestRematchBlocks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	for _, id := range []string{"s1", "s2", "s3"} {
		f.scan(t, id, "todo", report.VerdictPass)
	}
	r1, r2, r3 := f.record(t, "s1"), f.record(t, "s2"), f.record(t, "s3")
	f.markGood(t, r1)
	f.markGood(t, r2)
	// r1 was block once, then pass again; r2 was pass, then block.
	f.rematch(t, r1, f.clock.Add(time.Hour), report.VerdictBlock)
	f.rematch(t, r1, f.clock.Add(2*time.Hour), report.VerdictPass)
	f.rematch(t, r2, f.clock.Add(time.Hour), report.VerdictWarn)
	f.rematch(t, r2, f.clock.Add(2*time.Hour), report.VerdictBlock)

	pick, err := f.store.PickTarget(ctx, "acme", "todo", r3.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if pick.Release.ID != r1.ID || len(pick.Skipped) != 1 || pick.Skipped[0].ReleaseID != r2.ID || !strings.Contains(pick.Skipped[0].Reason, "block") {
		t.Fatalf("picked %s, skipped %+v; want r1, with r2 skipped as block", pick.Release.ID, pick.Skipped)
	}
	if _, err := f.store.PickTarget(ctx, "acme", "todo", r3.ID, r2.ID); !errors.Is(err, ErrNoTarget) || !errors.Is(err, ErrBlocked) {
		t.Fatalf("pick r2 by name: %v, want it refused as blocked", err)
	}
	// With r1 blocked too, nothing is left.
	f.rematch(t, r1, f.clock.Add(3*time.Hour), report.VerdictBlock)
	if _, err := f.store.PickTarget(ctx, "acme", "todo", r3.ID, ""); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("pick with every candidate blocked: %v", err)
	}
}

// TestAppsListsOnlyTheTenantsReleasedApps: the apps of a tenant are those
// with a recorded release under its own prefix, sorted, each once; another
// tenant's apps and records that are not releases are not among them.
func TestAppsListsOnlyTheTenantsReleasedApps(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	if got, err := f.store.Apps(ctx, "acme"); err != nil || len(got) != 0 {
		t.Fatalf("empty tenant: %v %v", got, err)
	}
	for _, app := range []string{"todo", "shop"} {
		f.scan(t, "scan-"+app, app, report.VerdictPass)
		for range 2 {
			f.clock = f.clock.Add(time.Minute)
			if _, err := f.store.Record(ctx, Release{Tenant: "acme", App: app, Artifact: artifact, ScanID: "scan-" + app, RecordedBy: "ci"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.scan(t, "scan-other", "secret-app", report.VerdictPass)
	if _, err := f.store.Record(ctx, Release{Tenant: "acme-2", App: "secret-app", Artifact: artifact, ScanID: "scan-other", RecordedBy: "ci"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ev.Put(ctx, "apps/acme/frozen-only/rollbacks/r1/decision.json", "application/json", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Apps(ctx, "acme")
	if err != nil || strings.Join(got, ",") != "shop,todo" {
		t.Fatalf("apps of acme: %v %v, want shop,todo", got, err)
	}
	if _, err := f.store.Apps(ctx, "../acme"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a tenant outside the grammar: %v", err)
	}
}

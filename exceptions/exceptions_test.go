package exceptions_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tenant"
)

func newStore(t *testing.T, now *time.Time) *exceptions.Store {
	t.Helper()
	local, err := storage.OpenLocal(filepath.Join(t.TempDir(), "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	return &exceptions.Store{Evidence: local, Lister: local, Now: func() time.Time { return *now }}
}

func TestAddListRevoke(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := newStore(t, &now)
	e, err := s.Add(ctx, exceptions.Exception{
		Tenant: "acme", Scope: exceptions.ScopeApp, App: "todo", Reason: "no fix yet; not reachable",
		Approver: "sec@acme", ExpiresAt: now.Add(48 * time.Hour),
		Finding: exceptions.Finding{Vulnerability: "CVE-2021-44906", Package: "minimist"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID == "" || !e.CreatedAt.Equal(now) || e.Schema != exceptions.Schema {
		t.Fatalf("added %+v", e)
	}
	wide, err := s.Add(ctx, exceptions.Exception{
		Tenant: "acme", Scope: exceptions.ScopeTenant, Reason: "test fixtures", Approver: "sec@acme",
		ExpiresAt: now.Add(time.Hour), Finding: exceptions.Finding{SecretFingerprint: "tgfp1:0123456789abcdef0123456789abcdef"},
	})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.InForce(ctx, "acme", "todo", now)
	if err != nil || len(in) != 2 {
		t.Fatalf("in force for todo: %v %+v", err, in)
	}
	if in, _ := s.InForce(ctx, "acme", "notes", now); len(in) != 1 || in[0].ID != wide.ID {
		t.Fatalf("in force for notes: %+v", in)
	}
	// Expiry ends the tenant-wide one by itself.
	if in, _ := s.InForce(ctx, "acme", "todo", now.Add(2*time.Hour)); len(in) != 1 || in[0].ID != e.ID {
		t.Fatalf("in force later: %+v", in)
	}
	// Another tenant sees none of them.
	if in, _ := s.InForce(ctx, "globex", "todo", now); len(in) != 0 {
		t.Fatalf("another tenant: %+v", in)
	}
	r, err := s.Revoke(ctx, "acme", e.ID, "sec2@acme", "fixed upstream")
	if err != nil || r.Revoked == nil || r.Revoked.By != "sec2@acme" {
		t.Fatalf("revoke: %v %+v", err, r)
	}
	if _, err := s.Revoke(ctx, "acme", e.ID, "x", "again"); !errors.Is(err, exceptions.ErrRevoked) {
		t.Fatalf("revoke twice: %v", err)
	}
	if _, err := s.Revoke(ctx, "acme", "exc-0123456789abcdef", "x", "nothing"); !errors.Is(err, exceptions.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	all, err := s.List(ctx, "acme")
	if err != nil || len(all) != 2 {
		t.Fatalf("list: %v %+v", err, all)
	}
	for _, x := range all {
		if (x.ID == e.ID) != (x.Revoked != nil) {
			t.Fatalf("list: only %s is revoked: %+v", e.ID, all)
		}
	}
}

func TestAddRefuses(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := newStore(t, &now)
	good := exceptions.Exception{
		Tenant: "acme", Scope: exceptions.ScopeApp, App: "todo", Reason: "r", Approver: "a",
		ExpiresAt: now.Add(time.Hour), Finding: exceptions.Finding{Rule: "licenses.denied"},
	}
	for name, mutate := range map[string]func(*exceptions.Exception){
		"no expiry":           func(e *exceptions.Exception) { e.ExpiresAt = time.Time{} },
		"past expiry":         func(e *exceptions.Exception) { e.ExpiresAt = now.Add(-time.Second) },
		"over a year":         func(e *exceptions.Exception) { e.ExpiresAt = now.Add(400 * 24 * time.Hour) },
		"no reason":           func(e *exceptions.Exception) { e.Reason = "  " },
		"no approver":         func(e *exceptions.Exception) { e.Approver = "" },
		"bad scope":           func(e *exceptions.Exception) { e.Scope = "world" },
		"tenant scope w/ app": func(e *exceptions.Exception) { e.Scope = exceptions.ScopeTenant },
		"bad app":             func(e *exceptions.Exception) { e.App = "../x" },
		"two findings":        func(e *exceptions.Exception) { e.Finding.SecretFingerprint = "tgfp1:0123456789abcdef0123456789abcdef" },
		"fingerprint by place": func(e *exceptions.Exception) {
			e.Finding = exceptions.Finding{SecretFingerprint: "test/key.pem:private-key:1"}
		},
		"weakness and rule": func(e *exceptions.Exception) {
			e.Finding.WeaknessFingerprint = "tgw1:3f0c2a9d5e7b41c8a6d2e0f4b1c3d5e7"
		},
		"weakness fingerprint of a secret": func(e *exceptions.Exception) {
			e.Finding = exceptions.Finding{WeaknessFingerprint: "tgfp1:0123456789abcdef0123456789abcdef"}
		},
		"weakness by place": func(e *exceptions.Exception) {
			e.Finding = exceptions.Finding{WeaknessFingerprint: "src/db.js:js-sql-injection:14"}
		},
		"weakness fingerprint upper hex": func(e *exceptions.Exception) {
			e.Finding = exceptions.Finding{WeaknessFingerprint: "tgw1:3F0C2A9D5E7B41C8"}
		},
		"no finding":       func(e *exceptions.Exception) { e.Finding = exceptions.Finding{} },
		"vuln w/o package": func(e *exceptions.Exception) { e.Finding = exceptions.Finding{Vulnerability: "CVE-1"} },
		"hostile rule":     func(e *exceptions.Exception) { e.Finding.Rule = "a b\n" },
	} {
		e := good
		mutate(&e)
		if _, err := s.Add(context.Background(), e); !errors.Is(err, exceptions.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.Add(context.Background(), good); err != nil {
		t.Fatalf("the good one: %v", err)
	}
}

// A code weakness is accepted by its fingerprint (the engine's sha256, or a
// shorter prefix of it) or, with every other weakness of its rule, by the
// SAST rule id.
func TestAddAcceptsWeaknesses(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := newStore(t, &now)
	for _, f := range []exceptions.Finding{
		{WeaknessFingerprint: "tgw1:3f0c2a9d5e7b41c8a6d2e0f4b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9"},
		{WeaknessFingerprint: "tgw1:3f0c2a9d5e7b41c8"},
		{Rule: "js-sql-injection"},
	} {
		e, err := s.Add(context.Background(), exceptions.Exception{
			Tenant: "acme", Scope: exceptions.ScopeApp, App: "todo", Reason: "parameterised below", Approver: "sec@acme",
			ExpiresAt: now.Add(time.Hour), Finding: f,
		})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if e.Finding != f {
			t.Fatalf("stored finding %+v, want %+v", e.Finding, f)
		}
	}
	if got := (exceptions.Finding{WeaknessFingerprint: "tgw1:3f0c2a9d5e7b41c8"}).String(); got != "weakness tgw1:3f0c2a9d5e7b41c8" {
		t.Fatalf("String() = %q", got)
	}
}

// A tenant that path.Join would resolve ("x/../victim" is "victim") must
// never reach a key: Add, Get, List, InForce and Revoke each refuse it
// before any I/O, while the victim's exception stays unread and unrevoked.
func TestStoreFunctionsRefuseATenantOutsideTheGrammar(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := newStore(t, &now)
	victim, err := s.Add(ctx, exceptions.Exception{
		Tenant: "victim", Scope: exceptions.ScopeTenant, Reason: "fixtures", Approver: "sec@victim",
		ExpiresAt: now.Add(time.Hour), Finding: exceptions.Finding{Rule: "licenses.denied"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"x/../victim", "..", "victim/..", "Victim", "a_b", ""} {
		checks := map[string]error{}
		_, checks["Add"] = s.Add(ctx, exceptions.Exception{
			Tenant: bad, Scope: exceptions.ScopeTenant, Reason: "r", Approver: "a",
			ExpiresAt: now.Add(time.Hour), Finding: exceptions.Finding{Rule: "licenses.denied"},
		})
		_, checks["Get"] = s.Get(ctx, bad, victim.ID)
		_, checks["List"] = s.List(ctx, bad)
		_, checks["InForce"] = s.InForce(ctx, bad, "todo", now)
		_, checks["Revoke"] = s.Revoke(ctx, bad, victim.ID, "mallory", "because")
		for fn, err := range checks {
			if !errors.Is(err, tenant.ErrInvalid) || !errors.Is(err, exceptions.ErrInvalid) {
				t.Errorf("%s(tenant %q) = %v, want tenant.ErrInvalid and ErrInvalid", fn, bad, err)
			}
		}
	}
	if got, err := s.Get(ctx, "victim", victim.ID); err != nil || got.Revoked != nil {
		t.Errorf("victim's exception after the refusals: %+v, %v", got, err)
	}
}

func TestGetAndRevokeCheckTheID(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := newStore(t, &now)
	for _, id := range []string{"../exc-0000000000000000", "exc-0000000000000000/..", "exc-zz", ""} {
		if _, err := s.Get(ctx, "acme", id); !errors.Is(err, exceptions.ErrInvalid) {
			t.Errorf("Get(%q) = %v, want ErrInvalid", id, err)
		}
		if _, err := s.Revoke(ctx, "acme", id, "sec", "r"); !errors.Is(err, exceptions.ErrInvalid) {
			t.Errorf("Revoke(%q) = %v, want ErrInvalid", id, err)
		}
	}
}

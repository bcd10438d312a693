package deployers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// These tests hold the flag file's lock as another process would.

func TestFlagdHonoursCancellationWhileLocked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "flags.json")
	f, err := NewFlagd(Target{Type: TypeFlagd, FlagFile: path})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(context.Background(), path+".lock")
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Tenant: "acme", App: "shop", ReleaseID: "r1", RollbackID: "rb-1"}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := f.Deploy(ctx, req)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || errors.Is(err, ErrPermanent) {
		t.Fatalf("Deploy() = %v, want a retryable context.Canceled", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("flag file written while another holder had the lock: %v", err)
	}
	unlock()
	if _, err := f.Deploy(context.Background(), req); err != nil {
		t.Fatalf("Deploy() after the lock was released = %v", err)
	}
}

func TestFlagdWaitsForLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "flags.json")
	f, err := NewFlagd(Target{Type: TypeFlagd, FlagFile: path})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(context.Background(), path+".lock")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := f.Deploy(context.Background(), Request{Tenant: "acme", App: "shop", ReleaseID: "r1", RollbackID: "rb-1"})
		errc <- err
	}()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("flag file written while another holder had the lock: %v", err)
	}
	unlock()
	if err := <-errc; err != nil {
		t.Fatalf("Deploy() = %v", err)
	}
	if cur, err := f.Current(context.Background(), "acme", "shop"); err != nil || cur != "r1" {
		t.Fatalf("Current() = %q, %v", cur, err)
	}
}

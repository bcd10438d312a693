package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestLocalIsWriteOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	obj, err := s.Put(ctx, "scans/a/report.json", "application/json", []byte(`{"v":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256([]byte(`{"v":1}`)); obj.SHA256 != hex.EncodeToString(want[:]) {
		t.Fatalf("sha256 %q", obj.SHA256)
	}
	// The same bytes again: the existing object, no error (a retried task).
	again, err := s.Put(ctx, "scans/a/report.json", "application/json", []byte(`{"v":1}`))
	if err != nil || again != obj {
		t.Fatalf("idempotent put: %v %+v", err, again)
	}
	// Different bytes: refused, and the original is intact.
	if _, err := s.Put(ctx, "scans/a/report.json", "application/json", []byte(`{"v":2}`)); !errors.Is(err, ErrImmutable) {
		t.Fatalf("overwrite: got %v, want ErrImmutable", err)
	}
	if err := s.Delete(ctx, "scans/a/report.json"); !errors.Is(err, ErrImmutable) {
		t.Fatalf("delete: got %v", err)
	}
	data, got, err := s.Get(ctx, "scans/a/report.json")
	if err != nil || string(data) != `{"v":1}` || got.SHA256 != obj.SHA256 {
		t.Fatalf("get: %v %q %+v", err, data, got)
	}
	// Objects are read-only on disk.
	st, err := os.Stat(filepath.Join(dir, "scans/a/report.json"))
	if err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Fatalf("object is writable: %v %v", err, st.Mode())
	}
}

func TestLocalDetectsTampering(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, _ := OpenLocal(dir)
	defer s.Close()
	if _, err := s.Put(ctx, "k", "text/plain", []byte("original")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "k")
	os.Chmod(p, 0o644)
	os.WriteFile(p, []byte("tampered"), 0o644)
	if _, _, err := s.Get(ctx, "k"); err == nil {
		t.Fatal("tampered object read without error")
	}
}

func TestLocalRejectsBadKeys(t *testing.T) {
	s, _ := OpenLocal(t.TempDir())
	defer s.Close()
	for _, k := range []string{"", "/abs", "../up", "a/../../up", `a\b`, "x.meta"} {
		if _, err := s.Put(context.Background(), k, "", []byte("x")); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
	if _, _, err := s.Get(context.Background(), "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func TestLocalConcurrentPutsOfOneKey(t *testing.T) {
	s, _ := OpenLocal(t.TempDir())
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := "same"
			if i%2 == 1 {
				body = "other"
			}
			_, err := s.Put(context.Background(), "race", "", []byte(body))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok, immutable := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrImmutable):
			immutable++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 10 || immutable != 10 {
		t.Fatalf("%d stored, %d refused: want exactly one body to win", ok, immutable)
	}
}

func TestLocalRebuildsALostDigest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, _ := OpenLocal(dir)
	defer s.Close()
	obj, err := s.Put(ctx, "a/b", "text/plain", []byte("body"))
	if err != nil {
		t.Fatal(err)
	}
	// As if the writer died after linking the object, before its sidecar.
	os.Remove(filepath.Join(dir, "a/b.meta"))
	_, got, err := s.Get(ctx, "a/b")
	if err != nil || got.SHA256 != obj.SHA256 {
		t.Fatalf("get after lost sidecar: %v %+v", err, got)
	}
	if _, err := s.Put(ctx, "a/b", "text/plain", []byte("other")); !errors.Is(err, ErrImmutable) {
		t.Fatalf("overwrite after lost sidecar: %v", err)
	}
}

func TestLocalList(t *testing.T) {
	ctx := context.Background()
	s, err := OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"apps/t/a/releases/2/release.json", "apps/t/a/releases/1/release.json", "apps/t/ab/x.json", "scans/s/report.json"} {
		if _, err := s.Put(ctx, k, "application/json", []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.List(ctx, "apps/t/a/")
	if want := []string{"apps/t/a/releases/1/release.json", "apps/t/a/releases/2/release.json"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("list: %v %q, want %q", err, got, want)
	}
	if got, err := s.List(ctx, "apps/none/"); err != nil || len(got) != 0 {
		t.Fatalf("list of a missing prefix: %v %q", err, got)
	}
	if _, err := s.List(ctx, "../x/"); err == nil {
		t.Fatal("list outside the store: no error")
	}
}

// The local inputs store hands a worker only the archive its key names: the
// worker does not hash it again.
func TestLocalInputsDetectTampering(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	in, err := OpenLocalInputs(dir)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := in.PutInput(ctx, strings.NewReader("archive bytes"), -1)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(t.TempDir(), "good")
	if err := in.FetchTo(ctx, obj.Key, good); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(good); err != nil || string(data) != "archive bytes" {
		t.Fatalf("fetched %q, %v", data, err)
	}
	if err := os.WriteFile(filepath.Join(dir, obj.SHA256), []byte("tampered bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := in.FetchTo(ctx, obj.Key, bad); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("fetch of a tampered archive: %v", err)
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("fetch of a tampered archive left a file: %v", err)
	}
}

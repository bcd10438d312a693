package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tollgate/tollgate/storage"
)

// logBuffer collects a server's log lines, for a test to wait on one:
// each write fires wrote.
type logBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote wakeup
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.wrote.fire()
	return b.buf.Write(p)
}

func (b *logBuffer) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), s)
}

// TestMinIOFourDrivesKeepEvidenceThroughADriveFailure: tollgate's evidence
// store on MinIO erasure-coded over four drives (EC:2) keeps writing
// write-once, Object-Locked evidence and reading it with one drive failed,
// and once the drive is back MinIO heals what was written meanwhile onto it.
func TestMinIOFourDrivesKeepEvidenceThroughADriveFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that starts a MinIO server")
	}
	if _, err := FindMinIO(""); errors.Is(err, ErrNoMinIO) {
		t.Fatalf("this test runs a real MinIO server (skip it with -short): %v", err)
	}
	ctx := t.Context()
	var log logBuffer
	begin := time.Now()
	m, err := StartMinIO(ctx, MinIOOptions{DataDir: filepath.Join(t.TempDir(), "data"), Drives: 4,
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	t.Logf("MinIO on 4 drives ready in %s", time.Since(begin).Round(time.Millisecond))
	cfg := storage.MinIOConfig{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey}
	ev, err := storage.OpenMinIO(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	bucket := ev.Config().EvidenceBucket
	raw, err := minio.New(m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if lock, mode, _, _, err := raw.GetObjectLockConfig(ctx, bucket); err != nil || lock != "Enabled" || mode == nil || *mode != minio.Compliance {
		t.Fatalf("evidence bucket's Object Lock: %q %v %v", lock, mode, err)
	}

	// put stores key write-once and checks that it stays so.
	put := func(key string) storage.Object {
		t.Helper()
		obj, err := ev.Put(ctx, key, "text/plain", []byte("evidence "+key))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ev.Put(ctx, key, "text/plain", []byte("other bytes")); !errors.Is(err, storage.ErrImmutable) {
			t.Fatalf("second put of %s with other bytes: %v, want ErrImmutable", key, err)
		}
		if err := raw.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{VersionID: obj.VersionID}); err == nil {
			t.Fatalf("the locked version of %s was deleted", key)
		}
		return obj
	}
	get := func(key string) error {
		data, _, err := ev.Get(ctx, key)
		if err == nil && string(data) != "evidence "+key {
			err = fmt.Errorf("%s reads %q", key, data)
		}
		return err
	}
	put("before")
	for i := 1; i <= 4; i++ {
		if !m.DriveHolds(i, bucket, "before") {
			t.Fatalf("drive %d holds no shard of an object written with 4 drives", i)
		}
	}

	if err := m.FailDrive(2); err != nil {
		t.Fatal(err)
	}
	failed := time.Now()
	put("during")
	for _, key := range []string{"before", "during"} {
		if err := get(key); err != nil {
			t.Fatalf("read with drive 2 failed: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(failedDrive(m.Drive(2)), bucket, "during")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the failed drive got a shard of an object written without it: %v", err)
	}
	waitUntil(t, 60*time.Second, "MinIO notices the failed drive", &log.wrote, func(context.Context) error {
		if !log.contains("drive is not directory or mountpoint") {
			return errors.New("not in its log")
		}
		return nil
	})
	noticed := time.Now()
	put("noticed")

	if err := m.HealDrive(2); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	// A read of an object missing a shard heals it; MinIO's queue of
	// failed writes heals the rest on its own. The wait wakes on what
	// MinIO writes into the bucket's folder on drive 2, or logs.
	woken := watchTree(t, filepath.Join(m.Drive(2), bucket), &log.wrote)
	waitUntil(t, 90*time.Second, "MinIO heals drive 2", woken, func(context.Context) error {
		for _, key := range []string{"before", "during", "noticed"} {
			if err := get(key); err != nil {
				return err
			}
			if !m.DriveHolds(2, bucket, key) {
				return fmt.Errorf("drive 2 holds no shard of %s", key)
			}
		}
		return nil
	})
	t.Logf("drive 2 failed: MinIO logged it within %s; healed %s after it came back",
		noticed.Sub(failed).Round(time.Second), time.Since(healed).Round(time.Millisecond))
}

// watchTree fires the wakeup it returns at each change under dir (fsnotify:
// dir, its folders, and each folder made in it later) and at each fire of
// also.
func watchTree(t *testing.T, dir string, also *wakeup) *wakeup {
	t.Helper()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	if err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return w.Add(path)
	}); err != nil {
		t.Fatalf("watch %s: %v", dir, err)
	}
	woken := &wakeup{}
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped; w.Close() })
	go func() {
		defer close(stopped)
		for {
			select {
			case ev := <-w.Events:
				// A new folder is watched before the wake-up, so that the
				// check it wakes cannot miss a file made in it.
				if ev.Has(fsnotify.Create) {
					if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
						_ = w.Add(ev.Name)
					}
				}
				woken.fire()
			case err := <-w.Errors:
				t.Logf("watch %s: %v", dir, err)
				woken.fire()
			case <-also.next():
				woken.fire()
			case <-done:
				return
			}
		}
	}()
	return woken
}

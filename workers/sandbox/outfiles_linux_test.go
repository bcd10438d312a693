package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A child writes its output documents into a folder it controls, and the
// worker reads them with more rights than the child has: whatever the
// child puts there, the worker reads only a regular file of its own.
func TestReadBeneathRefusesWhatAChildCouldPlant(t *testing.T) {
	if !canReadBeneath() {
		t.Skip("no openat2 on this kernel: outputs travel inline")
	}
	scratch := t.TempDir()
	out := filepath.Join(scratch, outDir)
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(secret, []byte("aws_secret_access_key=do-not-leak"), 0o600); err != nil {
		t.Fatal(err)
	}
	plant := func(name string, make func(path string) error) {
		t.Helper()
		if err := make(filepath.Join(out, name)); err != nil {
			t.Fatal(err)
		}
	}
	plant("symlink", func(p string) error { return os.Symlink(secret, p) })
	plant("hardlink", func(p string) error { return os.Link(secret, p) })
	plant("fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) })
	plant("big", func(p string) error { return os.WriteFile(p, make([]byte, 2048), 0o600) })
	plant("ok", func(p string) error { return os.WriteFile(p, []byte("sbom"), 0o600) })
	// The folder itself swapped for a symlink to the worker's secrets.
	if err := os.Symlink(filepath.Dir(secret), filepath.Join(scratch, "elsewhere")); err != nil {
		t.Fatal(err)
	}

	for name, want := range map[string]string{
		"out/symlink":           "too many levels of symbolic links",
		"out/hardlink":          "has 2 links",
		"out/fifo":              "not a regular file",
		"out/big":               "over the limit",
		"elsewhere/credentials": "too many levels of symbolic links",
		"../credentials":        "cross-device link",
	} {
		data, err := readBeneath(scratch, name, 1024)
		if err == nil || !strings.Contains(err.Error(), want) && !strings.Contains(err.Error(), "operation not permitted") {
			t.Errorf("read %s: %q, %v; want an error with %q", name, data, err, want)
		}
	}
	data, err := readBeneath(scratch, "out/ok", 1024)
	if err != nil || string(data) != "sbom" {
		t.Fatalf("read out/ok: %q, %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(out, "ok")); !os.IsNotExist(err) {
		t.Fatalf("out/ok was not removed after reading: %v", err)
	}
}

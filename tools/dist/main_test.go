package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/attest"
)

func release(t *testing.T) (key, dir string) {
	t.Helper()
	key = filepath.Join(t.TempDir(), "release.key")
	if _, err := attest.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	for name, data := range map[string]string{"tollgate_1.0.0_linux_amd64.tar.gz": "binary", "tollgate_1.0.0.cdx.json": "{}"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := sign(key, dir); err != nil {
		t.Fatal(err)
	}
	return key, dir
}

func TestCheckPassesASignedRelease(t *testing.T) {
	key, dir := release(t)
	n, err := check(key+attest.PublicKeySuffix, dir)
	if err != nil || n != 2 {
		t.Fatalf("check = %d, %v; want 2 files, nil", n, err)
	}
	sums, _ := os.ReadFile(filepath.Join(dir, sumsName))
	if !strings.Contains(string(sums), "  tollgate_1.0.0_linux_amd64.tar.gz\n") {
		t.Errorf("SHA256SUMS is not in sha256sum's format:\n%s", sums)
	}
}

func TestCheckFailsATamperedFileAnUnlistedFileAndAnotherKey(t *testing.T) {
	for name, tamper := range map[string]func(t *testing.T, key, dir string) string{
		"changed file": func(t *testing.T, key, dir string) string {
			os.WriteFile(filepath.Join(dir, "tollgate_1.0.0.cdx.json"), []byte("{ }"), 0o644)
			return key + attest.PublicKeySuffix
		},
		"unlisted file": func(t *testing.T, key, dir string) string {
			os.WriteFile(filepath.Join(dir, "extra"), nil, 0o644)
			return key + attest.PublicKeySuffix
		},
		"edited sums": func(t *testing.T, key, dir string) string {
			p := filepath.Join(dir, sumsName)
			sums, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(sums), "  tollgate_1.0.0.cdx.json\n", "", 1)), 0o644)
			os.Remove(filepath.Join(dir, "tollgate_1.0.0.cdx.json"))
			return key + attest.PublicKeySuffix
		},
		"another key": func(t *testing.T, key, dir string) string {
			other := filepath.Join(t.TempDir(), "other.key")
			if _, err := attest.GenerateKey(other); err != nil {
				t.Fatal(err)
			}
			return other + attest.PublicKeySuffix
		},
	} {
		t.Run(name, func(t *testing.T) {
			key, dir := release(t)
			pub := tamper(t, key, dir)
			if _, err := check(pub, dir); err == nil {
				t.Error("check passed")
			}
		})
	}
}

package loadtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLetThrough: as root, the scratch folders under the temporary folder
// are opened to PostgreSQL's user; a closed folder outside it is named, not
// changed.
func TestLetThrough(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("only root runs PostgreSQL as another user")
	}
	top := t.TempDir() // 0700, under the temporary folder
	dir := filepath.Join(top, "fleet", "servers")
	if err := letThrough(dir); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{top, filepath.Dir(top), dir} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Errorf("%s: %v, %v: not passable", d, fi.Mode(), err)
		}
	}
	home, err := os.MkdirTemp(".", "closed-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	abs, _ := filepath.Abs(home)
	if strings.HasPrefix(abs, filepath.Clean(os.TempDir())+"/") {
		t.Skip("the package folder is under the temporary folder")
	}
	err = letThrough(filepath.Join(abs, "servers"))
	if fi, _ := os.Stat(abs); err == nil || !strings.Contains(err.Error(), abs) || fi.Mode().Perm()&0o001 != 0 {
		t.Errorf("a closed folder outside the temporary folder: %v, mode %v", err, fi.Mode())
	}
}

package vulndb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/metadata"
	trivydb "github.com/aquasecurity/trivy/pkg/db"
)

func TestReadInfo(t *testing.T) {
	t.Parallel()
	start := time.Now()
	dbDir, _ := importFixtures(t)
	end := time.Now()

	info, err := ReadInfo(dbDir)
	if err != nil {
		t.Fatalf("ReadInfo: %v", err)
	}
	if info.Dir != dbDir || info.SchemaVersion != 2 {
		t.Errorf("Dir, SchemaVersion = %q, %d; want %q, 2", info.Dir, info.SchemaVersion, dbDir)
	}
	if info.UpdatedAt.Before(start.Add(-time.Second)) || info.UpdatedAt.After(end) {
		t.Errorf("UpdatedAt = %v, want between %v and %v", info.UpdatedAt, start, end)
	}
	if !info.DownloadedAt.Equal(info.UpdatedAt) {
		t.Errorf("DownloadedAt = %v, want UpdatedAt %v", info.DownloadedAt, info.UpdatedAt)
	}
	if info.NextUpdate.Before(info.UpdatedAt.AddDate(50, 0, 0)) {
		t.Errorf("NextUpdate = %v, want decades after UpdatedAt", info.NextUpdate)
	}
	if info.Age < 0 || info.Age > time.Since(start) {
		t.Errorf("Age = %v, want between 0 and %v", info.Age, time.Since(start))
	}
	want := []DataSource{
		{"go::Tollgate OSV import (Go)", "go", "tollgate-osv", "Tollgate OSV import (Go)", "https://osv.dev/list?ecosystem=Go"},
		{"maven::Tollgate OSV import (Maven)", "maven", "tollgate-osv", "Tollgate OSV import (Maven)", "https://osv.dev/list?ecosystem=Maven"},
		{"npm::Tollgate OSV import (npm)", "npm", "tollgate-osv", "Tollgate OSV import (npm)", "https://osv.dev/list?ecosystem=npm"},
		{"pip::Tollgate OSV import (PyPI)", "pip", "tollgate-osv", "Tollgate OSV import (PyPI)", "https://osv.dev/list?ecosystem=PyPI"},
	}
	if !reflect.DeepEqual(info.DataSources, want) {
		t.Errorf("DataSources:\n got %+v\nwant %+v", info.DataSources, want)
	}
}

// TestReadInfo_TrivyAcceptsImport checks the metadata against trivy's own staleness
// test: trivy must neither re-download an imported DB nor refuse it offline.
func TestReadInfo_TrivyAcceptsImport(t *testing.T) {
	t.Parallel()
	dbDir, _ := importFixtures(t)
	client := trivydb.NewClient(dbDir, true)
	for _, skip := range []bool{false, true} {
		needs, err := client.NeedsUpdate(context.Background(), "test", skip)
		if err != nil || needs {
			t.Errorf("NeedsUpdate(skip=%v) = %v, %v; want false, nil", skip, needs, err)
		}
	}
}

func TestReadInfo_NoDB(t *testing.T) {
	t.Parallel()
	dbDir, _ := importFixtures(t)
	onlyMeta := t.TempDir()
	copyFile(t, metadata.Path(dbDir), metadata.Path(onlyMeta))
	onlyDB := t.TempDir()
	copyFile(t, filepath.Join(dbDir, "trivy.db"), filepath.Join(onlyDB, "trivy.db"))

	for name, dir := range map[string]string{
		"empty dir":     t.TempDir(),
		"missing dir":   filepath.Join(t.TempDir(), "missing"),
		"metadata only": onlyMeta,
		"trivy.db only": onlyDB,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadInfo(dir)
			if !errors.Is(err, ErrNoDB) {
				t.Fatalf("err = %v, want ErrNoDB", err)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("err = %q, want it to name %q", err, dir)
			}
		})
	}
}

func TestReadInfo_Corrupt(t *testing.T) {
	t.Parallel()
	dbDir, _ := importFixtures(t)
	if err := os.WriteFile(filepath.Join(dbDir, "trivy.db"), []byte("not a bbolt file"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadInfo(dbDir)
	if err == nil || errors.Is(err, ErrNoDB) {
		t.Fatalf("err = %v, want an error other than ErrNoDB", err)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv(DirEnv, "/srv/tollgate/db")
	if got := DefaultDir(); got != "/srv/tollgate/db" {
		t.Errorf("DefaultDir() with %s set = %q", DirEnv, got)
	}

	t.Setenv(DirEnv, "")
	base, err := os.UserCacheDir()
	if err != nil {
		t.Skipf("no user cache dir: %v", err)
	}
	if got, want := DefaultDir(), filepath.Join(base, "tollgate", "db"); got != want {
		t.Errorf("DefaultDir() = %q, want %q", got, want)
	}
}

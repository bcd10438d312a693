package vulndb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// DirEnv names the environment variable that overrides DefaultDir.
const DirEnv = "TOLLGATE_DB_DIR"

// DefaultDir is where tollgate keeps its vulnerability DB: $TOLLGATE_DB_DIR if set,
// else "tollgate/db" in the user cache directory (e.g. ~/.cache/tollgate/db), else in
// the temporary directory when the system names no cache directory.
func DefaultDir() string {
	if dir := os.Getenv(DirEnv); dir != "" {
		return dir
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "tollgate", "db")
}

// checkDBDir returns dbDir as an absolute path, refusing one that cannot be replaced
// by a rename (empty, or a file system root).
func checkDBDir(dbDir string) (string, error) {
	if dbDir == "" {
		return "", errors.New("no db dir given")
	}
	abs, err := filepath.Abs(dbDir)
	if err != nil {
		return "", fmt.Errorf("resolve db dir %q: %w", dbDir, err)
	}
	if filepath.Dir(abs) == abs {
		return "", fmt.Errorf("db dir %q is a file system root", dbDir)
	}
	return abs, nil
}

// newStagingDir creates an empty directory next to dbDir, on the same file system, so
// that the finished DB can be renamed into place. Its name starts with a dot and
// says what it is for, should a crash leave it behind.
func newStagingDir(dbDir, purpose string) (string, error) {
	parent := filepath.Dir(dbDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("create parent of db dir %q: %w", dbDir, err)
	}
	dir, err := os.MkdirTemp(parent, "."+filepath.Base(dbDir)+"."+purpose+"-*")
	if err != nil {
		return "", fmt.Errorf("create staging dir next to %q: %w", dbDir, err)
	}
	return dir, nil
}

// replaceDir puts the staged directory in dbDir's place. An existing dbDir is first
// moved into a holding directory and deleted only once the new one is in place; if
// that second rename fails, it is moved back. A process that has the old trivy.db
// open keeps reading the old file until it reopens.
func replaceDir(ctx context.Context, logger *slog.Logger, staged, dbDir string) error {
	switch fi, err := os.Lstat(dbDir); {
	case errors.Is(err, os.ErrNotExist):
		if err := os.Rename(staged, dbDir); err != nil {
			return fmt.Errorf("move new db into %q: %w", dbDir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("stat db dir %q: %w", dbDir, err)
	case !fi.IsDir():
		return fmt.Errorf("db dir %q is not a directory", dbDir)
	}

	holding, err := newStagingDir(dbDir, "old")
	if err != nil {
		return err
	}
	old := filepath.Join(holding, filepath.Base(dbDir))
	if err := os.Rename(dbDir, old); err != nil {
		_ = os.Remove(holding)
		return fmt.Errorf("move old db out of %q: %w", dbDir, err)
	}
	if err := os.Rename(staged, dbDir); err != nil {
		if rerr := os.Rename(old, dbDir); rerr != nil {
			// Keep the holding directory: it is the only copy of the old DB now.
			return fmt.Errorf("move new db into %q: %w (and move old db back from %q: %w)", dbDir, err, old, rerr)
		}
		_ = os.Remove(holding)
		return fmt.Errorf("move new db into %q: %w", dbDir, err)
	}
	// The new DB is in place: failing to delete the old one is not a failed replace.
	if err := os.RemoveAll(holding); err != nil {
		logger.WarnContext(ctx, "old vulnerability db left behind", "dir", holding, "error", err)
	}
	return nil
}

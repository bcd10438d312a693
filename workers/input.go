package workers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/tasks"
)

// ArchiveSource opens an input archive.
type ArchiveSource interface {
	// Fetch writes the archive's bytes to path.
	FetchTo(ctx context.Context, key, path string) error
}

// prepare returns the directory to scan for a task's input and a cleanup
// function. An archive is fetched and extracted, with the archive package's
// limits, into a private temporary directory.
func prepare(ctx context.Context, in tasks.Input, src ArchiveSource, workDir string, limits archive.Limits) (string, func(), error) {
	switch {
	case in.Dir != "":
		st, err := os.Stat(in.Dir)
		if err != nil {
			return "", nil, badInput(fmt.Errorf("open input dir %q: %w", in.Dir, err))
		}
		if !st.IsDir() {
			return "", nil, badInput(fmt.Errorf("input %q is not a directory", in.Dir))
		}
		return in.Dir, func() {}, nil
	case in.Archive != nil:
		if src == nil {
			return "", nil, fmt.Errorf("task input is an archive %q but this worker has no inputs store", in.Archive.Key)
		}
		tmp, err := os.MkdirTemp(workDir, "scan-*")
		if err != nil {
			return "", nil, fmt.Errorf("create scan dir: %w", err)
		}
		cleanup := func() { os.RemoveAll(tmp) }
		path := filepath.Join(tmp, "input.archive")
		if err := src.FetchTo(ctx, in.Archive.Key, path); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("fetch input %q: %w", in.Archive.Key, err)
		}
		dest := filepath.Join(tmp, "src")
		if err := os.Mkdir(dest, 0o700); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("create extraction dir: %w", err)
		}
		if _, err := archive.Extract(ctx, path, dest, limits); err != nil {
			cleanup()
			return "", nil, badInput(err)
		}
		os.Remove(path)
		return dest, cleanup, nil
	default:
		return "", nil, badInput(fmt.Errorf("task has no input"))
	}
}

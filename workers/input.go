package workers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/tasks"
)

// ArchiveSource opens an input archive.
type ArchiveSource interface {
	// FetchTo writes the bytes of the archive stored under key to path. For
	// a key storage.InputsPrefix + sha256 (the keys PutInput gives), it
	// checks the bytes against that digest as it writes them.
	FetchTo(ctx context.Context, key, path string) error
}

// SBOMFile is the name a rematch task's SBOM has in its directory.
const SBOMFile = "sbom.cdx.json"

// prepare returns the directory to scan for a task's input and a cleanup
// function. An archive is fetched and extracted, with the archive package's
// limits, into a private temporary directory.
func prepare(ctx context.Context, in tasks.Input, src ArchiveSource, ev storage.Evidence, workDir string, limits archive.Limits) (string, func(), error) {
	switch {
	case in.SBOM != nil:
		// A stored SBOM, for a rematch: read back, checked against its
		// digest, into a directory of its own as sbom.cdx.json.
		data, _, err := ev.Get(ctx, in.SBOM.Key)
		if err != nil {
			return "", nil, fmt.Errorf("read SBOM %q: %w", in.SBOM.Key, err)
		}
		if sum := sha256.Sum256(data); in.SBOM.SHA256 != "" && hex.EncodeToString(sum[:]) != in.SBOM.SHA256 {
			return "", nil, badInput(fmt.Errorf("SBOM %q does not match its digest %s", in.SBOM.Key, in.SBOM.SHA256))
		}
		tmp, err := os.MkdirTemp(workDir, "rematch-*")
		if err != nil {
			return "", nil, fmt.Errorf("create rematch dir: %w", err)
		}
		cleanup := func() { os.RemoveAll(tmp) }
		if err := os.WriteFile(filepath.Join(tmp, SBOMFile), data, 0o600); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("write SBOM %q: %w", in.SBOM.Key, err)
		}
		return tmp, cleanup, nil
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
		// The source checked the bytes against a key that names their
		// digest; only another key needs them hashed here.
		if in.Archive.Key != storage.InputsPrefix+in.Archive.SHA256 {
			if err := checkDigest(path, in.Archive.SHA256); err != nil {
				cleanup()
				return "", nil, err
			}
		}
		if _, err := archive.Extract(ctx, path, dest, limits); err != nil {
			cleanup()
			if errors.Is(err, archive.ErrRejected) {
				return "", nil, badInput(err)
			}
			return "", nil, err
		}
		os.Remove(path)
		return dest, cleanup, nil
	default:
		return "", nil, badInput(fmt.Errorf("task has no input"))
	}
}

// checkDigest makes sure the fetched archive is the one that was submitted.
func checkDigest(path, want string) error {
	if want == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open fetched input: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hash fetched input: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("fetched input has sha256 %s, want %s", got, want)
	}
	return nil
}

package workers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage/archive"
)

// Nested archives. Scanners open some archives they find in the tree by
// themselves: trivy a packaged Helm chart (.tgz) with an unbounded gzip
// reader, syft a .jar, .war or .whl. Before they run, every such archive is
// expanded once, privately, through the archive package's limits, together
// with the archives inside it; one that breaks a limit, or nests deeper than
// maxNestedDepth, is removed from the scan view and listed in the report.
// The limits' totals (bytes, entries) are shared by all nested archives of
// one tree, so many small archives cannot add up to a bomb either.

// maxNestedDepth is how many archives deep a nested archive may hold
// archives (a .jar in a .war in a .zip is 3).
const maxNestedDepth = 3

// nestedSuffixes are the names of the archives scanners open by themselves.
var nestedSuffixes = []string{".tgz", ".tar.gz", ".tar", ".zip", ".jar", ".war", ".ear", ".par", ".sar", ".nar",
	".jpi", ".hpi", ".lpkg", ".whl", ".egg", ".nupkg"}

func isNestedArchive(name string) bool {
	name = strings.ToLower(name)
	return slices.ContainsFunc(nestedSuffixes, func(s string) bool { return strings.HasSuffix(name, s) })
}

// budget is what is left of the limits' totals for the nested archives.
type budget struct {
	limits archive.Limits
	bytes  int64
	files  int
}

// skipNestedArchives checks every nested archive under dir (an extracted
// input), removes those that break the limits and returns them. Only an
// operational failure (I/O, a cancelled ctx) is an error.
func skipNestedArchives(ctx context.Context, dir string, limits archive.Limits) ([]report.Skipped, error) {
	l := withArchiveDefaults(limits)
	b := &budget{limits: l, bytes: l.MaxTotalBytes, files: l.MaxFiles}
	var skipped []report.Skipped
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || !isNestedArchive(d.Name()) {
			return nil
		}
		reason, err := checkNested(ctx, path, filepath.Dir(dir), b, 1)
		if err != nil || reason == "" {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove nested archive %q: %w", rel, err)
		}
		skipped = append(skipped, report.Skipped{File: filepath.ToSlash(rel), Reason: reason})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check nested archives in %q: %w", dir, err)
	}
	return skipped, nil
}

// checkNested expands the archive at path into a scratch directory under
// scratch, within what is left of b, and checks the archives inside it in
// turn. It returns why the archive must be skipped, or "" if it may stay.
func checkNested(ctx context.Context, path, scratch string, b *budget, depth int) (string, error) {
	if depth > maxNestedDepth {
		return fmt.Sprintf("archives nested more than %d deep", maxNestedDepth), nil
	}
	if b.bytes <= 0 || b.files <= 0 {
		return "nested archives exceed the archive limits in all", nil
	}
	tmp, err := os.MkdirTemp(scratch, "nested-*")
	if err != nil {
		return "", fmt.Errorf("create scratch dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	l := b.limits
	l.MaxTotalBytes, l.MaxFiles = b.bytes, b.files
	st, err := archive.Extract(ctx, path, tmp, l)
	b.bytes -= st.Bytes
	b.files -= max(st.Files, 1)
	if errors.Is(err, archive.ErrRejected) {
		var re *archive.RejectError
		if errors.As(err, &re) {
			return string(re.Reason), nil
		}
		return "rejected by the archive limits", nil
	}
	if err != nil {
		return "", err
	}
	var reason string
	err = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || reason != "" {
			return err
		}
		if !d.Type().IsRegular() || !isNestedArchive(d.Name()) {
			return nil
		}
		inner, err := checkNested(ctx, p, tmp, b, depth+1)
		if inner != "" {
			rel, _ := filepath.Rel(tmp, p)
			reason = filepath.ToSlash(rel) + ": " + inner
		}
		return err
	})
	return reason, err
}

// withArchiveDefaults fills the zero limits the way archive.Extract does,
// so the shared totals start from the real limits.
func withArchiveDefaults(l archive.Limits) archive.Limits {
	if l.MaxTotalBytes == 0 {
		l.MaxTotalBytes = archive.DefaultMaxTotalBytes
	}
	if l.MaxFiles == 0 {
		l.MaxFiles = archive.DefaultMaxFiles
	}
	return l
}

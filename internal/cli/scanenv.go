package cli

import (
	"fmt"
	"os"
	"path/filepath"
)

// isolateScannerEnv points GOPATH at an empty private directory before the
// scanners load. trivy's go.mod analyzer reads the host's $GOPATH/pkg/mod for
// dependency graphs and licences: that makes findings depend on what the
// worker machine has cached, reads outside the scanned tree, and costs about
// half a second per Go app. tollgate takes licences from syft, and the
// vulnerabilities found do not change (scripts/compare-clis.sh checks).
func isolateScannerEnv() error {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("tollgate-empty-gopath-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create empty GOPATH %q: %w", dir, err)
	}
	return os.Setenv("GOPATH", dir)
}

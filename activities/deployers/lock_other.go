//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package deployers

import (
	"context"
	"errors"
	"fmt"
)

// lockFile is not implemented here: without a cross-process lock two writers
// could lose each other's flag updates, so the flagd adapter refuses to run.
func lockFile(_ context.Context, path string) (func(), error) {
	return nil, fmt.Errorf("lock %s: %w: %w", path, errors.ErrUnsupported, ErrPermanent)
}

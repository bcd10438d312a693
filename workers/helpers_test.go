package workers_test

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/tollgate/tollgate/tasks"
)

func isBadInput(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == tasks.ErrTypeBadInput
}

package tasks

import (
	"errors"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
)

// ActivityGone tells whether Temporal no longer waits for a task's token:
// its activity completed, or the attempt timed out or was cancelled (the
// task was dispatched again). Workers drop such a task; the orchestrator
// stops heartbeating it.
func ActivityGone(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf) || temporal.IsCanceledError(err)
}

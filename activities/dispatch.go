package activities

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/telemetry"
)

// publishTimeout bounds one publish of a task.
const publishTimeout = 10 * time.Second

// Dispatch publishes a scanner task, with this activity's task token, to its
// pool's subject and returns without a result: the worker that runs the task
// completes the activity. Each attempt publishes anew with its own token, so a
// task lost with a dead worker, or with a dead orchestrator before it was
// published, comes back when the attempt's heartbeat times out (QueuedTasks
// heartbeats it while it waits in the queue, the worker while it runs).
func (a *Activities) Dispatch(ctx context.Context, t tasks.Task) (tasks.Result, error) {
	if err := tasks.ValidPool(t.Pool); err != nil {
		return tasks.Result{}, temporal.NewNonRetryableApplicationError(err.Error(), "BadTask", err)
	}
	info := activity.GetInfo(ctx)
	t.TaskToken = info.TaskToken
	t.Attempt = info.Attempt
	data, err := json.Marshal(t)
	if err != nil {
		return tasks.Result{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("encode task %s of scan %s: %v", t.Kind, t.ScanID, err), "BadTask", err)
	}
	if err := tasks.ValidPriority(t.Priority); err != nil {
		return tasks.Result{}, temporal.NewNonRetryableApplicationError(err.Error(), "BadTask", err)
	}
	subject := a.Stream.Subject(t)
	// One workflow run may dispatch many tasks of a kind (a rematch run, one
	// per release): the scan id tells them apart.
	msgID := fmt.Sprintf("%s/%s/%s/%s/%d", info.WorkflowExecution.ID, info.WorkflowExecution.RunID, t.Kind, t.ScanID, t.Attempt)
	// The task carries the activity's trace context to the worker.
	msg := &nats.Msg{Subject: subject, Data: data}
	telemetry.InjectNATS(ctx, msg)
	// The publish gets its own deadline: the activity's is the task's (30
	// minutes), and a publish sent while NATS restarts can lose its ack, so
	// waiting for it would hold the scan that long. A retried attempt
	// publishes anew, and a worker drops the earlier attempt's task as stale.
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if _, err := a.Publisher.PublishMsg(pctx, msg, jetstream.WithMsgID(msgID)); err != nil {
		if tasks.IsTenantBacklog(err) {
			// Not a failure: the workflow waits for room and dispatches again,
			// without spending this activity's attempts.
			return tasks.Result{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("tenant %q has its limit of pending %s tasks in pool %s", t.Tenant, cmp.Or(t.Priority, tasks.PriorityCI), t.Pool),
				tasks.ErrTypeTenantBacklog, err)
		}
		return tasks.Result{}, fmt.Errorf("publish task %s of scan %s to %q: %w", t.Kind, t.ScanID, subject, err)
	}
	a.logger().DebugContext(ctx, "task dispatched", "scan_id", t.ScanID, "subject", subject, "attempt", t.Attempt)
	if a.Queued != nil {
		a.Queued.Add(info.TaskToken)
	}
	return tasks.Result{}, activity.ErrResultPending
}

// Package activities holds the Temporal activities of the orchestrator:
// dispatching scanner tasks to NATS, evaluating policy, and writing the report
// and its evidence. Errors turn into non-retryable Temporal errors here, at
// the activity boundary, and nowhere else.
package activities

import (
	"context"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/vex"
	"github.com/tollgate/tollgate/workflows"
)

// Publisher publishes task messages; jetstream.JetStream is one.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// PolicyEngine decides a stage; *policies.Engine is one.
type PolicyEngine interface {
	Evaluate(ctx context.Context, stage string, input policies.Input) (report.Decision, error)
}

var _ PolicyEngine = (*policies.Engine)(nil)

// Signer signs a scan's in-toto statement and its VSA and returns the DSSE
// envelope (JSON) to store; *attest.Signer is one.
type Signer interface {
	Sign(ctx context.Context, st attest.Statement) ([]byte, error)
	SignVSA(ctx context.Context, v attest.VSA) ([]byte, error)
}

var _ Signer = (*attest.Signer)(nil)

// VEXDocuments reads the VEX documents that apply to a scan; *vex.Store
// is one.
type VEXDocuments interface {
	ForScan(ctx context.Context, tenant, scan string) ([]vex.Record, error)
}

var _ VEXDocuments = (*vex.Store)(nil)

// Activities holds the clients the activities use.
type Activities struct {
	Publisher Publisher
	Stream    tasks.StreamConfig
	Policies  PolicyEngine
	Evidence  storage.Evidence
	// Signer signs each scan's attestation. When nil, Finalize stores no
	// attestation and the evidence is unsigned.
	Signer Signer
	Logger *slog.Logger
	// Version is tollgate's version, written into SARIF.
	Version string
	// PolicyDigest is the sha256 (hex) of the policy bundle Policies runs
	// (policies.Bundle.Digest), named in each scan's VSA; none when empty.
	PolicyDigest string
	// Meter receives the scan metrics (none when nil).
	Meter metric.Meter
	// Exceptions holds the tenants' accepted risks (none when nil).
	Exceptions *exceptions.Store
	// VEX holds the tenants' and scans' VEX documents (none when nil).
	VEX VEXDocuments
	// Queued keeps each dispatched task's activity alive until a worker
	// completes it (none when nil: see QueuedTasks).
	Queued *QueuedTasks

	unsignedOnce sync.Once
	metOnce      sync.Once
	met          *scanInstruments
}

// Register registers the activities on a Temporal worker under the names the
// workflows use.
func (a *Activities) Register(w worker.Registry) {
	w.RegisterActivityWithOptions(a.Dispatch, activity.RegisterOptions{Name: workflows.ActivityDispatch})
	w.RegisterActivityWithOptions(a.EvaluatePolicy, activity.RegisterOptions{Name: workflows.ActivityPolicy})
	w.RegisterActivityWithOptions(a.Finalize, activity.RegisterOptions{Name: workflows.ActivityFinalize})
	w.RegisterActivityWithOptions(a.LoadExceptions, activity.RegisterOptions{Name: workflows.ActivityLoadExceptions})
}

func (a *Activities) logger() *slog.Logger { return orDiscard(a.Logger) }

// orDiscard is l, or a logger that drops everything.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

package workflows

import "github.com/tollgate/tollgate/health"

// The guard's domain lives in package health, which the policies, the
// releases store and the Prometheus puller import without importing the
// workflows. These names keep the guard and rollback workflows (and the
// payloads of their recorded histories) reading as they did.
type (
	HealthSample  = health.Sample
	HealthQueries = health.Queries
	Rules         = health.Rules
	Measurement   = health.Measurement
	Outcome       = health.Outcome
	Evaluation    = health.Evaluation
	ReleaseRef    = health.ReleaseRef
)

// Outcomes and signals of the health rules.
const (
	OutcomeHealthy      = health.OutcomeHealthy
	OutcomeBreach       = health.OutcomeBreach
	OutcomeInconclusive = health.OutcomeInconclusive
	SignalErrorRate     = health.SignalErrorRate
	SignalP95Latency    = health.SignalP95Latency
)

package console

import (
	"encoding/json"
	"time"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/health"
	"github.com/tollgate/tollgate/workflows"
)

// The API's JSON as the console reads it: only the fields it shows. A
// secret's fingerprint is never read, let alone shown.

// releaseRef is a release as the API lists it.
type releaseRef struct {
	ID         string `json:"id"`
	Artifact   string `json:"artifact"`
	ScanID     string `json:"scan_id"`
	Verdict    string `json:"verdict"`
	RecordedAt string `json:"recorded_at"`
}

type releasesList struct {
	App      string    `json:"app"`
	Releases []release `json:"releases"`
}

type release struct {
	releaseRef
	RecordedBy string          `json:"recorded_by"`
	KnownGood  json.RawMessage `json:"known_good"`
}

// IsKnownGood: the guard marked the release healthy.
func (r release) IsKnownGood() bool {
	return len(r.KnownGood) > 0 && string(r.KnownGood) != "null"
}

// The guard's samples, evaluations and decisions, as GET
// /v1/apps/{app}/guard answers them.
type (
	sample      = health.Sample
	measurement = health.Measurement
	evaluation  = health.Evaluation
	decision    = workflows.Decision
)

type guardStatus struct {
	Guard struct {
		Release struct {
			ID string `json:"id"`
		} `json:"release"`
		Rules struct {
			ErrorRate     float64 `json:"error_rate"`
			LatencyFactor float64 `json:"latency_factor"`
			DryRun        bool    `json:"dry_run"`
		} `json:"rules"`
		Frozen          bool         `json:"frozen"`
		FreezeReason    string       `json:"freeze_reason"`
		AwaitingRelease bool         `json:"awaiting_release"`
		Breaches        int          `json:"breaches"`
		KnownGood       bool         `json:"known_good"`
		RollbackFailed  string       `json:"rollback_failed"`
		Samples         []sample     `json:"samples"`
		Current         []evaluation `json:"current"`
		Decisions       []decision   `json:"decisions"`
	} `json:"guard"`
	Rollback        *rollbackResult `json:"rollback"`
	RollbackRunning bool            `json:"rollback_running"`
}

// State is the guard's state as GET /v1/apps names it.
func (g *guardStatus) State() string {
	switch {
	case g == nil:
		return api.StateUnguarded
	case g.RollbackRunning:
		return api.StateRollingBack
	case g.Guard.Frozen:
		return api.StateFrozen
	case g.Guard.Breaches > 0:
		return api.StateBreached
	}
	return api.StateWatching
}

type rollbackResult struct {
	RollbackID string `json:"rollback_id"`
	Phase      string `json:"phase"`
	Outcome    string `json:"outcome"`
	Target     *struct {
		Release   releaseRef `json:"release"`
		KnownGood bool       `json:"known_good"`
		Evidence  string     `json:"evidence"`
	} `json:"target"`
	Evidence evidence `json:"evidence"`
}

type evidence struct {
	Name   string `json:"name"`
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
}

type scansList struct {
	Scans         []scanSummary `json:"scans"`
	NextPageToken string        `json:"next_page_token"`
}

type scanSummary struct {
	ScanID    string `json:"scan_id"`
	App       string `json:"app"`
	Status    string `json:"status"`
	Verdict   string `json:"verdict"`
	Stage     string `json:"stage"`
	StartedAt string `json:"started_at"`
	// Touched and Findings are shown when the list carries them (the
	// review queue's rows).
	Touched  []string       `json:"touched"`
	Findings map[string]int `json:"findings"`
}

type reason struct {
	Policy  string `json:"policy"`
	Message string `json:"message"`
	Verdict string `json:"verdict"`
}

type scanStatus struct {
	ScanID  string      `json:"scan_id"`
	App     string      `json:"app"`
	Status  string      `json:"status"`
	Stage   string      `json:"stage"`
	Verdict string      `json:"verdict"`
	Reasons []reason    `json:"reasons"`
	Error   string      `json:"error"`
	Waiting string      `json:"waiting"`
	Review  *reviewInfo `json:"review"`
}

type reviewInfo struct {
	Reasons         []reason `json:"reasons"`
	Submitter       string   `json:"submitter"`
	SubmitterPerson string   `json:"submitter_person"`
	Author          string   `json:"author"`
	Requested       string   `json:"requested_at"`
	Deadline        string   `json:"deadline"`
	Outcome         string   `json:"outcome"`
	Reviewer        string   `json:"reviewer"`
	Reason          string   `json:"reason"`
}

type scanReport struct {
	Reasons  []reason            `json:"reasons"`
	Touches  map[string][]string `json:"touches"`
	Manifest *struct {
		Present bool   `json:"present"`
		File    string `json:"file"`
		Valid   bool   `json:"valid"`
		Errors  []struct {
			Path    string `json:"path"`
			Message string `json:"message"`
		} `json:"errors"`
	} `json:"manifest"`
	Secrets []struct {
		Rule string `json:"rule"`
		File string `json:"file"`
		Line int    `json:"line"`
	} `json:"secrets"`
	Vulnerabilities []struct {
		ID            string   `json:"id"`
		Package       string   `json:"package"`
		Version       string   `json:"version"`
		Severity      string   `json:"severity"`
		Title         string   `json:"title"`
		FixedVersions []string `json:"fixed_versions"`
	} `json:"vulnerabilities"`
	Misconfigurations []struct {
		ID        string `json:"id"`
		Title     string `json:"title"`
		Severity  string `json:"severity"`
		File      string `json:"file"`
		StartLine int    `json:"start_line"`
		Message   string `json:"message"`
	} `json:"misconfigurations"`
	Weaknesses []struct {
		Rule     string   `json:"rule"`
		CWE      []string `json:"cwe"`
		Severity string   `json:"severity"`
		File     string   `json:"file"`
		Line     int      `json:"line"`
		Message  string   `json:"message"`
	} `json:"weaknesses"`
}

// verifyResult is GET /v1/scans/{id}/verify's answer, or why the API could
// not check (Unavailable, its refusal's detail).
type verifyResult struct {
	attest.Verification
	Unavailable string `json:"-"`
}

type exceptionsList struct {
	Exceptions []exception `json:"exceptions"`
}

type exception struct {
	ID      string            `json:"id"`
	Scope   string            `json:"scope"`
	App     string            `json:"app"`
	Finding map[string]string `json:"finding"`
	Reason  string            `json:"reason"`
	// Approver is who added it.
	Approver  string    `json:"approver"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Revoked   *struct {
		By     string    `json:"by"`
		Reason string    `json:"reason"`
		At     time.Time `json:"at"`
	} `json:"revoked"`
}

type poolsStatus struct {
	At    string `json:"at"`
	Pools []struct {
		Pool        string `json:"pool"`
		Pending     int64  `json:"pending"`
		AckPending  int64  `json:"ack_pending"`
		Redelivered int64  `json:"redelivered"`
		Waiting     int64  `json:"waiting"`
		Delivered   int64  `json:"delivered"`
		Oldest      string `json:"oldest"`
		Tenants     []struct {
			Tenant   string `json:"tenant"`
			Priority string `json:"priority"`
			Tasks    int64  `json:"tasks"`
		} `json:"tenants"`
		TenantCap       int64 `json:"tenant_cap"`
		TenantsWithWork int64 `json:"tenants_with_work"`
	} `json:"pools"`
}

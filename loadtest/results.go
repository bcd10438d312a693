// Package loadtest measures tollgate under load: a fleet of separate
// processes (API, orchestrator, Temporal, NATS, MinIO, workers) gating a
// generated corpus of micro apps through the real API, against two baselines
// on the same corpus and machine: the CLI pipeline (gitleaks, syft and trivy
// as one process each per app) and the scanners alone, in-process and warm.
package loadtest

import "time"

// Latencies summarises one HDR histogram, in seconds.
type Latencies struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// Sample is one second of the run: what finished, and the queues.
type Sample struct {
	At time.Time `json:"at"`
	// Elapsed since the measured part of the run began, in seconds.
	Elapsed   float64 `json:"elapsed"`
	Completed int     `json:"completed"` // scans finished in this second
	// P50 and P99 are the full-verdict latencies of the scans finished in
	// this second (0 when none), in seconds.
	P50   float64              `json:"p50"`
	P99   float64              `json:"p99"`
	Pools map[string]PoolStats `json:"pools"`
}

// PoolStats is one pool's JetStream consumer at one time.
type PoolStats struct {
	Pending     uint64  `json:"pending"`      // not yet delivered
	AckPending  int     `json:"ack_pending"`  // delivered, not acked: in progress
	Redelivered int     `json:"redelivered"`  // delivered more than once, not acked
	OldestAgeS  float64 `json:"oldest_age_s"` // age of the oldest unacked task
}

// Run is one measured run of tollgate.
type Run struct {
	Name           string  `json:"name"` // e.g. "closed-300", "open-4.0/s"
	Clients        int     `json:"clients,omitempty"`
	RatePerSecond  float64 `json:"rate_per_second,omitempty"`
	WorkersPerPool int     `json:"workers_per_pool"`
	Chaos          bool    `json:"chaos,omitempty"`
	// DeepForced: the API ran every scan's deep stage, also after a
	// fast-stage block (TOLLGATE_SCAN_FULL), as the baselines do.
	DeepForced bool `json:"deep_forced,omitempty"`
	Submitted  int  `json:"submitted"`
	Completed  int  `json:"completed"`
	Errors     int  `json:"errors"`
	// Lost are scans submitted and accepted that never finished.
	Lost int `json:"lost"`
	// Wrong are verdicts that differ from the corpus's expectation.
	Wrong      int       `json:"wrong"`
	WrongApps  []string  `json:"wrong_apps,omitempty"`
	DurationS  float64   `json:"duration_s"`
	Throughput float64   `json:"throughput"` // completed scans per second
	Fast       Latencies `json:"fast"`       // submit → fast-stage verdict
	Full       Latencies `json:"full"`       // submit → final verdict
	// FastDerived counts the completed scans whose fast latency is derived
	// from the workflow's timings (started_at + timings.fast): they went on
	// to the deep stage, and a client sees only the final status.
	FastDerived int `json:"fast_derived,omitempty"`
	// CPUSeconds per component over the measured part, and per scan; also
	// the load generator's own (Driver), which is not in "total".
	CPUSeconds map[string]float64 `json:"cpu_seconds"`
	CPUPerScan map[string]float64 `json:"cpu_per_scan"`
	// HistoryEvents is the mean of the Temporal history events of
	// HistorySample of the run's scans, spread over the run.
	HistoryEvents float64 `json:"history_events_per_scan,omitempty"`
	HistorySample int     `json:"history_sample,omitempty"`
	// S3Requests is the S3 requests MinIO served over the measured part,
	// per completed scan.
	S3Requests  float64  `json:"s3_requests_per_scan,omitempty"`
	Timeline    []Sample `json:"timeline,omitempty"`
	ChaosEvents []string `json:"chaos_events,omitempty"`
	// Drills are the failures injected into the production-shaped stack
	// during the run, and Evidence the check of every scan's evidence
	// after it.
	Drills   []Drill        `json:"drills,omitempty"`
	Evidence *EvidenceCheck `json:"evidence,omitempty"`
	// Stack names the servers the fleet ran on: "dev" (the development
	// servers) or "production" (stack.StartProduction).
	Stack string `json:"stack,omitempty"`
	// ScanIDs are the measured scans that finished, for the evidence
	// check.
	ScanIDs       []string `json:"-"`
	ErrorExamples []string `json:"error_examples,omitempty"`
}

// Baseline is one baseline's run over the same corpus.
type Baseline struct {
	Name        string    `json:"name"` // "cli-pipeline" | "scanners-alone"
	Concurrency int       `json:"concurrency"`
	Scans       int       `json:"scans"`
	Errors      int       `json:"errors"`
	DurationS   float64   `json:"duration_s"`
	Throughput  float64   `json:"throughput"`
	Latency     Latencies `json:"latency"` // per app, all scanners
	// Wrong counts apps whose findings give another verdict than expected
	// (secrets found, critical/high vulnerabilities found).
	Wrong int `json:"wrong"`
	// CPUSeconds is the CPU time the baseline used (its processes, or this
	// process for scanners-alone).
	CPUSeconds float64 `json:"cpu_seconds"`
	Command    string  `json:"command,omitempty"` // for the CLI pipeline: one app's commands
}

// Report is the whole load test.
type Report struct {
	// Title heads the Markdown (default "tollgate load test").
	Title     string     `json:"title,omitempty"`
	Command   string     `json:"command"`
	Host      Host       `json:"host"`
	Corpus    CorpusInfo `json:"corpus"`
	Runs      []Run      `json:"runs"`
	Baselines []Baseline `json:"baselines"`
	Notes     []string   `json:"notes,omitempty"`
	StartedAt time.Time  `json:"started_at"`
	TookS     float64    `json:"took_s"`
}

// Host describes the machine.
type Host struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemoryMiB int    `json:"memory_mib"`
	GoVersion string `json:"go_version"`
	Version   string `json:"tollgate_version"`
}

// CorpusInfo summarises the corpus the runs used.
type CorpusInfo struct {
	Seed     int64          `json:"seed"`
	Apps     int            `json:"apps"`
	Packages Latencies      `json:"packages"` // the distribution of dependency counts (not seconds)
	Kinds    map[string]int `json:"kinds"`    // by ecosystem and by expected verdict
}

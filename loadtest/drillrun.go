package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/stack"
)

// DrillOptions configure `loadtest -drills`: the same closed loop on the
// development servers and on the production-shaped stack, then the
// failure drills on the latter.
type DrillOptions struct {
	Command   string
	Bin, Self string
	// Corpus, OSV, Work and Out as in Options.
	Corpus, OSV, Work, Out string
	// Clients closed-loop clients run Scans measured scans after Warmup on
	// each stack (CompareScans 0 skips the comparison), then at least
	// DrillScans during the drills: the clients go on until the last drill
	// has healed and the fleet recovered.
	Clients, Warmup, CompareScans, DrillScans int
	Plan                                      DrillPlan
	// Partition isolates a NATS node in a network namespace of its own and
	// adds the partition drill (needs root and iproute2; without them the
	// drill is left out and the report says why).
	Partition bool
	// Concurrency is each worker's tasks at once (0: the worker's default).
	Concurrency int
	Version     string
	Logger      *slog.Logger
}

// RunDrillsReport runs the comparison and the drills and writes the
// report to o.Out.
func RunDrillsReport(ctx context.Context, o DrillOptions) (Report, error) {
	logger := cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	rep := Report{Title: "tollgate on the production-shaped stack: failure drills", Command: o.Command, StartedAt: time.Now().UTC(), Host: host(o.Version)}
	_, jobs, db, err := prepare(ctx, logger, o.Corpus, o.OSV, o.Work, &rep)
	if err != nil {
		return rep, err
	}
	key := filepath.Join(o.Work, "signing.key")
	if _, err := attest.GenerateKey(key); err != nil {
		return rep, err
	}
	seq := new(int64)
	fo := FleetOptions{Bin: o.Bin, Self: o.Self, DBDir: db, WorkersPerPool: 1, Concurrency: o.Concurrency, SigningKey: key, Logger: logger}
	if o.CompareScans > 0 {
		fo.Dir = filepath.Join(o.Work, "dev")
		logger.Info("closed loop on the development servers", "scans", o.CompareScans)
		run, err := closedLoop(ctx, fo, jobs, seq, fmt.Sprintf("closed-%d-dev", o.Clients), o.Clients, o.CompareScans, o.Warmup)
		if err != nil {
			return rep, err
		}
		run.Stack = "dev"
		rep.Runs = append(rep.Runs, run)
	}

	fo.Dir, fo.Production = filepath.Join(o.Work, "production"), true
	if o.Partition {
		fo.NATSIsolated = []string{"n3"}
	}
	fleet, err := StartFleet(ctx, fo)
	if errors.Is(err, stack.ErrNoNetns) {
		rep.Notes = append(rep.Notes, "The NATS partition drill was left out: "+err.Error())
		fo.NATSIsolated = nil
		fleet, err = StartFleet(ctx, fo)
	}
	if err != nil {
		return rep, err
	}
	defer fleet.Stop()
	pools, err := newPoolSampler(fleet.NATSURL())
	if err != nil {
		return rep, err
	}
	defer pools.Close()
	var ids []string
	if o.CompareScans > 0 {
		logger.Info("closed loop on the production-shaped stack", "scans", o.CompareScans)
		run, err := driveFleet(ctx, fleet, pools, DriverOptions{Name: fmt.Sprintf("closed-%d-production", o.Clients), Clients: o.Clients, Scans: o.CompareScans, Warmup: o.Warmup, Seq: seq, Jobs: jobs})
		if err != nil {
			return rep, err
		}
		run.Stack = "production"
		ids = append(ids, run.ScanIDs...)
		rep.Runs = append(rep.Runs, run)
		rep.Notes = append(rep.Notes, StackNote(rep)...)
	}
	steps, err := fleet.DrillSteps(o.Plan)
	if err != nil {
		return rep, err
	}
	drills := func(ctx context.Context, since time.Time, completed func() int) []Drill {
		return RunDrills(ctx, logger, o.Plan, steps, since, completed, func() { fleet.CPU() })
	}
	run, err := driveFleet(ctx, fleet, pools, DriverOptions{Name: "drills", Clients: o.Clients, Scans: o.DrillScans, Warmup: min(o.Warmup, 10), Seq: seq, Jobs: jobs, Drills: drills})
	if err != nil {
		return rep, err
	}
	run.Stack = "production"
	ids = append(ids, run.ScanIDs...)
	logger.Info("checking evidence", "scans", len(ids))
	if run.Evidence, err = fleet.CheckEvidence(ctx, key+attest.PublicKeySuffix, ids); err != nil {
		return rep, err
	}
	rep.Runs = append(rep.Runs, run)
	rep.Notes = append(rep.Notes, fmt.Sprintf("The evidence check covers every scan the production stack finished in this report (%d: the comparison run and the drills), checked after the drills.", len(ids)))
	rep.TookS = time.Since(rep.StartedAt).Seconds()
	return rep, writeReport(o.Out, rep)
}

// closedLoop starts a fleet, runs one closed-loop run on it and stops it.
func closedLoop(ctx context.Context, fo FleetOptions, jobs []Job, seq *int64, name string, clients, scans, warmup int) (Run, error) {
	fleet, err := StartFleet(ctx, fo)
	if err != nil {
		return Run{}, err
	}
	defer fleet.Stop()
	pools, err := newPoolSampler(fleet.NATSURL())
	if err != nil {
		return Run{}, err
	}
	defer pools.Close()
	return driveFleet(ctx, fleet, pools, DriverOptions{Name: name, Clients: clients, Scans: scans, Warmup: warmup, Seq: seq, Jobs: jobs})
}

// driveFleet runs d against the fleet (on its API unless d names another)
// with its samplers.
func driveFleet(ctx context.Context, fleet *Fleet, pools *poolSampler, d DriverOptions) (Run, error) {
	d.URL, d.Token, d.Pools, d.CPU = cmp.Or(d.URL, fleet.URL), fleet.Token, pools.sample, fleet.CPU
	d.S3Requests, d.HistoryEvents = fleet.S3Requests, fleet.HistoryEvents
	r, err := Drive(ctx, d)
	r.WorkersPerPool = 1
	return r, err
}

// StackNote compares the dev and production runs of a report: what the
// real Temporal server on PostgreSQL (and the NATS cluster, MinIO on four
// drives) costs per scan against the development servers.
func StackNote(rep Report) []string {
	var dev, prod *Run
	for i := range rep.Runs {
		switch rep.Runs[i].Stack {
		case "dev":
			dev = &rep.Runs[i]
		case "production":
			prod = &rep.Runs[i]
		}
	}
	if dev == nil || prod == nil || dev.CPUPerScan == nil || prod.CPUPerScan == nil || dev.Throughput == 0 || dev.CPUPerScan["temporal"] == 0 {
		return nil
	}
	d, p := dev.CPUPerScan, prod.CPUPerScan
	return []string{fmt.Sprintf("The same closed loop on both stacks: %s scans/s on the development servers, %s on the production-shaped stack (%+.0f%%); full p50 %s s against %s s. "+
		"Per scan, the real Temporal server and its PostgreSQL take %s CPU-seconds (server %s, PostgreSQL %s) against the dev server's %s (%+.0f%%); "+
		"the 3-node NATS cluster at replicas 3 takes %s against one server's %s; MinIO on four drives %s against one drive's %s; everything %s against %s.",
		sig(dev.Throughput), sig(prod.Throughput), 100*(prod.Throughput/dev.Throughput-1), sig(dev.Full.P50), sig(prod.Full.P50),
		sig(p["temporal"]+p["postgres"]), sig(p["temporal"]), sig(p["postgres"]), sig(d["temporal"]), 100*((p["temporal"]+p["postgres"])/d["temporal"]-1),
		sig(p["nats"]), sig(d["nats"]), sig(p["minio"]), sig(d["minio"]), sig(p["total"]), sig(d["total"]))}
}

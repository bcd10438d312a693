package loadtest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/vulndb"
)

// Options of a whole load test.
type Options struct {
	// Command is how the run was started, for the report.
	Command string
	// Bin is the tollgate binary; Self this program (see FleetOptions).
	Bin, Self string
	// Corpus is a generated corpus folder (with manifest.json).
	Corpus string
	// OSV holds the advisories the DB is built from (the corpus's
	// expectations assume testdata/osv).
	OSV string
	// Baselines runs the baselines over the corpus with the DB, once the
	// fleet is stopped (package loadtest/baseline; injected, because it
	// links the scanners).
	Baselines func(ctx context.Context, apps []CorpusApp, db string) ([]Baseline, []string, error)
	// Work is scratch space; Out receives report.json, report.md and the
	// charts (empty: not written).
	Work, Out string
	// The main run: Scans after Warmup with Clients closed-loop clients.
	Scans, Clients, Warmup int
	// Concurrency is each worker's tasks at once (0: the worker's default,
	// the CPUs; both pools' workers share this machine's cores).
	Concurrency int
	// FullScans is a second closed-loop run (Clients clients, Warmup/10
	// warm-up) whose scans all run the deep stage, as the baselines do; 0
	// skips it.
	FullScans int
	// Rates is the open-loop sweep (arrivals per second), ScansPerRate each.
	Rates        []float64
	ScansPerRate int
	// Scaling lists workers per pool for the scaling table, ScansPerScale
	// each (closed-loop, Clients clients).
	Scaling       []int
	ScansPerScale int
	// Chaos adds a run that kills a worker, restarts NATS and pauses MinIO.
	Chaos      bool
	ChaosScans int
	Version    string
	Logger     *slog.Logger
}

// RunAll runs the load test and its baselines and writes the report.
func RunAll(ctx context.Context, o Options) (Report, error) {
	logger := cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	rep := Report{Command: o.Command, StartedAt: time.Now().UTC(), Host: host(o.Version)}
	apps, jobs, db, err := prepare(ctx, logger, o.Corpus, o.OSV, o.Work, &rep)
	if err != nil {
		return rep, err
	}

	if err := runFleet(ctx, o, jobs, db, &rep, logger); err != nil {
		return rep, err
	}

	// The baselines, with the fleet stopped: the same machine to itself.
	if o.Baselines != nil {
		bs, notes, err := o.Baselines(ctx, apps, db)
		if err != nil {
			return rep, err
		}
		rep.Baselines, rep.Notes = append(rep.Baselines, bs...), append(rep.Notes, notes...)
	}
	rep.Notes = append(rep.Notes, Bottleneck(rep)...)
	rep.Notes = append(rep.Notes, FastLatencyNote(rep)...)
	rep.Notes = append(rep.Notes, WorkNote(rep)...)
	rep.TookS = time.Since(rep.StartedAt).Seconds()
	return rep, writeReport(o.Out, rep)
}

// prepare reads the corpus's manifest into the report, packs every app
// and builds the vulnerability DB in work/db.
func prepare(ctx context.Context, logger *slog.Logger, corpus, osv, work string, rep *Report) ([]CorpusApp, []Job, string, error) {
	seed, apps, err := LoadManifest(corpus)
	if err != nil {
		return nil, nil, "", err
	}
	rep.Corpus = corpusInfo(seed, apps)
	jobs := make([]Job, 0, len(apps))
	for _, a := range apps {
		var buf bytes.Buffer
		if err := archive.Pack(ctx, filepath.Join(corpus, a.Dir), &buf); err != nil {
			return nil, nil, "", fmt.Errorf("pack %s: %w", a.Name, err)
		}
		jobs = append(jobs, Job{App: a.Name, Archive: buf.Bytes(), Expected: a.Expected})
	}
	db := filepath.Join(work, "db")
	if _, err := vulndb.ImportOSV(ctx, logger, db, osv); err != nil {
		return nil, nil, "", err
	}
	return apps, jobs, db, nil
}

// runFleet starts the fleet and runs the main, open-loop, chaos and scaling
// runs on it.
func runFleet(ctx context.Context, o Options, jobs []Job, db string, rep *Report, logger *slog.Logger) error {
	fleetDir := filepath.Join(o.Work, "fleet")
	fleet, err := StartFleet(ctx, FleetOptions{Bin: o.Bin, Self: o.Self, Dir: fleetDir, DBDir: db, WorkersPerPool: 1, Concurrency: o.Concurrency, Logger: logger})
	if err != nil {
		return err
	}
	defer fleet.Stop()
	pools, err := newPoolSampler(fleet.NATSURL())
	if err != nil {
		return err
	}
	defer pools.Close()
	seq := new(int64)
	// drive runs d on the fleet: on its API unless d names another.
	drive := func(d DriverOptions, workers int) error {
		d.Jobs, d.Seq = jobs, seq
		logger.Info("load run", "name", d.Name, "scans", d.Scans)
		r, err := driveFleet(ctx, fleet, pools, d)
		if err != nil {
			return err
		}
		r.WorkersPerPool = workers
		rep.Runs = append(rep.Runs, r)
		logger.Info("load run done", "name", r.Name, "throughput", r.Throughput, "full_p99", r.Full.P99, "lost", r.Lost, "wrong", r.Wrong)
		return nil
	}
	if err := drive(DriverOptions{Name: fmt.Sprintf("closed-%d", o.Clients), Clients: o.Clients, Scans: o.Scans, Warmup: o.Warmup}, 1); err != nil {
		return err
	}
	if o.FullScans > 0 {
		url, err := fleet.StartFullAPI(ctx)
		if err != nil {
			return err
		}
		d := DriverOptions{Name: fmt.Sprintf("closed-%d-full", o.Clients), URL: url, Clients: o.Clients, Scans: o.FullScans, Warmup: o.Warmup / 10}
		if err := drive(d, 1); err != nil {
			return err
		}
		rep.Runs[len(rep.Runs)-1].DeepForced = true
	}
	for _, rate := range o.Rates {
		if err := drive(DriverOptions{Name: fmt.Sprintf("open-%g/s", rate), Rate: rate, Scans: o.ScansPerRate}, 1); err != nil {
			return err
		}
	}
	if o.Chaos {
		chaos := func(ctx context.Context) []string {
			var done []string
			for _, step := range []func() (string, error){
				func() (string, error) { return fleet.KillWorker("deep") },
				fleet.RestartNATS,
				func() (string, error) { return fleet.PauseMinIO(4 * time.Second) },
			} {
				ev, err := step()
				if err != nil {
					ev = "chaos step failed: " + err.Error()
				}
				done = append(done, time.Now().UTC().Format(time.TimeOnly)+" "+ev)
			}
			return done
		}
		if err := drive(DriverOptions{Name: "chaos", Clients: o.Clients, Scans: o.ChaosScans, Chaos: chaos}, 1); err != nil {
			return err
		}
	}
	current := 1
	for _, n := range o.Scaling {
		for ; current < n; current++ {
			for _, pool := range []string{"fast", "deep"} {
				if _, err := fleet.start("workers", "worker", "--pool", pool); err != nil {
					return err
				}
			}
		}
		if n < current {
			continue // workers are only added: list the scaling steps in increasing order
		}
		if err := drive(DriverOptions{Name: fmt.Sprintf("scale-%d", n), Clients: o.Clients, Scans: o.ScansPerScale, Warmup: min(20, o.ScansPerScale/5)}, n); err != nil {
			return err
		}
	}
	return nil
}

func writeReport(dir string, rep Report) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, rep); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	for _, r := range rep.Runs {
		var svg bytes.Buffer
		if err := WriteSVG(&svg, r); err != nil {
			return err
		}
		name := strings.NewReplacer("/", "-per-", ".", "_").Replace(r.Name) + ".svg"
		if err := os.WriteFile(filepath.Join(dir, name), svg.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// host describes this machine.
func host(version string) Host {
	h := Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Version: version}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(strings.SplitN(string(raw), "\n", 2)[0], "MemTotal: %d kB", &kb)
		h.MemoryMiB = kb / 1024
	}
	return h
}

// Rerender writes the Markdown and SVGs of a saved report.json again into
// dir (after a change to how reports are drawn).
func Rerender(reportJSON, dir string) error {
	raw, err := os.ReadFile(reportJSON)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("decode %s: %w", reportJSON, err)
	}
	if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.HasPrefix(n, "Bottleneck") }) {
		rep.Notes = append(rep.Notes, Bottleneck(rep)...)
	}
	if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.HasPrefix(n, fastLatencyPrefix) }) {
		rep.Notes = append(rep.Notes, FastLatencyNote(rep)...)
	}
	return writeReport(dir, rep)
}

// BaselineAppsNote says which apps the CLI pipeline scanned: all n of the
// corpus, as the scanners alone and tollgate's runs, or (-baseline-apps)
// only the first few, whose ratios then compare different app sets.
func BaselineAppsNote(scanned, n int) string {
	if scanned >= n {
		return fmt.Sprintf("The baselines cover the same %d apps as tollgate: the CLI pipeline and the scanners alone scan each app of the corpus once; tollgate's runs submit the corpus round robin, so a run of at least %d scans covers every app.", n, n)
	}
	return fmt.Sprintf("The CLI pipeline scanned only the first %d of the corpus's %d apps (-baseline-apps), the others all of them: dependency counts are heavy-tailed, so the ratios against it compare different app sets.", scanned, n)
}

const fastLatencyPrefix = "Fast-verdict latencies"

// FastLatencyNote says which fast-verdict latencies were not seen by the
// clients: a client sees only the final status, so for a scan that went on
// to the deep stage the driver derives the fast verdict's time from the
// workflow's timings.
func FastLatencyNote(rep Report) []string {
	var runs []string
	for _, run := range rep.Runs {
		if run.FastDerived > 0 {
			runs = append(runs, fmt.Sprintf("%d of %d in %s", run.FastDerived, run.Completed, run.Name))
		}
	}
	if len(runs) == 0 {
		return nil
	}
	return []string{fastLatencyPrefix + " (fast p50 / p99) are derived from workflow timings, not observed by clients, for the scans that went on to the deep stage (" +
		strings.Join(runs, ", ") + "): a client sees only the final status, so their fast verdict's time is the workflow's start plus its fast stage's duration, on the server's clock. Scans that ended at the fast stage are timed as their client saw them."}
}

// Bottleneck explains the main run's throughput from the CPU table: how
// busy the machine was, and which components took the CPU.
func Bottleneck(rep Report) []string {
	if len(rep.Runs) == 0 || rep.Runs[0].CPUPerScan == nil || rep.Host.CPUs == 0 {
		return nil
	}
	run := rep.Runs[0]
	total := run.CPUPerScan["total"]
	busy := total * run.Throughput / float64(rep.Host.CPUs)
	var parts []string
	for _, c := range rep.components() {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", c, 100*run.CPUPerScan[c]/total))
	}
	notes := []string{fmt.Sprintf("Bottleneck of %s: the CPU. %s CPU-seconds per scan at %s scans/s keep %.0f%% of the %d cores busy; per scan the CPU goes to %s.",
		run.Name, sig(total), sig(run.Throughput), 100*busy, rep.Host.CPUs, strings.Join(parts, ", "))}
	if driver, ok := run.CPUPerScan[Driver]; ok {
		notes = append(notes, fmt.Sprintf("The load generator (the loadtest process: its clients and queue sampling) ran on the same cores and used %s CPU-seconds per scan in %s, not counted in the total above; with it, the cores were %.0f%% busy.",
			sig(driver), run.Name, 100*(total+driver)*run.Throughput/float64(rep.Host.CPUs)))
	}
	if b, ok := rep.ceiling(); ok && b.Scans > b.Errors {
		own := b.CPUSeconds / float64(b.Scans-b.Errors)
		notes = append(notes, fmt.Sprintf("The scanners' own work is %s CPU-seconds per app (scanners alone); everything else tollgate does per scan (%s s: Temporal, evidence in MinIO, the orchestrator, the API, NATS, the workers around the scanners) is what separates the fleet from the ceiling on one machine. With all of it on the same %d cores, the most this machine can gate is about %s scans/s.",
			sig(own), sig(total-own), rep.Host.CPUs, sig(float64(rep.Host.CPUs)/total)))
		if sc := run.CPUPerScan["scanners"]; sc > 0 {
			notes = append(notes, fmt.Sprintf("In %s the scanners themselves (the workers' sandboxed children) took %s CPU-seconds per scan, %.0f%% of their cost alone per app, though %d of %d scans skipped the deep stage.",
				run.Name, sig(sc), 100*sc/own, run.Completed-run.FastDerived, run.Completed))
		}
	}
	return notes
}

// WorkNote says what each side of the comparison does per app, and how
// often tollgate skipped its deep stage where the baselines never do: the
// forced-deep run, if there is one, is the like-for-like ratio.
func WorkNote(rep Report) []string {
	if len(rep.Runs) == 0 || len(rep.Baselines) == 0 {
		return nil
	}
	note := "What each side does per app. The CLI pipeline: secrets (gitleaks), a CycloneDX SBOM (syft), vulnerabilities (trivy). " +
		"The scanners alone and tollgate: the same, and code weaknesses (SAST), IaC misconfigurations, an SPDX SBOM, the permission manifest and the touched files; " +
		"tollgate also stores each input, SBOM, report and verdict as write-once evidence and runs the fast, deep and review policies."
	main := rep.Runs[0]
	if main.Completed > 0 && main.RatePerSecond == 0 {
		note += fmt.Sprintf(" tollgate skips the deep stage after a fast-stage block: in %s it ran for %d of %d scans (%.0f%%).",
			main.Name, main.FastDerived, main.Completed, 100*float64(main.FastDerived)/float64(main.Completed))
	}
	for _, r := range rep.Runs {
		if !r.DeepForced {
			continue
		}
		note += fmt.Sprintf(" %s forces it on every scan, as the baselines run: %s scans/s", r.Name, sig(r.Throughput))
		if cli, ok := rep.baseline("cli-pipeline"); ok && cli.Throughput > 0 {
			note += fmt.Sprintf(", %s× the CLI pipeline", sig(r.Throughput/cli.Throughput))
		}
		if c, ok := rep.ceiling(); ok && c.Throughput > 0 {
			note += fmt.Sprintf(", %s%% of the scanners-alone ceiling", sig(100*r.Throughput/c.Throughput))
		}
		note += "."
	}
	return []string{note}
}

// Command loadtest measures tollgate under load against the CLI pipeline and
// the scanners alone (see package loadtest and `make loadtest`).
//
//	loadtest [flags]                          the whole load test
//	loadtest -drills [flags]                  the failure drills on the production-shaped stack
//	loadtest nats-server --port P --store D   the fleet's NATS (run by the load test)
//	loadtest nats-cluster-node -c FILE        a node of the production stack's NATS cluster
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/tollgate/tollgate/loadtest"
	"github.com/tollgate/tollgate/loadtest/baseline"
	"github.com/tollgate/tollgate/loadtest/corpus"
	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/vulndb"
)

func main() {
	// trivy replaces slog's default at import time with an unbounded buffer;
	// the scanners log through the default, at warn.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	// The scanners (and the CLIs the baseline runs) see an empty GOPATH, as
	// tollgate's workers do: trivy would otherwise read the host's module
	// cache for every Go app (see internal/cli/scanenv.go).
	gopath := filepath.Join(os.TempDir(), fmt.Sprintf("tollgate-empty-gopath-%d", os.Getuid()))
	if err := os.MkdirAll(gopath, 0o700); err == nil {
		os.Setenv("GOPATH", gopath)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == loadtest.NATSClusterNodeCommand {
		if err := stack.NATSServerMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest nats-cluster-node:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "nats-server" {
		if err := loadtest.NATSServerMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest nats-server:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, logger, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	bin := fs.String("bin", "bin/tollgate", "the tollgate binary")
	clis := fs.String("clis", "", "folder with the real gitleaks, syft and trivy CLIs (scripts/clis.sh); empty skips the CLI baseline")
	work := fs.String("work", "", "scratch folder (default: a temporary one)")
	out := fs.String("out", "loadtest/results", "where the report goes")
	osv := fs.String("osv", "testdata/osv", "OSV records the DB is built from")
	seed := fs.Int64("seed", 1, "corpus seed")
	apps := fs.Int("apps", 200, "apps in the corpus")
	scans := fs.Int("scans", 1000, "scans in the main closed-loop run")
	clients := fs.Int("clients", 300, "closed-loop clients")
	warmup := fs.Int("warmup", 60, "scans before the main run is measured")
	concurrency := fs.Int("concurrency", 0, "each worker's tasks at once, one sandboxed scanner process each (default: the worker's, the number of CPUs)")
	fullScans := fs.Int("full-scans", 300, "scans in a second closed-loop run with the deep stage forced on every scan, as the baselines run it (0 skips)")
	rates := fs.String("rates", "1,2,4,6,8", "open-loop arrival rates (scans/s), comma-separated; empty skips the sweep")
	perRate := fs.Int("scans-per-rate", 60, "scans per open-loop rate")
	scaling := fs.String("scaling", "2,4", "workers per pool to add for the scaling table (1 is the main run); empty skips")
	perScale := fs.Int("scans-per-scale", 200, "scans per scaling step")
	chaos := fs.Bool("chaos", true, "add a run that kills a worker, restarts NATS and pauses MinIO")
	chaosScans := fs.Int("chaos-scans", 200, "scans in the chaos run")
	baselineApps := fs.Int("baseline-apps", 0, "apps the CLI baseline scans, the first N of the corpus, for a quick run (default 0: all of them, as the other runs)")
	sandboxed := fs.Bool("baseline-sandbox", true, "run the scanners-alone baseline through the workers' sandbox (warm children of -bin sandbox-child); false runs them in this process")
	baselineOnly := fs.Bool("baseline-only", false, "run only the scanners-alone baseline, in this process and sandboxed, back to back, and print both (no fleet, no report)")
	render := fs.String("render", "", "only write the Markdown and SVGs again from this report.json (into -out)")
	drills := fs.Bool("drills", false, "instead of the load test: the same closed loop on the development servers and on the production-shaped stack (PostgreSQL, the Temporal server, a 3-node NATS cluster, MinIO on four drives), then the failure drills on the latter; report in -out (default loadtest/results/drills)")
	drillScans := fs.Int("drill-scans", 300, "with -drills: scans at least during the drills (the clients go on until the last drill has healed)")
	compareScans := fs.Int("compare-scans", 200, "with -drills: scans of the closed loop on each stack (0 skips the comparison)")
	partition := fs.Bool("partition", true, "with -drills: isolate a NATS node in its own network namespace and partition it (needs root and iproute2)")
	cpuProfile := fs.String("cpuprofile", "", "write this process's CPU profile here (the in-process baseline and the load generator; children and servers are not in it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("create CPU profile %q: %w", *cpuProfile, err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *render != "" {
		return loadtest.Rerender(*render, *out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	absBin, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	dir := *work
	if dir == "" {
		if dir, err = os.MkdirTemp("", "tollgate-loadtest-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	root := filepath.Join(dir, "corpus")
	m, err := corpus.Generate(ctx, root, corpus.Options{Seed: *seed, Apps: *apps})
	if err != nil {
		return err
	}
	logger.Info("corpus", "apps", len(m.Apps), "root", root)
	if *drills {
		outDir := *out
		if !explicit(fs, "out") {
			outDir = filepath.Join(*out, "drills")
		}
		rep, err := loadtest.RunDrillsReport(ctx, loadtest.DrillOptions{
			Command: "loadtest " + strings.Join(args, " "), Bin: absBin, Self: self, Corpus: root, OSV: *osv, Work: dir, Out: outDir,
			Clients: *clients, Warmup: *warmup, CompareScans: *compareScans, DrillScans: *drillScans, Plan: loadtest.FullDrills,
			Partition: *partition, Concurrency: *concurrency, Logger: logger,
		})
		if err != nil {
			return err
		}
		logger.Info("drills done", "took_s", rep.TookS, "report", filepath.Join(outDir, "report.md"))
		return drillsFailed(rep)
	}
	rl, err := floats(*rates)
	if err != nil {
		return fmt.Errorf("-rates: %w", err)
	}
	sl, err := ints(*scaling)
	if err != nil {
		return fmt.Errorf("-scaling: %w", err)
	}
	var sandboxCmd []string
	if *sandboxed {
		sandboxCmd = []string{absBin, "sandbox-child"}
	}
	if *baselineOnly {
		return scannersAloneOnly(ctx, logger, root, filepath.Join(dir, "db"), *osv, []string{absBin, "sandbox-child"}, *cpuProfile)
	}
	baselines := func(ctx context.Context, apps []loadtest.CorpusApp, db string) ([]loadtest.Baseline, []string, error) {
		logger.Info("baseline: scanners alone", "apps", len(apps), "sandboxed", *sandboxed)
		alone, err := baseline.ScannersAlone(ctx, baseline.Options{Root: root, Apps: apps, DBDir: db, Sandbox: sandboxCmd, Logger: logger})
		if err != nil {
			return nil, nil, err
		}
		out := []loadtest.Baseline{alone}
		if *clis == "" {
			return out, []string{"The CLI pipeline baseline was skipped: no -clis folder (scripts/clis.sh builds the CLIs)."}, nil
		}
		sub := apps
		if *baselineApps > 0 {
			sub = apps[:min(*baselineApps, len(apps))]
		}
		logger.Info("baseline: CLI pipeline", "apps", len(sub))
		cli, err := baseline.CLIPipeline(ctx, baseline.Options{Root: root, Apps: sub, DBDir: db, CLIDir: *clis, Logger: logger})
		if err != nil {
			return nil, nil, err
		}
		return append(out, cli), []string{loadtest.BaselineAppsNote(len(sub), len(apps))}, nil
	}
	rep, err := loadtest.RunAll(ctx, loadtest.Options{
		Command: "loadtest " + strings.Join(args, " "), Bin: absBin, Self: self, Corpus: root, OSV: *osv, Baselines: baselines,
		Work: dir, Out: *out, Scans: *scans, Clients: *clients, Warmup: *warmup, FullScans: *fullScans, Concurrency: *concurrency, Rates: rl, ScansPerRate: *perRate,
		Scaling: sl, ScansPerScale: *perScale, Chaos: *chaos, ChaosScans: *chaosScans, Logger: logger,
	})
	if err != nil {
		return err
	}
	logger.Info("load test done", "took_s", rep.TookS, "report", filepath.Join(*out, "report.md"))
	return nil
}

// scannersAloneOnly measures the scanners alone over the corpus, first in
// this process and then through the sandbox, back to back on the same
// corpus and DB, and prints both as JSON lines: the sandbox's cost.
func scannersAloneOnly(ctx context.Context, logger *slog.Logger, root, db, osv string, sandboxCmd []string, cpuProfile string) error {
	if _, err := vulndb.ImportOSV(ctx, logger, db, osv); err != nil {
		return err
	}
	for _, cmd := range [][]string{nil, sandboxCmd} {
		b, err := baseline.ScannersAlone(ctx, baseline.Options{Root: root, DBDir: db, Sandbox: cmd, Logger: logger, ChildCPUProfile: cpuProfile})
		if err != nil {
			return err
		}
		out, _ := json.Marshal(b)
		fmt.Println(string(out))
	}
	return nil
}

// explicit says whether the flag was given on the command line.
func explicit(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// drillsFailed is an error when the drills lost a scan, decided one
// wrongly, or left evidence that does not verify or has two versions.
func drillsFailed(rep loadtest.Report) error {
	for _, r := range rep.Runs {
		e := r.Evidence
		if r.Lost > 0 || r.Wrong > 0 || (e != nil && (len(e.NotVerified) > 0 || len(e.Duplicated) > 0)) {
			return fmt.Errorf("run %s: %d lost, %d wrong, evidence %+v: see the report", r.Name, r.Lost, r.Wrong, e)
		}
		for _, d := range r.Drills {
			if d.Err != "" {
				return fmt.Errorf("drill %q failed: %s", d.Name, d.Err)
			}
		}
	}
	return nil
}

func floats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' }) {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' }) {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%q is not a positive whole number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// Package baseline runs the load test's two baselines over a corpus: the
// usual CI recipe (the gitleaks, syft and trivy CLIs as one process each per
// app) and the scanners alone (in-process and warm, no orchestration), the
// ceiling of tollgate's design.
package baseline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tollgate/tollgate/loadtest"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workers/sandbox"
	"github.com/tollgate/tollgate/workers/scanners"
)

// Options of a baseline run.
type Options struct {
	// Root is the corpus; Apps the apps to scan (default: all of them).
	Root string
	Apps []loadtest.CorpusApp
	// DBDir is the vulnerability DB (tollgate's layout: trivy.db and
	// metadata.json in it).
	DBDir string
	// CLIDir holds gitleaks, syft and trivy (scripts/clis.sh builds them).
	CLIDir string
	// Concurrency is apps at once (default: the CPUs).
	Concurrency int
	// Sandbox, when set, is the command of a sandbox child (`tollgate
	// sandbox-child`): the scanners-alone baseline then runs them in warm
	// sandboxed children, one per slot, as the workers do.
	Sandbox []string
	// ChildCPUProfile, when set with Sandbox, is where each child writes
	// a CPU profile (.slotN appended).
	ChildCPUProfile string
	Logger          *slog.Logger
}

// findings are what decide a baseline's verdict, as the default policy
// would: a secret or a CRITICAL vulnerability blocks, a HIGH one warns.
type findings struct {
	secrets        int
	critical, high int
}

func (f findings) verdict() string {
	switch {
	case f.secrets > 0 || f.critical > 0:
		return "block"
	case f.high > 0:
		return "warn"
	}
	return "pass"
}

// run scans every app with scan, concurrency at a time, and measures.
func run(ctx context.Context, name string, o Options, scan func(ctx context.Context, app loadtest.CorpusApp) (findings, error)) (loadtest.Baseline, error) {
	apps := o.Apps
	if apps == nil {
		_, all, err := loadtest.LoadManifest(o.Root)
		if err != nil {
			return loadtest.Baseline{}, err
		}
		apps = all
	}
	b := loadtest.Baseline{Name: name, Concurrency: cmp.Or(o.Concurrency, runtime.NumCPU()), Scans: len(apps)}
	h := hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)
	var mu sync.Mutex
	work := make(chan loadtest.CorpusApp)
	var wg sync.WaitGroup
	var firstErr error
	begin := time.Now()
	for range b.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for app := range work {
				t := time.Now()
				f, err := scan(ctx, app)
				d := time.Since(t)
				mu.Lock()
				switch {
				case err != nil:
					b.Errors++
					if firstErr == nil {
						firstErr = fmt.Errorf("%s on %s: %w", name, app.Name, err)
					}
				default:
					_ = h.RecordValue(max(d.Microseconds(), 1))
					if f.verdict() != app.Expected {
						b.Wrong++
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, app := range apps {
		select {
		case work <- app:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	b.DurationS = time.Since(begin).Seconds()
	if b.DurationS > 0 {
		b.Throughput = float64(len(apps)-b.Errors) / b.DurationS
	}
	s := func(us int64) float64 { return float64(us) / 1e6 }
	b.Latency = loadtest.Latencies{Count: h.TotalCount(), P50: s(h.ValueAtQuantile(50)), P90: s(h.ValueAtQuantile(90)),
		P99: s(h.ValueAtQuantile(99)), Max: s(h.Max()), Mean: h.Mean() / 1e6}
	if b.Errors == len(apps) && firstErr != nil {
		return b, firstErr
	}
	if firstErr != nil {
		cmp.Or(o.Logger, slog.New(slog.DiscardHandler)).Warn("baseline errors", "baseline", name, "errors", b.Errors, "first", firstErr)
	}
	return b, ctx.Err()
}

// ScannersAlone runs the warm in-process scanners over the corpus, both
// stages' work per app, with no orchestration, queues or evidence: the
// ceiling of the design on this machine.
func ScannersAlone(ctx context.Context, o Options) (loadtest.Baseline, error) {
	if len(o.Sandbox) > 0 {
		return scannersSandboxed(ctx, o)
	}
	logger := cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	engine, err := scanners.New(ctx, scanners.Options{DBDir: o.DBDir, Version: "baseline"}, logger)
	if err != nil {
		return loadtest.Baseline{}, err
	}
	defer engine.Close()
	sc := engine.Scanners()
	before := selfCPU()
	b, err := run(ctx, "scanners-alone", o, func(ctx context.Context, app loadtest.CorpusApp) (findings, error) {
		return scanApp(ctx, sc[tasks.KindSecrets], sc[tasks.KindDeep], filepath.Join(o.Root, app.Dir), app)
	})
	b.CPUSeconds = selfCPU() - before
	return b, err
}

// scannersSandboxed is ScannersAlone through the workers' sandbox: one warm
// child per slot, each app's both stages in one slot, as a worker would run
// them. CPU seconds are the children's (from their start of work, not their
// loading) and this process's.
func scannersSandboxed(ctx context.Context, o Options) (loadtest.Baseline, error) {
	logger := cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return loadtest.Baseline{}, err
	}
	db, err := filepath.Abs(o.DBDir)
	if err != nil {
		return loadtest.Baseline{}, err
	}
	o.Root = root
	pool, err := sandbox.Start(ctx, sandbox.Config{Command: o.Sandbox, Slots: cmp.Or(o.Concurrency, runtime.NumCPU()), Name: "baseline",
		DBDir: db, Version: "baseline", ReadRoots: []string{root}, CPUProfile: o.ChildCPUProfile}, logger)
	if err != nil {
		return loadtest.Baseline{}, err
	}
	defer pool.Close()
	before, beforeChildren := selfCPU(), pool.CPUSeconds()
	b, err := run(ctx, "scanners-alone-sandboxed", o, func(ctx context.Context, app loadtest.CorpusApp) (findings, error) {
		slot, err := pool.Acquire(ctx)
		if err != nil {
			return findings{}, err
		}
		defer slot.Release()
		return scanApp(ctx, slot, slot, filepath.Join(root, app.Dir), app)
	})
	b.CPUSeconds = selfCPU() - before + pool.CPUSeconds() - beforeChildren
	return b, err
}

// scanApp runs both stages' scanners over one app.
func scanApp(ctx context.Context, fast, deep workers.Scanner, dir string, app loadtest.CorpusApp) (findings, error) {
	var f findings
	fo, err := fast.Scan(ctx, tasks.Task{ScanID: app.Name, App: app.Name, Kind: tasks.KindSecrets}, dir)
	if err != nil {
		return f, err
	}
	f.secrets = len(fo.Result.Secrets)
	do, err := deep.Scan(ctx, tasks.Task{ScanID: app.Name, App: app.Name, Kind: tasks.KindDeep}, dir)
	if err != nil {
		return f, err
	}
	for _, v := range do.Result.Vulnerabilities {
		f.add(v.Severity)
	}
	return f, nil
}

func (f *findings) add(severity string) {
	switch strings.ToUpper(severity) {
	case "CRITICAL":
		f.critical++
	case "HIGH":
		f.high++
	}
}

// selfCPU is this process's CPU time so far, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// CLIPipeline runs the usual CI recipe per app: `gitleaks dir`, `syft scan
// dir:`, `trivy fs`, one process each, in sequence, with the same offline
// settings and DB as scripts/compare-clis.sh.
func CLIPipeline(ctx context.Context, o Options) (loadtest.Baseline, error) {
	if o.CLIDir == "" {
		return loadtest.Baseline{}, errors.New("CLI baseline: no CLI folder (scripts/clis.sh builds one)")
	}
	work, err := os.MkdirTemp("", "tollgate-cli-baseline-")
	if err != nil {
		return loadtest.Baseline{}, err
	}
	defer os.RemoveAll(work)
	// trivy wants its DB at <cache>/db.
	cache := filepath.Join(work, "trivy-cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return loadtest.Baseline{}, err
	}
	if err := os.Symlink(o.DBDir, filepath.Join(cache, "db")); err != nil {
		return loadtest.Baseline{}, err
	}
	home := filepath.Join(work, "home")
	cwd := filepath.Join(work, "cwd")
	for _, d := range []string{home, cwd} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return loadtest.Baseline{}, err
		}
	}
	env := append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"SYFT_CHECK_FOR_APP_UPDATE=false", "SYFT_GOLANG_USE_PACKAGES_LIB=false", "SYFT_GOLANG_SEARCH_REMOTE_LICENSES=false",
		"SYFT_GOLANG_SEARCH_LOCAL_MOD_CACHE_LICENSES=false", "SYFT_JAVASCRIPT_SEARCH_REMOTE_LICENSES=false",
		"SYFT_PYTHON_SEARCH_REMOTE_LICENSES=false", "SYFT_JAVA_USE_NETWORK=false", "SYFT_JAVA_USE_MAVEN_LOCAL_REPOSITORY=false")
	var cpuMu sync.Mutex
	var cpu float64
	exe := func(ctx context.Context, name string, args ...string) error {
		cmd := exec.CommandContext(ctx, filepath.Join(o.CLIDir, name), args...)
		cmd.Dir, cmd.Env = cwd, env
		out, err := cmd.CombinedOutput()
		if st := cmd.ProcessState; st != nil {
			cpuMu.Lock()
			cpu += (st.UserTime() + st.SystemTime()).Seconds()
			cpuMu.Unlock()
		}
		if err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	commands := func(dir, tmp string) [][]string {
		return [][]string{
			{"gitleaks", "dir", dir, "--report-format", "json", "--report-path", filepath.Join(tmp, "gitleaks.json"), "--no-banner", "--exit-code", "0", "--log-level", "error"},
			{"syft", "scan", "dir:" + dir, "-o", "cyclonedx-json=" + filepath.Join(tmp, "sbom.cdx.json"), "-q"},
			{"trivy", "fs", "--cache-dir", cache, "--skip-db-update", "--offline-scan", "--skip-version-check", "--disable-telemetry",
				"--scanners", "vuln", "--format", "json", "--output", filepath.Join(tmp, "trivy.json"), "-q", dir},
		}
	}
	b, err := run(ctx, "cli-pipeline", o, func(ctx context.Context, app loadtest.CorpusApp) (findings, error) {
		tmp, err := os.MkdirTemp(work, "app-")
		if err != nil {
			return findings{}, err
		}
		defer os.RemoveAll(tmp)
		for _, c := range commands(filepath.Join(o.Root, app.Dir), tmp) {
			if err := exe(ctx, c[0], c[1:]...); err != nil {
				return findings{}, err
			}
		}
		return cliFindings(tmp)
	})
	b.CPUSeconds = cpu
	var shown []string
	for _, c := range commands("APP", "OUT") {
		shown = append(shown, strings.Join(c, " "))
	}
	b.Command = strings.Join(shown, " && ")
	return b, err
}

// cliFindings reads the CLIs' reports.
func cliFindings(dir string) (findings, error) {
	var f findings
	raw, err := os.ReadFile(filepath.Join(dir, "gitleaks.json"))
	if err != nil {
		return f, err
	}
	var leaks []json.RawMessage
	if err := json.Unmarshal(raw, &leaks); err != nil {
		return f, fmt.Errorf("gitleaks report: %w", err)
	}
	f.secrets = len(leaks)
	raw, err = os.ReadFile(filepath.Join(dir, "trivy.json"))
	if err != nil {
		return f, err
	}
	var tr struct {
		Results []struct {
			Vulnerabilities []struct {
				Severity string `json:"Severity"`
			} `json:"Vulnerabilities"`
		} `json:"Results"`
	}
	if err := json.Unmarshal(raw, &tr); err != nil {
		return f, fmt.Errorf("trivy report: %w", err)
	}
	for _, r := range tr.Results {
		for _, v := range r.Vulnerabilities {
			f.add(v.Severity)
		}
	}
	return f, nil
}

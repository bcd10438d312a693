// Package scanners adapts gitleaks, syft, trivy (vulnerabilities and IaC
// misconfigurations) and the SAST engine (package sast), run in-process as
// libraries, to the worker pools. It is the only package that links them:
// the rest of tollgate, and its tests, build without the scanners.
package scanners

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate/tollgate/manifest"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/sast"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workers/sandbox"
	"github.com/tollgate/tollgate/workers/touches"
)

// Options configure the scanners.
type Options struct {
	// DBDir is the Trivy-format vulnerability DB; empty or missing means
	// vulnerabilities are not checked, and reports say so.
	DBDir string
	// Version is tollgate's version, written into SBOMs.
	Version string
	// SecretFingerprintKey keys the fingerprints of secrets (see
	// Fingerprint): at least 32 bytes, the same in every worker of a fleet
	// so that exceptions keep matching. Empty generates a random key for
	// this process (the embedded mode; New logs that it did): fingerprints
	// then hold only within the process's own scans.
	SecretFingerprintKey []byte
	// RulesDir is a folder of SAST rule files replacing the embedded ones
	// (empty: the embedded rules).
	RulesDir string
	// Kinds are the task kinds (tasks.Kind*) to load scanners for; empty
	// loads them all. A pool's sandbox children load their pool's kinds
	// only (tasks.PoolKinds): a fast child has no use for syft, trivy and
	// the DB, a deep one none for gitleaks and the SAST rules, and each
	// set costs about two CPU-seconds to load.
	Kinds []string
}

// Engine holds the warm scanners of one worker process.
type Engine struct {
	secrets *Secrets
	sbom    *SBOM
	vulns   *Vulns
	iac     *Misconfig
	code    *sast.Engine
	// kinds are the task kinds whose scanners were loaded.
	kinds  []string
	logger *slog.Logger
}

// New loads the scanners of opts.Kinds once (every kind's when empty):
// for secrets tasks gitleaks' rules and the SAST rules; for deep tasks
// syft's licence scanner, the vulnerability DB and trivy's compiled IaC
// checks; for rematch tasks the vulnerability DB.
func New(ctx context.Context, opts Options, logger *slog.Logger) (*Engine, error) {
	begin := time.Now()
	kinds := opts.Kinds
	if len(kinds) == 0 {
		kinds = allKinds
	}
	for _, k := range kinds {
		if !slices.Contains(allKinds, k) {
			return nil, fmt.Errorf("load scanners for task kind %q: no such kind (want one of %q)", k, allKinds)
		}
	}
	e := &Engine{kinds: kinds, logger: logger}
	if err := e.load(ctx, opts, logger); err != nil {
		e.Close()
		return nil, err
	}
	attrs := []any{"seconds", time.Since(begin).Seconds(), "kinds", kinds}
	if e.secrets != nil {
		attrs = append(attrs, "secrets_regexp", RegexpEngine())
	}
	if e.vulns != nil {
		db := e.vulns.DB()
		attrs = append(attrs, "vulndb", db.Path, "vulndb_available", db.Available, "vulndb_updated_at", db.UpdatedAt)
	}
	logger.InfoContext(ctx, "scanners ready", attrs...)
	return e, nil
}

// load loads the scanners of e.kinds.
func (e *Engine) load(ctx context.Context, opts Options, logger *slog.Logger) (err error) {
	want := func(k string) bool { return slices.Contains(e.kinds, k) }
	if want(tasks.KindSecrets) {
		if err := e.loadSecrets(ctx, opts, logger); err != nil {
			return err
		}
	}
	if want(tasks.KindDeep) {
		if e.sbom, err = NewSBOM(opts.Version); err != nil {
			return err
		}
		if e.iac, err = NewMisconfig(); err != nil {
			return err
		}
	}
	if want(tasks.KindDeep) || want(tasks.KindRematch) {
		if e.vulns, err = OpenVulns(opts.DBDir); err != nil {
			return err
		}
	}
	return nil
}

// allKinds are the task kinds an Engine can run: both pools' kinds.
var allKinds = slices.Concat(tasks.PoolKinds(tasks.PoolFast), tasks.PoolKinds(tasks.PoolDeep))

// loadSecrets loads the fast stage's scanners: gitleaks, keyed for
// fingerprints, and the SAST rules.
func (e *Engine) loadSecrets(ctx context.Context, opts Options, logger *slog.Logger) error {
	routeGitleaksLogs(logger)
	secrets, err := NewSecrets()
	if err != nil {
		return err
	}
	key := opts.SecretFingerprintKey
	if len(key) == 0 {
		key = make([]byte, MinFingerprintKeyBytes)
		rand.Read(key)
		logger.WarnContext(ctx, "no secret fingerprint key configured: generated one for this process; "+
			"secret fingerprints, and exceptions made from them, hold only for its own scans (set $TOLLGATE_SECRET_FINGERPRINT_KEY)")
	}
	if e.secrets, err = secrets.WithFingerprintKey(key); err != nil {
		return err
	}
	if e.code, err = sast.New(sast.Options{RulesDir: opts.RulesDir, Logger: logger}); err != nil {
		return fmt.Errorf("load SAST rules (%s): %w", cmp.Or(opts.RulesDir, "embedded"), err)
	}
	if RegexpEngine() == "stdlib" {
		logger.WarnContext(ctx, "gitleaks was built without the gore2regex tag: it matches secrets with Go's regexp, "+
			"about ten times slower than with RE2 (build with -tags gore2regex, as the Makefile does)")
	}
	return nil
}

// Close releases the vulnerability DB and the SAST engine's parsers and
// queries (tree-sitter memory, outside Go's heap).
func (e *Engine) Close() error {
	if e.code != nil {
		e.code.Close()
	}
	if e.vulns == nil {
		return nil
	}
	return e.vulns.Close()
}

// Scanners returns the task runners of the kinds it loaded, by task kind,
// for workers.Config.
func (e *Engine) Scanners() map[string]workers.Scanner {
	run := map[string]workers.Scanner{
		tasks.KindSecrets: workers.ScannerFunc(e.runSecrets),
		tasks.KindDeep:    workers.ScannerFunc(e.runDeep),
		tasks.KindRematch: workers.ScannerFunc(e.runRematch),
	}
	out := make(map[string]workers.Scanner, len(e.kinds))
	for _, k := range e.kinds {
		out[k] = run[k]
	}
	return out
}

// runRematch matches a stored SBOM against this worker's DB, unless the DB
// is no newer than the one the SBOM was last matched against.
func (e *Engine) runRematch(ctx context.Context, t tasks.Task, dir string) (workers.Output, error) {
	db := e.vulns.DB()
	if !db.Available || !db.UpdatedAt.After(t.MatchedDB) {
		return workers.Output{Result: tasks.Result{Kind: t.Kind, Skipped: true, VulnDB: &db}}, nil
	}
	begin := time.Now()
	sctx, sp := span(ctx, "trivy-sbom")
	vulns, err := e.vulns.ScanSBOM(sctx, filepath.Join(dir, workers.SBOMFile))
	sp.End()
	if err != nil {
		return workers.Output{}, err
	}
	return workers.Output{Result: tasks.Result{
		Kind: t.Kind, Findings: report.Findings{Vulnerabilities: vulns}, VulnDB: &db,
		Timings: map[string]float64{"rematch": time.Since(begin).Seconds()},
	}}, nil
}

// span starts a child span of ctx's, in whatever tracer provider traces ctx.
func span(ctx context.Context, name string) (context.Context, trace.Span) {
	return trace.SpanFromContext(ctx).TracerProvider().Tracer("tollgate/scanners").Start(ctx, name)
}

func (e *Engine) runSecrets(ctx context.Context, t tasks.Task, dir string) (workers.Output, error) {
	begin := time.Now()
	sctx, sp := span(ctx, "gitleaks")
	found, err := e.secrets.Scan(sctx, dir, t.Tenant)
	sp.End()
	if err != nil {
		return workers.Output{}, err
	}
	timings := map[string]float64{"secrets": time.Since(begin).Seconds()}
	begin = time.Now()
	areas, err := touches.Scan(ctx, dir)
	if err != nil {
		return workers.Output{}, err
	}
	timings["touches"] = time.Since(begin).Seconds()
	begin = time.Now()
	m, err := manifest.Find(dir)
	if err != nil {
		return workers.Output{}, err
	}
	timings["manifest"] = time.Since(begin).Seconds()
	begin = time.Now()
	sctx, sp = span(ctx, "sast")
	weaknesses, code, err := e.code.Scan(sctx, dir)
	sp.End()
	if err != nil {
		return workers.Output{}, fmt.Errorf("scan code in %q: %w", dir, err)
	}
	timings["code"] = time.Since(begin).Seconds()
	return workers.Output{Result: tasks.Result{
		Kind: t.Kind,
		Findings: report.Findings{
			Secrets:    found,
			Touches:    areas,
			Manifest:   &m,
			Weaknesses: weaknesses,
			CodeScan:   &code,
		},
		Timings: timings,
	}}, nil
}

func (e *Engine) runDeep(ctx context.Context, t tasks.Task, dir string) (workers.Output, error) {
	timings := map[string]float64{}
	begin := time.Now()
	sctx, sp := span(ctx, "syft")
	cat, err := e.sbom.Scan(sctx, dir, Identity{ScanID: t.ScanID, Name: t.App, Created: t.SubmittedAt})
	sp.End()
	if err != nil {
		return workers.Output{}, err
	}
	timings["sbom"] = time.Since(begin).Seconds()

	begin = time.Now()
	sctx, sp = span(ctx, "trivy")
	vulns, err := e.vulns.Scan(sctx, dir)
	sp.End()
	if err != nil {
		return workers.Output{}, err
	}
	timings["vulnerabilities"] = time.Since(begin).Seconds()

	begin = time.Now()
	sctx, sp = span(ctx, "trivy-misconfig")
	misconfigs, err := e.iac.Scan(sctx, dir)
	sp.End()
	if err != nil {
		return workers.Output{}, err
	}
	timings["misconfig"] = time.Since(begin).Seconds()
	db := e.vulns.DB()
	return workers.Output{
		Result: tasks.Result{
			Kind: t.Kind,
			Findings: report.Findings{
				Packages:          cat.Packages,
				Vulnerabilities:   vulns,
				Misconfigurations: misconfigs,
			},
			VulnDB:  &db,
			Timings: timings,
		},
		Files: []workers.File{
			{Name: "sbom.cdx.json", ContentType: "application/vnd.cyclonedx+json", Data: cat.CycloneDX},
			{Name: "sbom.spdx.json", ContentType: "application/spdx+json", Data: cat.SPDX},
		},
	}, nil
}

// LoadForSandbox is a sandbox child's loader: the warm scanners of one
// slot, with the DB and version the parent chose.
func LoadForSandbox(ctx context.Context, opts sandbox.ChildOptions, logger *slog.Logger) (map[string]workers.Scanner, func() error, error) {
	e, err := New(ctx, Options{DBDir: opts.DBDir, Version: opts.Version, SecretFingerprintKey: opts.SecretFingerprintKey, RulesDir: opts.RulesDir, Kinds: opts.Kinds}, logger)
	if err != nil {
		return nil, nil, err
	}
	return e.Scanners(), e.Close, nil
}

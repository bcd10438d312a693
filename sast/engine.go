// Package sast finds code weaknesses in JavaScript, TypeScript, Python and
// Go with tree-sitter: rules are data (pattern and taint rules, RULES.md),
// embedded and replaceable, compiled once per Engine and reused.
package sast

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/report"
)

//go:embed rules presets
var embedded embed.FS

// EmbeddedFS is the embedded rules (rules/<family>/<id>.yaml) and the
// presets they name (presets/<name>.yaml): what `tollgate version` digests.
func EmbeddedFS() fs.FS { return embedded }

// Defaults of Options.
const (
	DefaultMaxFileBytes = 512 << 10
	DefaultParseTimeout = 2 * time.Second
)

// Options configure an Engine. The zero value is ready to use.
type Options struct {
	// RulesDir is a folder of rule files (<family>/<id>.yaml) replacing
	// the embedded ones; "" means the embedded rules.
	RulesDir string
	// MaxFileBytes: larger files are skipped as too_large (0 = 512 KiB).
	MaxFileBytes int64
	// ParseTimeout is the per-file parse and match deadline (0 = 2s); a
	// file that exceeds it is skipped as parse_timeout.
	ParseTimeout time.Duration
	// Logger receives the engine's debug and warning records (nil =
	// silent).
	Logger *slog.Logger
}

// Errors ScanFile returns for a file it did not scan; Scan counts them in
// CodeScan.Skipped under the reason each names.
var (
	ErrUnsupported  = errors.New("not a language the engine reads")
	ErrTooLarge     = errors.New("too_large")
	ErrMinified     = errors.New("minified")
	ErrGenerated    = errors.New("generated")
	ErrParseTimeout = errors.New("parse_timeout")
	ErrParseError   = errors.New("parse_error")
)

// skipReasons are the errors counted as skips, in report order.
var skipReasons = []error{ErrTooLarge, ErrMinified, ErrGenerated, ErrParseTimeout, ErrParseError}

// Engine holds the compiled rules and the parser pools. It is safe for
// concurrent use; Close frees its tree-sitter objects.
type Engine struct {
	opts  Options
	log   *slog.Logger
	langs map[string]*language
	rules []*rule // sorted by id
	// queries holds, per language, every rule's queries as one query.
	queries map[string]*langQuery
}

// New loads, validates and compiles every rule once.
func New(opts Options) (*Engine, error) {
	opts.MaxFileBytes = cmp.Or(opts.MaxFileBytes, DefaultMaxFileBytes)
	opts.ParseTimeout = cmp.Or(opts.ParseTimeout, DefaultParseTimeout)
	if opts.MaxFileBytes < 0 || opts.ParseTimeout < 0 {
		return nil, fmt.Errorf("sast options: negative MaxFileBytes or ParseTimeout")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !useLibcAllocator() {
		log.Warn("sast: tree-sitter allocates through Go callbacks (ts_set_allocator not found); parsing is slower")
	}
	e := &Engine{opts: opts, log: log, langs: newLanguages()}
	presets, err := loadPresets(embedded)
	if err != nil {
		return nil, err
	}
	var rulesFS fs.FS
	if opts.RulesDir != "" {
		if _, err := os.Stat(opts.RulesDir); err != nil {
			return nil, fmt.Errorf("open rules folder %q: %w", opts.RulesDir, err)
		}
		rulesFS = os.DirFS(opts.RulesDir)
	} else {
		rulesFS, _ = fs.Sub(embedded, "rules")
	}
	e.rules, err = loadRules(rulesFS)
	if err == nil {
		e.queries, err = compileQueries(e.langs, e.rules, presets)
	}
	if err != nil {
		if opts.RulesDir != "" {
			return nil, fmt.Errorf("load rules from %q: %w", opts.RulesDir, err)
		}
		return nil, fmt.Errorf("load embedded rules: %w", err)
	}
	return e, nil
}

// Close frees the compiled queries and pooled parsers. The Engine must not
// be used afterwards.
func (e *Engine) Close() {
	for _, lq := range e.queries {
		lq.close()
	}
	for _, l := range e.langs {
		l.close()
	}
	e.rules, e.queries = nil, nil
}

// RuleIDs lists the ids of the loaded rules, sorted.
func (e *Engine) RuleIDs() []string {
	ids := make([]string, 0, len(e.rules))
	for _, r := range e.rules {
		ids = append(ids, r.spec.ID)
	}
	slices.Sort(ids)
	return ids
}

// vendoredDirs are folders of code the app did not write; their source
// files are counted as vendored and not read.
var vendoredDirs = map[string]bool{
	"node_modules": true, "bower_components": true, "vendor": true, "third_party": true,
	"dist": true, "build": true, ".next": true, ".nuxt": true, ".output": true,
	".venv": true, "venv": true, "site-packages": true,
}

// testDirs are folders of tests and test fixtures: code that does not ship
// with the app. Their source files are counted as test and not read, as are
// files named like tests (testName). Semgrep's default .semgrepignore
// leaves out test/, tests/ and *_test.go the same way; test code was the
// main source of false positives on the control apps (sast/eval).
var testDirs = map[string]bool{
	"test": true, "tests": true, "__tests__": true, "__mocks__": true, "testdata": true,
	"spec": true, "e2e": true, "cypress": true,
}

// testName reports a file named the way Go, Python and JavaScript test
// runners find tests (foo_test.go, test_foo.py, foo_test.py, conftest.py,
// foo.test.ts, foo.spec.js).
func testName(name string) bool {
	n := strings.ToLower(name)
	ext := filepath.Ext(n)
	base := strings.TrimSuffix(n, ext)
	switch ext {
	case ".go":
		return strings.HasSuffix(base, "_test")
	case ".py":
		return strings.HasPrefix(base, "test_") || strings.HasSuffix(base, "_test") || base == "conftest"
	}
	return strings.HasSuffix(base, ".test") || strings.HasSuffix(base, ".spec")
}

// Scan reads every source file below dir (never following symlinks) and
// returns the weaknesses found, sorted by file, line and rule, and a
// summary of what was read and skipped.
func (e *Engine) Scan(ctx context.Context, dir string) ([]report.Weakness, report.CodeScan, error) {
	summary := report.CodeScan{Files: map[string]int{}, Lines: map[string]int{}, Skipped: map[string]int{}, Rules: len(e.rules)}
	type job struct{ rel, abs, lang string }
	var jobs []job
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %q: %w", p, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p == dir {
				return nil
			}
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			if vendoredDirs[d.Name()] {
				summary.Skipped["vendored"] += countSources(ctx, p)
				return filepath.SkipDir
			}
			if testDirs[strings.ToLower(d.Name())] {
				summary.Skipped["test"] += countSources(ctx, p)
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symlinks, devices: never followed
		}
		lang := languageForPath(p)
		if lang == "" {
			return nil
		}
		if testName(d.Name()) {
			summary.Skipped["test"]++
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return fmt.Errorf("relative path of %q: %w", p, err)
		}
		jobs = append(jobs, job{rel: filepath.ToSlash(rel), abs: p, lang: lang})
		return nil
	})
	if err != nil {
		return nil, summary, fmt.Errorf("scan %q: %w", dir, err)
	}

	var (
		mu       sync.Mutex
		found    []report.Weakness
		firstErr error
		wg       sync.WaitGroup
		next     = make(chan job)
	)
	workers := min(runtime.GOMAXPROCS(0), max(len(jobs), 1))
	for range workers {
		wg.Go(func() {
			for j := range next {
				ws, lines, err := e.scanPath(ctx, j.rel, j.abs, j.lang)
				mu.Lock()
				switch reason := skipReason(err); {
				case err == nil:
					summary.Files[j.lang]++
					summary.Lines[j.lang] += lines
					found = append(found, ws...)
				case reason == "parse_timeout" || reason == "parse_error":
					// Code that was not read: worth a line in the worker's log.
					summary.Skipped[reason]++
					e.log.WarnContext(ctx, "sast could not read a file", "file", j.rel, "reason", reason, "err", err)
				case reason != "":
					summary.Skipped[reason]++
					e.log.DebugContext(ctx, "sast skipped file", "file", j.rel, "reason", reason)
				case firstErr == nil:
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		next <- j
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, summary, fmt.Errorf("scan %q: %w", dir, err)
	}
	if firstErr != nil {
		return nil, summary, fmt.Errorf("scan %q: %w", dir, firstErr)
	}
	sortWeaknesses(found)
	if found == nil {
		found = []report.Weakness{} // "weaknesses" is present, possibly empty
	}
	if len(summary.Skipped) == 0 {
		summary.Skipped = nil
	}
	return found, summary, nil
}

// scanPath reads one file, at most MaxFileBytes of it, and scans it.
func (e *Engine) scanPath(ctx context.Context, rel, abs, lang string) ([]report.Weakness, int, error) {
	f, err := os.Open(abs)
	if err != nil {
		return nil, 0, fmt.Errorf("open %q: %w", rel, err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, e.opts.MaxFileBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read %q: %w", rel, err)
	}
	if int64(len(src)) > e.opts.MaxFileBytes {
		return nil, 0, ErrTooLarge
	}
	return e.scanSource(ctx, rel, lang, src)
}

// ScanFile scans one file's source; path is relative (it names the file in
// the findings and picks the language). A file the engine does not scan
// gives one of the Err* values (ErrParseTimeout when the deadline passed).
func (e *Engine) ScanFile(ctx context.Context, path string, src []byte) ([]report.Weakness, error) {
	lang := languageForPath(path)
	if lang == "" {
		return nil, fmt.Errorf("scan %q: %w", path, ErrUnsupported)
	}
	if int64(len(src)) > e.opts.MaxFileBytes {
		return nil, ErrTooLarge
	}
	ws, _, err := e.scanSource(ctx, filepath.ToSlash(path), lang, src)
	if err != nil {
		return nil, err
	}
	sortWeaknesses(ws)
	return ws, nil
}

// skipReason names the skip an error stands for, "" when it is a failure.
func skipReason(err error) string {
	for _, r := range skipReasons {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	return ""
}

// countSources counts the files below dir the engine would have read.
func countSources(ctx context.Context, dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return filepath.SkipAll
		}
		if err == nil && d.Type().IsRegular() && languageForPath(p) != "" {
			n++
		}
		return nil
	})
	return n
}

func sortWeaknesses(ws []report.Weakness) {
	slices.SortFunc(ws, func(a, b report.Weakness) int {
		return cmp.Or(
			strings.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			strings.Compare(a.Rule, b.Rule),
			cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.EndLine, b.EndLine),
			strings.Compare(a.Fingerprint, b.Fingerprint),
		)
	})
}

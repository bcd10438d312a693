// Package policies holds tollgate's Rego policy bundle (embedded in the binary)
// and the evaluator that turns a stage's findings into a verdict with reasons.
//
// A bundle is a set of Rego v1 modules plus an optional data.json. It must
// define data.tollgate.<stage>.decision for the stages "fast" and "deep", each
// an object {"verdict": "pass"|"warn"|"block"|"review", "reasons": [{policy, message, verdict}]}.
package policies

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/tollgate/tollgate/report"
)

//go:embed bundle/*.rego bundle/data.json
var embedded embed.FS

// ReviewStage is the optional query data.tollgate.review.decision: "review"
// when a human must approve the change, else "pass".
const ReviewStage = "review"

// Stages every bundle must decide.
var Stages = []string{report.StageFast, report.StageDeep}

// Bundle is a loaded set of policy modules and their data.
type Bundle struct {
	// Modules maps a file name to its Rego source; tests (*_test.rego) included.
	Modules map[string]string
	// Data is the bundle's base document (data.json).
	Data map[string]any
	// Source says where the bundle came from ("embedded" or a directory).
	Source string
}

// Default returns the embedded bundle.
func Default() (Bundle, error) {
	return loadFS(EmbeddedFS(), "embedded")
}

// EmbeddedFS is the embedded bundle's files (*.rego, data.json), at its root:
// what `tollgate version` digests.
func EmbeddedFS() fs.FS {
	sub, err := fs.Sub(embedded, "bundle")
	if err != nil {
		panic(err) // "bundle" is a valid path: fs.Sub cannot fail
	}
	return sub
}

// LoadDir loads a bundle from a directory (every *.rego and data.json in it).
// It replaces the embedded bundle as a whole.
func LoadDir(dir string) (Bundle, error) {
	if _, err := os.Stat(dir); err != nil {
		return Bundle{}, fmt.Errorf("load policy dir %q: %w", dir, err)
	}
	return loadFS(os.DirFS(dir), dir)
}

func loadFS(fsys fs.FS, source string) (Bundle, error) {
	b := Bundle{Modules: map[string]string{}, Data: map[string]any{}, Source: source}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return Bundle{}, fmt.Errorf("read policy bundle %q: %w", source, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		raw, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return Bundle{}, fmt.Errorf("read policy %q in %q: %w", e.Name(), source, err)
		}
		switch {
		case strings.HasSuffix(e.Name(), ".rego"):
			b.Modules[e.Name()] = string(raw)
		case e.Name() == "data.json":
			if err := json.Unmarshal(raw, &b.Data); err != nil {
				return Bundle{}, fmt.Errorf("decode policy data %q in %q: %w", e.Name(), source, err)
			}
		}
	}
	if len(b.Modules) == 0 {
		return Bundle{}, fmt.Errorf("policy bundle %q has no .rego files", source)
	}
	return b, nil
}

// Load returns the bundle to use: the one in dir, or the embedded one when dir
// is empty, with the licence deny list replaced when licenseDeny is not nil.
func Load(dir string, licenseDeny []string) (Bundle, error) {
	var b Bundle
	var err error
	if dir != "" {
		b, err = LoadDir(dir)
	} else {
		b, err = Default()
	}
	if err != nil {
		return Bundle{}, err
	}
	if licenseDeny != nil {
		b = b.WithConfig("license_deny", licenseDeny)
	}
	return b, nil
}

// WithConfig returns a copy of the bundle whose data.tollgate.config has the
// given keys replaced (for flags such as --deny-license).
func (b Bundle) WithConfig(key string, value any) Bundle {
	data := deepCopy(b.Data)
	tg, _ := data["tollgate"].(map[string]any)
	if tg == nil {
		tg = map[string]any{}
		data["tollgate"] = tg
	}
	cfg, _ := tg["config"].(map[string]any)
	if cfg == nil {
		cfg = map[string]any{}
		tg["config"] = cfg
	}
	cfg[key] = value
	b.Data = data
	return b
}

func deepCopy(m map[string]any) map[string]any {
	raw, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

// Digest is the sha256 (hex) of what an engine compiled from the bundle:
// its modules but the tests, by name, and its data with every config
// override applied, as JSON (whose object keys encoding/json sorts). Two
// bundles that decide alike by construction have the same digest; it names
// the policy in a scan's VSA. (`tollgate version`'s bundle digest is of the
// embedded files, tests included, before any flag changes the data.)
func (b Bundle) Digest() (string, error) {
	modules := map[string]string{}
	for n, src := range b.Modules {
		if !strings.HasSuffix(n, "_test.rego") {
			modules[n] = src
		}
	}
	raw, err := json.Marshal(map[string]any{"modules": modules, "data": b.Data})
	if err != nil {
		return "", fmt.Errorf("digest policy bundle %q: %w", b.Source, err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

// Engine evaluates prepared stage queries. It is safe for concurrent use.
type Engine struct {
	queries map[string]rego.PreparedEvalQuery
	source  string
}

// ErrUndecided is returned when a policy produces no decision for a stage.
var ErrUndecided = errors.New("policy produced no decision")

// NewEngine compiles the bundle's modules (tests left out) once.
func NewEngine(ctx context.Context, b Bundle) (*Engine, error) {
	e := &Engine{queries: map[string]rego.PreparedEvalQuery{}, source: b.Source}
	store := inmem.NewFromObject(b.Data)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range b.Modules {
			if !yield(n) {
				return
			}
		}
	})
	queries := map[string]string{guardQuery: "data.tollgate.guard.rules", ttlQuery: "data.tollgate.ttl.periods"}
	for _, stage := range append(slices.Clone(Stages), ReviewStage) {
		queries[stage] = "data.tollgate." + stage + ".decision"
	}
	for stage, query := range queries {
		opts := []func(*rego.Rego){
			rego.Query(query),
			rego.Store(store),
			rego.SetRegoVersion(ast.RegoV1),
			rego.StrictBuiltinErrors(true),
		}
		for _, n := range names {
			if strings.HasSuffix(n, "_test.rego") {
				continue
			}
			opts = append(opts, rego.Module(path.Join(b.Source, n), b.Modules[n]))
		}
		q, err := rego.New(opts...).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("compile policy bundle %q for stage %q: %w", b.Source, stage, err)
		}
		e.queries[stage] = q
	}
	return e, nil
}

// Evaluate decides one stage.
func (e *Engine) Evaluate(ctx context.Context, stage string, input Input) (report.Decision, error) {
	q, ok := e.queries[stage]
	if !ok {
		return report.Decision{}, fmt.Errorf("evaluate policy: unknown stage %q", stage)
	}
	doc, err := input.Value()
	if err != nil {
		return report.Decision{}, fmt.Errorf("evaluate policy %q: %w", stage, err)
	}
	rs, err := q.Eval(ctx, rego.EvalParsedInput(doc))
	if err != nil {
		return report.Decision{}, fmt.Errorf("evaluate policy %q from %q: %w", stage, e.source, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		if stage == ReviewStage {
			// A bundle without a review policy asks for no review.
			return report.Decision{Verdict: report.VerdictPass, Reasons: []report.Reason{}}, nil
		}
		return report.Decision{}, fmt.Errorf("evaluate policy %q from %q: %w", stage, e.source, ErrUndecided)
	}
	out, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		return report.Decision{}, fmt.Errorf("evaluate policy %q: encode decision: %w", stage, err)
	}
	var d report.Decision
	if err := json.Unmarshal(out, &d); err != nil {
		return report.Decision{}, fmt.Errorf("evaluate policy %q: decision is not {verdict, reasons}: %w", stage, err)
	}
	switch d.Verdict {
	case report.VerdictPass, report.VerdictWarn, report.VerdictBlock, report.VerdictReview:
	default:
		return report.Decision{}, fmt.Errorf("evaluate policy %q: unknown verdict %q", stage, d.Verdict)
	}
	if d.Reasons == nil {
		d.Reasons = []report.Reason{}
	}
	return d, nil
}

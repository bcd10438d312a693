package sast

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	sitter "github.com/tree-sitter/go-tree-sitter"
	"sigs.k8s.io/yaml"
)

// ruleSpec is one rule file as written (RULES.md documents every field).
type ruleSpec struct {
	ID         string       `json:"id"`
	Languages  []string     `json:"languages"`
	CWE        []string     `json:"cwe"`
	OWASP      string       `json:"owasp,omitempty"`
	Severity   string       `json:"severity"`
	Confidence string       `json:"confidence"`
	Message    string       `json:"message"`
	Fix        string       `json:"fix"`
	References []string     `json:"references,omitempty"`
	Pattern    *patternSpec `json:"pattern,omitempty"`
	Taint      *taintSpec   `json:"taint,omitempty"`
}

// patternSpec matches code by shape: any of Queries, each capturing
// @match, optionally only inside (or not inside) a node captured @scope by
// one of Inside (NotInside).
type patternSpec struct {
	Queries   []querySpec `json:"queries"`
	Inside    []querySpec `json:"inside,omitempty"`
	NotInside []querySpec `json:"not-inside,omitempty"`
}

// taintSpec follows data from a @source to a @sink within one function,
// unless it passes through a @sanitizer.
type taintSpec struct {
	Sources    []querySpec `json:"sources"`
	Sinks      []querySpec `json:"sinks"`
	Sanitizers []querySpec `json:"sanitizers,omitempty"`
	// Calls says what a call whose argument is tainted returns when the
	// call is neither a sanitizer nor a known string builder: "lower"
	// (tainted, and the finding's confidence drops to medium; the
	// default), "keep" (tainted, confidence kept) or "stop" (clean).
	Calls string `json:"calls,omitempty"`
}

// querySpec is one tree-sitter query. In YAML it is either a plain string
// (the query, for every language of the rule) or an object naming the
// languages it is for, or a preset of the engine's (sources only).
type querySpec struct {
	Query     string   `json:"query,omitempty"`
	Languages []string `json:"languages,omitempty"`
	Preset    string   `json:"preset,omitempty"`
}

// UnmarshalJSON accepts a string or a strict object.
func (q *querySpec) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		q.Languages, q.Preset = nil, ""
		return json.Unmarshal(data, &q.Query)
	}
	type plain querySpec
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var p plain
	if err := d.Decode(&p); err != nil {
		return err
	}
	*q = querySpec(p)
	return nil
}

var (
	ruleIDPattern = regexp.MustCompile(`^(js|py|go)(-[a-z0-9]+)+$`)
	cwePattern    = regexp.MustCompile(`^CWE-[0-9]+$`)
	owaspPattern  = regexp.MustCompile(`^(A[0-9]{2}:20[0-9]{2}|LLM[0-9]{2}:20[0-9]{2})$`)
	severities    = []string{"critical", "high", "medium", "low"}
	confidences   = []string{"high", "medium", "low"}
	callModes     = []string{"", "lower", "keep", "stop"}
)

// Capture names the engine reads.
const (
	captureMatch     = "match"
	captureScope     = "scope"
	captureSource    = "source"
	captureSink      = "sink"
	captureSanitizer = "sanitizer"
)

// rule is a loaded rule with its queries compiled for each language.
type rule struct {
	spec ruleSpec
	file string // the file it came from, for errors
	// langs maps a language name to the rule's compiled queries there.
	langs map[string]*compiledRule
}

// compiledRule holds one rule's queries for one language.
type compiledRule struct {
	match, inside, notInside   []*query
	sources, sinks, sanitizers []*query
}

// query is a compiled tree-sitter query and the index of the capture the
// engine reads from it.
type query struct {
	q       *sitter.Query
	capture uint
	// span is the @match capture of a sink query, when it has one: the
	// span reported instead of the @sink node.
	span    uint
	hasSpan bool
}

func (r *rule) close() {
	for _, c := range r.langs {
		for _, list := range [][]*query{c.match, c.inside, c.notInside, c.sources, c.sinks, c.sanitizers} {
			for _, q := range list {
				q.q.Close()
			}
		}
	}
}

// loadRules reads every <family>/<id>.yaml below root in fsys, validates it
// and compiles its queries. On error nothing stays allocated.
func loadRules(fsys fs.FS, langs map[string]*language, presets map[string][]querySpec) ([]*rule, error) {
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list rule files: %w", err)
	}
	sort.Strings(files)
	var rules []*rule
	fail := func(err error) ([]*rule, error) {
		for _, r := range rules {
			r.close()
		}
		return nil, err
	}
	seen := map[string]string{}
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return fail(fmt.Errorf("read rule %q: %w", f, err))
		}
		r, err := parseRule(f, data, langs, presets)
		if err != nil {
			return fail(err)
		}
		if prev, ok := seen[r.spec.ID]; ok {
			r.close()
			return fail(fmt.Errorf("rule %q: id %s already defined in %q", f, r.spec.ID, prev))
		}
		seen[r.spec.ID] = f
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		return nil, errors.New("no rule files (<family>/<id>.yaml) found")
	}
	return rules, nil
}

// parseRule decodes one rule file strictly, validates it and compiles it.
func parseRule(file string, data []byte, langs map[string]*language, presets map[string][]querySpec) (*rule, error) {
	var spec ruleSpec
	if err := yaml.UnmarshalStrict(data, &spec); err != nil {
		return nil, fmt.Errorf("rule %q: %w", file, err)
	}
	if err := spec.validate(file); err != nil {
		return nil, fmt.Errorf("rule %q: %w", file, err)
	}
	r := &rule{spec: spec, file: file, langs: map[string]*compiledRule{}}
	for _, lang := range spec.Languages {
		c := &compiledRule{}
		r.langs[lang] = c
		var err error
		if p := spec.Pattern; p != nil {
			if c.match, err = compileList(langs[lang], lang, "pattern.queries", p.Queries, captureMatch, nil); err == nil {
				if c.inside, err = compileList(langs[lang], lang, "pattern.inside", p.Inside, captureScope, nil); err == nil {
					c.notInside, err = compileList(langs[lang], lang, "pattern.not-inside", p.NotInside, captureScope, nil)
				}
			}
		} else {
			t := spec.Taint
			if c.sources, err = compileList(langs[lang], lang, "taint.sources", t.Sources, captureSource, presets); err == nil {
				if c.sinks, err = compileList(langs[lang], lang, "taint.sinks", t.Sinks, captureSink, nil); err == nil {
					c.sanitizers, err = compileList(langs[lang], lang, "taint.sanitizers", t.Sanitizers, captureSanitizer, nil)
				}
			}
			if err == nil && (len(c.sources) == 0 || len(c.sinks) == 0) {
				err = fmt.Errorf("language %s: taint rule needs at least one source and one sink query for it", lang)
			}
		}
		if err == nil && spec.Pattern != nil && len(c.match) == 0 {
			err = fmt.Errorf("language %s: no pattern query applies to it", lang)
		}
		if err != nil {
			r.close()
			return nil, fmt.Errorf("rule %q: %w", file, err)
		}
	}
	return r, nil
}

func (s *ruleSpec) validate(file string) error {
	base := strings.TrimSuffix(strings.TrimSuffix(path.Base(file), ".yaml"), ".yml")
	family := path.Base(path.Dir(file))
	switch {
	case !ruleIDPattern.MatchString(s.ID):
		return fmt.Errorf("id %q: want <js|py|go>-<name>, lowercase words joined by '-'", s.ID)
	case base != s.ID:
		return fmt.Errorf("id %q: the file must be named %s.yaml", s.ID, s.ID)
	case !strings.HasPrefix(s.ID, family+"-"):
		return fmt.Errorf("id %q: a rule in folder %q must start with %q", s.ID, family, family+"-")
	case len(s.Languages) == 0:
		return errors.New("languages: empty")
	case len(s.CWE) == 0:
		return errors.New("cwe: empty")
	case !slices.Contains(severities, s.Severity):
		return fmt.Errorf("severity %q: want one of %s", s.Severity, strings.Join(severities, ", "))
	case !slices.Contains(confidences, s.Confidence):
		return fmt.Errorf("confidence %q: want one of %s", s.Confidence, strings.Join(confidences, ", "))
	case strings.TrimSpace(s.Message) == "":
		return errors.New("message: empty")
	case strings.TrimSpace(s.Fix) == "":
		return errors.New("fix: empty")
	case (s.Pattern == nil) == (s.Taint == nil):
		return errors.New("want exactly one of pattern and taint")
	case s.OWASP != "" && !owaspPattern.MatchString(s.OWASP):
		return fmt.Errorf("owasp %q: want like A03:2021 or LLM01:2025", s.OWASP)
	}
	for _, l := range s.Languages {
		if !slices.Contains(languageNames, l) {
			return fmt.Errorf("languages: unknown language %q (known: %s)", l, strings.Join(languageNames, ", "))
		}
		if languageFamily[l] != family {
			return fmt.Errorf("languages: %s rules live in folder %q, not %q", l, languageFamily[l], family)
		}
	}
	for _, c := range s.CWE {
		if !cwePattern.MatchString(c) {
			return fmt.Errorf("cwe %q: want like CWE-89", c)
		}
	}
	if s.Pattern != nil && len(s.Pattern.Queries) == 0 {
		return errors.New("pattern.queries: empty")
	}
	if s.Taint != nil && !slices.Contains(callModes, s.Taint.Calls) {
		return fmt.Errorf("taint.calls %q: want lower, keep or stop", s.Taint.Calls)
	}
	return nil
}

// compileList compiles the queries of one list that apply to lang; each
// must have the capture named want. Presets expand to the engine's own
// queries.
func compileList(l *language, lang, field string, specs []querySpec, want string, presets map[string][]querySpec) ([]*query, error) {
	var out []*query
	fail := func(err error) ([]*query, error) {
		for _, q := range out {
			q.q.Close()
		}
		return nil, err
	}
	for i, s := range specs {
		var expanded []querySpec
		switch {
		case s.Preset != "" && s.Query != "":
			return fail(fmt.Errorf("%s[%d]: preset and query exclude each other", field, i))
		case s.Preset != "":
			p, ok := presets[s.Preset]
			if !ok {
				return fail(fmt.Errorf("%s[%d]: unknown preset %q (presets are for taint.sources: %s)", field, i, s.Preset, presetNames(presets)))
			}
			expanded = p
		case strings.TrimSpace(s.Query) == "":
			return fail(fmt.Errorf("%s[%d]: empty query", field, i))
		default:
			expanded = []querySpec{s}
		}
		if len(s.Languages) > 0 {
			for _, sl := range s.Languages {
				if !slices.Contains(languageNames, sl) {
					return fail(fmt.Errorf("%s[%d]: unknown language %q", field, i, sl))
				}
			}
			if !slices.Contains(s.Languages, lang) {
				continue
			}
		}
		for _, e := range expanded {
			if len(e.Languages) > 0 && !slices.Contains(e.Languages, lang) {
				continue
			}
			tq, qerr := sitter.NewQuery(l.grammar, e.Query)
			if qerr != nil {
				return fail(fmt.Errorf("%s[%d]: query does not compile for language %s: %s", field, i, lang, qerr.Error()))
			}
			idx, ok := tq.CaptureIndexForName(want)
			if !ok {
				tq.Close()
				return fail(fmt.Errorf("%s[%d]: query for language %s has no @%s capture", field, i, lang, want))
			}
			q := &query{q: tq, capture: idx}
			if want == captureSink {
				q.span, q.hasSpan = tq.CaptureIndexForName(captureMatch)
			}
			out = append(out, q)
		}
	}
	return out, nil
}

func presetNames(presets map[string][]querySpec) string {
	var names []string
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

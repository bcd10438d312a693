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

// rule is a loaded, validated rule.
type rule struct {
	spec ruleSpec
	file string // the file it came from, for errors
}

// loadRules reads and validates every <family>/<id>.yaml below the root of
// fsys. Queries are compiled afterwards, per language (compileQueries).
func loadRules(fsys fs.FS) ([]*rule, error) {
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
	seen := map[string]string{}
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("read rule %q: %w", f, err)
		}
		r, err := parseRule(f, data)
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[r.spec.ID]; ok {
			return nil, fmt.Errorf("rule %q: id %s already defined in %q", f, r.spec.ID, prev)
		}
		seen[r.spec.ID] = f
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		return nil, errors.New("no rule files (<family>/<id>.yaml) found")
	}
	slices.SortFunc(rules, func(a, b *rule) int { return strings.Compare(a.spec.ID, b.spec.ID) })
	return rules, nil
}

// parseRule decodes one rule file strictly and validates it.
func parseRule(file string, data []byte) (*rule, error) {
	var spec ruleSpec
	if err := yaml.UnmarshalStrict(data, &spec); err != nil {
		return nil, fmt.Errorf("rule %q: %w", file, err)
	}
	if err := spec.validate(file); err != nil {
		return nil, fmt.Errorf("rule %q: %w", file, err)
	}
	return &rule{spec: spec, file: file}, nil
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
	if s.Taint != nil && (len(s.Taint.Sources) == 0 || len(s.Taint.Sinks) == 0) {
		return errors.New("taint: needs sources and sinks")
	}
	for field, list := range s.queryLists() {
		for i, q := range list {
			switch {
			case q.Preset != "" && q.Query != "":
				return fmt.Errorf("%s[%d]: preset and query exclude each other", field, i)
			case q.Preset != "" && field != "taint.sources":
				return fmt.Errorf("%s[%d]: presets are for taint.sources only", field, i)
			case q.Preset == "" && strings.TrimSpace(q.Query) == "":
				return fmt.Errorf("%s[%d]: empty query", field, i)
			}
			for _, l := range q.Languages {
				if !slices.Contains(s.Languages, l) {
					return fmt.Errorf("%s[%d]: language %q is not one of the rule's languages", field, i, l)
				}
			}
		}
	}
	return nil
}

// queryLists returns the rule's query lists by field name.
func (s *ruleSpec) queryLists() map[string][]querySpec {
	if s.Pattern != nil {
		return map[string][]querySpec{
			"pattern.queries": s.Pattern.Queries, "pattern.inside": s.Pattern.Inside, "pattern.not-inside": s.Pattern.NotInside,
		}
	}
	return map[string][]querySpec{
		"taint.sources": s.Taint.Sources, "taint.sinks": s.Taint.Sinks, "taint.sanitizers": s.Taint.Sanitizers,
	}
}

func presetNames(presets map[string][]querySpec) string {
	var names []string
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

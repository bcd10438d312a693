package sast

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	sitter "github.com/tree-sitter/go-tree-sitter"
)

// role is what a query's main capture is to its rule.
type role int

const (
	roleMatch     role = iota // pattern.queries: @match
	roleInside                // pattern.inside: @scope
	roleNotInside             // pattern.not-inside: @scope
	roleSource                // taint.sources: @source
	roleSink                  // taint.sinks: @sink (and an optional @match span)
	roleSanitizer             // taint.sanitizers: @sanitizer
	numRoles
)

var roleFields = [numRoles]string{"pattern.queries", "pattern.inside", "pattern.not-inside", "taint.sources", "taint.sinks", "taint.sanitizers"}
var roleCaptures = [numRoles]string{"match", "scope", "scope", "source", "sink", "sanitizer"}

// langQuery is every query of every rule for one language, compiled as one
// tree-sitter query: compiling a query costs tens of milliseconds for the
// JavaScript and TypeScript grammars whatever its size, and one cursor pass
// over a file then serves all rules. Each pattern knows its rule and role.
type langQuery struct {
	q        *sitter.Query
	patterns []segment // by pattern index
	// captures holds the index of each role's capture name, -1 when no
	// pattern uses it; span is @match's (the reported span of a sink).
	captures [numRoles]int
	span     int
}

// segment is one query of one rule, as placed in a langQuery.
type segment struct {
	rule  int // index in Engine.rules
	role  role
	field string // taint.sinks[2], for errors
	start int    // byte offset in the combined source
	text  string
}

func (lq *langQuery) close() {
	if lq.q != nil {
		lq.q.Close()
	}
}

// compileQueries builds the langQuery of each language from the rules'
// queries, presets expanded. An error names the rule file, the field and
// the language.
//
// The languages compile in parallel: compiling costs milliseconds per
// pattern for the JavaScript and TypeScript grammars.
func compileQueries(langs map[string]*language, rules []*rule, presets map[string][]querySpec) (map[string]*langQuery, error) {
	segsByLang := map[string][]segment{}
	for _, lang := range languageNames {
		for ri, r := range rules {
			if !slices.Contains(r.spec.Languages, lang) {
				continue
			}
			added, err := ruleSegments(ri, r, lang, presets)
			if err != nil {
				return nil, err
			}
			segsByLang[lang] = append(segsByLang[lang], added...)
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		out  = map[string]*langQuery{}
		errs = map[string]error{}
	)
	for lang, segs := range segsByLang {
		wg.Go(func() {
			lq, err := compileSegments(langs[lang], lang, rules, segs)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[lang] = err
				return
			}
			out[lang] = lq
		})
	}
	wg.Wait()
	for _, lang := range languageNames { // the first language's error, deterministically
		if err := errs[lang]; err != nil {
			for _, lq := range out {
				lq.close()
			}
			return nil, err
		}
	}
	return out, nil
}

// ruleSegments lists one rule's queries for lang, checking that each has
// its role's capture and that the rule has something to run there.
func ruleSegments(ri int, r *rule, lang string, presets map[string][]querySpec) ([]segment, error) {
	lists := [numRoles][]querySpec{}
	if p := r.spec.Pattern; p != nil {
		lists[roleMatch], lists[roleInside], lists[roleNotInside] = p.Queries, p.Inside, p.NotInside
	} else {
		t := r.spec.Taint
		lists[roleSource], lists[roleSink], lists[roleSanitizer] = t.Sources, t.Sinks, t.Sanitizers
	}
	var segs []segment
	var count [numRoles]int
	for ro, list := range lists {
		for i, q := range list {
			field := fmt.Sprintf("%s[%d]", roleFields[ro], i)
			if len(q.Languages) > 0 && !slices.Contains(q.Languages, lang) {
				continue
			}
			expanded := []querySpec{q}
			if q.Preset != "" {
				p, ok := presets[q.Preset]
				if !ok {
					return nil, fmt.Errorf("rule %q: %s: unknown preset %q (presets: %s)", r.file, field, q.Preset, presetNames(presets))
				}
				expanded = p
			}
			for _, e := range expanded {
				if len(e.Languages) > 0 && !slices.Contains(e.Languages, lang) {
					continue
				}
				if !hasCapture(e.Query, roleCaptures[ro]) {
					return nil, fmt.Errorf("rule %q: %s: query for language %s has no @%s capture", r.file, field, lang, roleCaptures[ro])
				}
				segs = append(segs, segment{rule: ri, role: role(ro), field: field, text: e.Query})
				count[ro]++
			}
		}
	}
	switch {
	case r.spec.Pattern != nil && count[roleMatch] == 0:
		return nil, fmt.Errorf("rule %q: language %s: no pattern query applies to it", r.file, lang)
	case r.spec.Taint != nil && (count[roleSource] == 0 || count[roleSink] == 0):
		return nil, fmt.Errorf("rule %q: language %s: taint rule needs at least one source and one sink query for it", r.file, lang)
	}
	return segs, nil
}

// hasCapture reports whether query text uses @name (outside ; comments).
func hasCapture(text, name string) bool {
	re := regexp.MustCompile(`@` + regexp.QuoteMeta(name) + `\b`)
	for _, l := range strings.Split(text, "\n") {
		if i := strings.Index(l, ";"); i >= 0 && !strings.Contains(l[:i], `"`) {
			l = l[:i]
		}
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// compileSegments joins the segments into one query source and compiles
// it; a compile error is attributed to its segment by offset.
func compileSegments(l *language, lang string, rules []*rule, segs []segment) (*langQuery, error) {
	var b strings.Builder
	for i := range segs {
		segs[i].start = b.Len()
		b.WriteString(segs[i].text)
		b.WriteString("\n")
	}
	src := b.String()
	q, qerr := sitter.NewQuery(l.grammar, src)
	if qerr != nil {
		i := segmentAt(segs, int(qerr.Offset))
		s := segs[i]
		msg := qerr.Message
		if one, err1 := sitter.NewQuery(l.grammar, s.text); err1 != nil {
			msg = err1.Error()
		} else {
			one.Close()
		}
		return nil, fmt.Errorf("rule %q: %s: query does not compile for language %s: %s", rules[s.rule].file, s.field, lang, msg)
	}
	lq := &langQuery{q: q, patterns: make([]segment, q.PatternCount())}
	for p := range q.PatternCount() {
		seg := segs[segmentAt(segs, int(q.StartByteForPattern(p)))]
		// go-tree-sitter keeps a predicate it does not know (#eqq?, a
		// typo) as a "general" one and never evaluates it: the pattern
		// would match as if it were not there.
		if gp := q.GeneralPredicates(p); len(gp) > 0 {
			q.Close()
			return nil, fmt.Errorf("rule %q: %s: language %s: unknown predicate #%s (known: #eq? #not-eq? #any-eq? #any-not-eq? #match? #not-match? #any-match? #any-not-match? #any-of? #not-any-of?)",
				rules[seg.rule].file, seg.field, lang, gp[0].Operator)
		}
		lq.patterns[p] = seg
	}
	for ro := range numRoles {
		lq.captures[ro] = captureIndex(q, roleCaptures[ro])
	}
	lq.span = captureIndex(q, "match")
	return lq, nil
}

// segmentAt finds the segment holding byte offset off of the joined source.
func segmentAt(segs []segment, off int) int {
	i, found := slices.BinarySearchFunc(segs, off, func(s segment, off int) int { return s.start - off })
	if !found {
		i--
	}
	return max(i, 0)
}

func captureIndex(q *sitter.Query, name string) int {
	if i, ok := q.CaptureIndexForName(name); ok {
		return int(i)
	}
	return -1
}

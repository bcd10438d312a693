package sast

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	sitter "github.com/tree-sitter/go-tree-sitter"

	"github.com/tollgate/tollgate/report"
)

// matchLimit bounds the in-progress matches of one query execution, so a
// hostile file cannot make a query hold unbounded state.
const matchLimit = 16384

// errDeadline stops the work on one file when its deadline passes.
var errDeadline = fmt.Errorf("deadline: %w", ErrParseTimeout)

// source is one parsed file being matched against the rules.
type source struct {
	path     string
	lang     string
	src      []byte
	root     *sitter.Node
	cursor   *sitter.QueryCursor
	deadline time.Time
	ctx      context.Context
	fields   map[string]uint16 // the grammar's field ids by name
	log      *slog.Logger
	found    map[findingKey]*finding
}

// finding is a weakness before folding; its fingerprint is computed only
// if it survives (hashing a span walks its whole subtree).
type finding struct {
	w    report.Weakness
	node sitter.Node
}

type findingKey struct {
	rule       string
	start, end uint
}

// scanSource parses src as lang and runs every rule for lang on it, all
// within the per-file deadline. It returns the findings and the line count.
func (e *Engine) scanSource(ctx context.Context, path, lang string, src []byte) ([]report.Weakness, int, error) {
	if err := skipContent(path, lang, src); err != nil {
		return nil, 0, err
	}
	deadline := time.Now().Add(e.opts.ParseTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	tree, err := e.parse(ctx, lang, src, deadline)
	if err != nil {
		return nil, 0, err
	}
	defer tree.Close()
	root := tree.RootNode()
	if root.IsError() {
		return nil, 0, ErrParseError
	}
	cursor := sitter.NewQueryCursor()
	defer cursor.Close()
	cursor.SetMatchLimit(matchLimit)
	s := &source{
		path: path, lang: lang, src: src, root: root, cursor: cursor,
		deadline: deadline, ctx: ctx, fields: e.langs[lang].fields, log: e.log, found: map[findingKey]*finding{},
	}
	if lq := e.queries[lang]; lq != nil {
		byRule, err := s.capture(lq)
		if err == nil {
			err = s.matchRules(e.rules, byRule)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, 0, ctx.Err()
			}
			return nil, 0, err
		}
	}
	ws, err := s.weaknesses()
	if err != nil {
		return nil, 0, err
	}
	return ws, countLines(src), nil
}

// parse parses src with a pooled parser, stopping at the deadline (the
// file is then ErrParseTimeout) or when ctx ends. The deprecated timeout
// and cancellation flag are used rather than ParseWithOptions: in
// go-tree-sitter v0.25.0 ParseWithOptions registers its progress callback
// with go-pointer and never releases it, a leak per parse.
func (e *Engine) parse(ctx context.Context, lang string, src []byte, deadline time.Time) (*sitter.Tree, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	remaining := time.Until(deadline)
	if remaining <= 0 {
		return nil, errDeadline
	}
	l := e.langs[lang]
	p, err := l.parser()
	if err != nil {
		return nil, fmt.Errorf("parser for %s: %w", lang, err)
	}
	stopped := true
	defer func() {
		if stopped {
			l.discard(p)
		} else {
			l.release(p)
		}
	}()
	p.SetTimeoutMicros(uint64(max(remaining.Microseconds(), 1)))
	defer p.SetTimeoutMicros(0)

	// The flag is pinned: C holds its address while parsing.
	flag := new(uintptr)
	var pin runtime.Pinner
	pin.Pin(flag)
	defer pin.Unpin()
	p.SetCancellationFlag(flag)
	defer p.SetCancellationFlag(nil)
	stop := context.AfterFunc(ctx, func() { atomic.StoreUintptr(flag, 1) })
	defer stop()

	tree := p.Parse(src, nil)
	stopped = tree == nil
	if tree == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, errDeadline
	}
	return tree, nil
}

// captured is one node a query captured, with the match's span node.
type captured struct {
	node       sitter.Node
	span       sitter.Node
	start, end uint // node's bytes, read once (each read is a cgo call)
}

// ruleCaptures are one rule's captured nodes in a file, by role.
type ruleCaptures [numRoles][]captured

// capture runs the language's query over the file once, within the
// deadline, and sorts the captures by rule and role.
func (s *source) capture(lq *langQuery) (map[int]*ruleCaptures, error) {
	remaining := time.Until(s.deadline)
	if remaining <= 0 {
		return nil, errDeadline
	}
	s.cursor.SetTimeoutMicros(uint64(max(remaining.Microseconds(), 1)))
	out := map[int]*ruleCaptures{}
	matches := s.cursor.Matches(lq.q, s.root, s.src)
	for m := matches.Next(); m != nil; m = matches.Next() {
		seg := lq.patterns[m.PatternIndex]
		want := lq.captures[seg.role]
		var span *sitter.Node
		if seg.role == roleSink && lq.span >= 0 {
			for i := range m.Captures {
				if int(m.Captures[i].Index) == lq.span {
					span = &m.Captures[i].Node
				}
			}
		}
		rc := out[seg.rule]
		if rc == nil {
			rc = &ruleCaptures{}
			out[seg.rule] = rc
		}
		for _, c := range m.Captures {
			if int(c.Index) != want {
				continue
			}
			cp := captured{node: c.Node, span: c.Node, start: c.Node.StartByte(), end: c.Node.EndByte()}
			if span != nil {
				cp.span = *span
			}
			rc[seg.role] = append(rc[seg.role], cp)
		}
	}
	if time.Now().After(s.deadline) {
		return nil, errDeadline
	}
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	if s.cursor.DidExceedMatchLimit() {
		s.log.WarnContext(s.ctx, "sast: query match limit reached, some matches may be missing", "file", s.path, "limit", matchLimit)
	}
	return out, nil
}

// matchRules runs each rule that captured something, in rule order.
func (s *source) matchRules(rules []*rule, byRule map[int]*ruleCaptures) error {
	for ri, r := range rules {
		rc := byRule[ri]
		if rc == nil {
			continue
		}
		var err error
		if r.spec.Pattern != nil {
			err = s.matchPattern(r, rc)
		} else {
			err = s.matchTaint(r, rc)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// matchPattern reports every @match of a pattern rule that is inside a
// @scope of its inside queries (when it has any) and inside none of its
// not-inside queries.
func (s *source) matchPattern(r *rule, rc *ruleCaptures) error {
	needInside := len(r.spec.Pattern.Inside) > 0
	for i, m := range rc[roleMatch] {
		if i%256 == 255 && time.Now().After(s.deadline) {
			return errDeadline
		}
		if needInside && !within(m, rc[roleInside]) {
			continue
		}
		if within(m, rc[roleNotInside]) {
			continue
		}
		s.add(r, m.node, nil, r.spec.Confidence)
	}
	return nil
}

// within reports whether c lies inside one of the scopes.
func within(c captured, scopes []captured) bool {
	for _, sc := range scopes {
		if sc.start <= c.start && c.end <= sc.end {
			return true
		}
	}
	return false
}

// add records a finding for rule r at node n, one per (rule, span).
func (s *source) add(r *rule, n sitter.Node, trace []report.TraceStep, confidence string) {
	key := findingKey{rule: r.spec.ID, start: n.StartByte(), end: n.EndByte()}
	if prev, ok := s.found[key]; ok {
		if confidenceRank(confidence) > confidenceRank(prev.w.Confidence) {
			prev.w.Confidence, prev.w.Trace = confidence, trace
		}
		return
	}
	if trace == nil {
		trace = []report.TraceStep{}
	}
	start, end := n.StartPosition(), n.EndPosition()
	s.found[key] = &finding{node: n, w: report.Weakness{
		Rule:       r.spec.ID,
		CWE:        r.spec.CWE,
		OWASP:      r.spec.OWASP,
		Severity:   r.spec.Severity,
		Confidence: confidence,
		File:       s.path,
		Line:       int(start.Row) + 1,
		EndLine:    int(end.Row) + 1,
		Column:     int(start.Column) + 1,
		Message:    strings.TrimSpace(r.spec.Message),
		Fix:        strings.TrimSpace(r.spec.Fix),
		References: r.spec.References,
		Trace:      trace,
	}}
}

// weaknesses returns the findings, nested duplicates folded: a finding of a
// rule whose span lies inside another finding of the same rule is dropped.
func (s *source) weaknesses() ([]report.Weakness, error) {
	keys := make([]findingKey, 0, len(s.found))
	for k := range s.found {
		keys = append(keys, k)
	}
	// By rule, then start, the widest span first: a span is nested when
	// it ends before the furthest end seen so far for its rule.
	slices.SortFunc(keys, func(a, b findingKey) int {
		return cmp.Or(strings.Compare(a.rule, b.rule), cmp.Compare(a.start, b.start), cmp.Compare(b.end, a.end))
	})
	out := make([]report.Weakness, 0, len(keys))
	var rule string
	var reach uint
	for i, k := range keys {
		if i == 0 || k.rule != rule {
			rule, reach = k.rule, 0
		} else if k.end <= reach {
			continue
		}
		reach = max(reach, k.end)
		if time.Now().After(s.deadline) {
			return nil, errDeadline
		}
		f := s.found[k]
		f.w.Fingerprint = fingerprint(k.rule, f.node, s.src)
		out = append(out, f.w)
	}
	return out, nil
}

func confidenceRank(c string) int {
	switch c {
	case "high":
		return 3
	case "medium":
		return 2
	case "low":
		return 1
	}
	return 0
}

// fingerprint hashes the rule id and the span's tokens, comments dropped
// and whitespace runs folded (tokens are joined by one space, so spacing
// between them does not count), so it survives reformatting and line shifts.
func fingerprint(ruleID string, n sitter.Node, src []byte) string {
	h := sha256.New()
	h.Write([]byte(ruleID))
	h.Write([]byte{0})
	first := true
	var tokens func(c *sitter.Node)
	tokens = func(c *sitter.Node) {
		if strings.HasSuffix(c.Kind(), "comment") {
			return
		}
		if c.ChildCount() == 0 {
			text := strings.Fields(c.Utf8Text(src))
			if len(text) == 0 {
				return
			}
			if !first {
				h.Write([]byte{' '})
			}
			first = false
			h.Write([]byte(strings.Join(text, " ")))
			return
		}
		for i := range c.ChildCount() {
			if ch := c.Child(i); ch != nil {
				tokens(ch)
			}
		}
	}
	tokens(&n)
	return "tgw1:" + hex.EncodeToString(h.Sum(nil))
}

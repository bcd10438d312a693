package sast

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	sitter "github.com/tree-sitter/go-tree-sitter"

	"github.com/tollgate/tollgate/report"
)

// matchLimit bounds the in-progress matches of one query execution, so a
// hostile file cannot make a query hold unbounded state.
const matchLimit = 1024

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
	found    map[findingKey]*report.Weakness
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
		deadline: deadline, ctx: ctx, found: map[findingKey]*report.Weakness{},
	}
	for _, r := range e.byLang[lang] {
		c := r.langs[lang]
		if r.spec.Pattern != nil {
			err = s.matchPattern(r, c)
		} else {
			err = s.matchTaint(r, c)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, 0, ctx.Err()
			}
			return nil, 0, err
		}
	}
	return s.weaknesses(), countLines(src), nil
}

// parse parses src with a pooled parser, stopping at the deadline (the
// file is then ErrParseTimeout) or when ctx ends. The deprecated timeout
// and cancellation flag are used rather than ParseWithOptions: in
// go-tree-sitter v0.25.0 ParseWithOptions registers its progress callback
// with go-pointer and never releases it, a leak per parse.
func (e *Engine) parse(ctx context.Context, lang string, src []byte, deadline time.Time) (*sitter.Tree, error) {
	l := e.langs[lang]
	p, err := l.parser()
	if err != nil {
		return nil, fmt.Errorf("parser for %s: %w", lang, err)
	}
	defer l.release(p)
	remaining := time.Until(deadline)
	if remaining <= 0 {
		return nil, errDeadline
	}
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
	node sitter.Node
	span sitter.Node
}

// run executes q over the file and returns its main capture's nodes (and
// each match's @match span for sink queries), within the deadline.
func (s *source) run(q *query) ([]captured, error) {
	remaining := time.Until(s.deadline)
	if remaining <= 0 {
		return nil, errDeadline
	}
	s.cursor.SetTimeoutMicros(uint64(max(remaining.Microseconds(), 1)))
	var out []captured
	matches := s.cursor.Matches(q.q, s.root, s.src)
	for m := matches.Next(); m != nil; m = matches.Next() {
		var span *sitter.Node
		if q.hasSpan {
			for i := range m.Captures {
				if uint(m.Captures[i].Index) == q.span {
					span = &m.Captures[i].Node
				}
			}
		}
		for _, c := range m.Captures {
			if uint(c.Index) != q.capture {
				continue
			}
			cp := captured{node: c.Node, span: c.Node}
			if span != nil {
				cp.span = *span
			}
			out = append(out, cp)
		}
	}
	if time.Now().After(s.deadline) {
		return nil, errDeadline
	}
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// runAll runs a list of queries and concatenates their captures.
func (s *source) runAll(qs []*query) ([]captured, error) {
	var out []captured
	for _, q := range qs {
		c, err := s.run(q)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, nil
}

// matchPattern reports every @match of a pattern rule that is inside a
// @scope of its inside queries (when it has any) and inside none of its
// not-inside queries.
func (s *source) matchPattern(r *rule, c *compiledRule) error {
	matches, err := s.runAll(c.match)
	if err != nil || len(matches) == 0 {
		return err
	}
	inside, err := s.runAll(c.inside)
	if err != nil {
		return err
	}
	notInside, err := s.runAll(c.notInside)
	if err != nil {
		return err
	}
	for _, m := range matches {
		if len(c.inside) > 0 && !within(m.node, inside) {
			continue
		}
		if within(m.node, notInside) {
			continue
		}
		s.add(r, m.node, nil, r.spec.Confidence)
	}
	return nil
}

// within reports whether n lies inside one of the scopes.
func within(n sitter.Node, scopes []captured) bool {
	for _, sc := range scopes {
		if sc.node.StartByte() <= n.StartByte() && n.EndByte() <= sc.node.EndByte() {
			return true
		}
	}
	return false
}

// add records a finding for rule r at node n, one per (rule, span).
func (s *source) add(r *rule, n sitter.Node, trace []report.TraceStep, confidence string) {
	key := findingKey{rule: r.spec.ID, start: n.StartByte(), end: n.EndByte()}
	if prev, ok := s.found[key]; ok {
		if confidenceRank(confidence) > confidenceRank(prev.Confidence) {
			prev.Confidence, prev.Trace = confidence, trace
		}
		return
	}
	if trace == nil {
		trace = []report.TraceStep{}
	}
	start, end := n.StartPosition(), n.EndPosition()
	s.found[key] = &report.Weakness{
		Rule:        r.spec.ID,
		CWE:         r.spec.CWE,
		OWASP:       r.spec.OWASP,
		Severity:    r.spec.Severity,
		Confidence:  confidence,
		File:        s.path,
		Line:        int(start.Row) + 1,
		EndLine:     int(end.Row) + 1,
		Column:      int(start.Column) + 1,
		Message:     strings.TrimSpace(r.spec.Message),
		Fix:         strings.TrimSpace(r.spec.Fix),
		References:  r.spec.References,
		Fingerprint: fingerprint(r.spec.ID, n, s.src),
		Trace:       trace,
	}
}

// weaknesses returns the findings, nested duplicates folded: a finding of a
// rule whose span lies inside another finding of the same rule is dropped.
func (s *source) weaknesses() []report.Weakness {
	var out []report.Weakness
	for k, w := range s.found {
		nested := false
		for o := range s.found {
			if o != k && o.rule == k.rule && o.start <= k.start && k.end <= o.end {
				nested = true
				break
			}
		}
		if !nested {
			out = append(out, *w)
		}
	}
	return out
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

// fingerprint hashes the rule id and the span's text with comments dropped
// and whitespace runs folded, so it survives reformatting and line shifts.
func fingerprint(ruleID string, n sitter.Node, src []byte) string {
	var b strings.Builder
	pos := n.StartByte()
	var dropComments func(c *sitter.Node)
	dropComments = func(c *sitter.Node) {
		if strings.HasSuffix(c.Kind(), "comment") {
			b.Write(src[pos:c.StartByte()])
			b.WriteByte(' ')
			pos = c.EndByte()
			return
		}
		for i := range c.ChildCount() {
			if ch := c.Child(i); ch != nil {
				dropComments(ch)
			}
		}
	}
	dropComments(&n)
	b.Write(src[pos:n.EndByte()])
	h := sha256.New()
	h.Write([]byte(ruleID))
	h.Write([]byte{0})
	h.Write([]byte(strings.Join(strings.Fields(b.String()), " ")))
	return "tgw1:" + hex.EncodeToString(h.Sum(nil))
}

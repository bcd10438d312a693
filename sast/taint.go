package sast

import (
	"maps"
	"slices"
	"strings"
	"time"

	sitter "github.com/tree-sitter/go-tree-sitter"

	"github.com/tollgate/tollgate/report"
)

// maxTrace bounds a trace: the source, the last steps and the sink.
const maxTrace = 16

// taint is what the analysis knows of a tainted value: how it got there,
// and whether it went through a call the engine does not know (then the
// finding's confidence is lowered).
type taint struct {
	steps   []report.TraceStep
	lowered bool
}

// with returns t extended by one step.
func (t *taint) with(line int, step string) *taint {
	steps := make([]report.TraceStep, 0, len(t.steps)+1)
	steps = append(steps, t.steps...)
	if n := len(steps); n >= maxTrace {
		steps = append(steps[:1], steps[n-maxTrace+2:]...)
	}
	if n := len(steps); n > 0 && steps[n-1].Line == line && steps[n-1].Step == step {
		return &taint{steps: steps, lowered: t.lowered}
	}
	return &taint{steps: append(steps, report.TraceStep{Line: line, Step: step}), lowered: t.lowered}
}

// env maps a variable (or a member path like this.sql) to its taint.
type env map[string]*taint

// taintRun is the analysis of one taint rule over one file.
type taintRun struct {
	s          *source
	r          *rule
	syn        *syntax
	sources    map[uintptr]bool
	sinks      map[uintptr]sitter.Node // sink node -> reported span
	sinkStarts []uint                  // sorted start bytes of the sinks
	sanitizers map[uintptr]bool
	calls      string
	fields     map[string]uint16
	depth      int // branches entered: a clean assignment there cleans nothing
	visited    int
	err        error
}

// matchTaint finds the rule's sources, sinks and sanitizers, then walks
// every function in document order, following assignments, and reports a
// sink whose value is tainted.
func (s *source) matchTaint(r *rule, rc *ruleCaptures) error {
	sinks, sources, sanitizers := rc[roleSink], rc[roleSource], rc[roleSanitizer]
	if len(sinks) == 0 || len(sources) == 0 {
		return nil
	}
	t := &taintRun{
		s: s, r: r, syn: syntaxes[s.lang],
		sources: map[uintptr]bool{}, sinks: map[uintptr]sitter.Node{}, sanitizers: map[uintptr]bool{},
		calls: r.spec.Taint.Calls, fields: s.fields,
	}
	for _, c := range sources {
		t.sources[c.node.Id()] = true
	}
	for _, c := range sinks {
		t.sinks[c.node.Id()] = c.span
		t.sinkStarts = append(t.sinkStarts, c.start)
	}
	slices.Sort(t.sinkStarts)
	for _, c := range sanitizers {
		t.sanitizers[c.node.Id()] = true
	}
	root := *s.root
	t.function(root, env{})
	return t.err
}

// child returns n's child in field, through the field ids of the
// grammar (ChildByFieldName allocates a C string per call).
func (t *taintRun) child(n sitter.Node, field string) *sitter.Node {
	id := t.fields[field]
	if id == 0 {
		return nil
	}
	return n.ChildByFieldId(id)
}

// tick counts visited nodes and checks the deadline now and then.
func (t *taintRun) tick() bool {
	if t.err != nil {
		return false
	}
	t.visited++
	if t.visited%1024 == 0 {
		if time.Now().After(t.s.deadline) {
			t.err = errDeadline
		} else if err := t.s.ctx.Err(); err != nil {
			t.err = err
		}
	}
	return t.err == nil
}

// function analyses a function (or the file's top level) with vars, a copy
// of the enclosing scope's, adding parameters that are sources.
func (t *taintRun) function(fn sitter.Node, vars env) {
	if params := t.parametersOf(fn); params != nil {
		t.seedParameters(*params, vars)
	}
	if t.syn.functions[fn.Kind()] {
		if body := t.child(fn, "body"); body != nil {
			t.walk(*body, vars)
		}
		return
	}
	for i := range fn.NamedChildCount() {
		t.walk(*fn.NamedChild(i), vars)
	}
}

// parametersOf returns a function's parameter list (or its single
// parameter, for x => ...).
func (t *taintRun) parametersOf(fn sitter.Node) *sitter.Node {
	if p := t.child(fn, "parameters"); p != nil {
		return p
	}
	return t.child(fn, "parameter")
}

// seedParameters taints each source node inside a parameter list: the name
// it captures is tainted throughout the function.
func (t *taintRun) seedParameters(params sitter.Node, vars env) {
	var visit func(n sitter.Node)
	visit = func(n sitter.Node) {
		if t.sources[n.Id()] {
			name := n.Utf8Text(t.s.src)
			vars[name] = &taint{steps: []report.TraceStep{{Line: line(n), Step: "source: " + short(name)}}}
			return
		}
		for i := range n.NamedChildCount() {
			visit(*n.NamedChild(i))
		}
	}
	visit(params)
}

// walk visits n and its descendants in document order: functions open
// scopes, assignments bind, sinks are checked against the current scope.
func (t *taintRun) walk(n sitter.Node, vars env) {
	if !t.tick() {
		return
	}
	kind := n.Kind()
	if t.syn.branches[kind] {
		t.depth++
		defer func() { t.depth-- }()
	}
	if t.syn.functions[kind] {
		// A function without a sink cannot report, nor change the
		// variables around it: skip it.
		if t.holdsSink(n) {
			depth := t.depth
			t.depth = 0
			t.function(n, maps.Clone(vars))
			t.depth = depth
		}
		return
	}
	if span, ok := t.sinks[n.Id()]; ok {
		if v := t.eval(n, vars); v != nil {
			t.report(n, span, v)
		}
	}
	if a, ok := t.syn.assignments[kind]; ok {
		t.assign(n, a, vars)
		return
	}
	if c, ok := t.syn.calls[kind]; ok {
		t.mutate(n, c, vars)
	}
	for i := range n.NamedChildCount() {
		t.walk(*n.NamedChild(i), vars)
	}
}

// holdsSink reports whether a sink starts inside n.
func (t *taintRun) holdsSink(n sitter.Node) bool {
	i, _ := slices.BinarySearch(t.sinkStarts, n.StartByte())
	return i < len(t.sinkStarts) && t.sinkStarts[i] < n.EndByte()
}

// assign walks the right side, binds its taint to the left side, then
// walks the rest (a for loop's body, say).
func (t *taintRun) assign(n sitter.Node, a assignment, vars env) {
	right := t.child(n, a.right)
	if right != nil {
		t.walk(*right, vars)
	}
	cursor := n.Walk()
	lefts := n.ChildrenByFieldName(a.left, cursor)
	cursor.Close()
	if len(lefts) > 0 {
		t.bind(n, lefts, right, a.augmented, vars)
	}
	for i := range n.NamedChildCount() {
		c := n.NamedChild(i)
		if right != nil && c.Id() == right.Id() {
			continue
		}
		t.walk(*c, vars)
	}
}

// mutate taints the object of parts.push(x) (and the other mutators) when
// an argument is tainted, and the &x arguments of a decoder whose input is
// tainted (json.NewDecoder(r.Body).Decode(&x), c.ShouldBindJSON(&x)).
func (t *taintRun) mutate(n sitter.Node, c call, vars env) {
	callee := t.child(n, c.callee)
	if callee == nil {
		return
	}
	name := calleeName(*callee, t.s.src)
	if decoders[name] {
		t.decode(n, *callee, c, vars)
		return
	}
	if !mutators[name] {
		return
	}
	field, ok := t.syn.members[callee.Kind()]
	if !ok {
		return
	}
	obj := t.child(*callee, field)
	args := t.child(n, c.args)
	if obj == nil || args == nil {
		return
	}
	if v := t.any(*args, vars); v != nil {
		name := obj.Utf8Text(t.s.src)
		vars[name] = v.with(line(n), "assign: "+short(name))
	}
}

// decode taints each &x argument of a decoding call when its receiver or
// another argument is tainted.
func (t *taintRun) decode(n, callee sitter.Node, c call, vars env) {
	args := t.child(n, c.args)
	if args == nil {
		return
	}
	var v *taint
	if field, ok := t.syn.members[callee.Kind()]; ok {
		if obj := t.child(callee, field); obj != nil {
			v = t.eval(*obj, vars)
		}
	}
	var outs []string
	for _, a := range namedChildren(*args) {
		if a.Kind() == "unary_expression" && strings.HasPrefix(a.Utf8Text(t.s.src), "&") {
			if op := t.child(a, "operand"); op != nil {
				outs = append(outs, op.Utf8Text(t.s.src))
			}
			continue
		}
		if v == nil {
			v = t.eval(a, vars)
		}
	}
	if v == nil {
		return
	}
	for _, name := range outs {
		vars[name] = v.with(line(n), "assign: "+short(name))
	}
}

// bind gives each name on the left the taint of its value on the right:
// pairwise for a, b = x, y; the taint of the whole right side otherwise.
func (t *taintRun) bind(at sitter.Node, lefts []sitter.Node, right *sitter.Node, augmented bool, vars env) {
	if len(lefts) == 1 && isList(lefts[0]) {
		lefts = namedChildren(lefts[0])
	}
	var rights []sitter.Node
	if right != nil && isList(*right) {
		rights = namedChildren(*right)
	}
	for i, l := range lefts {
		var value *taint
		switch {
		case right == nil:
		case len(rights) == len(lefts) && len(lefts) > 1:
			value = t.eval(rights[i], vars)
		default:
			value = t.eval(*right, vars)
		}
		t.bindOne(at, l, value, augmented, vars)
	}
}

// bindOne binds one left-hand side: a name, a member path, a subscript
// (which taints its object, never cleans it) or a destructuring pattern.
func (t *taintRun) bindOne(at, left sitter.Node, value *taint, augmented bool, vars env) {
	kind := left.Kind()
	_, member := t.syn.members[kind]
	switch {
	case isSubscript(kind):
		if value == nil {
			return
		}
		if obj := t.child(left, t.syn.members[kind]); obj != nil {
			name := obj.Utf8Text(t.s.src)
			vars[name] = value.with(line(at), "assign: "+short(name))
		}
	case t.syn.identifiers[kind] || member:
		name := left.Utf8Text(t.s.src)
		switch {
		case value != nil:
			vars[name] = value.with(line(at), "assign: "+short(name))
		case !augmented && t.depth == 0: // x += clean keeps x's taint; x = clean clears it, unless in a branch
			delete(vars, name)
		}
	default:
		// A pattern: { id, name } = req.query, [a, b] = row, (a, b) = t.
		for _, c := range namedChildren(left) {
			if c.Kind() == "pair_pattern" {
				if v := t.child(c, "value"); v != nil {
					t.bindOne(at, *v, value, augmented, vars)
				}
				continue
			}
			t.bindOne(at, c, value, augmented, vars)
		}
	}
}

func isSubscript(kind string) bool {
	return kind == "subscript_expression" || kind == "subscript" || kind == "index_expression"
}

func isList(n sitter.Node) bool {
	switch n.Kind() {
	case "expression_list", "pattern_list", "tuple_pattern", "tuple":
		return true
	}
	return false
}

func namedChildren(n sitter.Node) []sitter.Node {
	out := make([]sitter.Node, 0, n.NamedChildCount())
	for i := range n.NamedChildCount() {
		c := n.NamedChild(i)
		if c.Kind() != "comment" {
			out = append(out, *c)
		}
	}
	return out
}

// eval returns the taint of the value of expression n, nil when clean.
func (t *taintRun) eval(n sitter.Node, vars env) *taint {
	if !t.tick() {
		return nil
	}
	id := n.Id()
	if t.sanitizers[id] {
		return nil
	}
	if t.sources[id] {
		return &taint{steps: []report.TraceStep{{Line: line(n), Step: "source: " + short(n.Utf8Text(t.s.src))}}}
	}
	kind := n.Kind()
	syn := t.syn
	switch {
	case syn.functions[kind] || syn.clean[kind]:
		return nil
	case syn.identifiers[kind]:
		return vars[n.Utf8Text(t.s.src)]
	}
	if field, ok := syn.members[kind]; ok {
		if p := t.child(n, "property"); p != nil && syn.cleanMembers[p.Utf8Text(t.s.src)] {
			return nil
		}
		if v := vars[n.Utf8Text(t.s.src)]; v != nil {
			return v
		}
		if obj := t.child(n, field); obj != nil {
			return t.eval(*obj, vars)
		}
		return nil
	}
	if c, ok := syn.calls[kind]; ok {
		return t.evalCall(n, c, vars)
	}
	if syn.concats[kind] {
		op := t.child(n, "operator")
		if op == nil {
			return nil
		}
		step, ok := syn.concatOps[op.Utf8Text(t.s.src)]
		if !ok {
			return nil
		}
		v := t.any(n, vars)
		if v != nil && step != "" {
			v = v.with(line(n), step)
		}
		return v
	}
	if syn.templates[kind] {
		if v := t.any(n, vars); v != nil {
			return v.with(line(n), "format")
		}
		return nil
	}
	if branches, ok := syn.conditionals[kind]; ok {
		for _, f := range branches {
			if b := t.child(n, f); b != nil {
				if v := t.eval(*b, vars); v != nil {
					return v
				}
			}
		}
		return nil
	}
	if kind == "keyword_argument" { // Python f(x, key=value): the name is no variable
		if v := t.child(n, "value"); v != nil {
			return t.eval(*v, vars)
		}
		return nil
	}
	if kind == "conditional_expression" && n.NamedChildCount() == 3 { // Python a if c else b
		if v := t.eval(*n.NamedChild(0), vars); v != nil {
			return v
		}
		return t.eval(*n.NamedChild(2), vars)
	}
	return t.any(n, vars)
}

// any returns the taint of the first tainted named child.
func (t *taintRun) any(n sitter.Node, vars env) *taint {
	for i := range n.NamedChildCount() {
		if v := t.eval(*n.NamedChild(i), vars); v != nil {
			return v
		}
	}
	return nil
}

// evalCall: a method of a tainted object returns taint (req.query.id.trim());
// a string builder (format, Sprintf, join) carries its arguments' taint; any
// other call with a tainted argument follows the rule's calls mode.
func (t *taintRun) evalCall(n sitter.Node, c call, vars env) *taint {
	callee := t.child(n, c.callee)
	name := ""
	if callee != nil {
		if t.syn.cleanCalls[callee.Utf8Text(t.s.src)] {
			return nil
		}
		name = calleeName(*callee, t.s.src)
		if field, ok := t.syn.members[callee.Kind()]; ok {
			if obj := t.child(*callee, field); obj != nil {
				if v := t.eval(*obj, vars); v != nil {
					return v
				}
			}
		}
	}
	args := t.child(n, c.args)
	if args == nil {
		return nil
	}
	v := t.any(*args, vars)
	if v == nil {
		return nil
	}
	if formatFuncs[name] {
		return v.with(line(n), "format")
	}
	label := "call: " + short(textOf(callee, t.s.src))
	if callee != nil && t.syn.passCalls[callee.Utf8Text(t.s.src)] {
		return v.with(line(n), label)
	}
	switch t.calls {
	case "stop":
		return nil
	case "keep":
		return v.with(line(n), label)
	default:
		v = v.with(line(n), label)
		v.lowered = true
		return v
	}
}

// calleeName is the last name of a callee: query for db.query, Sprintf
// for fmt.Sprintf.
func calleeName(callee sitter.Node, src []byte) string {
	text := callee.Utf8Text(src)
	if i := strings.LastIndexAny(text, ".>"); i >= 0 {
		text = text[i+1:]
	}
	return strings.TrimSpace(text)
}

// report records a finding at the sink's span with the trace that reached it.
func (t *taintRun) report(sink, span sitter.Node, v *taint) {
	confidence := t.r.spec.Confidence
	if v.lowered && confidence == "high" {
		confidence = "medium"
	}
	trace := make([]report.TraceStep, 0, len(v.steps)+1)
	for _, s := range v.steps {
		s.File = t.s.path
		trace = append(trace, s)
	}
	trace = append(trace, report.TraceStep{File: t.s.path, Line: line(sink), Step: "sink: " + short(t.sinkLabel(sink, span, t.s.src))})
	t.s.add(t.r, span, trace, confidence)
}

// sinkLabel names a sink by the call it is an argument of (db.query), or
// by its span.
func (t *taintRun) sinkLabel(sink, span sitter.Node, src []byte) string {
	n := &sink
	for range 4 {
		p := n.Parent()
		if p == nil {
			break
		}
		if f := t.child(*p, "function"); f != nil && (p.Kind() == "call_expression" || p.Kind() == "call") {
			return f.Utf8Text(src)
		}
		n = p
	}
	return span.Utf8Text(src)
}

func textOf(n *sitter.Node, src []byte) string {
	if n == nil {
		return ""
	}
	return n.Utf8Text(src)
}

func line(n sitter.Node) int { return int(n.StartPosition().Row) + 1 }

// short keeps a trace step to one line of at most 60 characters.
func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 60 {
		s = string(r[:57]) + "..."
	}
	return s
}

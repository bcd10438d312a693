package report

// Weakness is one code weakness found by the SAST engine (DESIGN.md,
// "weaknesses"). It never carries more of the code than its location: the
// fingerprint is a hash of the normalised span, so an exception can name it
// and keep matching when lines shift.
type Weakness struct {
	// Rule is the rule's id (js-sql-injection, py-yaml-load).
	Rule string `json:"rule"`
	// CWE lists the rule's CWE ids, like "CWE-89".
	CWE []string `json:"cwe"`
	// OWASP is the rule's OWASP category (A03:2021, LLM02:2025).
	OWASP      string   `json:"owasp,omitempty"`
	Severity   string   `json:"severity"`   // critical | high | medium | low
	Confidence string   `json:"confidence"` // high | medium | low
	File       string   `json:"file"`
	Line       int      `json:"line"`
	EndLine    int      `json:"end_line"`
	Column     int      `json:"column,omitempty"`
	Message    string   `json:"message"`
	Fix        string   `json:"fix,omitempty"`
	References []string `json:"references,omitempty"`
	// Fingerprint identifies the finding by rule and normalised code span
	// (whitespace and comments folded), independent of its line.
	Fingerprint string `json:"fingerprint"`
	// Trace is the taint path from source to sink; empty for a pattern
	// rule.
	Trace []TraceStep `json:"trace"`
	// Baseline is new or known when the scan had a baseline.
	Baseline string `json:"baseline,omitempty"`
}

// TraceStep is one step of a taint trace.
type TraceStep struct {
	File string `json:"file"`
	Line int    `json:"line"`
	// Step says what happens there: "source: req.query.id",
	// "assign: q", "sink: db.query".
	Step string `json:"step"`
}

// CodeScan summarises what the SAST engine read: files and lines parsed
// per language, and files skipped by reason (minified, generated, vendored,
// test, too_large, parse_timeout, parse_error).
type CodeScan struct {
	Files   map[string]int `json:"files"`
	Lines   map[string]int `json:"lines"`
	Skipped map[string]int `json:"skipped,omitempty"`
	// Rules is how many rules ran.
	Rules int `json:"rules"`
}

package sast

import (
	"path/filepath"
	"slices"
	"strings"
	"sync"

	sitter "github.com/tree-sitter/go-tree-sitter"
	tsgo "github.com/tree-sitter/tree-sitter-go/bindings/go"
	tsjs "github.com/tree-sitter/tree-sitter-javascript/bindings/go"
	tspy "github.com/tree-sitter/tree-sitter-python/bindings/go"
	tsts "github.com/tree-sitter/tree-sitter-typescript/bindings/go"
)

// language is one tree-sitter grammar the engine parses, with the pool of
// parsers made for it. Parsers are cgo objects: they are reused across
// files and freed by Engine.Close.
type language struct {
	name    string // javascript, typescript, tsx, python, go
	grammar *sitter.Language
	fields  map[string]uint16 // field ids by name

	mu      sync.Mutex
	parsers []*sitter.Parser
	all     []*sitter.Parser
}

// languageNames lists the languages a rule may name, in a fixed order.
var languageNames = []string{"javascript", "typescript", "tsx", "python", "go"}

// languageFamily maps a language to the rules folder that holds its rules.
var languageFamily = map[string]string{
	"javascript": "js", "typescript": "js", "tsx": "js", "python": "py", "go": "go",
}

// newLanguages loads the grammars; the grammars themselves are static C
// data and need no freeing.
func newLanguages() map[string]*language {
	langs := map[string]*language{
		"javascript": {name: "javascript", grammar: sitter.NewLanguage(tsjs.Language())},
		"typescript": {name: "typescript", grammar: sitter.NewLanguage(tsts.LanguageTypescript())},
		"tsx":        {name: "tsx", grammar: sitter.NewLanguage(tsts.LanguageTSX())},
		"python":     {name: "python", grammar: sitter.NewLanguage(tspy.Language())},
		"go":         {name: "go", grammar: sitter.NewLanguage(tsgo.Language())},
	}
	for _, l := range langs {
		l.fields = map[string]uint16{}
		for id := uint16(1); uint32(id) <= l.grammar.FieldCount(); id++ {
			l.fields[l.grammar.FieldNameForId(id)] = id
		}
	}
	return langs
}

// languageForPath picks the language of a file by its extension, "" when
// the engine does not read it.
func languageForPath(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".js", ".mjs", ".cjs", ".jsx":
		return "javascript"
	case ".ts", ".mts", ".cts":
		if strings.HasSuffix(strings.ToLower(path), ".d.ts") {
			return "" // declarations only: no code runs there
		}
		return "typescript"
	case ".tsx":
		return "tsx"
	case ".py":
		return "python"
	case ".go":
		return "go"
	}
	return ""
}

// parser takes a parser from the pool, or makes one.
func (l *language) parser() (*sitter.Parser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.parsers); n > 0 {
		p := l.parsers[n-1]
		l.parsers = l.parsers[:n-1]
		return p, nil
	}
	p := sitter.NewParser()
	if err := p.SetLanguage(l.grammar); err != nil {
		p.Close()
		return nil, err
	}
	l.all = append(l.all, p)
	return p, nil
}

// release returns a parser to the pool, reset for the next file.
func (l *language) release(p *sitter.Parser) {
	p.Reset()
	l.mu.Lock()
	l.parsers = append(l.parsers, p)
	l.mu.Unlock()
}

// discard frees a parser that must not parse again: one whose parse was
// stopped. tree-sitter 0.25.0's ts_parser_reset leaves canceled_balancing
// set when the stop came while balancing the tree, and the next parse then
// resumes balancing a tree the reset freed and aborts the process (a
// failed assert). A stopped parser is therefore never reused.
func (l *language) discard(p *sitter.Parser) {
	l.mu.Lock()
	l.all = slices.DeleteFunc(l.all, func(q *sitter.Parser) bool { return q == p })
	l.mu.Unlock()
	p.Close()
}

// close frees every parser the pool made.
func (l *language) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.all {
		p.Close()
	}
	l.all, l.parsers = nil, nil
}

package sast

import (
	"os"
	"testing"

	sitter "github.com/tree-sitter/go-tree-sitter"
)

// TestDumpTree prints the syntax tree of a snippet, for writing queries:
//
//	SAST_DUMP_LANG=python SAST_DUMP_SRC='yaml.load(x)' go test ./sast -run TestDumpTree -v
//
// (or SAST_DUMP_FILE=path; the language defaults to the file's). It is
// skipped unless one of them is set.
func TestDumpTree(t *testing.T) {
	src, lang := []byte(os.Getenv("SAST_DUMP_SRC")), os.Getenv("SAST_DUMP_LANG")
	if f := os.Getenv("SAST_DUMP_FILE"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = data
		if lang == "" {
			lang = languageForPath(f)
		}
	}
	if len(src) == 0 {
		t.Skip("set SAST_DUMP_SRC or SAST_DUMP_FILE (and SAST_DUMP_LANG)")
	}
	l := newLanguages()[lang]
	if l == nil {
		t.Fatalf("SAST_DUMP_LANG %q: want one of %v", lang, languageNames)
	}
	p := sitter.NewParser()
	defer p.Close()
	if err := p.SetLanguage(l.grammar); err != nil {
		t.Fatal(err)
	}
	tree := p.Parse(src, nil)
	defer tree.Close()
	t.Log(tree.RootNode().ToSexp())
}

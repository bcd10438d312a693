package sast

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzScanFile feeds arbitrary bytes to the engine as a file with the
// given extension: it must not panic, and it must either finish or stop at
// its deadline with ErrParseTimeout (or skip the file), never fail.
func fuzzScanFile(f *testing.F, ext string, seeds ...string) {
	files, _ := filepath.Glob("testdata/fixtures/*" + ext)
	for _, p := range files {
		if src, err := os.ReadFile(p); err == nil {
			f.Add(src)
		}
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	e, err := New(Options{ParseTimeout: 250 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(e.Close)
	name := "fuzz" + ext
	f.Fuzz(func(t *testing.T, src []byte) {
		ws, err := e.ScanFile(context.Background(), name, src)
		switch {
		case err == nil:
		case errors.Is(err, ErrParseTimeout), errors.Is(err, ErrParseError), errors.Is(err, ErrMinified),
			errors.Is(err, ErrGenerated), errors.Is(err, ErrTooLarge):
			return
		default:
			t.Fatalf("ScanFile: %v", err)
		}
		for _, w := range ws {
			if w.File != name || w.Line < 1 || w.EndLine < w.Line || w.Rule == "" || len(w.Fingerprint) != len("tgw1:")+64 {
				t.Fatalf("malformed finding %+v", w)
			}
		}
	})
}

func FuzzScanFileJavaScript(f *testing.F) {
	fuzzScanFile(f, ".js", "app.get('/', (req, res) => { eval(req.query.x) })", "((((((((((", "`${`${`${x}`}`}`")
}

func FuzzScanFileTypeScript(f *testing.F) {
	fuzzScanFile(f, ".ts", "export function h(req: Request) { db.query(`${req.body}`) }", "let x: <T>(a: T) => T = a => a;")
}

func FuzzScanFileTSX(f *testing.F) {
	fuzzScanFile(f, ".tsx", "export const A = ({ html }: P) => <div dangerouslySetInnerHTML={{ __html: html }} />;")
}

func FuzzScanFilePython(f *testing.F) {
	fuzzScanFile(f, ".py", "def f(request):\n    os.system(request.GET['x'])\n", "f'{f\"{x}\"}'", "\tdef\n  x = (")
}

func FuzzScanFileGo(f *testing.F) {
	fuzzScanFile(f, ".go", "package p\nfunc h(r *http.Request) { db.Query(r.FormValue(\"x\")) }\n", "package p\nfunc(")
}

package sast

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/loadtest/corpus"
)

// BenchmarkScan parses and matches each example app, the fixtures, one
// load-test corpus app of each ecosystem (its handler code) and the folders
// listed in SAST_BENCH_DIRS (colon-separated), reporting time per thousand
// lines and lines per second besides ns/op.
func BenchmarkScan(b *testing.B) {
	e := defaultEngine(b)
	dirs := []string{"testdata/fixtures"}
	if extra := os.Getenv("SAST_BENCH_DIRS"); extra != "" {
		dirs = append(dirs, strings.Split(extra, ":")...)
	}
	apps, _ := filepath.Glob("../examples/*")
	for _, a := range apps {
		if st, err := os.Stat(a); err == nil && st.IsDir() {
			dirs = append(dirs, a)
		}
	}
	root := b.TempDir()
	m, err := corpus.Generate(context.Background(), root, corpus.Options{Seed: 1, Apps: 12})
	if err != nil {
		b.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range m.Apps {
		if !seen[a.Ecosystem] {
			seen[a.Ecosystem] = true
			dirs = append(dirs, filepath.Join(root, a.Dir))
		}
	}
	for _, dir := range dirs {
		_, summary, err := e.Scan(context.Background(), dir)
		if err != nil {
			b.Fatal(err)
		}
		lines := 0
		for _, n := range summary.Lines {
			lines += n
		}
		if lines == 0 {
			continue
		}
		b.Logf("%s: files %v lines %v skipped %v", dir, summary.Files, summary.Lines, summary.Skipped)
		b.Run(filepath.Base(dir), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := e.Scan(context.Background(), dir); err != nil {
					b.Fatal(err)
				}
			}
			perOp := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(lines), "lines")
			b.ReportMetric(perOp*1000/(float64(lines)/1000), "ms/kloc")
			b.ReportMetric(float64(lines)/perOp, "lines/s")
		})
	}
}

// BenchmarkScanFile scans each fixture alone.
func BenchmarkScanFile(b *testing.B) {
	e := defaultEngine(b)
	files, _ := filepath.Glob("testdata/fixtures/*")
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(filepath.Base(f), func(b *testing.B) {
			for b.Loop() {
				if _, err := e.ScanFile(context.Background(), filepath.Base(f), src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

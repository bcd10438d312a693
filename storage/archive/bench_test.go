package archive

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// smallApp is a ~70-entry source tree, like a small web service.
func smallApp() ([]tEntry, []zEntry) {
	var tes []tEntry
	var zes []zEntry
	add := func(name, body string) {
		tes = append(tes, tfile(name, body))
		zes = append(zes, zEntry{name: name, body: body})
	}
	for _, d := range []string{"cmd/api/", "internal/handlers/", "internal/store/", "web/src/", "docs/"} {
		tes = append(tes, tdir(d))
		zes = append(zes, zEntry{name: d, mode: fs.ModeDir | 0o755})
	}
	for i := range 20 {
		add(fmt.Sprintf("internal/handlers/h%02d.go", i), strings.Repeat(fmt.Sprintf("func H%d() {}\n", i), 80))
	}
	for i := range 15 {
		add(fmt.Sprintf("internal/store/s%02d.go", i), strings.Repeat("// store code\n", 120))
	}
	for i := range 20 {
		add(fmt.Sprintf("web/src/c%02d.tsx", i), strings.Repeat("export const x = 1;\n", 60))
	}
	for i := range 5 {
		add(fmt.Sprintf("docs/p%d.md", i), strings.Repeat("# docs\n", 200))
	}
	add("cmd/api/main.go", "package main\nfunc main() {}\n")
	add("go.mod", "module example.com/app\n")
	add("package.json", `{"name":"app"}`)
	add("README.md", "# app\n")
	tes = append(tes, tsymlink("web/index.tsx", "src/c00.tsx"))
	zes = append(zes, zEntry{name: "web/index.tsx", body: "src/c00.tsx", mode: fs.ModeSymlink | 0o777})
	return tes, zes
}

// benchArchives writes the small app as tar.gz and zip files and runs fn on
// each.
func benchArchives(b *testing.B, fn func(b *testing.B, src string)) {
	tes, zes := smallApp()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"tar.gz", buildTar(b, true, tes...)},
		{"zip", buildZip(b, zes...)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src := b.TempDir() + "/app.archive"
			if err := os.WriteFile(src, tc.data, 0o600); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			fn(b, src)
		})
	}
}

func BenchmarkExtract(b *testing.B) {
	benchArchives(b, func(b *testing.B, src string) {
		for b.Loop() {
			b.StopTimer()
			dest, err := os.MkdirTemp(b.TempDir(), "dest")
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := Extract(context.Background(), src, dest, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCheck is BenchmarkExtract's work without the writing: what the
// API's edge check costs per upload.
func BenchmarkCheck(b *testing.B) {
	benchArchives(b, func(b *testing.B, src string) {
		for b.Loop() {
			if _, err := Check(context.Background(), src, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkExtractThrowAway is what the API's edge check did before Check:
// create a directory, extract into it, remove it.
func BenchmarkExtractThrowAway(b *testing.B) {
	benchArchives(b, func(b *testing.B, src string) {
		tmp := b.TempDir()
		for b.Loop() {
			dest, err := os.MkdirTemp(tmp, "dest")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Extract(context.Background(), src, dest, Limits{}); err != nil {
				b.Fatal(err)
			}
			if err := os.RemoveAll(dest); err != nil {
				b.Fatal(err)
			}
		}
	})
}

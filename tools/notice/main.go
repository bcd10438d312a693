// Command notice writes NOTICE from go-licenses' reports (scripts/notice.tpl
// rows, one file per platform): scripts/notice.sh runs it.
//
//	notice -o NOTICE -modcache DIR -generator "go-licenses v1.6.0" ROWS...
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/tollgate/tollgate/internal/notice"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "notice:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("o", "NOTICE", "file to write")
	modCache := flag.String("modcache", "", "the module cache go-licenses read (go env GOMODCACHE)")
	generator := flag.String("generator", "go-licenses", "the tool and version that made the rows, named in NOTICE")
	mainModule := flag.String("main", "github.com/tollgate/tollgate", "the main module, left out")
	flag.Parse()
	if *modCache == "" || flag.NArg() == 0 {
		return fmt.Errorf("usage: notice -o NOTICE -modcache DIR [-generator NAME] ROWS...")
	}
	var reports [][]notice.Library
	for _, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		libs, err := notice.ReadRows(f, *modCache, *mainModule)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		reports = append(reports, libs)
	}
	libs, err := notice.Merge(reports...)
	if err != nil {
		return err
	}
	if err := notice.CheckLicenses(libs); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := notice.Write(&buf, libs, *generator); err != nil {
		return err
	}
	return os.WriteFile(*out, buf.Bytes(), 0o644)
}

// Package sandboxtest is a scanner that misbehaves on purpose, for tests of
// the sandbox: a test binary registers it in its own sandbox children (see
// Load), so the production binary's children never carry it.
package sandboxtest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workers/sandbox"
)

// BehaveFile names, in the scanned tree, what the scanner does:
//
//	ok           report one secret per file in the tree (the default)
//	membomb      allocate until stopped
//	spin         spin the CPU forever
//	hang         block forever
//	dial ADDR    connect to ADDR (host:port)
//	read PATH    read PATH and return it as the file "read"
const BehaveFile = "BEHAVE"

// Load is a sandbox.Loader with Scanner for every task kind.
func Load(context.Context, sandbox.ChildOptions, *slog.Logger) (map[string]workers.Scanner, func() error, error) {
	s := Scanner()
	return map[string]workers.Scanner{tasks.KindSecrets: s, tasks.KindDeep: s, tasks.KindRematch: s}, func() error { return nil }, nil
}

// Scanner does what the tree's BehaveFile says.
func Scanner() workers.Scanner {
	return workers.ScannerFunc(func(_ context.Context, t tasks.Task, dir string) (workers.Output, error) {
		raw, _ := os.ReadFile(filepath.Join(dir, BehaveFile))
		verb, arg, _ := strings.Cut(strings.TrimSpace(string(raw)), " ")
		switch verb {
		case "membomb":
			var keep [][]byte
			for {
				b := make([]byte, 64<<20)
				for i := 0; i < len(b); i += 4096 {
					b[i] = 1
				}
				keep = append(keep, b)
			}
		case "spin":
			for n := 0; ; n++ {
			}
		case "hang":
			select {}
		case "dial":
			c, err := net.DialTimeout("tcp", arg, 5*time.Second)
			if err != nil {
				return workers.Output{}, fmt.Errorf("dial %s: %w", arg, err)
			}
			c.Close()
			return workers.Output{Result: tasks.Result{Kind: t.Kind}}, nil
		case "read":
			data, err := os.ReadFile(arg)
			if err != nil {
				return workers.Output{}, fmt.Errorf("read %s: %w", arg, err)
			}
			return workers.Output{Result: tasks.Result{Kind: t.Kind}, Files: []workers.File{{Name: "read", ContentType: "text/plain", Data: data}}}, nil
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return workers.Output{}, err
		}
		res := tasks.Result{Kind: t.Kind, Findings: report.Findings{Secrets: []report.Secret{}}}
		for _, e := range entries {
			if _, err := os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
				return workers.Output{}, err
			}
			res.Secrets = append(res.Secrets, report.Secret{Rule: "test", File: e.Name(), Line: 1})
		}
		return workers.Output{Result: res, Files: []workers.File{{Name: "out.txt", ContentType: "text/plain", Data: []byte("ok")}}}, nil
	})
}

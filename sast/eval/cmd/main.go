// Command cmd scans the applications of the SAST truth list
// (sast/eval/truth.yaml) with the SAST engine and prints the evaluation:
// recall on the vulnerable apps' documented lines, per app and per family,
// and findings per KLOC on the control apps, in Markdown (and JSON with
// -json). scripts/sast-eval.sh exports the apps and runs it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/tollgate/tollgate/sast/eval"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sast-eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	truthFile := fs.String("truth", "sast/eval/truth.yaml", "the truth list")
	appsDir := fs.String("apps", "", "folder holding each app's exported tree under its name")
	rulesDir := fs.String("rules", "", "a folder of rule files replacing the embedded ones")
	jsonFile := fs.String("json", "", "also write the result as JSON to this file")
	only := fs.String("only", "", "comma-separated app names to run (default: all)")
	list := fs.Bool("list", false, "print each app's name, repo and commit, one a line, and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	truth, err := eval.LoadTruth(*truthFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *list {
		for _, a := range truth.Apps {
			fmt.Fprintf(stdout, "%s %s %s\n", a.Name, a.Repo, a.Commit)
		}
		return 0
	}
	if *appsDir == "" {
		fmt.Fprintln(stderr, "sast-eval: -apps is required (scripts/sast-eval.sh exports the apps)")
		return 2
	}
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sc, err := newScanner(log, *rulesDir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 3
	}
	res, err := eval.Run(ctx, log, sc, truth, *appsDir, names)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 3
	}
	if *jsonFile != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonFile, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "write result %q: %v\n", *jsonFile, err)
			return 3
		}
	}
	if err := res.Markdown(stdout); err != nil {
		fmt.Fprintf(stderr, "write table: %v\n", err)
		return 3
	}
	return 0
}

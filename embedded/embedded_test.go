package embedded

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/tollgate/tollgate/fleet"
	"github.com/tollgate/tollgate/internal/golden"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/vulndb"
	"github.com/tollgate/tollgate/workers/sandbox"
	"github.com/tollgate/tollgate/workers/scanners"
	"github.com/tollgate/tollgate/workflows"
)

var (
	updateHistory = flag.Bool("update-history", false, "write ../workflows/testdata/scan_history_v2.json (ScanWorkflowV2) from a real run")
)

// shared is one embedded stack for the whole package: real nats-server, real
// Temporal dev server, real scanners, a DB built from testdata/osv.
var shared struct {
	once  sync.Once
	stack *Stack
	err   error
}

func TestMain(m *testing.M) {
	// The stack's sandboxes re-execute this binary as their scanner
	// processes, with the real scanners.
	if sandbox.IsChild(os.Args) {
		os.Exit(sandbox.ServeChild(context.Background(), scanners.LoadForSandbox))
	}
	flag.Parse()
	code := m.Run()
	if shared.stack != nil {
		shared.stack.Close()
	}
	os.Exit(code)
}

func startShared(t *testing.T) *Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	shared.once.Do(func() {
		if _, err := stack.FindTemporalCLI(""); err != nil {
			shared.err = err
			return
		}
		dir, err := os.MkdirTemp("", "tollgate-e2e-*")
		if err != nil {
			shared.err = err
			return
		}
		ctx := context.Background()
		dbDir := filepath.Join(dir, "db")
		if _, err := vulndb.ImportOSV(ctx, slog.New(slog.DiscardHandler), dbDir, filepath.Join("..", "testdata", "osv")); err != nil {
			shared.err = err
			return
		}
		root, err := filepath.Abs("..") // the examples are scanned in place
		if err != nil {
			shared.err = err
			return
		}
		shared.stack, shared.err = Start(ctx, Config{
			ScanRoots:   []string{root},
			Worker:      fleet.Worker{DBDir: dbDir, SecretFingerprintKey: []byte("tollgate-e2e-test-fingerprint-key-32bytes")},
			EvidenceDir: filepath.Join(dir, "evidence"), Version: "test",
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
	})
	if shared.err != nil {
		t.Fatalf("start embedded stack: %v", shared.err)
	}
	return shared.stack
}

// findings is what the e2e test pins for each example: the exact secrets,
// vulnerabilities and packages, and the verdict.
type findings struct {
	Verdict         report.Verdict  `json:"verdict"`
	Stage           string          `json:"stage"`
	Reasons         []string        `json:"reasons"`
	Secrets         []report.Secret `json:"secrets"`
	Vulnerabilities []string        `json:"vulnerabilities"`
	Packages        []string        `json:"packages"`
	VulnDB          bool            `json:"vulndb_available"`
	Evidence        []string        `json:"evidence"`
	// Weaknesses are the code weaknesses as "rule file:line severity/confidence
	// trace-length" (the full ones are pinned by report's goldens).
	Weaknesses []string `json:"weaknesses"`
}

func findingsOf(r report.Report) findings {
	f := findings{Verdict: r.Verdict, Stage: r.Stage, Secrets: r.Secrets, VulnDB: r.VulnDB.Available,
		Reasons: []string{}, Vulnerabilities: []string{}, Packages: []string{}, Evidence: []string{}, Weaknesses: []string{}}
	for _, w := range r.Weaknesses {
		f.Weaknesses = append(f.Weaknesses, fmt.Sprintf("%s %s:%d %s/%s trace=%d", w.Rule, w.File, w.Line, w.Severity, w.Confidence, len(w.Trace)))
	}
	for _, reason := range r.Reasons {
		f.Reasons = append(f.Reasons, string(reason.Verdict)+" "+reason.Policy+": "+reason.Message)
	}
	for _, v := range r.Vulnerabilities {
		aliases := slices.Clone(v.Aliases)
		sort.Strings(aliases)
		b, _ := json.Marshal(aliases)
		f.Vulnerabilities = append(f.Vulnerabilities, v.ID+" "+v.Ecosystem+" "+v.Package+"@"+v.Version+" "+v.Severity+" "+v.PURL+" fixed="+joinOr(v.FixedVersions)+" aliases="+string(b))
	}
	for _, p := range r.Packages {
		b, _ := json.Marshal(p.Licenses)
		f.Packages = append(f.Packages, p.Ecosystem+" "+p.Name+"@"+p.Version+" "+string(b))
	}
	for _, e := range r.Evidence {
		f.Evidence = append(f.Evidence, e.Name)
	}
	sort.Strings(f.Vulnerabilities)
	sort.Strings(f.Packages)
	return f
}

func joinOr(s []string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestScanExamples(t *testing.T) {
	st := startShared(t)
	for _, app := range []string{"node-todo", "py-notes", "go-api", "clean-static", "code-weak"} {
		for _, full := range []bool{false, true} {
			name := app
			if full {
				name += "-full"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				dir, err := filepath.Abs(filepath.Join("..", "examples", app))
				if err != nil {
					t.Fatal(err)
				}
				req := workflows.ScanRequest{ScanID: "e2e-" + name + "-" + time.Now().Format("150405.000000"), App: app, Full: full,
					Input: tasks.Input{Dir: dir}, SubmittedAt: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}
				res, err := st.Scan(ctx, req, nil)
				if err != nil {
					t.Fatalf("scan: %v", err)
				}
				r, err := st.Report(ctx, res)
				if err != nil {
					t.Fatal(err)
				}
				if res.Verdict != r.Verdict || r.Schema != report.Schema || r.ScanID != req.ScanID {
					t.Fatalf("result %+v does not match report %s %s %s", res, r.Verdict, r.Schema, r.ScanID)
				}
				golden.AssertJSON(t, filepath.Join("testdata", name+".golden.json"), findingsOf(r))
				checkEvidence(ctx, t, st, r)
				if *updateHistory && app == "node-todo" && !full {
					saveHistory(ctx, t, st.Client(), "scan-"+req.ScanID)
				}
			})
		}
	}
}

// checkEvidence reads every object the report names back from the store and
// checks its digest.
func checkEvidence(ctx context.Context, t *testing.T, st *Stack, r report.Report) {
	t.Helper()
	for _, e := range r.Evidence {
		data, obj, err := st.Evidence().Get(ctx, e.Key)
		if err != nil {
			t.Fatalf("evidence %s: %v", e.Name, err)
		}
		if obj.SHA256 != e.SHA256 || len(data) == 0 {
			t.Fatalf("evidence %s: stored sha256 %s, report says %s", e.Name, obj.SHA256, e.SHA256)
		}
	}
}

func saveHistory(ctx context.Context, t *testing.T, c client.Client, workflowID string) {
	t.Helper()
	golden.WriteHistory(ctx, t, c, workflowID, filepath.Join("..", "workflows", "testdata", "scan_history_v2.json"))
}

package scanners

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zricethezav/gitleaks/v8/config"

	"github.com/tollgate/tollgate/manifest"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers/touches"
)

// benchDirs are the real trees of $TOLLGATE_FAST_BENCH_DIRS (colon
// separated), for the benchmark and the comparison with the gitleaks CLI.
func benchDirs(t testing.TB) []string {
	v := os.Getenv("TOLLGATE_FAST_BENCH_DIRS")
	if v == "" {
		t.Skip("set TOLLGATE_FAST_BENCH_DIRS to folders of real apps (colon separated)")
	}
	return strings.Split(v, ":")
}

// BenchmarkFastStageRealApps runs each scanner of the fast stage, then the whole
// fast task as a worker runs it, on each folder of
// $TOLLGATE_FAST_BENCH_DIRS, and reports the CPU seconds of each besides
// the wall time (ns/op). Run it with -cpu 1 for what a sandboxed child of
// a two-core machine's worker gets (GOMAXPROCS is the CPUs over the slots):
//
//	TOLLGATE_FAST_BENCH_DIRS=/tmp/juice-shop:/tmp/remark42 GOEXPERIMENT=jsonv2 \
//	  go test -tags gore2regex -run '^$' -bench FastStageRealApps -benchtime 1x -cpu 1 ./workers/scanners
func BenchmarkFastStageRealApps(b *testing.B) {
	dirs := benchDirs(b)
	needEngine(b)
	b.Logf("gitleaks regexp engine: %s", RegexpEngine())
	for _, dir := range dirs {
		steps := []struct {
			name string
			run  func(context.Context) error
		}{
			{"secrets", func(ctx context.Context) error { _, err := engine.secrets.Scan(ctx, dir, "bench"); return err }},
			{"touches", func(ctx context.Context) error { _, err := touches.Scan(ctx, dir); return err }},
			{"manifest", func(context.Context) error { _, err := manifest.Find(dir); return err }},
			{"code", func(ctx context.Context) error { _, _, err := engine.code.Scan(ctx, dir); return err }},
			{"fast", func(ctx context.Context) error {
				_, err := engine.runSecrets(ctx, tasks.Task{Kind: tasks.KindSecrets, Tenant: "bench"}, dir)
				return err
			}},
		}
		for _, s := range steps {
			b.Run(filepath.Base(dir)+"/"+s.name, func(b *testing.B) {
				cpu := cpuTime()
				for b.Loop() {
					if err := s.run(b.Context()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/op")
			})
		}
	}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestSecretsMatchGitleaksCLI runs the gitleaks CLI that
// $TOLLGATE_GITLEAKS_CLI names (scripts/clis.sh gitleaks builds the pinned
// one) on each folder of $TOLLGATE_FAST_BENCH_DIRS, with the default rules,
// and requires the in-process scan to find the same secrets: the same
// (rule, file, line, fingerprint of the value). The CLI may report one
// finding twice; the scan reports it once, so both are compared as sets.
func TestSecretsMatchGitleaksCLI(t *testing.T) {
	cli := os.Getenv("TOLLGATE_GITLEAKS_CLI")
	if cli == "" {
		t.Skip("set TOLLGATE_GITLEAKS_CLI to a gitleaks binary (scripts/clis.sh gitleaks) to compare with the CLI")
	}
	dirs := benchDirs(t)
	needEngine(t)
	tmp := t.TempDir()
	// The default rules, even where the tree has a .gitleaks.toml of its
	// own (the CLI would read it; tollgate never does).
	cfg := filepath.Join(tmp, "default.toml")
	if err := os.WriteFile(cfg, []byte(config.DefaultConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		dir, err := filepath.Abs(dir)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(tmp, filepath.Base(dir)+".json")
		cmd := exec.CommandContext(t.Context(), cli, "dir", "--no-banner", "--log-level", "error", "--exit-code", "0",
			"--config", cfg, "--report-format", "json", "--report-path", out, dir)
		cmd.Dir = tmp // no .gitleaksignore of the caller's
		cmd.Env = append(os.Environ(), "HOME="+tmp)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s on %s: %v\n%s", cli, dir, err, msg)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var found []struct {
			RuleID, File, Secret string
			StartLine            int
		}
		if err := json.Unmarshal(data, &found); err != nil {
			t.Fatalf("gitleaks report of %s: %v", dir, err)
		}
		var want []string
		for _, f := range found {
			want = append(want, secretKey(f.RuleID, relPath(dir, f.File), f.StartLine, Fingerprint(testFingerprintKey, "acme", f.RuleID, f.Secret)))
		}
		got, err := engine.secrets.Scan(t.Context(), dir, "acme")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, s := range got {
			keys = append(keys, secretKey(s.Rule, s.File, s.Line, s.Fingerprint))
		}
		slices.Sort(want)
		want = slices.Compact(want)
		slices.Sort(keys)
		assertSameFindings(t, dir+": in-process scan vs gitleaks CLI", want, keys)
		t.Logf("%s: the CLI (%d findings) and the in-process scan (%s) agree on %d secrets", dir, len(found), RegexpEngine(), len(got))
	}
}

func secretKey(rule, file string, line int, fingerprint string) string {
	return fmt.Sprintf("%s %s:%d %s", rule, file, line, fingerprint)
}

// testPrivateKey is a private-key block, made up, in the shape gitleaks'
// private-key rule finds.
const testPrivateKey = "-----BEGIN PRIVATE KEY-----\n" +
	"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n" +
	"MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n" +
	"%s\n" +
	"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n" +
	"-----END PRIVATE KEY-----\n"

// A byte that is not UTF-8 does not hide a secret: RE2 (the gore2regex
// build) stops at such a byte where Go's regexp, and so the gitleaks CLI
// built without the tag, reads on; Scan hands gitleaks U+FFFD in its place,
// so both find the key that runs across it, and the secret after a Latin-1
// word.
func TestSecretsPastBytesThatAreNotUTF8(t *testing.T) {
	s := keyedSecrets(t)
	found := scanFiles(t, s, "acme", map[string]string{
		"key.pem":   fmt.Sprintf(testPrivateKey, "\xff\xfe"),
		"latin1.js": "// caf\xe9\n" + lines(2, `const token = "`+testPAT+`";`),
	})
	for _, want := range []string{"key.pem:private-key:1", "latin1.js:github-pat:3"} {
		if _, ok := found[want]; !ok {
			t.Errorf("%s not found (regexp %s): %v", want, RegexpEngine(), found)
		}
	}
	text := "caf\xe9 token " + testPAT
	red, n, err := s.Redact(context.Background(), text)
	if err != nil || n != 1 || strings.Contains(red, testPAT) || !strings.HasPrefix(red, "caf\uFFFD token [REDACTED:") {
		t.Fatalf("Redact(%q) = %q, %d, %v", text, red, n, err)
	}
}

func TestValidUTF8ReplacesEachBadByte(t *testing.T) {
	for in, want := range map[string]string{
		"plain\n":       "plain\n",
		"caf\xc3\xa9":   "caf\xc3\xa9",
		"a\xffb\n\xfe":  "a\uFFFDb\n\uFFFD",
		"\xe2\x82":      "\uFFFD\uFFFD", // a cut-off sequence: one per byte, as Go's regexp reads it
		"x\xed\xa0\x80": "x\uFFFD\uFFFD\uFFFD",
	} {
		if got := validUTF8(in); got != want {
			t.Errorf("validUTF8(%q) = %q, want %q", in, got, want)
		}
		if bytes.Count([]byte(validUTF8(in)), []byte{'\n'}) != strings.Count(in, "\n") {
			t.Errorf("validUTF8(%q) moved the lines", in)
		}
	}
}

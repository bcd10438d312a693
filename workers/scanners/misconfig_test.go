package scanners

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	xio "github.com/aquasecurity/trivy/pkg/x/io"

	"github.com/tollgate/tollgate/internal/golden"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
)

// trivyConfigGolden is the real trivy CLI's JSON report on examples/iac-bad;
// testdata/README.md has the command that wrote it.
var trivyConfigGolden = filepath.Join("testdata", "iac-bad.trivy-config.json")

// trivyConfigArgs are the flags of that command, for TestMisconfigMatchesTrivyCLI.
var trivyConfigArgs = []string{"config", "--quiet", "--skip-check-update",
	"--misconfig-scanners", "dockerfile,helm,kubernetes,terraform", "--format", "json"}

// cliReport is the part of trivy's JSON report the comparison reads.
type cliReport struct {
	Trivy   struct{ Version string }
	Results []struct {
		Target            string
		Type              string
		Misconfigurations []struct {
			ID, Severity, Status string
			CauseMetadata        struct{ StartLine int }
		}
	}
}

// findingKeys are the failed checks of a trivy CLI report as "id file:line
// severity", sorted; a check that fails twice at the same place counts twice.
func (r cliReport) findingKeys() []string {
	keys := []string{}
	for _, res := range r.Results {
		for _, m := range res.Misconfigurations {
			if m.Status == "FAIL" {
				keys = append(keys, findingKey(m.ID, res.Target, m.CauseMetadata.StartLine, m.Severity))
			}
		}
	}
	slices.Sort(keys)
	return keys
}

func findingKey(id, file string, line int, severity string) string {
	return fmt.Sprintf("%s %s:%d %s", id, file, line, severity)
}

func keysOf(found []report.Misconfiguration) []string {
	keys := []string{}
	for _, m := range found {
		keys = append(keys, findingKey(m.ID, m.File, m.StartLine, m.Severity))
	}
	slices.Sort(keys)
	return keys
}

func readCLIReport(t testing.TB, data []byte) cliReport {
	t.Helper()
	var r cliReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("trivy CLI report: %v", err)
	}
	return r
}

// assertSameFindings compares two sorted key lists and names every difference.
func assertSameFindings(t testing.TB, what string, want, got []string) {
	t.Helper()
	if slices.Equal(want, got) {
		return
	}
	var missing, extra []string
	for _, k := range want {
		if !slices.Contains(got, k) {
			missing = append(missing, k)
		}
	}
	for _, k := range got {
		if !slices.Contains(want, k) {
			extra = append(extra, k)
		}
	}
	t.Fatalf("%s: %d findings, want %d\nmissing: %s\nextra:   %s", what, len(got), len(want),
		strings.Join(missing, "; "), strings.Join(extra, "; "))
}

// TestMisconfigMatchesTrivyConfig checks that the in-process scanner finds,
// on examples/iac-bad, exactly what the real `trivy config` found: the same
// (check id, file, start line, severity), as many times.
func TestMisconfigMatchesTrivyConfig(t *testing.T) {
	needEngine(t)
	data, err := os.ReadFile(trivyConfigGolden)
	if err != nil {
		t.Fatal(err)
	}
	want := readCLIReport(t, data).findingKeys()
	got, err := engine.iac.Scan(context.Background(), example("iac-bad"))
	if err != nil {
		t.Fatal(err)
	}
	assertSameFindings(t, "in-process scan vs "+trivyConfigGolden, want, keysOf(got))
	// Every file type is in the example and found.
	types := map[string]int{}
	for _, m := range got {
		types[m.Type]++
	}
	for _, typ := range []string{"dockerfile", "helm", "kubernetes", "terraform"} {
		if types[typ] == 0 {
			t.Errorf("no %s findings in %v", typ, types)
		}
	}
	golden.AssertJSON(t, filepath.Join("testdata", "misconfig.iac-bad.golden.json"), got)
}

// TestMisconfigMatchesTrivyCLI re-proves the golden: it runs the trivy CLI
// that $TOLLGATE_TRIVY_CLI names (scripts/clis.sh trivy builds the pinned
// one) on examples/iac-bad, with its own empty home and cache, and compares
// its findings with the in-process scan's and with the golden's.
func TestMisconfigMatchesTrivyCLI(t *testing.T) {
	cli := os.Getenv("TOLLGATE_TRIVY_CLI")
	if cli == "" {
		t.Skip("set TOLLGATE_TRIVY_CLI to a trivy binary (scripts/clis.sh trivy) to compare with the CLI")
	}
	needEngine(t)
	tmp := t.TempDir()
	args := append(slices.Clone(trivyConfigArgs), "--cache-dir", filepath.Join(tmp, "cache"), "iac-bad")
	cmd := exec.CommandContext(t.Context(), cli, args...)
	cmd.Dir = filepath.Join("..", "..", "examples")
	cmd.Env = append(os.Environ(), "HOME="+tmp, "XDG_CACHE_HOME="+filepath.Join(tmp, ".cache"), "XDG_CONFIG_HOME="+filepath.Join(tmp, ".config"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", cli, strings.Join(args, " "), err, stderr.String())
	}
	fromCLI := readCLIReport(t, out)
	data, err := os.ReadFile(trivyConfigGolden)
	if err != nil {
		t.Fatal(err)
	}
	fromGolden := readCLIReport(t, data)
	if fromCLI.Trivy.Version != fromGolden.Trivy.Version {
		t.Fatalf("the CLI is trivy %s, the golden was made by %s", fromCLI.Trivy.Version, fromGolden.Trivy.Version)
	}
	assertSameFindings(t, "trivy CLI now vs "+trivyConfigGolden, fromGolden.findingKeys(), fromCLI.findingKeys())
	got, err := engine.iac.Scan(context.Background(), example("iac-bad"))
	if err != nil {
		t.Fatal(err)
	}
	assertSameFindings(t, "in-process scan vs trivy CLI", fromCLI.findingKeys(), keysOf(got))
	t.Logf("trivy %s and the in-process scanner agree on %d findings", fromCLI.Trivy.Version, len(got))
}

// TestMisconfigFetchesNoModule checks that a Terraform module with a remote
// source is not fetched: its source is a local listener that counts
// connections (trivy would download it over HTTPS), and the scan still
// reports the checks of the local resources.
func TestMisconfigFetchesNoModule(t *testing.T) {
	needEngine(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Counted before the close that ends the client's download:
			// a scan that tried to fetch has returned only after this.
			conns.Add(1)
			c.Close()
		}
	}()
	dir := t.TempDir()
	tf := fmt.Sprintf(`module "remote" {
  source = "https://%s/module.zip"
}

module "registry" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.0.0"
}

resource "aws_security_group" "open" {
  description = "egress anywhere"
  egress {
    description = "all"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
`, ln.Addr())
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(tf), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := engine.iac.Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the scan connected %d times to the module's source", n)
	}
	if !slices.Contains(keysOf(got), findingKey("AWS-0104", "main.tf", 17, "CRITICAL")) {
		t.Fatalf("local resource not checked: %v", keysOf(got))
	}
}

// The other examples have no configuration files trivy checks (go-api's
// config.yaml is not a Kubernetes manifest): none, never null.
func TestMisconfigWithoutIaCFiles(t *testing.T) {
	needEngine(t)
	for _, app := range []string{"node-todo", "py-notes", "go-api", "clean-static"} {
		got, err := engine.iac.Scan(context.Background(), example(app))
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("%s: got %v %v, want none", app, got, err)
		}
	}
}

// Scans share one compiled set of checks; concurrent scans of one tree find
// the same.
func TestMisconfigConcurrentScans(t *testing.T) {
	needEngine(t)
	want, err := engine.iac.Scan(context.Background(), example("iac-bad"))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() {
			got, err := engine.iac.Scan(context.Background(), example("iac-bad"))
			if err == nil && !slices.Equal(keysOf(got), keysOf(want)) {
				err = fmt.Errorf("concurrent scan found %d, want %d", len(got), len(want))
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestDeepTaskChecksIaC(t *testing.T) {
	needEngine(t)
	out, err := engine.Scanners()[tasks.KindDeep].Scan(context.Background(), tasks.Task{ScanID: "s", App: "iac-bad", Kind: tasks.KindDeep}, example("iac-bad"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Result.Misconfigurations) == 0 {
		t.Fatal("no misconfigurations in the deep task's result")
	}
	if _, ok := out.Result.Timings["misconfig"]; !ok {
		t.Fatalf("no misconfig timing in %v", out.Result.Timings)
	}
}

// FuzzMisconfig feeds one input to every file type at once: a Dockerfile, a
// Kubernetes manifest, a Helm template and a Terraform file that trivy cannot
// parse are skipped, and never fail or crash the deep stage.
// go test -run '^$' -fuzz FuzzMisconfig -fuzztime 1m ./workers/scanners/
func FuzzMisconfig(f *testing.F) {
	if engine == nil {
		f.Skip("scanners not loaded in -short mode")
	}
	for _, name := range []string{"Dockerfile", "k8s/deployment.yaml", "chart/templates/deployment.yaml", "main.tf"} {
		data, err := os.ReadFile(filepath.Join(example("iac-bad"), name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("FROM\nRUN [\n\x00"))
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		files := map[string]string{
			"Dockerfile": "", "k8s/pod.yaml": "", "main.tf": "", "chart/templates/pod.yaml": "",
			"chart/Chart.yaml": "apiVersion: v2\nname: fuzz\nversion: 0.1.0\n",
		}
		for name, fixed := range files {
			content := []byte(fixed)
			if fixed == "" {
				content = data
			}
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := engine.iac.Scan(context.Background(), dir); err != nil {
			t.Fatalf("scan: %v", err)
		}
	})
}

func BenchmarkMisconfig(b *testing.B) {
	needEngine(b)
	for b.Loop() {
		if _, err := engine.iac.Scan(context.Background(), example("iac-bad")); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMisconfigKubernetesJSON: a Kubernetes manifest written as JSON is
// still checked, also with its member names escaped, while a lockfile
// beside it never reaches trivy's Kubernetes detection.
func TestMisconfigKubernetesJSON(t *testing.T) {
	needEngine(t)
	manifest := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx:1.27","securityContext":{"privileged":true}}]}}`
	escaped := strings.Replace(manifest, `"kind"`, `"\u006bind"`, 1)
	lock, err := os.ReadFile(filepath.Join("testdata", "lockfile-credentials", "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string]string{"pod.json": manifest, "escaped.json": escaped, "package-lock.json": string(lock)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := engine.iac.Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, m := range got {
		files[m.File] = true
	}
	if !files["pod.json"] || !files["escaped.json"] || len(files) != 2 {
		t.Fatalf("misconfigurations in %v, want pod.json and escaped.json", files)
	}
	for name, want := range map[string]bool{"pod.json": true, "escaped.json": true, "package-lock.json": false} {
		open := func() (xio.ReadSeekCloserAt, error) { return os.Open(filepath.Join(dir, name)) }
		if got := isKubernetesCandidate(name, nil, open); got != want {
			t.Errorf("%s: candidate %v, want %v", name, got, want)
		}
	}
}

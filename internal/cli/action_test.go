package cli

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/report"
)

// The release the CI tests install: a version the scripts accept, served
// from a local mirror of the release downloads.
const ciTestVersion = "0.0.0-citest"

// ciRelease packs this test binary as tollgate's release archive for this
// machine, with the release's checksums file, and serves both as the
// GitHub release downloads do (BASE/vVERSION/ASSET). TestMain makes the
// binary the command line when it is called tollgate. It returns the
// base URL and the archive's SHA-256.
func ciRelease(t *testing.T) (string, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "tollgate", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(bin)
	tw.Close()
	zw.Close()
	asset := fmt.Sprintf("tollgate_%s_%s_%s.tar.gz", ciTestVersion, runtime.GOOS, runtime.GOARCH)
	sum := sha256.Sum256(buf.Bytes())
	dir := filepath.Join(t.TempDir(), "v"+ciTestVersion)
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, asset), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sums := fmt.Sprintf("%s  tollgate_%s_other.tar.gz\n%s  %s\n", strings.Repeat("0", 64), ciTestVersion, hex.EncodeToString(sum[:]), asset)
	if err := os.WriteFile(filepath.Join(dir, "tollgate_"+ciTestVersion+"_checksums.txt"), []byte(sums), 0o644); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(dir))))
	t.Cleanup(hs.Close)
	return hs.URL, hex.EncodeToString(sum[:])
}

// ciEnv is the environment a CI script starts with: this one without
// tollgate's own variables, plus vars.
func ciEnv(vars map[string]string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "TOLLGATE_") })
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// bash runs script as GitHub's and GitLab's runners run a bash step, in dir
// with env, and returns its exit code and output.
func bash(t *testing.T, dir, script string, env []string) (int, string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "step.sh")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", f)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil {
		t.Fatalf("bash: %v", err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

type actionStep struct {
	ID   string            `json:"id"`
	Name string            `json:"name"`
	If   string            `json:"if"`
	Uses string            `json:"uses"`
	Run  string            `json:"run"`
	Env  map[string]string `json:"env"`
	With map[string]string `json:"with"`
}

type actionFile struct {
	Inputs map[string]struct {
		Default  string `json:"default"`
		Required bool   `json:"required"`
	} `json:"inputs"`
	Runs struct {
		Using string       `json:"using"`
		Steps []actionStep `json:"steps"`
	} `json:"runs"`
}

// actionRun is what a run of action.yml's steps left: the last exit code,
// the output of each step and the files the runner provides.
type actionRun struct {
	code    int
	output  map[string]string // step name: its output
	outputs map[string]map[string]string
	summary string
	uploads []actionStep // the uses: steps, not run, with their inputs evaluated
}

var expr = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// runAction runs action.yml's run: steps in order, as a composite action
// runs them: each with its env (expressions evaluated), $GITHUB_OUTPUT,
// $GITHUB_PATH and $GITHUB_STEP_SUMMARY files, stopping at the first
// failure. It evaluates only the expressions action.yml uses
// (inputs.NAME, steps.ID.outputs.NAME) and fails on any other.
func runAction(t *testing.T, workspace string, with map[string]string, base map[string]string) actionRun {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a actionFile
	if err := yaml.Unmarshal(raw, &a); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	if a.Runs.Using != "composite" {
		t.Fatalf("action.yml runs using %q", a.Runs.Using)
	}
	inputs := map[string]string{}
	for name, in := range a.Inputs {
		inputs[name] = in.Default
	}
	for name, v := range with {
		if _, ok := a.Inputs[name]; !ok {
			t.Fatalf("action.yml has no input %q", name)
		}
		inputs[name] = v
	}
	for name, in := range a.Inputs {
		if in.Required && inputs[name] == "" {
			t.Fatalf("input %q is required", name)
		}
	}
	tmp := t.TempDir()
	files := map[string]string{}
	for _, name := range []string{"GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STEP_SUMMARY", "GITHUB_ENV"} {
		files[name] = filepath.Join(tmp, strings.ToLower(name))
		os.WriteFile(files[name], nil, 0o600)
	}
	runnerTemp := filepath.Join(tmp, "runner-temp")
	os.Mkdir(runnerTemp, 0o700)
	run := actionRun{output: map[string]string{}, outputs: map[string]map[string]string{}}
	eval := func(s string) string {
		return expr.ReplaceAllStringFunc(s, func(m string) string {
			e := expr.FindStringSubmatch(m)[1]
			if name, ok := strings.CutPrefix(e, "inputs."); ok {
				return inputs[name]
			}
			if p := strings.Split(e, "."); len(p) == 4 && p[0] == "steps" && p[2] == "outputs" {
				return run.outputs[p[1]][p[3]]
			}
			t.Fatalf("action.yml: expression %q is not one this test evaluates", e)
			return ""
		})
	}
	path := os.Getenv("PATH")
	for _, step := range a.Runs.Steps {
		if step.Uses != "" {
			for k, v := range step.With {
				step.With[k] = eval(v)
			}
			run.uploads = append(run.uploads, step)
			continue
		}
		if step.If != "" {
			t.Fatalf("step %q: the test runs no conditional run: steps", step.Name)
		}
		os.WriteFile(files["GITHUB_OUTPUT"], nil, 0o600)
		vars := map[string]string{"RUNNER_TEMP": runnerTemp, "PATH": path}
		for k, v := range base {
			vars[k] = v
		}
		for k, v := range files {
			vars[k] = v
		}
		for k, v := range step.Env {
			vars[k] = eval(v)
		}
		code, out := bash(t, workspace, step.Run, ciEnv(vars))
		run.code, run.output[step.Name] = code, out
		outs := map[string]string{}
		for _, line := range lines(t, files["GITHUB_OUTPUT"]) {
			if k, v, ok := strings.Cut(line, "="); ok {
				outs[k] = v
			}
		}
		run.outputs[step.ID] = outs
		for _, p := range lines(t, files["GITHUB_PATH"]) {
			path = p + string(os.PathListSeparator) + path
		}
		os.WriteFile(files["GITHUB_PATH"], nil, 0o600)
		if code != 0 {
			break
		}
	}
	summary, _ := os.ReadFile(files["GITHUB_STEP_SUMMARY"])
	run.summary = string(summary)
	return run
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}

// TestCIIntegrationsAgainstTheStack runs the commands of action.yml's run:
// steps, and the script of the GitLab template's .tollgate job, in bash, as
// their runners would. No act-like runner is available offline, so this is
// the shell fallback: runAction reads action.yml, evaluates the expressions
// it uses and runs each step with the files a GitHub runner provides; the
// upload-sarif step (a uses: step) is not run, its input is checked. The
// scripts install "tollgate" from a local mirror of the release downloads,
// checksum verified: the archive holds this test binary, which is the
// command line under that name (see TestMain). They submit examples/node-
// todo (one secret: blocked) to the API over the real embedded stack
// (newAPIEnv: NATS, the Temporal dev server, the scanner workers, OPA).
func TestCIIntegrationsAgainstTheStack(t *testing.T) {
	e := newAPIEnv(t)
	hs := e.server(t, api.Config{})
	mirror, sum := ciRelease(t)
	src, err := filepath.Abs(filepath.Join("..", "..", "examples", "node-todo"))
	if err != nil {
		t.Fatal(err)
	}
	with := map[string]string{"version": ciTestVersion, "server": hs.URL, "token": "token-a", "path": src, "app": "node-todo",
		"download-url": mirror, "timeout": "10m"}
	base := map[string]string{"GITHUB_SHA": strings.Repeat("ab", 20)}

	t.Run("github", func(t *testing.T) {
		ws := t.TempDir()
		run := runAction(t, ws, with, base)
		if run.code != ExitBlocked {
			t.Fatalf("the action exits %d, want %d (blocked): %v", run.code, ExitBlocked, run.output)
		}
		if got := run.outputs["scan"]["exit-code"]; got != "1" {
			t.Fatalf("exit-code output %q, want 1", got)
		}
		var r report.Report
		readJSON(t, run.outputs["scan"]["report"], &r)
		if r.Verdict != report.VerdictBlock || len(r.Secrets) != 1 {
			t.Fatalf("report: verdict %s, %d secrets", r.Verdict, len(r.Secrets))
		}
		// The annotations are on the secret's line, in the scan step's
		// stdout, where the runner reads workflow commands.
		want := fmt.Sprintf("::error file=%s,line=%d,title=tollgate secret %s::", r.Secrets[0].File, r.Secrets[0].Line, r.Secrets[0].Rule)
		if out := run.output["Submit to tollgate and wait for the verdict"]; !strings.Contains(out, want) || !strings.Contains(out, "::notice title=tollgate verdict::") {
			t.Fatalf("no annotation %q in the scan step's output:\n%s", want, out)
		}
		if !strings.Contains(run.summary, r.ScanID) || !strings.Contains(strings.ToUpper(run.summary), "BLOCK") {
			t.Fatalf("job summary does not name the scan and its verdict:\n%s", run.summary)
		}
		if len(run.uploads) != 1 || !strings.HasPrefix(run.uploads[0].Uses, "github/codeql-action/upload-sarif@") {
			t.Fatalf("uses: steps %+v, want the SARIF upload", run.uploads)
		}
		var sarif struct {
			Version string `json:"version"`
			Runs    []struct {
				Results []json.RawMessage `json:"results"`
			} `json:"runs"`
		}
		readJSON(t, filepath.Join(ws, run.uploads[0].With["sarif_file"]), &sarif)
		if sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) == 0 {
			t.Fatalf("SARIF to upload: version %q, %d runs", sarif.Version, len(sarif.Runs))
		}
	})

	t.Run("github-pinned-checksum", func(t *testing.T) {
		w := map[string]string{"sha256": sum, "path": filepath.Join("..", "..", "examples", "clean-static")}
		for k, v := range with {
			if _, ok := w[k]; !ok {
				w[k] = v
			}
		}
		abs, _ := filepath.Abs(w["path"])
		w["path"], w["app"] = abs, "clean-static"
		if run := runAction(t, t.TempDir(), w, base); run.code != ExitPass {
			t.Fatalf("clean-static: the action exits %d, want 0: %v", run.code, run.output)
		}
	})

	t.Run("github-bad-checksum", func(t *testing.T) {
		w := map[string]string{"sha256": strings.Repeat("0", 64)}
		for k, v := range with {
			if _, ok := w[k]; !ok {
				w[k] = v
			}
		}
		run := runAction(t, t.TempDir(), w, base)
		if run.code != ExitInternal || len(run.outputs["scan"]) != 0 {
			t.Fatalf("an archive that does not match its pinned checksum: exit %d, steps %v", run.code, run.output)
		}
	})

	t.Run("gitlab", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join("..", "..", "ci", "gitlab", "tollgate.gitlab-ci.yml"))
		if err != nil {
			t.Fatal(err)
		}
		var tmpl map[string]struct {
			Variables map[string]string `json:"variables"`
			Script    []string          `json:"script"`
			Artifacts struct {
				When    string            `json:"when"`
				Reports map[string]string `json:"reports"`
			} `json:"artifacts"`
		}
		if err := yaml.Unmarshal(raw, &tmpl); err != nil {
			t.Fatal(err)
		}
		job := tmpl[".tollgate"]
		if job.Artifacts.When != "always" {
			t.Fatalf("artifacts when %q: a blocked job must keep its reports", job.Artifacts.When)
		}
		vars := map[string]string{"CI_COMMIT_SHA": strings.Repeat("cd", 20), "TOLLGATE_TOKEN": "token-a"}
		for k, v := range job.Variables {
			vars[k] = v
		}
		vars["TOLLGATE_VERSION"], vars["TOLLGATE_SERVER"], vars["TOLLGATE_DOWNLOAD_URL"] = ciTestVersion, hs.URL, mirror
		vars["TOLLGATE_SCAN_PATH"], vars["TOLLGATE_APP"] = src, "node-todo"
		ws := t.TempDir()
		code, out := bash(t, ws, strings.Join(job.Script, "\n"), ciEnv(vars))
		if code != ExitBlocked {
			t.Fatalf("the job exits %d, want %d (blocked):\n%s", code, ExitBlocked, out)
		}
		schemas := map[string]string{"sast": "sast-report-format.json", "dependency_scanning": "dependency-scanning-report-format.json"}
		for kind, file := range job.Artifacts.Reports {
			if _, err := os.Stat(filepath.Join(ws, file)); err != nil {
				t.Fatalf("report %s: %v", kind, err)
			}
			if schema, ok := schemas[kind]; ok {
				validateJSON(t, filepath.Join("..", "..", "report", "testdata", "gitlab", schema), filepath.Join(ws, file))
			}
		}
		var deps struct {
			Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
		}
		readJSON(t, filepath.Join(ws, job.Artifacts.Reports["dependency_scanning"]), &deps)
		if len(deps.Vulnerabilities) == 0 {
			t.Fatal("the dependency scanning report lists no vulnerabilities of node-todo")
		}
	})
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// validateJSON checks the document at path against the JSON Schema in
// schemaFile, offline.
func validateJSON(t *testing.T, schemaFile, path string) {
	t.Helper()
	c := jsonschema.NewCompiler()
	s, err := c.Compile(schemaFile)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaFile, err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(io.Reader(f))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := s.Validate(doc); err != nil {
		t.Fatalf("%s does not match %s: %v", path, schemaFile, err)
	}
}

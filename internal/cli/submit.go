package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/apiclient"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/tasks"
)

type submitOptions struct {
	server, token, app, commit, author, format, output, idemKey, priority, baseline string
	labels, reports, vex                                                            []string
	wait                                                                            bool
	timeout                                                                         time.Duration
}

func newSubmitCmd(g *globals) *cobra.Command {
	o := &submitOptions{}
	cmd := &cobra.Command{
		Use:   "submit PATH --server URL --app NAME [--wait]",
		Short: "Submit a directory or archive to a tollgate API (the CI client)",
		Long: `submit packs a directory (or sends an archive as is) to POST /v1/scans. With
--wait it follows the scan, shows its stage on stderr, prints the report and exits
like tollgate scan: 0 pass or warn, 1 block, 2 bad input or usage, 3 internal error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runSubmit(cmd.Context(), g, o, args[0]) },
	}
	f := cmd.Flags()
	f.StringVar(&o.server, "server", os.Getenv("TOLLGATE_SERVER"), "API base URL ($TOLLGATE_SERVER)")
	f.StringVar(&o.token, "token", os.Getenv("TOLLGATE_TOKEN"), "bearer token ($TOLLGATE_TOKEN)")
	f.StringVar(&o.app, "app", "", "app name (default: the directory or archive name)")
	f.StringVar(&o.commit, "commit", "", "commit the source was taken from")
	f.StringVar(&o.author, "author", "", "the commit author's email, who may not approve the change in a review (default: git log -1 --format=%ae in PATH's repository, if any)")
	f.StringArrayVar(&o.labels, "label", nil, "label (repeatable)")
	f.StringVar(&o.priority, "priority", "ci", "ci (someone waits on the verdict) or bulk (rescans, backfills: served after CI work)")
	f.StringVar(&o.baseline, "baseline", "", "scan id (finished, of this app) to mark findings new or known against (default: the app's newest known-good release's scan)")
	f.StringArrayVar(&o.vex, "vex", nil, "an OpenVEX or CycloneDX VEX document for this scan only (repeatable; needs the right to add VEX, role security: see \"VEX\")")
	f.StringVar(&o.idemKey, "idempotency-key", "", "resubmitting with the same key returns the same scan")
	f.BoolVar(&o.wait, "wait", false, "wait for the verdict and exit with it")
	addReportFlags(cmd, &o.format, &o.output, &o.reports, "report format with --wait")
	f.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up waiting after this long")
	return cmd
}

// gitAuthor is the email of the last commit's author in the repository
// holding path, or "" outside a repository (or when git is missing, or the
// email is not an address the API accepts).
func gitAuthor(ctx context.Context, path string) string {
	dir := path
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		dir = filepath.Dir(path)
	}
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "log", "-1", "--format=%ae").Output()
	if err != nil {
		return ""
	}
	email := strings.TrimSpace(string(out))
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return ""
	}
	return email
}

// apiClient is the CLI's view of the /v1 client: an answer that blames
// the request (4xx) exits 2, like any other usage error.
type apiClient struct{ c *apiclient.Client }

// newAPIClient checks --server and makes a client of it.
func newAPIClient(server, token string, timeout time.Duration) (*apiClient, error) {
	if server == "" {
		return nil, usageErrf("--server (or $TOLLGATE_SERVER) is required")
	}
	c, err := apiclient.New(server, token, &http.Client{Timeout: timeout})
	if err != nil {
		return nil, usageErrf("--server %q: want an http(s) URL", server)
	}
	return &apiClient{c: c}, nil
}

func cliError(err error) error {
	if apiclient.ClientSide(err) {
		return usageErr(err)
	}
	return err
}

func (a *apiClient) get(ctx context.Context, ref string, out any) error {
	return cliError(a.c.Get(ctx, ref, out))
}

func (a *apiClient) post(ctx context.Context, ref string, body, out any) error {
	return cliError(a.c.Post(ctx, ref, body, out))
}

func (a *apiClient) raw(ctx context.Context, ref string) ([]byte, error) {
	b, err := a.c.Raw(ctx, ref)
	return b, cliError(err)
}

func (a *apiClient) submit(ctx context.Context, s apiclient.Submission) (api.ScanStatus, error) {
	st, err := a.c.Submit(ctx, s)
	return st, cliError(err)
}

func runSubmit(ctx context.Context, g *globals, o *submitOptions, path string) error {
	if err := tasks.ValidPriority(o.priority); err != nil {
		return usageErrf("--priority: %v", err)
	}
	outs, err := reportOuts(o.format, o.output, o.reports)
	if err != nil {
		return err
	}
	c, err := newAPIClient(o.server, o.token, 2*time.Minute)
	if err != nil {
		return err
	}
	author := o.author
	if author == "" {
		author = gitAuthor(ctx, path)
	}
	meta := api.Metadata{App: appOr(o.app, path), Commit: o.commit, Labels: o.labels, Priority: o.priority, Author: author, Baseline: o.baseline}
	var vexDocs [][]byte
	for _, f := range o.vex {
		doc, err := os.ReadFile(f)
		if err != nil {
			return usageErrf("--vex: %v", err)
		}
		vexDocs = append(vexDocs, doc)
	}
	st, err := c.submitPath(ctx, path, meta, o.idemKey, vexDocs...)
	if err != nil {
		return err
	}
	progress := g.progress(false)
	progress("submitted %s as app %q: scan %s", path, meta.App, st.ScanID)
	if !o.wait {
		return writeJSONTo(g.stdout, st)
	}
	return awaitReport(ctx, g, c, st, outs, o.timeout, progress)
}

// submitPath packs path (see packInput) and submits it with meta.
func (a *apiClient) submitPath(ctx context.Context, path string, meta api.Metadata, idemKey string, vexDocs ...[]byte) (api.ScanStatus, error) {
	body, err := packInput(ctx, path)
	if err != nil {
		return api.ScanStatus{}, err
	}
	return a.submit(ctx, apiclient.Submission{Metadata: meta, Archive: body, VEX: vexDocs, IdempotencyKey: idemKey})
}

// progress returns the printer of progress lines on stderr ("tollgate: ..."),
// silent when quiet.
func (g *globals) progress(quiet bool) func(format string, args ...any) {
	return func(format string, args ...any) {
		if !quiet {
			fmt.Fprintf(g.stderr, "tollgate: "+format+"\n", args...)
		}
	}
}

// awaitReport follows a submitted scan to its end (up to timeout), telling
// progress each new stage and wait, then writes its report in each of
// outs and returns the verdict's exit. SARIF and the SBOMs come from the
// API, which made the scan; the other formats are rendered here from its
// JSON report.
func awaitReport(ctx context.Context, g *globals, c *apiClient, st api.ScanStatus, outs []reportOut, timeout time.Duration,
	progress func(format string, args ...any)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last, lastWaiting := "", ""
	for st.Status == "running" {
		if st.Stage != "" && st.Stage != last {
			progress("%s stage...", st.Stage)
			last = st.Stage
		}
		if st.Waiting != "" && st.Waiting != lastWaiting {
			progress("waiting: %s", st.Waiting)
		}
		lastWaiting = st.Waiting
		if err := c.get(ctx, st.StatusURL+"?wait=20s", &st); err != nil {
			return err
		}
	}
	if st.Status != "completed" {
		if st.BadInput {
			return usageErrf("scan %s: bad input: %s", st.ScanID, st.Error)
		}
		return fmt.Errorf("scan %s %s: %s", st.ScanID, st.Status, st.Error)
	}
	var r report.Report
	if err := c.get(ctx, st.ReportURL+"?format=json", &r); err != nil {
		return err
	}
	progress("verdict %s in the %s stage: %d secrets, %d code weaknesses, %d vulnerabilities, %d packages",
		strings.ToUpper(string(r.Verdict)), r.Stage, len(r.Secrets), len(r.Weaknesses), len(r.Vulnerabilities), len(r.Packages))
	err := writeReports(g, outs, func(w io.Writer, format string) error {
		switch format {
		case "sarif", "cyclonedx", "spdx":
			raw, err := c.raw(ctx, st.ReportURL+"?format="+format)
			if err != nil {
				return err
			}
			_, err = w.Write(raw)
			return err
		default:
			return render(w, r, format)
		}
	})
	if err != nil {
		return err
	}
	return verdictError(r.Verdict)
}

// packInput returns the bytes to upload: a directory packed as a
// deterministic .tar.gz, or an archive file as it is.
func packInput(ctx context.Context, path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, usageErrf("submit %q: %w", path, err)
	}
	if !st.IsDir() {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, usageErrf("submit %q: %w", path, err)
		}
		return b, nil
	}
	var buf bytes.Buffer
	if err := archive.Pack(ctx, path, &buf); err != nil {
		return nil, usageErrf("pack %q: %w", path, err)
	}
	return buf.Bytes(), nil
}

func writeJSONTo(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

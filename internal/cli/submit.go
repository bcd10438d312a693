package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/tasks"
)

type submitOptions struct {
	server, token, app, commit, author, format, output, idemKey, priority string
	labels                                                                []string
	wait                                                                  bool
	timeout                                                               time.Duration
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
	f.StringVar(&o.idemKey, "idempotency-key", "", "resubmitting with the same key returns the same scan")
	f.BoolVar(&o.wait, "wait", false, "wait for the verdict and exit with it")
	f.StringVarP(&o.format, "format", "f", "table", "report format with --wait: "+strings.Join(formats, ", "))
	f.StringVarP(&o.output, "output", "o", "", "write the report to this file instead of stdout")
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

type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// apiError is a problem+json answer.
type apiError struct {
	status  int
	problem api.Problem
}

func (e *apiError) Error() string {
	if e.problem.Detail != "" {
		return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.problem.Detail)
	}
	return fmt.Sprintf("%d %s", e.status, http.StatusText(e.status))
}

func runSubmit(ctx context.Context, g *globals, o *submitOptions, path string) error {
	if o.server == "" {
		return usageErrf("--server (or $TOLLGATE_SERVER) is required")
	}
	if err := tasks.ValidPriority(o.priority); err != nil {
		return usageErrf("--priority: %v", err)
	}
	if !validFormat(o.format) {
		return usageErrf("--format %q: want one of %s", o.format, strings.Join(formats, ", "))
	}
	base, err := url.Parse(o.server)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return usageErrf("--server %q: want an http(s) URL", o.server)
	}
	c := &apiClient{base: base, token: o.token, http: &http.Client{Timeout: 2 * time.Minute}}
	app := o.app
	if app == "" {
		app = appName(path)
	}
	body, err := packInput(ctx, path)
	if err != nil {
		return err
	}
	author := o.author
	if author == "" {
		author = gitAuthor(ctx, path)
	}
	meta, _ := json.Marshal(api.Metadata{App: app, Commit: o.commit, Labels: o.labels, Priority: o.priority, Author: author})
	var st api.ScanStatus
	if err := c.submit(ctx, meta, body, o.idemKey, &st); err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "tollgate: submitted %s as app %q: scan %s\n", path, app, st.ScanID)
	if !o.wait {
		return writeJSONTo(g.stdout, st)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	last, lastWaiting := "", ""
	for st.Status == "running" {
		if st.Stage != "" && st.Stage != last {
			fmt.Fprintf(g.stderr, "tollgate: %s stage...\n", st.Stage)
			last = st.Stage
		}
		if st.Waiting != "" && st.Waiting != lastWaiting {
			fmt.Fprintf(g.stderr, "tollgate: waiting: %s\n", st.Waiting)
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
	fmt.Fprintf(g.stderr, "tollgate: verdict %s in the %s stage: %d secrets, %d code weaknesses, %d vulnerabilities, %d packages\n",
		strings.ToUpper(string(r.Verdict)), r.Stage, len(r.Secrets), len(r.Weaknesses), len(r.Vulnerabilities), len(r.Packages))
	out, err := openOutput(g, o.output)
	if err != nil {
		return err
	}
	defer out.Close()
	switch o.format {
	case "table":
		err = report.WriteTable(out, r)
	case "json":
		err = writeJSONTo(out, r)
	default:
		var raw []byte
		raw, err = c.raw(ctx, st.ReportURL+"?format="+o.format)
		if err == nil {
			_, err = out.Write(raw)
		}
	}
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

func (c *apiClient) submit(ctx context.Context, meta, archiveBytes []byte, idemKey string, out any) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mpart, _ := mw.CreateFormField("metadata")
	mpart.Write(meta)
	apart, _ := mw.CreateFormFile("archive", "source.tgz")
	apart.Write(archiveBytes)
	mw.Close()
	return c.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath("/v1/scans").String(), bytes.NewReader(body.Bytes()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
		if idemKey != "" {
			req.Header.Set("Idempotency-Key", idemKey)
		}
		return req, nil
	}, out)
}

func (c *apiClient) get(ctx context.Context, ref string, out any) error {
	return c.do(ctx, func() (*http.Request, error) {
		u, err := c.base.Parse(ref)
		if err != nil {
			return nil, err
		}
		return http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	}, out)
}

func (c *apiClient) raw(ctx context.Context, ref string) ([]byte, error) {
	var raw json.RawMessage
	err := c.get(ctx, ref, &raw)
	return raw, err
}

// do sends a request, honouring 429 Retry-After a few times, and decodes the
// answer or its problem+json.
func (c *apiClient) do(ctx context.Context, build func() (*http.Request, error), out any) error {
	for attempt := 0; ; attempt++ {
		req, err := build()
		if err != nil {
			return usageErr(err)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: read answer: %w", req.Method, req.URL.Path, err)
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < 5 {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(max(wait, 1)) * time.Second):
			}
			continue
		}
		if resp.StatusCode >= 300 {
			e := &apiError{status: resp.StatusCode}
			_ = json.Unmarshal(data, &e.problem)
			if resp.StatusCode < 500 {
				return usageErr(fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, e))
			}
			return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, e)
		}
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = data
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", req.Method, req.URL.Path, err)
		}
		return nil
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func openOutput(g *globals, path string) (io.WriteCloser, error) {
	if path == "" {
		return nopCloser{g.stdout}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, usageErrf("--output %q: %w", path, err)
	}
	return f, nil
}

func writeJSONTo(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/temporal"

	"github.com/tollgate/tollgate/activities"
	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/embedded"
	"github.com/tollgate/tollgate/fleet"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/vex"
	"github.com/tollgate/tollgate/vulndb"
	"github.com/tollgate/tollgate/workflows"
)

// formats are the report formats of scan and submit: the report package's
// renderings and the two SBOMs from evidence.
var formats = append(slices.Clone(report.Formats), "cyclonedx", "spdx", "openvex")

type scanOptions struct {
	db          string
	policy      string
	rules       string
	full        bool
	format      string
	output      string
	reports     []string
	outs        []reportOut
	app         string
	commit      string
	labels      []string
	denyLicense []string
	evidence    string
	temporalCLI string
	signingKey  string
	baseline    string
	quiet       bool
	// embedded scans on an embedded stack even when a tollgate dev runs;
	// stackFlags says a flag that shapes the stack (policy, rules, DB,
	// evidence, ...) was given, which a running dev cannot honour.
	embedded   bool
	stackFlags bool
}

// stackFlagNames are scan's flags that configure the stack it scans on: a
// scan given one of them never goes to a running tollgate dev, which has its
// own.
var stackFlagNames = []string{"db", "policy", "rules", "deny-license", "evidence", "temporal-cli", "signing-key"}

func newScanCmd(g *globals) *cobra.Command {
	o := &scanOptions{}
	cmd := &cobra.Command{
		Use:   "scan [flags] PATH",
		Short: "Scan a directory or a .tar.gz/.tgz/.zip archive on an embedded stack and exit with the verdict",
		Long: `Scan runs the real pipeline in one process: an embedded nats-server, a Temporal
dev server (child process), the scan workflow, warm scanner workers (gitleaks,
the SAST engine, syft, trivy) and the OPA policies. It prints the report and exits with the
verdict: 0 pass or warn, 1 block, 2 bad input or usage, 3 internal error.
Progress goes to stderr, the report to stdout or --output.

When a tollgate dev is running (its state folder, $TOLLGATE_DEV_STATE_DIR,
holds its address), scan submits to it instead and starts nothing, unless
--embedded or a flag that shapes the stack (--db, --policy, --rules,
--deny-license, --evidence, --temporal-cli, --signing-key) is given, or
--full is asked of a dev that does not run it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.stackFlags = slices.ContainsFunc(stackFlagNames, cmd.Flags().Changed)
			return runScan(cmd.Context(), g, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.db, "db", vulndb.DefaultDir(), "vulnerability DB directory ($TOLLGATE_DB_DIR)")
	f.StringVar(&o.policy, "policy", os.Getenv("TOLLGATE_POLICY_DIR"), "policy bundle directory replacing the embedded one ($TOLLGATE_POLICY_DIR)")
	f.StringVar(&o.rules, "rules", os.Getenv("TOLLGATE_SAST_RULES_DIR"), "SAST rules directory replacing the embedded rules ($TOLLGATE_SAST_RULES_DIR)")
	f.BoolVar(&o.full, "full", false, "run the deep stage even when the fast stage blocks")
	addReportFlags(cmd, &o.format, &o.output, &o.reports, "report format")
	f.StringVar(&o.app, "app", "", "app name (default: the directory or archive name)")
	f.StringVar(&o.commit, "commit", "", "commit the source was taken from")
	f.StringArrayVar(&o.labels, "label", nil, "label for the scan (repeatable)")
	f.StringSliceVar(&o.denyLicense, "deny-license", nil, "SPDX licence ids to block, replacing the policy's deny list (repeatable or comma-separated)")
	f.StringVar(&o.evidence, "evidence", defaultEvidenceDir(), "local write-once evidence store ($TOLLGATE_EVIDENCE_DIR)")
	f.StringVar(&o.temporalCLI, "temporal-cli", "", "temporal CLI binary for the dev server ($TOLLGATE_TEMPORAL_CLI; default: PATH, then the tool cache)")
	f.StringVar(&o.signingKey, "signing-key", os.Getenv("TOLLGATE_SIGNING_KEY"), "PEM private key that signs the scan's in-toto attestation ($TOLLGATE_SIGNING_KEY)")
	f.StringVar(&o.baseline, "baseline", "", "scan id (finished, of this app, in the evidence store) to mark findings new or known against")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress on stderr")
	f.BoolVar(&o.embedded, "embedded", false, "scan on an embedded stack even when a tollgate dev is running")
	return cmd
}

func runScan(ctx context.Context, g *globals, o *scanOptions, path string) error {
	outs, err := reportOuts(o.format, o.output, o.reports)
	if err != nil {
		return err
	}
	o.outs = outs
	progress := g.progress(o.quiet)
	rules, err := rulesDir(o.rules)
	if err != nil {
		return err
	}
	if done, err := scanOnDev(ctx, g, o, path, progress); done {
		return err
	}
	begin := time.Now()
	dir, cleanup, err := sourceDir(ctx, path)
	if err != nil {
		return err
	}
	defer cleanup()

	app := appOr(o.app, path)
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("new scan id: %w", err)
	}
	req := workflows.ScanRequest{
		ScanID: id.String(), App: app, Commit: o.commit, Labels: o.labels, Full: o.full,
		Input: tasks.Input{Dir: dir}, SubmittedAt: time.Now().UTC().Truncate(time.Second),
		// A local scan has no reviewers: one that needs a review is blocked
		// at once, with a reason that says to submit it through the API.
		ReviewTimeout: -1,
	}
	progress("scanning %s as app %q (scan %s)", path, app, req.ScanID)

	st, err := embedded.Start(ctx, embedded.Config{
		ScanRoots: []string{dir}, // the sandboxed scanners read the scanned tree and nothing else
		Orchestrator: fleet.Orchestrator{PolicyDir: o.policy, LicenseDeny: o.denyLicense, SigningKey: o.signingKey,
			RematchInterval: -1, TTLInterval: -1}, // a one-off scan has no live releases to watch, no apps to sweep
		// One scan runs one task per pool at a time: one warm child per
		// pool. The default, one per CPU, loaded scanners no task would use.
		Worker:      fleet.Worker{Concurrency: 1, DBDir: o.db, RulesDir: rules, SecretFingerprintKey: []byte(os.Getenv("TOLLGATE_SECRET_FINGERPRINT_KEY"))},
		EvidenceDir: o.evidence, TemporalCLI: o.temporalCLI, Version: Version, Logger: g.logger,
	})
	if err != nil {
		return fleetErr(fmt.Errorf("start embedded stack: %w", err))
	}
	defer st.Close()
	progress("embedded stack up in %.2fs (NATS, Temporal dev server %s, warm scanners)", time.Since(begin).Seconds(), st.TemporalAddr())
	if o.baseline != "" {
		// The embedded mode has no tenant: a baseline is any finished
		// scan of the app whose report the evidence store holds.
		base, err := activities.LoadReport(ctx, st.Evidence(), o.baseline)
		if err != nil {
			return usageErrf("--baseline %s: %v", o.baseline, err)
		}
		if base.App != app {
			return usageErrf("--baseline %s is a scan of app %q, not %q", o.baseline, base.App, app)
		}
		req.Baseline = &report.Baseline{ScanID: o.baseline}
	}

	res, err := st.Scan(ctx, req, func(p workflows.Progress) { progress("%s stage...", p.Stage) })
	if err != nil {
		return scanError(req.ScanID, err)
	}
	r, err := st.Report(ctx, res)
	if err != nil {
		return err
	}
	if !r.VulnDB.Available {
		progress("WARNING: vulnerabilities were not checked: %s", r.VulnDB.Note)
	}
	progress("verdict %s in the %s stage: %d secrets, %d code weaknesses, %d vulnerabilities, %d packages (%.2fs)",
		strings.ToUpper(string(r.Verdict)), r.Stage, len(r.Secrets), len(r.Weaknesses), len(r.Vulnerabilities), len(r.Packages), time.Since(begin).Seconds())

	if err := writeReport(ctx, g, o, st, r); err != nil {
		return err
	}
	return verdictError(r.Verdict)
}

// scanOnDev scans path on a running tollgate dev, as `submit --wait` to it
// would, when one runs and the options allow it; done says it did (and err
// is the scan's outcome). Otherwise the caller starts an embedded stack.
func scanOnDev(ctx context.Context, g *globals, o *scanOptions, path string, progress func(string, ...any)) (done bool, err error) {
	if o.embedded || o.stackFlags {
		return false, nil
	}
	state := defaultDevStateDir()
	link, why := findDev(ctx, state)
	switch {
	case link.API == "":
		if why != "" {
			progress("%s: scanning on an embedded stack", why)
		}
		return false, nil
	case o.full && !link.Full:
		progress("the tollgate dev at %s does not run --full: scanning on an embedded stack", link.API)
		return false, nil
	}
	c, err := newAPIClient(link.API, link.Token, 2*time.Minute)
	if err != nil {
		return true, err
	}
	meta := api.Metadata{App: appOr(o.app, path), Commit: o.commit, Labels: o.labels, Baseline: o.baseline}
	st, err := c.submitPath(ctx, path, meta, "")
	if err != nil {
		return true, err
	}
	progress("scanning %s as app %q on the tollgate dev at %s (scan %s; --embedded to start a stack of its own)", path, meta.App, link.API, st.ScanID)
	return true, awaitReport(ctx, g, c, st, o.outs, time.Hour, progress)
}

// sourceDir returns the directory to scan. An archive is extracted, with the
// archive package's limits, into a private temporary directory.
func sourceDir(ctx context.Context, path string) (string, func(), error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", nil, usageErrf("scan %q: %w", path, err)
	}
	if st.IsDir() {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", nil, usageErrf("scan %q: %w", path, err)
		}
		return abs, func() {}, nil
	}
	if !st.Mode().IsRegular() {
		return "", nil, usageErrf("scan %q: not a directory or an archive file", path)
	}
	tmp, err := os.MkdirTemp("", "tollgate-src-*")
	if err != nil {
		return "", nil, fmt.Errorf("create extraction dir: %w", err)
	}
	cleanup := func() { os.RemoveAll(tmp) }
	dest := filepath.Join(tmp, "src")
	if err := os.Mkdir(dest, 0o700); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("create extraction dir: %w", err)
	}
	if _, err := archive.Extract(ctx, path, dest, archive.Limits{}); err != nil {
		cleanup()
		if errors.Is(err, archive.ErrRejected) {
			return "", nil, usageErr(err)
		}
		return "", nil, err
	}
	return dest, cleanup, nil
}

// rulesDir checks a SAST rules directory given by --rules (or its
// variable) and makes it absolute, as the sandboxed scanners load it; ""
// (the embedded rules) stays "".
func rulesDir(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return "", usageErrf("SAST rules directory %q: %w", dir, err)
	}
	if !st.IsDir() {
		return "", usageErrf("SAST rules directory %q: not a directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", usageErrf("SAST rules directory %q: %w", dir, err)
	}
	return abs, nil
}

func scanError(scanID string, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == tasks.ErrTypeBadInput {
		return usageErrf("scan %s: bad input: %s", scanID, appErr.Error())
	}
	return fmt.Errorf("scan %s failed: %w", scanID, err)
}

func verdictError(v report.Verdict) error {
	switch v {
	case report.VerdictPass, report.VerdictWarn:
		return nil
	default:
		return verdictExit{code: ExitBlocked}
	}
}

// writeReport writes r in each rendering o asks for: an SBOM from the
// stack's evidence, the rest rendered by the report package.
func writeReport(ctx context.Context, g *globals, o *scanOptions, st *embedded.Stack, r report.Report) error {
	return writeReports(g, o.outs, func(w io.Writer, format string) error {
		switch format {
		case "cyclonedx", "spdx":
			name := map[string]string{"cyclonedx": "sbom.cdx.json", "spdx": "sbom.spdx.json"}[format]
			ev, ok := findEvidence(r, name)
			if !ok {
				return usageErrf("no %s SBOM: the scan ended in the %s stage before the SBOM was made (use --full)", format, r.Stage)
			}
			data, _, err := st.Evidence().Get(ctx, ev.Key)
			if err != nil {
				return fmt.Errorf("read the %s SBOM: %w", format, err)
			}
			_, err = w.Write(data)
			return err
		default:
			return render(w, r, format)
		}
	})
}

// render writes r in a format rendered from the report alone: the report
// package's, or the scan's final vulnerability status as OpenVEX.
func render(w io.Writer, r report.Report, format string) error {
	if format != "openvex" {
		return report.Render(w, r, format, Version)
	}
	doc, err := vex.Export(r)
	if err != nil {
		return fmt.Errorf("export scan %s as OpenVEX: %w", r.ScanID, err)
	}
	_, err = w.Write(doc)
	return err
}

func findEvidence(r report.Report, name string) (report.Evidence, bool) {
	for _, e := range r.Evidence {
		if e.Name == name {
			return e, true
		}
	}
	return report.Evidence{}, false
}

func validFormat(f string) bool { return slices.Contains(formats, f) }

var nonName = regexp.MustCompile(`[^a-z0-9._-]+`)

// appOr is app, or when it is "" the name appName derives from path.
func appOr(app, path string) string {
	if app != "" {
		return app
	}
	return appName(path)
}

// appName derives an app name from a path: its base name without archive
// extensions, in the characters the fast policy accepts.
func appName(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	base := strings.ToLower(filepath.Base(abs))
	for _, ext := range []string{".tar.gz", ".tgz", ".zip", ".tar"} {
		base = strings.TrimSuffix(base, ext)
	}
	base = strings.Trim(nonName.ReplaceAllString(base, "-"), "-._")
	if base == "" {
		return "app"
	}
	return base[:min(len(base), 63)]
}

func defaultEvidenceDir() string {
	return xdgDir("TOLLGATE_EVIDENCE_DIR", "XDG_DATA_HOME", filepath.Join(".local", "share"), "evidence")
}

// xdgDir is $override when set, else tollgate/name in the XDG base
// directory $xdgVar, else in its default ~/home, else tollgate-name in the
// temporary directory.
func xdgDir(override, xdgVar, home, name string) string {
	if d := os.Getenv(override); d != "" {
		return d
	}
	if d := os.Getenv(xdgVar); d != "" {
		return filepath.Join(d, "tollgate", name)
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, home, "tollgate", name)
	}
	return filepath.Join(os.TempDir(), "tollgate-"+name)
}

package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/releases"
)

// serverFlags are the API client flags of the on-call and release commands.
type serverFlags struct {
	server, token, app string
	json               bool
}

func (s *serverFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.server, "server", os.Getenv("TOLLGATE_SERVER"), "API base URL ($TOLLGATE_SERVER)")
	f.StringVar(&s.token, "token", os.Getenv("TOLLGATE_TOKEN"), "bearer token ($TOLLGATE_TOKEN)")
	f.StringVar(&s.app, "app", "", "app name (required)")
	f.BoolVar(&s.json, "json", false, "print the API's JSON answer")
}

func (s *serverFlags) client() (*apiClient, error) {
	if s.app == "" && s.server != "" {
		return nil, usageErrf("--app is required")
	}
	return newAPIClient(s.server, s.token, time.Minute)
}

func (s *serverFlags) path(parts ...string) string {
	return "/v1/apps/" + url.PathEscape(s.app) + "/" + strings.Join(parts, "/")
}

// call sends in to the app's endpoint (a GET when in is nil), decodes the
// answer into out and prints it: as JSON with --json, else with human.
func (s *serverFlags) call(ctx context.Context, g *globals, endpoint string, in, out any, human func()) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	if in == nil {
		err = c.get(ctx, s.path(endpoint), out)
	} else {
		err = c.post(ctx, s.path(endpoint), in, out)
	}
	if err != nil {
		return err
	}
	return s.answer(g.stdout, out, human)
}

// answer prints v as JSON (--json), or calls human.
func (s *serverFlags) answer(w io.Writer, v any, human func()) error {
	if s.json {
		return writeJSONTo(w, v)
	}
	human()
	return nil
}

func newReleaseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Record and list an app's releases (the guard watches the latest)",
	}
	cmd.AddCommand(newReleaseRecordCmd(g), newReleaseListCmd(g))
	return cmd
}

func newReleaseRecordCmd(g *globals) *cobra.Command {
	var s serverFlags
	var in api.ReleaseRequest
	var baseline time.Duration
	cmd := &cobra.Command{
		Use:   "record --app A --artifact DIGEST --scan SCAN_ID",
		Short: "Record a deployed release; its scan must not have blocked it",
		Long: `record tells tollgate that an app now runs a release: the artifact digest
and the scan that passed it. A scan whose verdict is block is refused. The
app's guard starts watching the release; once it has been healthy long
enough (policy: known_good_after) it becomes a release to roll back to.
Needs the ci or deployer role.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in.BaselineP95Seconds = baseline.Seconds()
			var rel releases.Release
			return s.call(cmd.Context(), g, "releases", in, &rel, func() {
				fmt.Fprintf(g.stdout, "release %s of %s recorded (scan %s, verdict %s); the guard is watching it\n", rel.ID, rel.App, rel.ScanID, rel.Verdict)
			})
		},
	}
	s.add(cmd)
	f := cmd.Flags()
	f.StringVar(&in.Artifact, "artifact", "", "artifact digest, sha256:<hex> (required)")
	f.StringVar(&in.ScanID, "scan", "", "the scan that passed this code (required)")
	f.StringVar(&in.Signature, "signature", "", "reference to the artifact's signature, kept with the release")
	f.StringVar(&in.ID, "id", "", "release id (default: time and digest)")
	f.DurationVar(&baseline, "baseline-p95", 0, "expected p95 latency; turns on the latency rule (e.g. 250ms)")
	return cmd
}

func newReleaseListCmd(g *globals) *cobra.Command {
	var s serverFlags
	cmd := &cobra.Command{
		Use:   "list --app A",
		Short: "List an app's releases, oldest first, and which are known-good",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Releases []releases.Status `json:"releases"`
			}
			return s.call(cmd.Context(), g, "releases", nil, &out, func() {
				tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "RELEASE\tRECORDED\tSCAN\tVERDICT\tKNOWN-GOOD\tARTIFACT")
				for _, r := range out.Releases {
					kg := "-"
					if r.KnownGood != nil {
						kg = r.KnownGood.At.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.RecordedAt.Format(time.RFC3339), r.ScanID, r.Verdict, kg, r.Artifact)
				}
				tw.Flush()
			})
		},
	}
	s.add(cmd)
	return cmd
}

func newRollbackCmd(g *globals) *cobra.Command {
	var s serverFlags
	var in api.RollbackIn
	cmd := &cobra.Command{
		Use:   "rollback --app A --reason TEXT [--to RELEASE]",
		Short: "Roll an app back now, skipping analysis (on-call)",
		Long: `rollback starts the app's rollback at once: to --to, or to the newest
known-good release before the current one whose scan still passes and whose
evidence verifies. If a rollback is already running it joins that one (and is
refused if --to names another release). Needs the oncall role.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(in.Reason) == "" {
				return usageErrf("--reason is required")
			}
			var st control.RollbackStarted
			return s.call(cmd.Context(), g, "rollback", in, &st, func() {
				verb := "started"
				if st.Joined {
					verb = "joined the running"
				}
				fmt.Fprintf(g.stdout, "%s rollback %s (run %s); follow it with: tollgate guard status --app %s\n", verb, st.RollbackID, st.RunID, s.app)
			})
		},
	}
	s.add(cmd)
	cmd.Flags().StringVar(&in.To, "to", "", "release to roll back to (default: the last known-good one)")
	cmd.Flags().StringVar(&in.Reason, "reason", "", "why (required; recorded in the evidence)")
	return cmd
}

func newFreezeCmd(g *globals) *cobra.Command {
	var s serverFlags
	var in api.FreezeIn
	cmd := &cobra.Command{
		Use:   "freeze --app A --reason TEXT",
		Short: "Stop automatic rollbacks of an app (it is still watched and alerted on)",
		Long:  "freeze is for releases that must not be rolled back, e.g. after irreversible migrations. Needs the oncall role.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(in.Reason) == "" {
				return usageErrf("--reason is required")
			}
			var out map[string]any
			return s.call(cmd.Context(), g, "freeze", in, &out, func() { fmt.Fprintf(g.stdout, "%s frozen: the guard will alert, not roll back\n", s.app) })
		},
	}
	s.add(cmd)
	cmd.Flags().StringVar(&in.Reason, "reason", "", "why (required)")
	return cmd
}

func newUnfreezeCmd(g *globals) *cobra.Command {
	var s serverFlags
	cmd := &cobra.Command{
		Use:   "unfreeze --app A",
		Short: "Let the guard roll an app back again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]any
			return s.call(cmd.Context(), g, "unfreeze", struct{}{}, &out, func() { fmt.Fprintf(g.stdout, "%s unfrozen\n", s.app) })
		},
	}
	s.add(cmd)
	return cmd
}

func newGuardCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "guard", Short: "Inspect an app's guard"}
	var s serverFlags
	status := &cobra.Command{
		Use:   "status --app A",
		Short: "The guard's current values against its thresholds, and its recent decisions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st control.GuardStatus
			return s.call(cmd.Context(), g, "guard", nil, &st, func() { printGuardStatus(g.stdout, st) })
		},
	}
	s.add(status)
	cmd.AddCommand(status)
	return cmd
}

func printGuardStatus(w io.Writer, st control.GuardStatus) {
	gs := st.Guard
	fmt.Fprintf(w, "app %s (tenant %s), release %s", gs.App, gs.Tenant, orDash(gs.Release.ID))
	if gs.KnownGood {
		fmt.Fprint(w, ", known-good")
	}
	fmt.Fprintln(w)
	switch {
	case gs.Frozen:
		fmt.Fprintf(w, "FROZEN since %s: %s\n", gs.FrozenAt.Format(time.RFC3339), gs.FreezeReason)
	case gs.AwaitingRelease:
		fmt.Fprintln(w, "awaiting a release (none recorded yet, or a rollback is in progress)")
	}
	if gs.Rules.DryRun {
		fmt.Fprintln(w, "dry run: rollbacks are recorded, not started")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "SIGNAL\tVALUE\tTHRESHOLD\tWINDOW\tOUTCOME\tSAMPLES\tREQUESTS\n")
	for _, ev := range gs.Current {
		fmt.Fprintf(tw, "%s\t%.4g\t%.4g\t%s\t%s\t%d\t%d\n", ev.Signal, ev.Value, ev.Threshold, ev.Window, ev.Outcome, ev.Samples, ev.Requests)
	}
	tw.Flush()
	if !gs.EvaluatedAt.IsZero() {
		fmt.Fprintf(w, "evaluated at %s, every %s; %d breach(es) in a row of %d needed\n", gs.EvaluatedAt.Format(time.RFC3339), gs.Rules.SampleInterval, gs.Breaches, gs.Rules.ConsecutiveBreaches)
	}
	if rb := st.Rollback; rb != nil {
		state := rb.Phase
		if rb.Outcome != "" {
			state += ", " + rb.Outcome
		}
		to := "-"
		if rb.Target != nil {
			to = rb.Target.Release.ID
		}
		fmt.Fprintf(w, "latest rollback %s: %s, to %s, %d request(s)\n", rb.RollbackID, state, to, rb.Requests)
	}
	fmt.Fprintln(w, "recent decisions:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i := len(gs.Decisions) - 1; i >= 0; i-- {
		d := gs.Decisions[i]
		times := ""
		if d.Repeats > 0 {
			times = fmt.Sprintf(" (x%d until %s)", d.Repeats+1, d.Until.Format(time.RFC3339))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s%s\n", d.At.Format(time.RFC3339), d.Action, d.Reason, times)
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

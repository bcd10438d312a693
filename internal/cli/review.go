package cli

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/workflows"
)

func newReviewCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "review",
		Short: "Approve or reject a scan that waits for a human review (role reviewer)",
		Long: `When the policy asks for a human review (for example: an AI-generated change that
touches authentication, secrets handling or network egress), the scan waits, with
verdict "review", until a reviewer approves or rejects it, or its timeout blocks it.
The reviewer needs the reviewer role and a token that names a person (OIDC, or a static token with a person) who is neither the scan's submitter nor the commit author. The decision
is stored as evidence under the scan's signed attestation.`,
	}
	for _, decision := range []string{workflows.ReviewApprove, workflows.ReviewReject} {
		cmd.AddCommand(newReviewDecisionCmd(g, decision))
	}
	return cmd
}

func newReviewDecisionCmd(g *globals, decision string) *cobra.Command {
	var server, token, reason string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   decision + " SCAN_ID --reason TEXT",
		Short: strings.ToUpper(decision[:1]) + decision[1:] + " a scan waiting for review",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageErrf("--reason is required")
			}
			c, err := newAPIClient(server, token, time.Minute)
			if err != nil {
				return err
			}
			var out api.ScanStatus
			if err := c.post(cmd.Context(), "/v1/scans/"+url.PathEscape(args[0])+"/review", api.ReviewRequest{Decision: decision, Reason: reason}, &out); err != nil {
				return err
			}
			if asJSON {
				return writeJSONTo(g.stdout, out)
			}
			fmt.Fprintf(g.stdout, "scan %s: %s sent; follow it at %s\n", args[0], decision, out.StatusURL)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", os.Getenv("TOLLGATE_SERVER"), "API base URL ($TOLLGATE_SERVER)")
	f.StringVar(&token, "token", os.Getenv("TOLLGATE_TOKEN"), "bearer token ($TOLLGATE_TOKEN)")
	f.StringVar(&reason, "reason", "", "why (required)")
	f.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
	return cmd
}

func newRematchCmd(g *globals) *cobra.Command {
	var server, token string
	cmd := &cobra.Command{
		Use:   "rematch",
		Short: "Match your tenant's live releases' stored SBOMs against the current DB now (roles sre, security)",
		Long: `rematch re-matches your tenant's live releases at once, e.g. right after the workers'
vulnerability DB was updated (the schedule covers every tenant; a trigger covers only
yours, and joins your tenant's run when one is going). Each live release's stored SBOM is matched again (deep
workers skip SBOMs already matched against the same or a newer DB), its verdict decided
again under today's exceptions, a changed verdict recorded as evidence, and a worse one
published on tollgate.events.verdict.<tenant>.<app> (and the events webhook).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(server, token, time.Minute)
			if err != nil {
				return err
			}
			var out api.RematchTriggered
			if err := c.post(cmd.Context(), "/v1/rematch", struct{}{}, &out); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "rematch of tenant %s triggered (workflow %s, run %s) at %s\n", out.Tenant, out.WorkflowID, out.RunID, out.TriggeredAt.Format(time.RFC3339))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", os.Getenv("TOLLGATE_SERVER"), "API base URL ($TOLLGATE_SERVER)")
	f.StringVar(&token, "token", os.Getenv("TOLLGATE_TOKEN"), "bearer token ($TOLLGATE_TOKEN)")
	return cmd
}

package cli

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/vex"
)

func newVEXCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vex",
		Short: "Vendors' VEX statements: add and list the tenant's OpenVEX and CycloneDX VEX documents",
		Long: `A VEX document says whether a product is affected by a vulnerability. tollgate reads
OpenVEX (JSON) and CycloneDX VEX (JSON or XML). A statement that a named product (or a
package inside it, by purl) is not_affected, with a justification, or fixed silences
that vulnerability in that package in the tenant's scans; the verdict lists it like an
exception, with the document and who added it. Every other status silences nothing.
Each document is kept as write-once evidence with who added it and when. Adding needs
the security role. A scan's final vulnerability status is exported as OpenVEX with
--format openvex (scan, submit) or GET /v1/scans/{id}/report?format=openvex.`,
	}
	cmd.AddCommand(newVEXAddCmd(g), newVEXListCmd(g))
	return cmd
}

func newVEXAddCmd(g *globals) *cobra.Command {
	var f exceptionFlags
	cmd := &cobra.Command{
		Use:   "add FILE",
		Short: "Add a VEX document for the tenant's scans",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usageErrf("vex add: %v", err)
			}
			// Parsed here too, so a bad file is named before any upload.
			if _, err := vex.Parse(data); err != nil {
				return usageErrf("vex add %s: %v", args[0], err)
			}
			c, err := newAPIClient(f.server, f.token, time.Minute)
			if err != nil {
				return err
			}
			ctype := "application/json"
			if b := bytes.TrimSpace(data); len(b) > 0 && b[0] == '<' {
				ctype = "application/xml"
			}
			var rec vex.Record
			if err := cliError(c.c.PostRaw(cmd.Context(), "/v1/vex", ctype, data, &rec)); err != nil {
				return err
			}
			if f.json {
				return writeJSONTo(g.stdout, rec)
			}
			fmt.Fprintf(g.stdout, "%s: %s document %s, %d statements, added by %s\n", rec.ID, rec.Format,
				cmp.Or(rec.DocumentID, "(no id)"), len(rec.Statements), rec.AddedBy)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newVEXListCmd(g *globals) *cobra.Command {
	var f exceptionFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tenant's VEX documents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(f.server, f.token, time.Minute)
			if err != nil {
				return err
			}
			var out api.VEXList
			if err := c.get(cmd.Context(), "/v1/vex", &out); err != nil {
				return err
			}
			if f.json {
				return writeJSONTo(g.stdout, out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tFORMAT\tDOCUMENT\tSTATEMENTS\tADDED BY\tADDED AT")
			for _, r := range out.Documents {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Format, cmp.Or(r.DocumentID, "-"), len(r.Statements), r.AddedBy, r.AddedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	return cmd
}

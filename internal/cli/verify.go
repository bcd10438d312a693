package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/storage"
)

// ExitUnverified is the exit code of `tollgate verify` when the attestation
// or any object it names does not verify.
const ExitUnverified = 1

type verifyOptions struct {
	evidence string
	key      string
	config   string
}

func newVerifyCmd(g *globals) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify [flags] SCAN_ID...",
		Short: "Check scans' signed attestations and every evidence object they name",
		Long: `Verify reads scans/SCAN_ID/attestation.intoto.json from the evidence store,
checks its DSSE signature with the public key, then reads every object the
signed in-toto statement names and compares its sha256 and version id with
the attested ones. It prints one line per object: OK, MISMATCH (stored but
different), MISSING (not stored) or ERROR (the store failed or refused to
return it intact, e.g. because it no longer matches its recorded digest).
Given several scan ids, it checks each in turn with one store connection
and ends with a line saying how many verified.
Exit codes: 0 everything verifies, 1 verification failed (of any scan), 2
bad input or usage, 3 internal error.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), g, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "configuration file naming a MinIO evidence bucket ($TOLLGATE_CONFIG; TOLLGATE_MINIO_* work too)")
	f.StringVar(&o.evidence, "evidence", defaultEvidenceDir(), "local write-once evidence store ($TOLLGATE_EVIDENCE_DIR)")
	f.StringVar(&o.key, "key", os.Getenv("TOLLGATE_VERIFY_KEY"), "public key (PEM) the attestation must be signed with ($TOLLGATE_VERIFY_KEY)")
	return cmd
}

// openEvidenceForVerify opens the store verify reads from, and returns the
// function that releases it.
func openEvidenceForVerify(o *verifyOptions) (storage.Evidence, func(), error) {
	// With MinIO configured (TOLLGATE_MINIO_*, --config), read the bucket.
	cfg, err := loadConfig(o.config)
	if err != nil {
		return nil, nil, err
	}
	if cfg.MinIO.Endpoint != "" {
		m, err := storage.OpenMinIOReader(context.Background(), cfg.MinIO, nil)
		if err != nil {
			return nil, nil, err
		}
		return m, func() {}, nil
	}
	// Verify only reads: it must not create an empty store where none was.
	st, err := os.Stat(o.evidence)
	if err != nil {
		return nil, nil, usageErrf("--evidence %q: %w", o.evidence, err)
	}
	if !st.IsDir() {
		return nil, nil, usageErrf("--evidence %q: not a directory", o.evidence)
	}
	store, err := storage.OpenLocal(o.evidence)
	if err != nil {
		return nil, nil, err
	}
	return store, func() { store.Close() }, nil
}

func runVerify(ctx context.Context, g *globals, o *verifyOptions, scanIDs []string) error {
	if o.key == "" {
		return usageErrf("--key: the public key to verify with is required ($TOLLGATE_VERIFY_KEY)")
	}
	for _, id := range scanIDs {
		if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
			return usageErrf("scan id %q: not a scan id", id)
		}
	}
	verifier, err := attest.LoadVerifier(o.key)
	if err != nil {
		return usageErr(err)
	}
	store, release, err := openEvidenceForVerify(o)
	if err != nil {
		return err
	}
	defer release()

	var failed []string
	for _, id := range scanIDs {
		err := verifyScan(ctx, g, store, verifier, id)
		var exit *exitError
		switch {
		case err == nil:
		case errors.As(err, &exit) && exit.code == ExitUnverified && len(scanIDs) > 1:
			fmt.Fprintf(g.stdout, "scan %s: NOT VERIFIED: %v\n", id, exit.err)
			failed = append(failed, id)
		default:
			return err
		}
	}
	if len(scanIDs) == 1 {
		return nil
	}
	if len(failed) > 0 {
		return unverified(fmt.Errorf("%d of %d scans did not verify: %s", len(failed), len(scanIDs), strings.Join(failed, " ")))
	}
	fmt.Fprintf(g.stdout, "%d scans verified\n", len(scanIDs))
	return nil
}

// verifyScan checks one scan's attestation and objects (attest.CheckScan,
// the check GET /v1/scans/{id}/verify answers too) and prints a line per
// object and one for the scan.
func verifyScan(ctx context.Context, g *globals, store storage.Evidence, verifier *attest.Verifier, scanID string) error {
	res, err := attest.CheckScan(ctx, store, verifier, scanID)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return unverified(err)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	for _, oc := range res.Checked {
		line(tw, oc.State, oc.Name, oc.Key, oc.Detail)
	}
	if ferr := tw.Flush(); ferr != nil {
		return fmt.Errorf("write verification: %w", ferr)
	}
	if !res.OK {
		return unverified(res.Err())
	}
	p := res.Statement.Predicate
	fmt.Fprintf(g.stdout, "scan %s (app %s, verdict %s in the %s stage): attestation and %d objects verified\n",
		scanID, p.App, p.Verdict, p.Stage, len(res.Statement.Subjects))
	return nil
}

func line(w io.Writer, state, name, key, detail string) {
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", state, name, key, detail)
}

// unverified ends verify with ExitUnverified and the reason.
func unverified(err error) error { return &exitError{code: ExitUnverified, err: err} }

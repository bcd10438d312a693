package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/activities"
	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/storage"
)

// ExitUnverified is the exit code of `tollgate verify` when the attestation
// or any object it names does not verify.
const ExitUnverified = 1

// Verification states, one per object line.
const (
	stateOK       = "OK"       // the stored object is the attested one
	stateMismatch = "MISMATCH" // stored, but its digest or version differs
	stateMissing  = "MISSING"  // not in the store, or not located by the attestation
	stateError    = "ERROR"    // the store failed or refused to return it intact
)

type verifyOptions struct {
	evidence string
	key      string
	config   string
}

func newVerifyCmd(g *globals) *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify [flags] SCAN_ID",
		Short: "Check a scan's signed attestation and every evidence object it names",
		Long: `Verify reads scans/SCAN_ID/attestation.intoto.json from the evidence store,
checks its DSSE signature with the public key, then reads every object the
signed in-toto statement names and compares its sha256 and version id with
the attested ones. It prints one line per object: OK, MISMATCH (stored but
different), MISSING (not stored) or ERROR (the store failed or refused to
return it intact, e.g. because it no longer matches its recorded digest).
Exit codes: 0 everything verifies, 1 verification failed, 2 bad input or
usage, 3 internal error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), g, o, args[0])
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

func runVerify(ctx context.Context, g *globals, o *verifyOptions, scanID string) error {
	if o.key == "" {
		return usageErrf("--key: the public key to verify with is required ($TOLLGATE_VERIFY_KEY)")
	}
	if scanID == "" || strings.ContainsAny(scanID, `/\`) || scanID == "." || scanID == ".." {
		return usageErrf("scan id %q: not a scan id", scanID)
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

	attKey := path.Join("scans", scanID, activities.AttestationName)
	env, _, err := store.Get(ctx, attKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return unverified(fmt.Errorf("scan %s has no attestation (%s): the scan was not signed, or there is no such scan", scanID, attKey))
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return unverified(fmt.Errorf("read attestation of scan %s: %w", scanID, err))
	}
	st, err := attest.Verify(ctx, env, verifier)
	if err != nil {
		return unverified(fmt.Errorf("attestation of scan %s (%s): %w", scanID, attKey, err))
	}
	if st.Predicate.ScanID != scanID {
		return unverified(fmt.Errorf("attestation at %s is about scan %s, not %s", attKey, st.Predicate.ScanID, scanID))
	}

	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	line(tw, stateOK, activities.AttestationName, attKey, "signed by key "+verifier.KeyID())
	var failed []string
	for _, sub := range st.Subjects {
		state, key, detail := verifyObject(ctx, store, st, sub)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		line(tw, state, sub.Name, key, detail)
		if state != stateOK {
			failed = append(failed, fmt.Sprintf("%s (%s)", sub.Name, state))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write verification: %w", err)
	}
	if len(failed) > 0 {
		return unverified(fmt.Errorf("scan %s: %d of %d attested objects do not verify: %s",
			scanID, len(failed), len(st.Subjects), strings.Join(failed, ", ")))
	}
	fmt.Fprintf(g.stdout, "scan %s (app %s, verdict %s in the %s stage): attestation and %d objects verified\n",
		scanID, st.Predicate.App, st.Predicate.Verdict, st.Predicate.Stage, len(st.Subjects))
	return nil
}

// verifyObject compares one stored object with its subject and location.
func verifyObject(ctx context.Context, store storage.Evidence, st attest.Statement, sub attest.Subject) (state, key, detail string) {
	loc, ok := st.Location(sub.Name)
	if !ok || loc.Key == "" {
		return stateMissing, "-", "the attestation does not say where it is stored"
	}
	data, obj, err := store.Get(ctx, loc.Key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return stateMissing, loc.Key, "not in the evidence store"
	case err != nil:
		return stateError, loc.Key, oneLine(err.Error())
	}
	// The store's digest is its own record; the bytes are what count.
	sum := sha256.Sum256(data)
	got := hex.EncodeToString(sum[:])
	if got != sub.SHA256 {
		return stateMismatch, loc.Key, fmt.Sprintf("sha256 %s, attested %s", got, sub.SHA256)
	}
	// Versions are the recorded bucket's; a copy elsewhere has its own.
	if loc.VersionID != "" && obj.Bucket == loc.Bucket && obj.VersionID != loc.VersionID {
		return stateMismatch, loc.Key, fmt.Sprintf("version %s, attested %s", obj.VersionID, loc.VersionID)
	}
	return stateOK, loc.Key, "sha256 " + got
}

func line(w io.Writer, state, name, key, detail string) {
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", state, name, key, detail)
}

// unverified ends verify with ExitUnverified and the reason.
func unverified(err error) error { return &exitError{code: ExitUnverified, err: err} }

package vulndb

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	trivydb "github.com/aquasecurity/trivy/pkg/db"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	xhttp "github.com/aquasecurity/trivy/pkg/x/http"
	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultRepository is where Update fetches the DB from by default: trivy v0.70's
// first default (db.DefaultGCRRepository), Google's mirror of the official trivy-db
// image, tagged with the schema version.
const DefaultRepository = "mirror.gcr.io/aquasec/trivy-db:2"

// userAgent is sent to registries instead of trivy's "trivy/<version>".
const userAgent = "tollgate"

// UpdateOption adjusts Update.
type UpdateOption func(*updateConfig)

type updateConfig struct {
	insecure bool
}

// WithInsecure lets Update use a registry over plain HTTP, or over HTTPS with a
// certificate it cannot verify: a test registry or an air-gapped mirror. (A loopback
// registry is reached over plain HTTP even without it.)
func WithInsecure() UpdateOption {
	return func(c *updateConfig) { c.insecure = true }
}

// Update fetches the official Trivy DB from repository (an OCI reference; empty means
// DefaultRepository; without a tag the schema version is used as tag, as trivy does)
// with trivy's own download client, and puts it in dbDir. The DB is downloaded into
// a staging directory next to dbDir, checked, and renamed into place; any previous
// content of dbDir is replaced only on success.
//
// Registry credentials come from the Docker credential store, as for trivy.
func Update(ctx context.Context, logger *slog.Logger, dbDir, repository string, opts ...UpdateOption) error {
	var cfg updateConfig
	for _, o := range opts {
		o(&cfg)
	}
	if repository == "" {
		repository = DefaultRepository
	}
	if err := update(ctx, loggerOrDiscard(logger), dbDir, repository, cfg); err != nil {
		return fmt.Errorf("update vulnerability db %q from %q: %w", dbDir, repository, err)
	}
	return nil
}

func update(ctx context.Context, logger *slog.Logger, dbDir, repository string, cfg updateConfig) error {
	ref, err := parseRepository(repository, cfg.insecure)
	if err != nil {
		return err
	}
	dbDir, err = checkDBDir(dbDir)
	if err != nil {
		return err
	}
	staging, err := newStagingDir(dbDir, "update")
	if err != nil {
		return err
	}
	defer func() {
		_ = os.RemoveAll(staging)
	}()

	// trivy takes its HTTP transport from the context when one is there; setting it
	// here keeps this call's TLS setting from leaking into trivy's process default.
	ctx = xhttp.WithTransport(ctx, xhttp.NewTransport(xhttp.Options{
		Insecure:  cfg.insecure,
		UserAgent: userAgent,
	}))
	logger.InfoContext(ctx, "downloading vulnerability db", "repository", ref.String(), "db_dir", dbDir)
	client := trivydb.NewClient(staging, true, trivydb.WithDBRepository([]name.Reference{ref}))
	if err := client.Download(ctx, staging, ftypes.RegistryOptions{Insecure: cfg.insecure}); err != nil {
		return fmt.Errorf("download: %w", err)
	}

	info, err := readInfo(staging, time.Now())
	if err != nil {
		return fmt.Errorf("check downloaded db: %w", err)
	}
	if info.SchemaVersion != trivydb.SchemaVersion {
		return fmt.Errorf("downloaded db has schema %d, trivy reads %d", info.SchemaVersion, trivydb.SchemaVersion)
	}
	if err := replaceDir(ctx, logger, staging, dbDir); err != nil {
		return err
	}
	logger.InfoContext(ctx, "vulnerability db updated", "db_dir", dbDir, "repository", ref.String(),
		"updated_at", info.UpdatedAt, "next_update", info.NextUpdate)
	return nil
}

// parseRepository parses an OCI reference the way trivy's --db-repository flag does.
func parseRepository(repository string, insecure bool) (name.Reference, error) {
	opts := []name.Option{name.WithDefaultTag("")}
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(repository, opts...)
	if err != nil {
		return nil, fmt.Errorf("parse repository %q: %w", repository, err)
	}
	if tag, ok := ref.(name.Tag); ok && tag.TagStr() == "" {
		return tag.Tag(strconv.Itoa(trivydb.SchemaVersion)), nil
	}
	return ref, nil
}

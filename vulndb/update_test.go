package vulndb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aquasecurity/trivy-db/pkg/metadata"
	trivydb "github.com/aquasecurity/trivy/pkg/db"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// How trivy-db is published (and what trivy's pkg/oci and pkg/db check): one layer,
// a gzipped tar of trivy.db and metadata.json, with this media type and a title
// annotation naming the file.
const (
	dbLayerMediaType  = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
	dbConfigMediaType = "application/vnd.aquasec.trivy.config.v1+json"
	titleAnnotation   = "org.opencontainers.image.title"
)

func TestUpdate(t *testing.T) {
	t.Parallel()
	published, _ := importFixtures(t)
	want, err := ReadInfo(published)
	if err != nil {
		t.Fatalf("ReadInfo: %v", err)
	}
	reg := startRegistry(t, false)
	pushDB(t, reg+"/aquasec/trivy-db:2", dbImage(t, published, dbLayerMediaType), nil)

	dbDir := filepath.Join(t.TempDir(), "db")
	// No tag: the schema version is used, as by trivy.
	if err := Update(context.Background(), testLogger(t), dbDir, reg+"/aquasec/trivy-db"); err != nil {
		t.Fatalf("Update: %v", err)
	}

	got, err := ReadInfo(dbDir)
	if err != nil {
		t.Fatalf("ReadInfo after Update: %v", err)
	}
	if got.SchemaVersion != 2 || !got.UpdatedAt.Equal(want.UpdatedAt) || !got.NextUpdate.Equal(want.NextUpdate) {
		t.Errorf("metadata = %+v, want that of the published DB %+v", got, want)
	}
	if !got.DownloadedAt.After(want.DownloadedAt) {
		t.Errorf("DownloadedAt = %v, want it set by the download, after %v", got.DownloadedAt, want.DownloadedAt)
	}
	if !reflect.DeepEqual(got.DataSources, want.DataSources) {
		t.Errorf("DataSources = %+v, want %+v", got.DataSources, want.DataSources)
	}
	if a, b := readFile(t, filepath.Join(dbDir, "trivy.db")), readFile(t, filepath.Join(published, "trivy.db")); !bytes.Equal(a, b) {
		t.Error("downloaded trivy.db differs from the published one")
	}
	assertDirEntries(t, filepath.Dir(dbDir), []string{"db"})
}

// TestUpdate_Insecure checks WithInsecure against a mirror with a certificate no one
// vouches for.
func TestUpdate_Insecure(t *testing.T) {
	t.Parallel()
	published, _ := importFixtures(t)
	reg := startRegistry(t, true)
	pushDB(t, reg+"/trivy-db:2", dbImage(t, published, dbLayerMediaType), remote.WithTransport(insecureTransport()))

	dbDir := filepath.Join(t.TempDir(), "db")
	err := Update(context.Background(), testLogger(t), dbDir, reg+"/trivy-db:2")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Update without WithInsecure: err = %v, want a certificate error", err)
	}
	if err := Update(context.Background(), testLogger(t), dbDir, reg+"/trivy-db:2", WithInsecure()); err != nil {
		t.Fatalf("Update with WithInsecure: %v", err)
	}
	if _, err := ReadInfo(dbDir); err != nil {
		t.Fatalf("ReadInfo after Update: %v", err)
	}
}

// TestUpdate_Failure checks that a failed update keeps the DB that was there.
func TestUpdate_Failure(t *testing.T) {
	t.Parallel()
	published, _ := importFixtures(t)
	reg := startRegistry(t, false)
	pushDB(t, reg+"/wrong-media-type:2", dbImage(t, published, "application/vnd.oci.image.layer.v1.tar+gzip"), nil)

	oldSchema := filepath.Join(t.TempDir(), "db")
	copyDir(t, published, oldSchema)
	meta, err := metadata.NewClient(oldSchema).Get()
	if err != nil {
		t.Fatal(err)
	}
	meta.Version = 1
	if err := metadata.NewClient(oldSchema).Update(meta); err != nil {
		t.Fatal(err)
	}
	pushDB(t, reg+"/old-schema:2", dbImage(t, oldSchema, dbLayerMediaType), nil)

	tests := []struct {
		name       string
		repository string
		errText    string
	}{
		{"missing repository", reg + "/aquasec/trivy-db:2", "NAME_UNKNOWN"},
		{"wrong media type", reg + "/wrong-media-type:2", "unacceptable media type"},
		{"old schema", reg + "/old-schema:2", "downloaded db has schema 1, trivy reads 2"},
		{"bad reference", "UPPER/case:2", "parse repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dbDir, _ := importFixtures(t)
			before := readFile(t, metadata.Path(dbDir))
			err := Update(context.Background(), testLogger(t), dbDir, tt.repository)
			if err == nil || !strings.Contains(err.Error(), tt.errText) {
				t.Fatalf("err = %v, want one containing %q", err, tt.errText)
			}
			if !strings.HasPrefix(err.Error(), "update vulnerability db") {
				t.Errorf("err = %q, want it to name the operation", err)
			}
			if after := readFile(t, metadata.Path(dbDir)); !bytes.Equal(before, after) {
				t.Errorf("metadata.json changed by a failed update:\n%s\n%s", before, after)
			}
			assertDirEntries(t, filepath.Dir(dbDir), []string{"db"})
		})
	}
}

func TestDefaultRepository(t *testing.T) {
	if DefaultRepository != trivydb.DefaultGCRRepository {
		t.Errorf("DefaultRepository = %q, trivy's default is %q", DefaultRepository, trivydb.DefaultGCRRepository)
	}
}

func TestParseRepository(t *testing.T) {
	const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	for in, want := range map[string]string{
		"ghcr.io/aquasecurity/trivy-db":       "ghcr.io/aquasecurity/trivy-db:2",
		"mirror.example:5000/trivy-db:latest": "mirror.example:5000/trivy-db:latest",
		"mirror.example/trivy-db@" + digest:   "mirror.example/trivy-db@" + digest,
		DefaultRepository:                     DefaultRepository,
	} {
		ref, err := parseRepository(in, false)
		if err != nil || ref.String() != want {
			t.Errorf("parseRepository(%q) = %v, %v; want %s", in, ref, err, want)
		}
	}
}

// startRegistry serves an in-memory OCI registry on loopback and returns its host.
func startRegistry(t *testing.T, withTLS bool) string {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var srv *httptest.Server
	if withTLS {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	_, host, _ := strings.Cut(srv.URL, "://")
	return host
}

// dbImage packs dbDir the way trivy-db is published.
func dbImage(t *testing.T, dbDir string, mediaType types.MediaType) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"trivy.db", "metadata.json"} {
		b := readFile(t, filepath.Join(dbDir, name))
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}

	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:       static.NewLayer(buf.Bytes(), mediaType),
		Annotations: map[string]string{titleAnnotation: "db.tar.gz"},
	})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, dbConfigMediaType)
}

func pushDB(t *testing.T, repository string, img v1.Image, opt remote.Option) {
	t.Helper()
	ref, err := name.ParseReference(repository, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	var opts []remote.Option
	if opt != nil {
		opts = append(opts, opt)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push %s: %v", repository, err)
	}
	// The manifest must be what trivy expects of a DB artifact.
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(m); len(m.Layers) != 1 || m.Layers[0].Annotations[titleAnnotation] != "db.tar.gz" {
		t.Fatalf("manifest %s", b)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		copyFile(t, filepath.Join(from, e.Name()), filepath.Join(to, e.Name()))
	}
}

// insecureTransport trusts any certificate, for pushing to the test's TLS registry.
func insecureTransport() http.RoundTripper {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test registry
	return tr
}

package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tollgate/tollgate/storage"
)

// EvidenceCheck is what the evidence store holds for a run's scans: each
// scan's attestation and objects checked by `tollgate verify`, and every
// object's versions (write-once evidence has exactly one).
type EvidenceCheck struct {
	Scans       int      `json:"scans"`
	Verified    int      `json:"verified"`
	NotVerified []string `json:"not_verified,omitempty"`
	// Objects is how many keys the scans' folders hold; Duplicated lists
	// those with more than one version (or a delete marker).
	Objects    int      `json:"objects"`
	Duplicated []string `json:"duplicated,omitempty"`
}

// verifiedLine is verify's line for a scan whose attestation and objects
// all verified.
var verifiedLine = regexp.MustCompile(`^scan (\S+) \(app .*\): attestation and \d+ objects verified$`)

// CheckEvidence runs `tollgate verify --key pub` over the scans, with the
// fleet's settings (its MinIO), a hundred at a time, and lists the
// versions of every object under their folders.
func (f *Fleet) CheckEvidence(ctx context.Context, pub string, scanIDs []string) (*EvidenceCheck, error) {
	c := &EvidenceCheck{Scans: len(scanIDs)}
	verified := map[string]bool{}
	for chunk := range slices.Chunk(scanIDs, 100) {
		cmd := exec.CommandContext(ctx, f.opts.Bin, append([]string{"verify", "--key", pub}, chunk...)...)
		cmd.Env = f.env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
			return nil, fmt.Errorf("tollgate verify of %d scans: %w: %s", len(chunk), err, stderr.String())
		}
		sc := bufio.NewScanner(&stdout)
		for sc.Scan() {
			if m := verifiedLine.FindStringSubmatch(sc.Text()); m != nil {
				verified[m[1]] = true
			}
		}
	}
	for _, id := range scanIDs {
		if verified[id] {
			c.Verified++
		} else {
			c.NotVerified = append(c.NotVerified, id)
		}
	}
	return c, f.countVersions(ctx, c, scanIDs)
}

// countVersions lists every version under the scans' evidence folders.
func (f *Fleet) countVersions(ctx context.Context, c *EvidenceCheck, scanIDs []string) error {
	client, err := minio.New(f.minio.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(f.minio.AccessKey, f.minio.SecretKey, "")})
	if err != nil {
		return fmt.Errorf("evidence versions at %s: %w", f.minio.Endpoint, err)
	}
	ours := map[string]bool{}
	for _, id := range scanIDs {
		ours[id] = true
	}
	versions := map[string]int{}
	for obj := range client.ListObjects(ctx, storage.DefaultEvidenceBucket, minio.ListObjectsOptions{Prefix: "scans/", Recursive: true, WithVersions: true}) {
		if obj.Err != nil {
			return fmt.Errorf("list evidence versions in %s: %w", storage.DefaultEvidenceBucket, obj.Err)
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(obj.Key, "scans/"), "/")
		if ours[id] {
			versions[obj.Key]++
		}
	}
	c.Objects = len(versions)
	for key, n := range versions {
		if n > 1 {
			c.Duplicated = append(c.Duplicated, fmt.Sprintf("%s (%d versions)", key, n))
		}
	}
	slices.Sort(c.Duplicated)
	return nil
}

package vex

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tenant"
)

// Schema is the schema of a stored Record.
const Schema = "tollgate/vex/v1"

// ErrNotFound is returned for a record that is not stored.
var ErrNotFound = errors.New("VEX document not found")

var (
	idRe   = regexp.MustCompile(`^vex-[0-9a-f]{16}$`)
	scanRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// Store keeps VEX documents as write-once evidence, each as uploaded and
// with its record:
//
//	vex/<tenant>/tenant/<id>/document     the document's bytes
//	vex/<tenant>/tenant/<id>/record.json  who added it, when, what it says
//	vex/<tenant>/scans/<scan>/<id>/...    a document uploaded with one scan
type Store struct {
	Evidence storage.Evidence
	Lister   storage.Lister
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// prefix is the key prefix of a tenant's documents, or of one scan's.
// Keys are concatenated from checked segments, never joined from raw
// input, so no name climbs to another tenant's records.
func prefix(tenantName, scan string) (string, error) {
	if err := tenant.Validate(tenantName); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if scan == "" {
		return "vex/" + tenantName + "/tenant/", nil
	}
	if !scanRe.MatchString(scan) || strings.Trim(scan, ".") == "" {
		return "", fmt.Errorf("%w: scan id %q", ErrInvalid, scan)
	}
	return "vex/" + tenantName + "/scans/" + scan + "/", nil
}

// Add parses a document and stores it, with who added it, for the tenant
// (scan empty) or for one scan. Errors wrap ErrInvalid when the document
// or the names are refused.
func (s *Store) Add(ctx context.Context, tenantName, scan, by string, data []byte) (Record, error) {
	p, err := prefix(tenantName, scan)
	if err != nil {
		return Record{}, err
	}
	if by == "" || len(by) > 256 {
		return Record{}, fmt.Errorf("%w: added by %q", ErrInvalid, by)
	}
	doc, err := Parse(data)
	if err != nil {
		return Record{}, err
	}
	sum := sha256.Sum256(data)
	id, err := recordID(tenantName, scan, sum)
	if err != nil {
		return Record{}, err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	rec := Record{
		Schema: Schema, ID: id, Tenant: tenantName, Scan: scan,
		Format: doc.Format, DocumentID: doc.ID, Author: doc.Author, SHA256: hex.EncodeToString(sum[:]),
		AddedBy: by, AddedAt: now().UTC().Truncate(time.Second), Statements: doc.Statements,
	}
	rec.Key = p + rec.ID + "/document"
	contentType := "application/json"
	if doc.Format == FormatCycloneDX && bytes0(data) == '<' {
		contentType = "application/xml"
	}
	// A scan's record id comes from the document: a retried submission
	// finds its record stored, and keeps it.
	again := func(err error) bool { return scan != "" && errors.Is(err, storage.ErrImmutable) }
	if _, err := s.Evidence.Put(ctx, rec.Key, contentType, data); err != nil && !again(err) {
		return Record{}, fmt.Errorf("store VEX document %s of tenant %s: %w", rec.ID, tenantName, err)
	}
	raw, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return Record{}, fmt.Errorf("encode VEX record %s: %w", rec.ID, err)
	}
	if _, err := s.Evidence.Put(ctx, p+rec.ID+"/record.json", "application/json", raw); err != nil && !again(err) {
		return Record{}, fmt.Errorf("store VEX record %s of tenant %s: %w", rec.ID, tenantName, err)
	}
	return rec, nil
}

// recordID names a new record: at random for a tenant's document (the
// same document may be added again, by someone else, later), and from the
// tenant, scan and document for one scan's, which is added with the scan's
// submission and again only when that is retried.
func recordID(tenantName, scan string, doc [sha256.Size]byte) (string, error) {
	if scan != "" {
		sum := sha256.Sum256([]byte("tollgate-scan-vex\x00" + tenantName + "\x00" + scan + "\x00" + hex.EncodeToString(doc[:])))
		return "vex-" + hex.EncodeToString(sum[:8]), nil
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make VEX record id: %w", err)
	}
	return "vex-" + hex.EncodeToString(b[:]), nil
}

// bytes0 is the first byte of data that is not white space.
func bytes0(data []byte) byte {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// List returns the tenant's documents (scan empty), or those uploaded with
// one scan, oldest first.
func (s *Store) List(ctx context.Context, tenantName, scan string) ([]Record, error) {
	p, err := prefix(tenantName, scan)
	if err != nil {
		return nil, err
	}
	keys, err := s.Lister.List(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list VEX documents under %s: %w", p, err)
	}
	out := []Record{}
	for _, k := range keys {
		if path.Base(k) != "record.json" || !idRe.MatchString(path.Base(path.Dir(k))) || path.Dir(path.Dir(k))+"/" != p {
			continue
		}
		raw, _, err := s.Evidence.Get(ctx, k)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("read VEX record %s: %w", k, err)
		}
		var rec Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, fmt.Errorf("decode VEX record %s: %w", k, err)
		}
		// A record is believed only under its own tenant and scan.
		if rec.Tenant != tenantName || rec.Scan != scan {
			continue
		}
		out = append(out, rec)
	}
	slices.SortStableFunc(out, func(a, b Record) int {
		if c := a.AddedAt.Compare(b.AddedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// ForScan returns the documents that apply to a scan: the tenant's and
// those uploaded with the scan. The embedded mode (no tenant) has none.
func (s *Store) ForScan(ctx context.Context, tenantName, scan string) ([]Record, error) {
	if tenantName == "" {
		return nil, nil
	}
	all, err := s.List(ctx, tenantName, "")
	if err != nil {
		return nil, err
	}
	if scan == "" {
		return all, nil
	}
	own, err := s.List(ctx, tenantName, scan)
	if err != nil {
		return nil, err
	}
	return append(all, own...), nil
}

package scanners

import (
	"bytes"
	"context"
	"encoding/json/jsontext"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/cataloging"
	"github.com/anchore/syft/syft/cataloging/pkgcataloging"
	"github.com/anchore/syft/syft/format"
	"github.com/anchore/syft/syft/format/cyclonedxjson"
	"github.com/anchore/syft/syft/format/spdxjson"
	"github.com/anchore/syft/syft/pkg/cataloger/golang"
	"github.com/anchore/syft/syft/pkg/cataloger/java"
	"github.com/anchore/syft/syft/pkg/cataloger/javascript"
	"github.com/anchore/syft/syft/pkg/cataloger/python"
	"github.com/anchore/syft/syft/sbom"
	"github.com/anchore/syft/syft/source"
	"github.com/anchore/syft/syft/source/directorysource"
	"github.com/google/uuid"
	"github.com/package-url/packageurl-go"
	// syft reads newer RPM databases through database/sql; its CLI links this driver too.
	_ "modernc.org/sqlite"

	"github.com/tollgate/tollgate/report"
)

// SBOM catalogs packages with syft. Its licence scanner is built once (it costs
// about a second of CPU) and reused by every scan.
type SBOM struct {
	// licenses is a context that carries nothing but syft's licence scanner:
	// syft keeps that scanner only as a context value.
	licenses context.Context
	cfg      *syft.CreateSBOMConfig
	cdx      sbom.FormatEncoder
	spdx     sbom.FormatEncoder
}

// NewSBOM prepares syft for scanning untrusted directories: nothing in the
// scanned tree is executed and nothing is fetched from the network.
func NewSBOM(toolVersion string) (*SBOM, error) {
	pkgs := pkgcataloging.DefaultConfig().
		WithGolangConfig(golang.DefaultCatalogerConfig().
			WithUsePackagesLib(false). // would run `go list` in the scanned tree
			WithSearchRemoteLicenses(false).
			WithSearchLocalModCacheLicenses(false)).
		WithJavascriptConfig(javascript.DefaultCatalogerConfig().WithSearchRemoteLicenses(false)).
		WithPythonConfig(python.DefaultCatalogerConfig().WithSearchRemoteLicenses(false)).
		WithJavaArchiveConfig(java.DefaultArchiveCatalogerConfig().WithUseNetwork(false).WithUseMavenLocalRepository(false))
	cfg := syft.DefaultCreateSBOMConfig().
		WithTool("tollgate", toolVersion).
		WithPackagesConfig(pkgs)

	lctx, err := syft.SetContextLicenseScanner(context.Background(), cataloging.DefaultLicenseConfig())
	if err != nil {
		return nil, fmt.Errorf("build syft licence scanner: %w", err)
	}
	cdx, err := cyclonedxjson.NewFormatEncoderWithConfig(cyclonedxjson.DefaultEncoderConfig())
	if err != nil {
		return nil, fmt.Errorf("build cyclonedx encoder: %w", err)
	}
	spdx, err := spdxjson.NewFormatEncoderWithConfig(spdxjson.DefaultEncoderConfig())
	if err != nil {
		return nil, fmt.Errorf("build spdx encoder: %w", err)
	}
	return &SBOM{licenses: lctx, cfg: cfg, cdx: cdx, spdx: spdx}, nil
}

// Catalog is one SBOM: its packages and its two encodings.
type Catalog struct {
	Packages  []report.Package
	CycloneDX []byte
	SPDX      []byte
}

// Identity makes an SBOM document reproducible: the same scan gives the same
// bytes, so a retried task stores the same evidence.
type Identity struct {
	ScanID  string
	Name    string
	Created time.Time
}

// Scan catalogs dir and encodes the result as CycloneDX and SPDX JSON.
func (s *SBOM) Scan(ctx context.Context, dir string, id Identity) (Catalog, error) {
	src, err := directorysource.New(directorysource.Config{Path: dir, Base: dir, Alias: sourceAlias(id)})
	if err != nil {
		return Catalog{}, fmt.Errorf("open source %q for syft: %w", dir, err)
	}
	defer src.Close()
	doc, err := syft.CreateSBOM(withValues(ctx, s.licenses), src, s.cfg)
	if err != nil {
		return Catalog{}, fmt.Errorf("catalog %q with syft: %w", dir, err)
	}
	out := Catalog{Packages: packagesOf(doc)}
	if out.CycloneDX, err = s.encode(doc, s.cdx, id); err != nil {
		return Catalog{}, err
	}
	if out.SPDX, err = s.encode(doc, s.spdx, id); err != nil {
		return Catalog{}, err
	}
	return out, nil
}

func (s *SBOM) encode(doc *sbom.SBOM, enc sbom.FormatEncoder, id Identity) ([]byte, error) {
	raw, err := format.Encode(*doc, enc)
	if err != nil {
		return nil, fmt.Errorf("encode sbom as %s: %w", enc.ID(), err)
	}
	return reproducible(raw, enc.ID(), id)
}

// reproducible replaces the random and clock-based fields syft writes (serial
// number, document namespace, creation time) with values derived from the
// scan, and strips registry credentials from every string (StripCredentials).
//
// It rewrites the document as a stream of JSON tokens, in syft's own field
// order: decoding it into maps and encoding them again cost more CPU than
// cataloguing the packages (a quarter of a deep task). The fields it
// replaces are top-level (serialNumber, documentNamespace) or one level
// down (metadata.timestamp, creationInfo.created).
func reproducible(raw []byte, fmtID sbom.FormatID, id Identity) ([]byte, error) {
	created := id.Created.UTC().Format(time.RFC3339)
	docUUID := uuid.NewSHA1(uuid.NameSpaceURL, []byte("tollgate:scan:"+id.ScanID+":"+string(fmtID)))
	replace := map[[2]string]string{}
	switch fmtID {
	case cyclonedxjson.ID:
		replace[[2]string{"serialNumber"}] = "urn:uuid:" + docUUID.String()
		replace[[2]string{"metadata", "timestamp"}] = created
	case spdxjson.ID:
		replace[[2]string{"documentNamespace"}] = fmt.Sprintf("https://tollgate.dev/spdx/%s-%s", id.ScanID, docUUID)
		replace[[2]string{"creationInfo", "created"}] = created
	}
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	var out bytes.Buffer
	out.Grow(len(raw) + len(raw)/4)
	enc := jsontext.NewEncoder(&out, jsontext.WithIndent("  "))
	// One frame per open object or array: whether it is an object, whether
	// its next string is a key, and the key of the value being read.
	type frame struct {
		object, key bool
		name        string
	}
	var stack []frame
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s sbom: %w", fmtID, err)
		}
		top := len(stack) - 1
		isKey := top >= 0 && stack[top].object && stack[top].key
		if top >= 0 && stack[top].object {
			stack[top].key = !stack[top].key
		}
		switch tok.Kind() {
		case '{', '[':
			stack = append(stack, frame{object: tok.Kind() == '{', key: true})
		case '}', ']':
			// A container that was a value flipped its parent's
			// key flag when it opened.
			stack = stack[:top]
		case '"':
			s := tok.String()
			if isKey {
				stack[top].name = s
				break
			}
			var path [2]string
			switch len(stack) {
			case 1:
				path = [2]string{stack[0].name}
			case 2:
				path = [2]string{stack[0].name, stack[1].name}
			}
			if v, ok := replace[path]; ok && len(stack) <= 2 {
				tok = jsontext.String(v)
			} else if t := StripCredentials(s); t != s {
				tok = jsontext.String(t)
			}
		}
		if err := enc.WriteToken(tok); err != nil {
			return nil, fmt.Errorf("encode %s sbom: %w", fmtID, err)
		}
	}
	return out.Bytes(), nil
}

var (
	// urlRe finds URLs in a string: a scheme and what follows up to space
	// or a quote.
	urlRe = regexp.MustCompile(`(?i)[a-z][a-z0-9+.-]*://[^\s"'<>]+`)
	// userinfoRe is a URL's user information, for a URL net/url refuses.
	userinfoRe = regexp.MustCompile(`://[^/?#\s@]*@`)
	// assignRe is an npm-style credential assignment (_authToken=..., as in
	// //registry/:_authToken=...).
	assignRe = regexp.MustCompile(`(?i)(_authtoken|_auth|_password|authtoken|auth_token|access_token|password|token)=[^\s&;"']*`)
)

// credentialParam says whether a URL query parameter may carry a credential.
func credentialParam(name string) bool {
	n := strings.ToLower(name)
	for _, part := range []string{"token", "secret", "passw", "signature", "credential", "auth", "apikey", "api_key", "api-key"} {
		if strings.Contains(n, part) {
			return true
		}
	}
	switch n {
	case "key", "sig", "pass", "pwd", "jwt", "session", "sessionid", "code":
		return true
	}
	return false
}

// StripCredentials returns s without the credentials of the URLs in it (user
// information, credential query parameters) and without npm-style
// credential assignments. A package URL has its qualifiers (repository_url,
// download_url, ...) cleaned the same way. Anything else is left as is.
func StripCredentials(s string) string {
	// Every credential this removes sits in a URL ("://") or an assignment
	// or purl qualifier ("="): most of an SBOM's strings (names, versions,
	// licence ids, hashes) have neither and skip the regular expressions,
	// which run over every string of every SBOM a scan stores.
	if !strings.Contains(s, "://") && !strings.Contains(s, "=") {
		return s
	}
	if strings.HasPrefix(s, "pkg:") {
		if p, err := packageurl.FromString(s); err == nil {
			changed := false
			for i, q := range p.Qualifiers {
				if clean := StripCredentials(q.Value); clean != q.Value {
					p.Qualifiers[i].Value = clean
					changed = true
				}
			}
			if changed {
				s = p.ToString()
			}
		}
	}
	s = urlRe.ReplaceAllStringFunc(s, stripURL)
	return assignRe.ReplaceAllString(s, "${1}=")
}

// stripURL drops a URL's user information and credential query parameters.
func stripURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparsable: at least no user information, and no query at all.
		raw = userinfoRe.ReplaceAllString(raw, "://")
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			raw = raw[:i]
		}
		return raw
	}
	changed := false
	if u.User != nil {
		u.User = nil
		changed = true
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = ""
			changed = true
		}
		for name := range q {
			if credentialParam(name) {
				q.Del(name)
				changed = true
			}
		}
		if changed && err == nil {
			u.RawQuery = q.Encode()
		}
	}
	if u.Fragment != "" && credentialFragment(u.Fragment) {
		u.Fragment, u.RawFragment = "", ""
		changed = true
	}
	if !changed {
		return raw
	}
	return u.String()
}

// credentialFragment says whether a URL fragment looks like parameters
// holding a credential (#access_token=..., as OAuth implicit flows send).
func credentialFragment(f string) bool {
	q, err := url.ParseQuery(f)
	if err != nil {
		return false
	}
	for name := range q {
		if credentialParam(name) {
			return true
		}
	}
	return false
}

func sourceAlias(id Identity) source.Alias {
	return source.Alias{Name: id.Name}
}

func packagesOf(doc *sbom.SBOM) []report.Package {
	var out []report.Package
	for _, p := range doc.Artifacts.Packages.Sorted() {
		rp := report.Package{
			Name:      p.Name,
			Version:   p.Version,
			PURL:      StripCredentials(p.PURL),
			Ecosystem: ecosystemFromPURL(p.PURL),
			Licenses:  []string{},
		}
		if rp.Ecosystem == "" {
			rp.Ecosystem = string(p.Type)
		}
		for _, l := range p.Licenses.ToSlice() {
			v := l.SPDXExpression
			if v == "" {
				v = l.Value
			}
			if v != "" && !slices.Contains(rp.Licenses, v) {
				rp.Licenses = append(rp.Licenses, v)
			}
		}
		for _, loc := range p.Locations.ToSlice() {
			f := strings.TrimPrefix(loc.RealPath, "/")
			if !slices.Contains(rp.Files, f) {
				rp.Files = append(rp.Files, f)
			}
		}
		out = append(out, rp)
	}
	return out
}

package scanners

import (
	"bytes"
	"context"
	"encoding/json/jsontext"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

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
	doc, err := s.catalog(ctx, dir, id)
	if err != nil {
		return Catalog{}, err
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

// catalog runs syft over dir.
func (s *SBOM) catalog(ctx context.Context, dir string, id Identity) (*sbom.SBOM, error) {
	src, err := directorysource.New(directorysource.Config{Path: dir, Base: dir, Alias: sourceAlias(id)})
	if err != nil {
		return nil, fmt.Errorf("open source %q for syft: %w", dir, err)
	}
	defer src.Close()
	doc, err := syft.CreateSBOM(withValues(ctx, s.licenses), src, s.cfg)
	if err != nil {
		return nil, fmt.Errorf("catalog %q with syft: %w", dir, err)
	}
	return doc, nil
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
// scan, strips registry credentials from every string (StripCredentials),
// and indents the document by two spaces.
//
// It works on syft's bytes, not on a decoded document: the replaced fields
// are found by reading the document's first members only (they come before
// the packages), and only strings that could hold a credential (with "://",
// "=" or an escape) are unquoted to be checked. Everything else is copied:
// strings keep syft's escaping, members keep syft's order.
func reproducible(raw []byte, fmtID sbom.FormatID, id Identity) ([]byte, error) {
	doc, err := replaceMembers(bytes.TrimSpace(raw), identityFields(fmtID, id))
	if err == nil {
		doc, err = stripStringCredentials(doc)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s sbom: %w", fmtID, err)
	}
	out, err := jsontext.AppendFormat(make([]byte, 0, len(doc)+len(doc)/2), doc,
		jsontext.PreserveRawStrings(true), jsontext.Multiline(true), jsontext.WithIndent("  "))
	if err != nil {
		return nil, fmt.Errorf("indent %s sbom: %w", fmtID, err)
	}
	return append(out, '\n'), nil
}

// identityFields are the members of a document in format fmtID that syft
// fills from the clock and a random source, by path (a top-level name, or a
// top-level object's name and a name in it), with the values derived from
// id that replace them.
func identityFields(fmtID sbom.FormatID, id Identity) map[[2]string]string {
	created := id.Created.UTC().Format(time.RFC3339)
	docUUID := uuid.NewSHA1(uuid.NameSpaceURL, []byte("tollgate:scan:"+id.ScanID+":"+string(fmtID)))
	switch fmtID {
	case cyclonedxjson.ID:
		return map[[2]string]string{{"serialNumber"}: "urn:uuid:" + docUUID.String(), {"metadata", "timestamp"}: created}
	case spdxjson.ID:
		return map[[2]string]string{
			{"documentNamespace"}:       fmt.Sprintf("https://tollgate.dev/spdx/%s-%s", id.ScanID, docUUID),
			{"creationInfo", "created"}: created,
		}
	}
	return nil
}

// replaceMembers returns the JSON object doc with the string values of the
// members named in replace (a top-level name, or a top-level object's name
// and a name in it) set to the values given. It reads doc only as far as the
// last of them.
func replaceMembers(doc []byte, replace map[[2]string]string) ([]byte, error) {
	parents := map[string]bool{}
	for path := range replace {
		if path[1] != "" {
			parents[path[0]] = true
		}
	}
	type span struct {
		start, end int
		value      string
	}
	var spans []span
	dec := jsontext.NewDecoder(bytes.NewReader(doc))
	// member reads one member's value: replaced, entered or skipped.
	var member func(parent, name string) error
	member = func(parent, name string) error {
		path := [2]string{name}
		if parent != "" {
			path = [2]string{parent, name}
		}
		if v, ok := replace[path]; ok && dec.PeekKind() == '"' {
			val, err := dec.ReadValue()
			if err != nil {
				return err
			}
			end := int(dec.InputOffset())
			spans = append(spans, span{end - len(val), end, v})
			return nil
		}
		if parent != "" || !parents[name] || dec.PeekKind() != '{' {
			return dec.SkipValue()
		}
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		for dec.PeekKind() != '}' {
			tok, err := dec.ReadToken()
			if err != nil {
				return err
			}
			if err := member(name, tok.String()); err != nil {
				return err
			}
		}
		_, err := dec.ReadToken()
		return err
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '{' {
		return nil, fmt.Errorf("document is a JSON %v, not an object", tok.Kind())
	}
	for len(spans) < len(replace) && dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		if err := member("", tok.String()); err != nil {
			return nil, err
		}
	}
	if len(spans) == 0 {
		return doc, nil
	}
	out := make([]byte, 0, len(doc)+64)
	last := 0
	for _, s := range spans {
		out = append(out, doc[last:s.start]...)
		if out, err = jsontext.AppendQuote(out, s.value); err != nil {
			return nil, err
		}
		last = s.end
	}
	return append(out, doc[last:]...), nil
}

// stripStringCredentials returns the JSON document doc with StripCredentials
// applied to every string that is not a member name. A string is unquoted
// only if its raw bytes hold "://", "=" or an escape (behind which either
// could hide); doc is returned as is if nothing changes.
func stripStringCredentials(doc []byte) ([]byte, error) {
	var out []byte // nil until a string changes
	last := 0
	for i := 0; ; {
		q := bytes.IndexByte(doc[i:], '"')
		if q < 0 {
			break
		}
		start := i + q
		end, escaped := stringEnd(doc, start)
		if end < 0 {
			return nil, fmt.Errorf("string at offset %d: no closing quote", start)
		}
		i = end
		lit := doc[start:end]
		if !escaped && !bytes.Contains(lit, []byte("://")) && bytes.IndexByte(lit, '=') < 0 {
			continue
		}
		if rest := bytes.TrimLeft(doc[end:], " \t\r\n"); len(rest) > 0 && rest[0] == ':' {
			continue // a member name
		}
		s, err := jsontext.AppendUnquote(nil, lit)
		if err != nil {
			return nil, fmt.Errorf("string at offset %d: %w", start, err)
		}
		clean := StripCredentials(string(s))
		if clean == string(s) {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(doc))
		}
		out = append(out, doc[last:start]...)
		if out, err = jsontext.AppendQuote(out, clean); err != nil {
			return nil, fmt.Errorf("string at offset %d: %w", start, err)
		}
		last = end
	}
	if out == nil {
		return doc, nil
	}
	return append(out, doc[last:]...), nil
}

// stringEnd returns the offset just past the JSON string literal that starts
// at doc[start] (a '"'), or -1, and whether the literal holds an escape.
func stringEnd(doc []byte, start int) (int, bool) {
	escaped := false
	for i := start + 1; i < len(doc); i++ {
		switch doc[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i + 1, escaped
		}
	}
	return -1, escaped
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
	// Each expression runs only on strings it can match: a URL has "://",
	// an assignment one of its names (all ending in "token", "auth" or
	// "password") then "=". Running them on every bom-ref and purl (each
	// has "?package-id=") was most of an SBOM rewrite's CPU.
	if strings.Contains(s, "://") {
		s = urlRe.ReplaceAllStringFunc(s, stripURL)
	}
	// (?i) folds some non-ASCII letters to ASCII ones (ſ to s, K to k),
	// which strings.ToLower does not: such strings always take the regexp.
	if l := strings.ToLower(s); !isASCII(s) || strings.Contains(l, "token=") || strings.Contains(l, "auth=") || strings.Contains(l, "password=") {
		s = assignRe.ReplaceAllString(s, "${1}=")
	}
	return s
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
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

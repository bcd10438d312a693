package scanners

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json/jsontext"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anchore/syft/syft/format"
	"github.com/anchore/syft/syft/format/cyclonedxjson"
	"github.com/anchore/syft/syft/format/spdxjson"
	"github.com/anchore/syft/syft/sbom"

	"github.com/tollgate/tollgate/loadtest/corpus"
)

// tokenRewrite is how reproducible rewrote syft's documents before it worked
// on their bytes: a stream of JSON tokens re-encoded with indentation. It is
// the reference the byte rewrite must match.
func tokenRewrite(raw []byte, fmtID sbom.FormatID, id Identity) ([]byte, error) {
	replace := identityFields(fmtID, id)
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

// corpusApps generates load-test apps once and returns the directories of
// the n with the most packages, most first.
var corpusApps = sync.OnceValues(func() ([]string, error) {
	root, err := os.MkdirTemp("", "tollgate-sbom-corpus-*")
	if err != nil {
		return nil, err
	}
	m, err := corpus.Generate(context.Background(), root, corpus.Options{Seed: 7, Apps: 40})
	if err != nil {
		return nil, err
	}
	apps := slices.Clone(m.Apps)
	slices.SortFunc(apps, func(a, b corpus.App) int { return cmp.Compare(b.Packages, a.Packages) })
	var dirs []string
	for _, a := range apps {
		dirs = append(dirs, filepath.Join(root, a.Dir))
	}
	return dirs, nil
})

// rawSBOMs catalogs dir and returns syft's own encodings of it, and the
// catalog.
func rawSBOMs(t testing.TB, dir string, id Identity) (map[sbom.FormatID][]byte, *sbom.SBOM) {
	t.Helper()
	doc, err := engine.sbom.catalog(context.Background(), dir, id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[sbom.FormatID][]byte{}
	for _, enc := range []sbom.FormatEncoder{engine.sbom.cdx, engine.sbom.spdx} {
		raw, err := format.Encode(*doc, enc)
		if err != nil {
			t.Fatal(err)
		}
		out[enc.ID()] = raw
	}
	return out, doc
}

// TestSBOMRewriteMatchesTokenRewrite: the byte rewrite gives the bytes the
// token rewrite gave, on the examples, the credentials fixture and load-test
// apps of every size.
func TestSBOMRewriteMatchesTokenRewrite(t *testing.T) {
	needEngine(t)
	apps, err := corpusApps()
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{example("node-todo"), filepath.Join("testdata", "lockfile-credentials")}
	dirs = append(dirs, apps[0], apps[len(apps)/4], apps[len(apps)/2], apps[len(apps)-1])
	id := Identity{ScanID: "rewrite", Name: "app", Created: time.Date(2026, 12, 5, 16, 0, 0, 0, time.UTC)}
	for _, dir := range dirs {
		raws, _ := rawSBOMs(t, dir, id)
		for fmtID, raw := range raws {
			got, err := reproducible(raw, fmtID, id)
			if err != nil {
				t.Fatalf("%s %s: %v", dir, fmtID, err)
			}
			want, err := tokenRewrite(raw, fmtID, id)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s: the byte rewrite differs from the token rewrite (%d bytes, want %d)", dir, fmtID, len(got), len(want))
			}
		}
	}
}

// TestSBOMRewriteEdgeCases: names are never rewritten, escaped strings are
// checked too, and a replaced field is found however deep in the header.
func TestSBOMRewriteEdgeCases(t *testing.T) {
	id := Identity{ScanID: "edge", Created: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)}
	raw := []byte(`{"bomFormat":"CycloneDX","https://u:p@h/x=":"https://u:p@h/n","esc":"https:\/\/u:p@h\/e","serialNumber":"urn:uuid:random","metadata":{"tools":{"timestamp":"keep"},"timestamp":"now"},"components":[]}` + "\n")
	got, err := reproducible(raw, cyclonedxjson.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	want, err := tokenRewrite(raw, cyclonedxjson.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{`{"a":"x`, `["x"]`, `{"a":`} {
		if _, err := reproducible([]byte(bad), spdxjson.ID, id); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// BenchmarkSBOMRewrite rewrites the SBOMs of the load-test app with the most
// packages: the token rewrite this replaced, the byte rewrite (indented, as
// stored), and the byte rewrite without indentation; syft's own encoding
// of the same catalog, for scale.
func BenchmarkSBOMRewrite(b *testing.B) {
	needEngine(b)
	apps, err := corpusApps()
	if err != nil {
		b.Fatal(err)
	}
	id := Identity{ScanID: "bench", Name: "app", Created: time.Date(2026, 12, 5, 16, 0, 0, 0, time.UTC)}
	raws, doc := rawSBOMs(b, apps[0], id)
	b.Logf("%s: %d packages", apps[0], doc.Artifacts.Packages.PackageCount())
	for _, enc := range []sbom.FormatEncoder{engine.sbom.cdx, engine.sbom.spdx} {
		b.Run(fmt.Sprintf("%s/syft-encode", enc.ID()), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := format.Encode(*doc, enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	compact := func(raw []byte, fmtID sbom.FormatID, id Identity) ([]byte, error) {
		doc, err := replaceMembers(bytes.TrimSpace(raw), identityFields(fmtID, id))
		if err != nil {
			return nil, err
		}
		return stripStringCredentials(doc)
	}
	for _, fmtID := range []sbom.FormatID{cyclonedxjson.ID, spdxjson.ID} {
		raw := raws[fmtID]
		for _, v := range []struct {
			name    string
			rewrite func([]byte, sbom.FormatID, Identity) ([]byte, error)
		}{{"tokens", tokenRewrite}, {"bytes", reproducible}, {"bytes-compact", compact}} {
			b.Run(fmt.Sprintf("%s/%s", fmtID, v.name), func(b *testing.B) {
				b.SetBytes(int64(len(raw)))
				b.ReportAllocs()
				var out []byte
				for b.Loop() {
					if out, err = v.rewrite(raw, fmtID, id); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(out)), "out-bytes")
			})
		}
	}
}

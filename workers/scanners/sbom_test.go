package scanners

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The credentials planted in testdata/lockfile-credentials.
var plantedCredentials = []string{
	"ciuser", "s3cr3tPassw0rd", "npmTokenAbc123XYZ", "queryTokenQrs789",
	"yarnuser", "yarnPassw0rdDef", "pipuser", "pipPassw0rdGhi",
}

// TestSBOMHoldsNoRegistryCredentials: lockfiles whose URLs carry a user, a
// password or a token give SBOMs (and package lists) with none of them,
// while the registry URLs themselves are kept.
func TestSBOMHoldsNoRegistryCredentials(t *testing.T) {
	needEngine(t)
	dir := filepath.Join("testdata", "lockfile-credentials")
	cat, err := engine.sbom.Scan(context.Background(), dir, Identity{ScanID: "creds", Name: "creds-app", Created: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	pkgs, _ := json.Marshal(cat.Packages)
	if len(cat.Packages) < 2 {
		t.Fatalf("catalogued %s, want the lockfiles' packages", pkgs)
	}
	for name, data := range map[string]string{"cyclonedx": string(cat.CycloneDX), "spdx": string(cat.SPDX), "packages": string(pkgs)} {
		for _, c := range plantedCredentials {
			if strings.Contains(data, c) {
				t.Errorf("%s holds %q", name, c)
			}
		}
	}
	if !strings.Contains(string(cat.SPDX), "registry.example.com/npm/@acme/private-lib/-/private-lib-2.1.0.tgz") {
		t.Errorf("the SPDX download location lost its registry URL:\n%s", cat.SPDX)
	}
}

func TestStripCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:token@registry.example.com/a/-/a-1.0.tgz":                                     "https://registry.example.com/a/-/a-1.0.tgz",
		"https://TOKEN@github.com/org/repo.git":                                                     "https://github.com/org/repo.git",
		"https://r.example.com/a.tgz?_authToken=abc&v=1":                                            "https://r.example.com/a.tgz?v=1",
		"https://r.example.com/a.tgz?token=abc":                                                     "https://r.example.com/a.tgz",
		"https://blob.example.com/a.whl?sv=2020&sig=AbC%2F123":                                      "https://blob.example.com/a.whl?sv=2020",
		"--index-url https://u:p@pypi.example.com/simple requests":                                  "--index-url https://pypi.example.com/simple requests",
		"//registry.npmjs.org/:_authToken=npm_abcdef":                                               "//registry.npmjs.org/:_authToken=",
		"git+ssh://git@github.com/org/repo.git#v1.0.0":                                              "git+ssh://github.com/org/repo.git#v1.0.0",
		"https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz":                                  "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
		"pkg:npm/left-pad@1.3.0":                                                                    "pkg:npm/left-pad@1.3.0",
		"pkg:maven/org.acme/lib@1.0?repository_url=https%3A%2F%2Fu%3Apw%40repo.example.com%2Fmaven": "pkg:maven/org.acme/lib@1.0?repository_url=https:%2F%2Frepo.example.com%2Fmaven",
		"MIT":                             "MIT",
		"x?Access_TOKEN=abc&pasſword=def": "x?Access_TOKEN=&pasſword=",
		"pkg:npm/a@1.0?package-id=82635634b5b2e3bb": "pkg:npm/a@1.0?package-id=82635634b5b2e3bb",
	} {
		if got := StripCredentials(in); got != want {
			t.Errorf("StripCredentials(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzStripCredentials: any string is cleaned without a panic, a credential
// planted as a URL's user information or token parameter is gone, and
// cleaning is idempotent (a bom-ref and the purl it names stay equal).
func FuzzStripCredentials(f *testing.F) {
	for _, s := range []string{"", "https://a:b@c/d?token=e", "pkg:npm/x@1?download_url=https%3A%2F%2Fu%3Ap%40h", "x://@@", "%zz://", "a://b@c@d"} {
		f.Add(s, "host.example")
	}
	f.Fuzz(func(t *testing.T, s, host string) {
		once := StripCredentials(s)
		if twice := StripCredentials(once); twice != once {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, once, twice)
		}
		planted := s + " https://plantedUser:plantedPassw0rd@registry.example.com/x.tgz?_authToken=plantedToken9 " + s
		out := StripCredentials(planted)
		for _, c := range []string{"plantedUser", "plantedPassw0rd", "plantedToken9"} {
			if strings.Contains(out, c) && !strings.Contains(s, c) {
				t.Fatalf("%q kept in %q", c, out)
			}
		}
	})
}

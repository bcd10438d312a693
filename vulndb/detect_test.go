package vulndb

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/db"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy/pkg/detector/library"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/aquasecurity/trivy/pkg/vulnerability"
)

// detected is what the tests check of a trivy finding.
type detected struct {
	ID       string
	Aliases  []string
	Fixed    string
	Severity string
}

// detect runs a package through trivy's language detector and fills in the
// vulnerability details the way trivy's scanner does (severity source "auto").
func detect(t *testing.T, lang ftypes.LangType, pkg, version string) []types.DetectedVulnerability {
	t.Helper()
	drv, ok := library.NewDriver(lang)
	if !ok {
		t.Fatalf("trivy has no driver for %q", lang)
	}
	vulns, err := drv.DetectVulnerabilities("", pkg, version)
	if err != nil {
		t.Fatalf("DetectVulnerabilities(%q, %q): %v", pkg, version, err)
	}
	vulnerability.NewClient(db.Config{}).FillInfo(vulns, []dbtypes.SourceID{"auto"})
	slices.SortFunc(vulns, func(a, b types.DetectedVulnerability) int {
		return strings.Compare(a.VulnerabilityID, b.VulnerabilityID)
	})
	return vulns
}

// TestImportOSV_Detect matches packages against the imported fixtures through
// trivy's real detector, at and around every kind of range boundary.
func TestImportOSV_Detect(t *testing.T) {
	dbDir, _ := importFixtures(t)
	openDB(t, dbDir)

	var (
		nswg151 = detected{"NSWG-ECO-151", []string{"CVE-2016-7191"}, "1.4.6", "CRITICAL"}
		nswg1   = detected{"NSWG-ECO-1", []string{"CVE-2014-7205"}, "", "MEDIUM"}
		lodash1 = detected{"GHSA-4xc9-xhrj-v574", []string{"CVE-2018-16487"}, "4.17.11", "HIGH"} // severity from database_specific
		lodash2 = detected{"GHSA-p6mc-m468-83gw", []string{"CVE-2020-8203"}, "4.17.19", "HIGH"}
		pick    = detected{"GHSA-p6mc-m468-83gw", []string{"CVE-2020-8203"}, "", "HIGH"}
		cookie  = detected{"GHSA-pxg6-pf52-xh8x", []string{"CVE-2024-47764"}, "0.7.0", "LOW"} // empty severity array
		express = detected{"GHSA-qw6h-vgh9-j6wx", []string{"CVE-2024-43796"}, "4.20.0, 5.0.0", "MEDIUM"}
		moment  = detected{"GHSA-8hfj-j24r-96c4", []string{"CVE-2022-24785"}, "2.29.2", "HIGH"}
		hbs     = detected{"GHSA-f2jv-r9rf-7988", []string{"CVE-2021-23369"}, "4.7.7", "CRITICAL"}

		py       = detected{"PYSEC-2022-42969", []string{"CVE-2022-42969", "GHSA-w596-4wvx-j9j6"}, "", "UNKNOWN"}
		photo    = detected{"PYSEC-2022-43061", []string{"CVE-2022-4526"}, "3.16", "MEDIUM"}
		jwutil   = detected{"PYSEC-2020-341", []string{"CVE-2020-13388", "GHSA-h72c-w3q3-55qq"}, "2.3", "UNKNOWN"}
		stdlib   = detected{"GO-2022-0236", []string{"CVE-2021-31525", "GHSA-h86h-8ppg-mxmh"}, "1.15.12, 1.16.4", "UNKNOWN"}
		xnet     = detected{"GO-2022-0236", []string{"CVE-2021-31525", "GHSA-h86h-8ppg-mxmh"}, "0.0.0-20210428140749-89ef3d95e781", "UNKNOWN"}
		xcrypto  = detected{"GO-2020-0012", []string{"CVE-2020-9283", "GHSA-ffhg-7mh4-33c4"}, "0.0.0-20200220183623-bac4c82f6975", "UNKNOWN"}
		coder    = detected{"GO-2024-3228", []string{"GHSA-wcx9-ccpj-hx3c"}, "", "UNKNOWN"}
		coderV2  = detected{"GO-2024-3228", []string{"GHSA-wcx9-ccpj-hx3c"}, "2.14.4, 2.15.3, 2.16.1", "UNKNOWN"}
		log4j    = detected{"GHSA-jfh8-c2jp-5v3q", []string{"CVE-2021-44228"}, "2.15.0, 2.3.1, 2.12.2", "CRITICAL"}
		log4jFix = detected{"GHSA-jfh8-c2jp-5v3q", []string{"CVE-2021-44228"}, "", "CRITICAL"}
	)

	tests := []struct {
		name    string
		lang    ftypes.LangType
		pkg     string
		version string
		want    []detected
	}{
		// npm, SEMVER ranges (nodejs/security-wg): [1.0.0, 1.4.6) and =2.0.0.
		{"npm below introduced", ftypes.Npm, "passport-azure-ad", "0.9.9", nil},
		{"npm at introduced", ftypes.Npm, "passport-azure-ad", "1.0.0", []detected{nswg151}},
		{"npm below fixed", ftypes.Npm, "passport-azure-ad", "1.4.5", []detected{nswg151}},
		{"npm at fixed", ftypes.Npm, "passport-azure-ad", "1.4.6", nil},
		{"npm at last_affected", ftypes.Npm, "passport-azure-ad", "2.0.0", []detected{nswg151}},
		{"npm above last_affected", ftypes.Npm, "passport-azure-ad", "2.0.1", nil},
		{"npm last_affected from 0", ftypes.Npm, "bassmaster", "1.5.1", []detected{nswg1}},
		{"npm above last_affected from 0", ftypes.Npm, "bassmaster", "1.5.2", nil},
		// npm, ECOSYSTEM ranges (GHSA); lodash has two advisories.
		{"npm one of two advisories", ftypes.Npm, "lodash", "3.6.0", []detected{lodash1}},
		{"npm two advisories", ftypes.Npm, "lodash", "3.7.0", []detected{lodash1, lodash2}},
		{"npm name case folded", ftypes.Npm, "Lodash", "4.17.10", []detected{lodash1, lodash2}},
		{"npm first advisory fixed", ftypes.Npm, "lodash", "4.17.11", []detected{lodash2}},
		{"npm both fixed", ftypes.Npm, "lodash", "4.17.19", nil},
		{"npm ghsa last_affected", ftypes.Npm, "lodash.pick", "4.4.0", []detected{pick}},
		{"npm ghsa above last_affected", ftypes.Npm, "lodash.pick", "4.4.1", nil},
		{"npm ghsa below introduced", ftypes.Npm, "lodash.pick", "3.9.9", nil},
		{"npm severity from database_specific", ftypes.Npm, "cookie", "0.6.0", []detected{cookie}},
		{"npm severity from database_specific fixed", ftypes.Npm, "cookie", "0.7.0", nil},
		{"npm cvss v3 preferred to v4", ftypes.Npm, "express", "4.19.2", []detected{express}},
		{"npm pre-release in range", ftypes.Npm, "express", "5.0.0-beta.1", []detected{express}},
		{"npm pre-release range fixed", ftypes.Npm, "express", "5.0.0", nil},
		{"npm other range fixed", ftypes.Npm, "express", "4.20.0", nil},
		{"npm record with nuget entry", ftypes.Npm, "moment", "2.29.1", []detected{moment}},
		{"npm record with maven entries", ftypes.Npm, "handlebars", "4.7.6", []detected{hbs}},
		{"npm withdrawn record absent", ftypes.Npm, "jsonwebtoken", "8.5.1", nil},

		// PyPI.
		{"pypi at last_affected", ftypes.Pip, "py", "1.11.0", []detected{py}},
		{"pypi dev release, name case folded", ftypes.Pip, "Py", "1.4.7.dev3", []detected{py}},
		{"pypi above last_affected", ftypes.Pip, "py", "1.11.1", nil},
		{"pypi name normalised", ftypes.Pip, "Django_Photologue", "3.15", []detected{photo}},
		{"pypi at fixed", ftypes.Pip, "django-photologue", "3.16", nil},
		{"pypi dotted name", ftypes.Pip, "jw.util", "2.2", []detected{jwutil}},
		{"pypi dotted name fixed", ftypes.Pip, "jw.util", "2.3", nil},

		// Go: trivy reports module and stdlib versions with a "v".
		{"go stdlib first range", ftypes.GoModule, "stdlib", "v1.15.11", []detected{stdlib}},
		{"go stdlib without v", ftypes.GoModule, "stdlib", "1.15.11", []detected{stdlib}},
		{"go stdlib first fixed", ftypes.GoModule, "stdlib", "v1.15.12", nil},
		{"go stdlib pre-release introduced", ftypes.GoBinary, "stdlib", "v1.16.0-rc1", []detected{stdlib}},
		{"go stdlib second range", ftypes.GoBinary, "stdlib", "v1.16.3", []detected{stdlib}},
		{"go stdlib second fixed", ftypes.GoBinary, "stdlib", "v1.16.4", nil},
		{"go pseudo-version before fix", ftypes.GoModule, "golang.org/x/net", "v0.0.0-20210427231257-85d8f90d7b71", []detected{xnet}},
		{"go pseudo-version at fix", ftypes.GoModule, "golang.org/x/net", "v0.0.0-20210428140749-89ef3d95e781", nil},
		{"go pseudo-version fix, older", ftypes.GoModule, "golang.org/x/crypto", "v0.0.0-20191011191535-87dc89f01550", []detected{xcrypto}},
		{"go pseudo-version fix, at", ftypes.GoModule, "golang.org/x/crypto", "v0.0.0-20200220183623-bac4c82f6975", nil},
		{"go pseudo-version fix, release", ftypes.GoModule, "golang.org/x/crypto", "v0.1.0", nil},
		{"go introduced 0 without fix", ftypes.GoModule, "github.com/coder/coder", "v0.27.0", []detected{coder}},
		{"go introduced 0 without fix, pseudo-version", ftypes.GoModule, "github.com/coder/coder", "v0.0.0-20230101000000-abcdefabcdef", []detected{coder}},
		{"go every version, even unparsable", ftypes.GoBinary, "github.com/coder/coder", "(devel)", []detected{coder}},
		{"go major version module", ftypes.GoModule, "github.com/coder/coder/v2", "v2.14.3", []detected{coderV2}},
		{"go below introduced", ftypes.GoModule, "github.com/coder/coder/v2", "v2.3.0", nil},
		{"go first fixed", ftypes.GoModule, "github.com/coder/coder/v2", "v2.14.4", nil},
		{"go second introduced", ftypes.GoModule, "github.com/coder/coder/v2", "v2.15.0", []detected{coderV2}},
		{"go third fixed", ftypes.GoModule, "github.com/coder/coder/v2", "v2.16.1", nil},
		{"go withdrawn record absent", ftypes.GoModule, "github.com/gorilla/sessions", "v1.2.1", nil},

		// Maven.
		{"maven vulnerable", ftypes.Pom, "org.apache.logging.log4j:log4j-core", "2.14.1", []detected{log4j}},
		{"maven at fixed", ftypes.Pom, "org.apache.logging.log4j:log4j-core", "2.15.0", nil},
		{"maven at pre-release introduced", ftypes.Jar, "org.apache.logging.log4j:log4j-core", "2.0-beta9", []detected{log4j}},
		{"maven below introduced", ftypes.Jar, "org.apache.logging.log4j:log4j-core", "2.0-beta8", nil},
		{"maven merged entry fixed", ftypes.Jar, "org.apache.logging.log4j:log4j-core", "2.3.1", nil},
		{"maven merged entry vulnerable", ftypes.Jar, "org.apache.logging.log4j:log4j-core", "2.12.1", []detected{log4j}},
		{"maven merged entry at fixed", ftypes.Jar, "org.apache.logging.log4j:log4j-core", "2.12.2", nil},
		{"maven name case folded", ftypes.Gradle, "Org.Apache.Logging.Log4j:Log4j-Core", "2.14.1", []detected{log4j}},
		{"maven versions list", ftypes.Pom, "uk.co.nichesolutions.logging.log4j:log4j-core", "2.6.3-CUSTOM", []detected{log4jFix}},
		{"maven versions list other", ftypes.Pom, "uk.co.nichesolutions.logging.log4j:log4j-core", "2.6.3", nil},
		{"maven versions list only", ftypes.Pom, "org.xbib.elasticsearch:log4j", "6.3.2.1", []detected{log4jFix}},
		{"maven last_affected", ftypes.Pom, "com.guicedee.services:log4j-core", "1.2.1.2-jre17", []detected{log4jFix}},
		{"maven entry of npm record", ftypes.Jar, "org.webjars.npm:handlebars", "4.7.6", []detected{hbs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []detected
			for _, v := range detect(t, tt.lang, tt.pkg, tt.version) {
				got = append(got, detected{v.VulnerabilityID, v.VendorIDs, v.FixedVersion, v.Severity})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s %s@%s:\n got %+v\nwant %+v", tt.lang, tt.pkg, tt.version, got, tt.want)
			}
		})
	}
}

// TestImportOSV_VulnerabilityDetails checks what trivy copies from the vulnerability
// bucket and the data source into a finding.
func TestImportOSV_VulnerabilityDetails(t *testing.T) {
	dbDir, _ := importFixtures(t)
	openDB(t, dbDir)

	t.Run("ghsa maven", func(t *testing.T) {
		vulns := detect(t, ftypes.Pom, "org.apache.logging.log4j:log4j-core", "2.14.1")
		if len(vulns) != 1 {
			t.Fatalf("got %d vulnerabilities, want 1", len(vulns))
		}
		v := vulns[0]
		wantSource := dbtypes.DataSource{
			ID:   SourceID,
			Name: "Tollgate OSV import (Maven)",
			URL:  "https://osv.dev/list?ecosystem=Maven",
		}
		if v.DataSource == nil || *v.DataSource != wantSource {
			t.Errorf("DataSource = %+v, want %+v", v.DataSource, wantSource)
		}
		if v.SeveritySource != SourceID {
			t.Errorf("SeveritySource = %q, want %q", v.SeveritySource, SourceID)
		}
		if v.Title != "Remote code injection in Log4j" {
			t.Errorf("Title = %q", v.Title)
		}
		if !strings.HasPrefix(v.Description, "# Summary\n\nLog4j versions prior to 2.16.0") {
			t.Errorf("Description = %.60q...", v.Description)
		}
		if want := []string{"CWE-20", "CWE-400", "CWE-502", "CWE-917"}; !reflect.DeepEqual(v.CweIDs, want) {
			t.Errorf("CweIDs = %v, want %v", v.CweIDs, want)
		}
		if len(v.References) != 65 || v.References[0] != "https://nvd.nist.gov/vuln/detail/CVE-2021-44228" {
			t.Errorf("References = %d starting %q, want 65 starting with the NVD page", len(v.References), v.References[0])
		}
		wantCVSS := dbtypes.CVSS{V3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", V3Score: 10}
		if got := v.CVSS[SourceID]; got != wantCVSS {
			t.Errorf("CVSS = %+v, want %+v", got, wantCVSS)
		}
		if got := v.VendorSeverity[SourceID]; got != dbtypes.SeverityCritical {
			t.Errorf("VendorSeverity = %v, want CRITICAL", got)
		}
		checkTime(t, "PublishedDate", v.PublishedDate, "2021-12-10T00:40:56Z")
		checkTime(t, "LastModifiedDate", v.LastModifiedDate, "2024-07-25T20:12:08Z")
	})

	t.Run("cvss v3 and v4", func(t *testing.T) {
		vulns := detect(t, ftypes.Npm, "express", "4.19.2")
		if len(vulns) != 1 {
			t.Fatalf("got %d vulnerabilities, want 1", len(vulns))
		}
		want := dbtypes.CVSS{
			V3Vector:  "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:L",
			V3Score:   5,
			V40Vector: "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:N/VI:N/VA:N/SC:L/SI:L/SA:L",
			V40Score:  2.3,
		}
		if got := vulns[0].CVSS[SourceID]; got != want {
			t.Errorf("CVSS = %+v, want %+v", got, want)
		}
	})

	t.Run("go zero modified date", func(t *testing.T) {
		vulns := detect(t, ftypes.GoModule, "golang.org/x/crypto", "v0.0.0-20191011191535-87dc89f01550")
		if len(vulns) != 1 {
			t.Fatalf("got %d vulnerabilities, want 1", len(vulns))
		}
		v := vulns[0]
		checkTime(t, "PublishedDate", v.PublishedDate, "2021-04-14T20:04:52Z")
		if v.LastModifiedDate != nil {
			t.Errorf("LastModifiedDate = %v, want none for golang/vulndb's zero time", v.LastModifiedDate)
		}
		if _, ok := v.VendorSeverity[SourceID]; ok {
			t.Errorf("VendorSeverity has %s for a record without severity", SourceID)
		}
		if v.Severity != "UNKNOWN" {
			t.Errorf("Severity = %q, want UNKNOWN", v.Severity)
		}
	})
}

func checkTime(t *testing.T, field string, got *time.Time, want string) {
	t.Helper()
	w, err := time.Parse(time.RFC3339, want)
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || !got.Equal(w) {
		t.Errorf("%s = %v, want %s", field, got, want)
	}
}

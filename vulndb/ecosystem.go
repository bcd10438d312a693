package vulndb

import (
	"net/url"
	"strings"

	npm "github.com/aquasecurity/go-npm-version/pkg"
	pep440 "github.com/aquasecurity/go-pep440-version"
	goversion "github.com/aquasecurity/go-version/pkg/version"
	"github.com/aquasecurity/trivy-db/pkg/ecosystem"
	"github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/bucket"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/vulnerability"
	mvn "github.com/masahiro331/go-mvn-version"
)

// SourceID is the trivy-db data source id of everything ImportOSV writes. Trivy copies
// it into DetectedVulnerability.DataSource.ID, and the severity of an imported
// vulnerability is Vulnerability.VendorSeverity[SourceID].
const SourceID types.SourceID = "tollgate-osv"

// Ecosystem names as OSV records spell them; ImportStats counts under these keys.
const (
	EcosystemNpm   = "npm"
	EcosystemPyPI  = "PyPI"
	EcosystemGo    = "Go"
	EcosystemMaven = "Maven"
)

// ecosystemSpec is how one OSV ecosystem maps onto trivy-db.
type ecosystemSpec struct {
	// name is the OSV ecosystem name.
	name string
	// trivy is the trivy-db ecosystem; its buckets are named "<trivy>::<source name>",
	// and trivy's language driver reads every bucket with that prefix.
	trivy ecosystem.Type
	// newBucket is trivy-db's bucket constructor for the ecosystem.
	newBucket func(types.DataSource) (bucket.DataSourceBucket, error)
	// compile parses a constraint the way trivy's comparer for the ecosystem does.
	compile compileFunc
	// trimV drops a leading "v" from versions. Go records carry none, but a stray one
	// would end up in the fixed versions trivy reports.
	trimV bool
}

// ecosystemFor resolves an OSV ecosystem name. Like trivy-db's OSV source it compares
// case-insensitively and ignores a ":suffix" (e.g. "Maven:https://repo.example/").
func ecosystemFor(osvEcosystem string) (ecosystemSpec, bool) {
	base, _, _ := strings.Cut(osvEcosystem, ":")
	switch strings.ToLower(strings.TrimSpace(base)) {
	case "npm":
		return ecosystemSpec{name: EcosystemNpm, trivy: ecosystem.Npm, newBucket: bucket.NewNpm, compile: compileNpm}, true
	case "pypi":
		return ecosystemSpec{name: EcosystemPyPI, trivy: ecosystem.Pip, newBucket: bucket.NewPyPI, compile: compilePEP440}, true
	case "go":
		return ecosystemSpec{name: EcosystemGo, trivy: ecosystem.Go, newBucket: bucket.NewGo, compile: compileGo, trimV: true}, true
	case "maven":
		return ecosystemSpec{name: EcosystemMaven, trivy: ecosystem.Maven, newBucket: bucket.NewMaven, compile: compileMaven}, true
	default:
		return ecosystemSpec{}, false
	}
}

// dataSource is what trivy reports as the origin of an imported advisory.
func (e ecosystemSpec) dataSource() types.DataSource {
	return types.DataSource{
		ID:   SourceID,
		Name: "Tollgate OSV import (" + e.name + ")",
		URL:  "https://osv.dev/list?ecosystem=" + url.QueryEscape(e.name),
	}
}

// packageKey is the name trivy looks the package up by. trivy's driver normalises
// the scanned name with the same function before the lookup (npm and Maven
// lower-cased; PyPI lower-cased with "_" as "-", but "." kept; Go unchanged).
func (e ecosystemSpec) packageKey(name string) string {
	return vulnerability.NormalizePkgName(e.trivy, strings.TrimSpace(name))
}

// cleanVersion prepares a version from a record for use in a constraint.
func (e ecosystemSpec) cleanVersion(v string) string {
	v = strings.TrimSpace(v)
	if e.trimV {
		v = strings.TrimPrefix(v, "v")
	}
	return v
}

// matchFunc reports whether a version satisfies a compiled constraint.
type matchFunc func(version string) (bool, error)

// compileFunc parses a constraint string as stored in Advisory.VulnerableVersions.
type compileFunc func(constraint string) (matchFunc, error)

// The compile functions mirror trivy v0.70's comparers in
// pkg/detector/library/compare: same library, same options. A constraint they accept
// is one trivy can evaluate; one they reject would make trivy skip the whole advisory
// with a warning, so the import drops it instead.

// compileNpm mirrors npm.Comparer (pre-releases included).
func compileNpm(constraint string) (matchFunc, error) {
	c, err := npm.NewConstraints(constraint, npm.WithPreRelease(true))
	if err != nil {
		return nil, err
	}
	return func(version string) (bool, error) {
		v, err := npm.NewVersion(version)
		if err != nil {
			return false, err
		}
		return c.Check(v), nil
	}, nil
}

// compilePEP440 mirrors pep440.Comparer (pre-releases included).
func compilePEP440(constraint string) (matchFunc, error) {
	c, err := pep440.NewSpecifiers(constraint, pep440.WithPreRelease(true))
	if err != nil {
		return nil, err
	}
	return func(version string) (bool, error) {
		v, err := pep440.Parse(version)
		if err != nil {
			return false, err
		}
		return c.Check(v), nil
	}, nil
}

// compileGo mirrors compare.GenericComparer, which trivy uses for Go modules and the
// standard library. It accepts versions with or without the "v" prefix.
func compileGo(constraint string) (matchFunc, error) {
	c, err := goversion.NewConstraints(constraint)
	if err != nil {
		return nil, err
	}
	return func(version string) (bool, error) {
		v, err := goversion.Parse(version)
		if err != nil {
			return false, err
		}
		return c.Check(v), nil
	}, nil
}

// compileMaven mirrors maven.Comparer.
func compileMaven(constraint string) (matchFunc, error) {
	c, err := mvn.NewComparer(constraint)
	if err != nil {
		return nil, err
	}
	return func(version string) (bool, error) {
		v, err := mvn.NewVersion(version)
		if err != nil {
			return false, err
		}
		return c.Check(v), nil
	}, nil
}

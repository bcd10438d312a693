package scanners

import "strings"

// ecosystemFromPURL names a package's ecosystem as OSV does, from its purl type.
func ecosystemFromPURL(purl string) string {
	typ, _, ok := strings.Cut(strings.TrimPrefix(purl, "pkg:"), "/")
	if !ok {
		return ""
	}
	switch typ {
	case "npm":
		return "npm"
	case "pypi":
		return "PyPI"
	case "golang":
		return "Go"
	case "maven":
		return "Maven"
	case "gem":
		return "RubyGems"
	case "cargo":
		return "crates.io"
	case "nuget":
		return "NuGet"
	case "composer":
		return "Packagist"
	case "pub":
		return "Pub"
	case "hex":
		return "Hex"
	case "swift":
		return "SwiftURL"
	default:
		return typ
	}
}

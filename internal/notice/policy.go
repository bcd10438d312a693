package notice

import (
	"fmt"
	"slices"
	"strings"
)

// Allowed are the licences a linked dependency may have: the permissive
// licences that the Apache Software Foundation's third-party policy puts in
// its category A (they may be shipped in an Apache-2.0 work, source or
// binary), and MPL-2.0 from its category B (shipped in binary form only,
// file-level copyleft: NOTICE names the module version whose source the Go
// module proxy serves). Public domain dedications count as category A.
var Allowed = []string{
	"0BSD",
	"Apache-2.0",
	"BSD-2-Clause",
	"BSD-3-Clause",
	"CC0-1.0",
	"ISC",
	"LicenseRef-public-domain",
	"MIT",
	"MPL-2.0",
	"Unlicense",
	"Zlib",
}

// override settles a licence go-licenses cannot: a person read the licence
// file and wrote down what it grants, and Contains is the sentence that
// must still be there for the reading to hold.
type override struct {
	// Library is the library the override names (go-licenses' name).
	Library string
	// Module holds the library, for a library without a licence file
	// (default: the library's name).
	Module string
	// File is the licence file inside the module, for one go-licenses does
	// not recognise as a licence.
	File     string
	License  string
	Contains string
	Why      string
}

var overrides = []override{
	{
		Library:  "kernel.org/pub/linux/libs/security/libcap/psx",
		License:  "BSD-3-Clause",
		Contains: "SPDX-License-Identifier: BSD-3-Clause OR GPL-2.0-only",
		Why:      "dual-licensed BSD-3-Clause OR GPL-2.0-only; tollgate takes it under BSD-3-Clause; go-licenses reads the GPL-2.0 half",
	},
	{
		Library:  "github.com/xi2/xz",
		File:     "LICENSE",
		License:  "LicenseRef-public-domain",
		Contains: "All these files have been put\n    into the public domain.",
		Why:      "its LICENSE dedicates every file to the public domain; go-licenses knows no such licence",
	},
	{
		Library:  "modernc.org/mathutil",
		File:     "LICENSE",
		License:  "BSD-3-Clause",
		Contains: "Redistribution and use in source and binary forms, with or without\nmodification, are permitted provided that the following conditions are\nmet:",
		Why:      "its LICENSE is BSD-3-Clause; go-licenses' classifier falls under its confidence threshold on it",
	},
	{
		// github.com/nexus-rpc/nexus-proto-annotations has no licence file,
		// upstream either, as of v0.1.0: see Exceptions.
		Library: "github.com/nexus-rpc/nexus-proto-annotations/go/nexusannotations/v1",
		Module:  "github.com/nexus-rpc/nexus-proto-annotations",
		License: "NOASSERTION",
		Why:     "no licence file in the module or its repository",
	},
}

// Exceptions are libraries linked although their licence is not in Allowed,
// each with the reason it is accepted for now.
var Exceptions = map[string]string{
	"github.com/nexus-rpc/nexus-proto-annotations/go/nexusannotations/v1": "generated protobuf option declarations (one .pb.go) that go.temporal.io/api (MIT) imports; " +
		"the nexus-rpc project publishes no licence for it (v0.1.0): to be settled with upstream",
}

func overrideFor(library string) (override, bool) {
	i := slices.IndexFunc(overrides, func(o override) bool { return o.Library == library })
	if i < 0 {
		return override{}, false
	}
	return overrides[i], true
}

// CheckLicenses returns an error naming every library whose licence is
// neither in Allowed nor an exception.
func CheckLicenses(libs []Library) error {
	var bad []string
	for _, l := range libs {
		if slices.Contains(Allowed, l.License) {
			continue
		}
		if _, ok := Exceptions[l.Name]; ok {
			continue
		}
		bad = append(bad, fmt.Sprintf("%s (%s): %s", l.Name, l.ModVersion(), l.License))
	}
	if len(bad) > 0 {
		return fmt.Errorf("licences not on the allow list (%s): %s", strings.Join(Allowed, ", "), strings.Join(bad, "; "))
	}
	return nil
}

// CheckModules compares the modules NOTICE names with those the build links
// (module@version, the main module left out): NOTICE is stale when one
// differs.
func CheckModules(libs []Library, linked []string) error {
	named := map[string]bool{}
	for _, l := range libs {
		named[l.ModVersion()] = true
	}
	var missing, extra []string
	for _, m := range linked {
		if !named[m] {
			missing = append(missing, m)
		}
	}
	for m := range named {
		if !slices.Contains(linked, m) {
			extra = append(extra, m)
		}
	}
	if len(missing)+len(extra) == 0 {
		return nil
	}
	slices.Sort(extra)
	return fmt.Errorf("NOTICE is stale (run make notice): linked but not in it: %v; in it but not linked: %v", missing, extra)
}

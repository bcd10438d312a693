// Package notice writes and checks NOTICE: the third-party licences of what
// cmd/tollgate links, as go-licenses finds and classifies them in the module
// cache. scripts/notice.sh runs go-licenses and hands its rows to Build; the
// test of this package checks the committed NOTICE against the modules the
// build links, offline and in seconds.
package notice

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/module"
)

// Library is one row of go-licenses' report: a tree of packages under one
// licence file.
type Library struct {
	// Name is the import path go-licenses names the library by.
	Name string
	// Module and Version are the module holding the licence file (the
	// replacement, for a replaced module).
	Module  string
	Version string
	// License is the SPDX id go-licenses classified the licence file as, or
	// the one an override settles; Unknown when neither knows.
	License string
	// File is the licence file's path inside the module; empty without one.
	File string
	// Text is the licence file's content.
	Text string
}

// Unknown is go-licenses' word for a licence or file it could not find.
const Unknown = "Unknown"

// ModVersion is module@version.
func (l Library) ModVersion() string { return l.Module + "@" + l.Version }

// ReadRows reads the rows scripts/notice.tpl makes go-licenses print (name,
// version, licence, licence file; tab-separated) and resolves each licence
// file inside modCache, reading its text. Rows under mainModule (tollgate's
// own LICENSE) are left out. A row without a licence file takes its module
// from the override that names it.
func ReadRows(r io.Reader, modCache, mainModule string) ([]Library, error) {
	var libs []Library
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("read go-licenses row %q: want 4 tab-separated fields", line)
		}
		lib := Library{Name: f[0], Version: f[1], License: f[2]}
		if lib.Name == mainModule || strings.HasPrefix(lib.Name, mainModule+"/") {
			continue
		}
		if f[3] == "" {
			o, ok := overrideFor(lib.Name)
			if !ok {
				return nil, fmt.Errorf("read go-licenses row %q: no licence file and no override names %s", line, lib.Name)
			}
			lib.Module, lib.File = cmp.Or(o.Module, lib.Name), o.File
			if o.File != "" {
				text, err := os.ReadFile(modCachePath(modCache, lib.Module, lib.Version, o.File))
				if err != nil {
					return nil, fmt.Errorf("read licence of %s named by its override: %w", lib.Name, err)
				}
				lib.Text = string(text)
			}
			libs = append(libs, lib)
			continue
		}
		mod, ver, file, err := splitModCachePath(modCache, f[3])
		if err != nil {
			return nil, fmt.Errorf("read go-licenses row %q: %w", line, err)
		}
		lib.Module, lib.Version, lib.File = mod, ver, file
		text, err := os.ReadFile(f[3])
		if err != nil {
			return nil, fmt.Errorf("read licence of %s: %w", lib.Name, err)
		}
		lib.Text = string(text)
		libs = append(libs, lib)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read go-licenses rows: %w", err)
	}
	return libs, nil
}

// modCachePath is the path of file in module@version in the module cache.
func modCachePath(modCache, mod, version, file string) string {
	escMod, err := module.EscapePath(mod)
	if err != nil {
		escMod = mod
	}
	escVer, err := module.EscapeVersion(version)
	if err != nil {
		escVer = version
	}
	return filepath.Join(modCache, escMod+"@"+escVer, filepath.FromSlash(file))
}

// splitModCachePath turns MODCACHE/escaped-module@version/file into its
// module, version and file.
func splitModCachePath(modCache, path string) (mod, version, file string, err error) {
	rel, err := filepath.Rel(modCache, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", "", "", fmt.Errorf("licence file %q is not in the module cache %q", path, modCache)
	}
	rel = filepath.ToSlash(rel)
	escMod, rest, ok := strings.Cut(rel, "@")
	if !ok {
		return "", "", "", fmt.Errorf("licence file %q: no module@version in its path", path)
	}
	escVer, file, ok := strings.Cut(rest, "/")
	if !ok {
		return "", "", "", fmt.Errorf("licence file %q: no file after module@version", path)
	}
	if mod, err = module.UnescapePath(escMod); err != nil {
		return "", "", "", fmt.Errorf("licence file %q: %w", path, err)
	}
	if version, err = module.UnescapeVersion(escVer); err != nil {
		return "", "", "", fmt.Errorf("licence file %q: %w", path, err)
	}
	return mod, version, file, nil
}

// Merge joins the libraries of several platforms' reports, one per name and
// module version, sorted by name, and applies the overrides.
func Merge(reports ...[]Library) ([]Library, error) {
	seen := map[string]bool{}
	var out []Library
	for _, libs := range reports {
		for _, l := range libs {
			key := l.Name + " " + l.ModVersion()
			if seen[key] {
				continue
			}
			seen[key] = true
			l, err := applyOverride(l)
			if err != nil {
				return nil, err
			}
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b Library) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version))
	})
	return out, nil
}

// applyOverride settles a library's licence where an override names it,
// once the licence file still says what the override read in it.
func applyOverride(l Library) (Library, error) {
	o, ok := overrideFor(l.Name)
	if !ok {
		return l, nil
	}
	if o.Contains != "" && !strings.Contains(l.Text, o.Contains) {
		return l, fmt.Errorf("override for %s: its licence file %q no longer contains %q: read it again and update the override", l.Name, l.File, o.Contains)
	}
	l.License = o.License
	return l, nil
}

// Write renders NOTICE: tollgate's own notice, a table of every library
// (name, module@version, licence, licence file) and each distinct licence
// text once, headed by the libraries it covers.
func Write(w io.Writer, libs []Library, generator string) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "tollgate\nCopyright The tollgate Authors. Licensed under the Apache License, Version 2.0 (LICENSE).\n\n")
	fmt.Fprintf(bw, "tollgate's binaries for linux and darwin (amd64, arm64) link the third-party\nGo modules below, each under the licence named. Their source is the module\nversion named, as the Go module proxy serves it.\n\n")
	fmt.Fprintf(bw, "Generated by %s with `make notice`; do not edit by hand.\n\n", generator)
	fmt.Fprintf(bw, "%s\n", tableHeader)
	for _, l := range libs {
		fmt.Fprintf(bw, "%s\t%s\t%s\t%s\n", l.Name, l.ModVersion(), l.License, cmp.Or(l.File, "-"))
	}
	var order []string
	names := map[string][]string{}
	texts := map[string]string{}
	for _, l := range libs {
		if l.Text == "" {
			continue
		}
		h := textHash(l.Text)
		if _, ok := texts[h]; !ok {
			order = append(order, h)
			texts[h] = l.Text
		}
		names[h] = append(names[h], l.Name)
	}
	for _, h := range order {
		fmt.Fprintf(bw, "\n%s\n%s\n%s\n%s\n", textRule, strings.Join(names[h], "\n"), headRule, strings.TrimRight(texts[h], "\n\t "))
	}
	return bw.Flush()
}

const (
	tableHeader = "LIBRARY\tMODULE@VERSION\tLICENCE\tFILE"
	textRule    = "================================================================================"
	headRule    = "--------------------------------------------------------------------------------"
)

func textHash(s string) string {
	sum := sha256.Sum256([]byte(strings.TrimRight(s, "\n\t ")))
	return string(sum[:])
}

// Parse reads a NOTICE that Write made: its libraries, each with the text
// of its licence.
func Parse(r io.Reader) ([]Library, error) {
	data, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read NOTICE: %w", err)
	}
	sections := strings.Split(string(data), "\n"+textRule+"\n")
	_, table, ok := strings.Cut(sections[0], tableHeader+"\n")
	if !ok {
		return nil, errors.New("parse NOTICE: no table of libraries")
	}
	var libs []Library
	index := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(table), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("parse NOTICE: table row %q: want 4 tab-separated fields", line)
		}
		mod, ver, ok := strings.Cut(f[1], "@")
		if !ok {
			return nil, fmt.Errorf("parse NOTICE: table row %q: no module@version", line)
		}
		index[f[0]] = len(libs)
		libs = append(libs, Library{Name: f[0], Module: mod, Version: ver, License: f[2], File: strings.TrimPrefix(f[3], "-")})
	}
	for _, s := range sections[1:] {
		who, text, ok := strings.Cut(s, "\n"+headRule+"\n")
		if !ok {
			return nil, errors.New("parse NOTICE: a licence text without its list of libraries")
		}
		for _, name := range strings.Split(who, "\n") {
			i, ok := index[name]
			if !ok {
				return nil, fmt.Errorf("parse NOTICE: licence text for %s, which the table lacks", name)
			}
			libs[i].Text = strings.TrimRight(text, "\n")
		}
	}
	return libs, nil
}

// Package touches finds which sensitive areas a source tree touches:
// authentication, secrets handling and network egress. The review policy
// asks for a human when an AI-generated change touches one of them.
//
// It reads file names and contents with fixed patterns: cheap, explainable
// (each area lists the files that matched) and deliberately broad, since a
// false positive costs a reviewer a look and a false negative ships an
// unreviewed auth change. It never runs the code.
package touches

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Areas.
const (
	Auth    = "auth"
	Secrets = "secrets"
	Egress  = "egress"
)

// Keys of Scan's result besides the areas. Neither is an area: the review
// policy reads Truncated as "this tree was not read in full", which for an
// AI-generated change means a reviewer must look (never "touches nothing").
const (
	// Truncated lists what was not read in full and why: the file cap, a
	// file over the byte cap, an unreadable file.
	Truncated = "truncated"
	// Skipped lists the dependency trees at the root that were not read.
	Skipped = "skipped"
)

// Limits bound the work on one tree.
const (
	maxFiles = 20_000
	// maxFileBytes is how much of one source file is read: lines of any
	// length up to it are read in full (minified code is one long line).
	maxFileBytes = 1 << 20
	// maxPerArea caps the files listed per area (and per truncation list):
	// enough to explain.
	maxPerArea = 20
)

// rootSkips are dependency trees skipped at the root of the tree only: a
// directory of that name deeper down (src/build/auth.js) is read, so a
// source file cannot hide behind a name. Each skip is listed in the result.
var rootSkips = map[string]bool{".git": true, "node_modules": true}

var sourceExt = map[string]bool{
	".js": true, ".mjs": true, ".cjs": true, ".jsx": true, ".ts": true, ".tsx": true, ".py": true, ".go": true,
	".rb": true, ".java": true, ".kt": true, ".php": true, ".cs": true, ".rs": true, ".vue": true, ".svelte": true,
}

type rule struct {
	area string
	// path matches the slash-separated relative path, content a line.
	path, content *regexp.Regexp
}

var rules = []rule{
	{area: Auth,
		path:    regexp.MustCompile(`(?i)(^|/)(auth|login|logout|session|sessions|oauth|sso|jwt|passport|password|signin|signup)[^/]*$|(^|/)(auth|oauth)/`),
		content: regexp.MustCompile(`(?i)\b(jsonwebtoken|passport(-[a-z]+)?|bcrypt|argon2|next-auth|@auth/|express-session|flask_login|django\.contrib\.auth|golang-jwt|jwt\.(sign|verify|decode|encode|parse)|oauth2|openid|authenticate\(|set-cookie|setcookie|session\[)`)},
	{area: Secrets,
		path:    regexp.MustCompile(`(?i)(^|/)(\.env(\.[a-z]+)?|secrets?(\.[a-z]+)?|credentials?(\.[a-z]+)?|vault[^/]*|kms[^/]*)$`),
		content: regexp.MustCompile(`(?i)(process\.env\.[A-Z0-9_]*(KEY|SECRET|TOKEN|PASSWORD|PASS)\b|os\.(environ|getenv)[\[(]\s*['"][A-Z0-9_]*(KEY|SECRET|TOKEN|PASSWORD)|os\.(Getenv|LookupEnv)\("[A-Z0-9_]*(KEY|SECRET|TOKEN|PASSWORD)|secretmanager|secretsmanager|hvac\.|vault\.(read|write)|keyring\.|createCipher|crypto\.subtle)`)},
	{area: Egress,
		content: regexp.MustCompile(`(?i)(\bfetch\(\s*['"` + "`" + `]https?://|\baxios\b|\bgot\(|\bhttps?\.(request|get)\(|\brequests\.(get|post|put|patch|delete|request)\(|\burllib|\bhttpx\.|\baiohttp\b|http\.(Get|Post|NewRequest)|net\.Dial|new WebSocket\(|\bopenai\b|@anthropic-ai/sdk|\banthropic\.|nodemailer|smtplib)`)},
}

// Scan walks dir and returns, per area touched, the files (relative, slash
// separated, sorted, at most 20 per area) that touch it. Under Truncated it
// lists what it could not read in full, under Skipped the dependency trees
// at the root it did not read; a tree read in full has no Truncated key.
func Scan(ctx context.Context, dir string) (map[string][]string, error) {
	found := map[string]map[string]bool{}
	add := func(area, file string) {
		if found[area] == nil {
			found[area] = map[string]bool{}
		}
		found[area][file] = true
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel := "."
		if r, rerr := filepath.Rel(dir, path); rerr == nil {
			rel = filepath.ToSlash(r)
		}
		if err != nil {
			if path == dir {
				return err
			}
			// An unreadable directory or file is not "touches nothing".
			add(Truncated, fmt.Sprintf("%s: unreadable: %v", rel, err))
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if path != dir && filepath.Dir(path) == filepath.Clean(dir) && rootSkips[d.Name()] {
				add(Skipped, rel+"/")
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symlinks and devices are not followed
		}
		if files++; files > maxFiles {
			add(Truncated, fmt.Sprintf("more than %d files: the rest of the tree was not read", maxFiles))
			return errTooMany
		}
		for _, r := range rules {
			if r.path != nil && r.path.MatchString(rel) {
				add(r.area, rel)
			}
		}
		if !sourceExt[strings.ToLower(filepath.Ext(rel))] {
			return nil
		}
		areas, whole, err := scanFile(path)
		if err != nil {
			add(Truncated, fmt.Sprintf("%s: unreadable: %v", rel, err))
			return nil
		}
		if !whole {
			add(Truncated, fmt.Sprintf("%s: only the first %d bytes read", rel, maxFileBytes))
		}
		for _, a := range areas {
			add(a, rel)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errTooMany) {
		return nil, fmt.Errorf("find sensitive areas in %s: %w", dir, err)
	}
	out := map[string][]string{}
	for area, set := range found {
		list := slices.Sorted(maps.Keys(set))
		if len(list) > maxPerArea && area == Truncated {
			out[area] = append(list[:maxPerArea-1], fmt.Sprintf("and %d more", len(list)-maxPerArea+1))
			continue
		}
		out[area] = list[:min(len(list), maxPerArea)]
	}
	return out, nil
}

var errTooMany = errors.New("too many files")

// scanFile returns the areas a source file's contents touch, and whether
// it was read in full (false: it is longer than maxFileBytes).
func scanFile(path string) ([]string, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	return classify(f)
}

// classify reads up to maxFileBytes of r and returns the areas its lines
// touch, and whether r ended within the cap. A line is matched whole,
// however long; only the byte cap ends the read early.
func classify(r io.Reader) ([]string, bool, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileBytes+1))
	if err != nil {
		return nil, false, err
	}
	whole := len(data) <= maxFileBytes
	data = data[:min(len(data), maxFileBytes)]
	seen := map[string]bool{}
	for line := range bytes.Lines(data) {
		for _, r := range rules {
			if r.content != nil && !seen[r.area] && r.content.Match(line) {
				seen[r.area] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen)), whole, nil
}

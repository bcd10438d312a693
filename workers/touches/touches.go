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
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
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
	// needles are literals, case-folded (see fold), one of which is in
	// every match of content: a line without any of them cannot match and
	// is not handed to the regexp. Nil when content has no such literals
	// (then every line is matched).
	needles [][]byte
}

// newRule compiles a rule's patterns ("" for none) and finds its needles.
func newRule(area, path, content string) rule {
	r := rule{area: area}
	if path != "" {
		r.path = regexp.MustCompile(path)
	}
	if content != "" {
		r.content = regexp.MustCompile(content)
		r.needles = needles(content)
	}
	return r
}

var rules = []rule{
	newRule(Auth,
		`(?i)(^|/)(auth|login|logout|session|sessions|oauth|sso|jwt|passport|password|signin|signup)[^/]*$|(^|/)(auth|oauth)/`,
		`(?i)\b(jsonwebtoken|passport(-[a-z]+)?|bcrypt|argon2|next-auth|@auth/|express-session|flask_login|django\.contrib\.auth|golang-jwt|jwt\.(sign|verify|decode|encode|parse)|oauth2|openid|authenticate\(|set-cookie|setcookie|session\[)`),
	newRule(Secrets,
		`(?i)(^|/)(\.env(\.[a-z]+)?|secrets?(\.[a-z]+)?|credentials?(\.[a-z]+)?|vault[^/]*|kms[^/]*)$`,
		`(?i)(process\.env\.[A-Z0-9_]*(KEY|SECRET|TOKEN|PASSWORD|PASS)\b|os\.(environ|getenv)[\[(]\s*['"][A-Z0-9_]*(KEY|SECRET|TOKEN|PASSWORD)|os\.(Getenv|LookupEnv)\("[A-Z0-9_]*(KEY|SECRET|TOKEN|PASSWORD)|secretmanager|secretsmanager|hvac\.|vault\.(read|write)|keyring\.|createCipher|crypto\.subtle)`),
	newRule(Egress, "",
		`(?i)(\bfetch\(\s*['"`+"`"+`]https?://|\baxios\b|\bgot\(|\bhttps?\.(request|get)\(|\brequests\.(get|post|put|patch|delete|request)\(|\burllib|\bhttpx\.|\baiohttp\b|http\.(Get|Post|NewRequest)|net\.Dial|new WebSocket\(|\bopenai\b|@anthropic-ai/sdk|\banthropic\.|nodemailer|smtplib)`),
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
	folded := fold(make([]byte, 0, len(data)), data)
	seen := map[string]bool{}
	for _, r := range rules {
		if r.content != nil && !seen[r.area] && r.matches(data, folded) {
			seen[r.area] = true
		}
	}
	return slices.Sorted(maps.Keys(seen)), whole, nil
}

// matches reports whether a line of data matches r.content. folded is
// fold(data), line for line: only the lines where folded holds one of r's
// needles are handed to the regexp. The answer is the same, since a line
// without a needle cannot match, at a fraction of the cost: Go's regexp
// tries every position of every line, and most lines hold no needle.
func (r rule) matches(data, folded []byte) bool {
	if r.needles == nil {
		for line := range bytes.Lines(data) {
			if r.content.Match(line) {
				return true
			}
		}
		return false
	}
	// next[i] is where needle i next occurs in folded: -1 nowhere, below
	// at (the start of the line to read) not looked for since.
	next := make([]int, len(r.needles))
	for i := range next {
		next[i] = -2
	}
	at, dat := 0, 0 // the same line's start in folded and in data
	for at < len(folded) {
		hit := -1
		for i, n := range r.needles {
			if next[i] == -1 {
				continue
			}
			if next[i] < at {
				j := bytes.Index(folded[at:], n)
				if j < 0 {
					next[i] = -1
					continue
				}
				next[i] = at + j
			}
			if hit < 0 || next[i] < hit {
				hit = next[i]
			}
		}
		if hit < 0 {
			return false
		}
		// Move both to the start of the line that holds the hit.
		start := at + bytes.LastIndexByte(folded[at:hit], '\n') + 1
		for k := bytes.Count(folded[at:start], []byte{'\n'}); k > 0; k-- {
			dat += bytes.IndexByte(data[dat:], '\n') + 1
		}
		at = start
		dend, end := lineEnd(data, dat), lineEnd(folded, at)
		if r.content.Match(data[dat:dend]) {
			return true
		}
		at, dat = end, dend
	}
	return false
}

// lineEnd returns the end of the line that starts at from: after its
// newline, or the end of b.
func lineEnd(b []byte, from int) int {
	if i := bytes.IndexByte(b[from:], '\n'); i >= 0 {
		return from + i + 1
	}
	return len(b)
}

func containsAny(s []byte, needles [][]byte) bool {
	for _, n := range needles {
		if bytes.Contains(s, n) {
			return true
		}
	}
	return false
}

// fold appends src to dst with every character replaced by the smallest
// character of its case-folding orbit (the characters (?i) treats as one:
// k, K and the Kelvin sign K all become K), and every byte that is not
// UTF-8 by U+FFFD, as the regexp reads it. A newline stays a newline and
// nothing else becomes one, so fold(data) has the lines of data.
func fold(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		dst = utf8.AppendRune(dst, foldRune(r))
		i += size
	}
	return dst
}

func foldRune(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

// needles returns folded literals one of which every match of the regular
// expression expr contains, or nil if it has none (an alternative made only
// of classes and repetitions, say).
func needles(expr string) [][]byte {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	lits, ok := requiredLiterals(re.Simplify())
	if !ok {
		return nil
	}
	out := make([][]byte, 0, len(lits))
	for _, l := range lits {
		out = append(out, fold(nil, []byte(l)))
	}
	return out
}

// requiredLiterals returns strings one of which every match of re
// contains, matched as re matches them (case-folded or not: fold makes
// both the same), and whether there are such strings.
func requiredLiterals(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		return []string{string(re.Rune)}, len(re.Rune) > 0
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
	case syntax.OpAlternate:
		var all []string
		for _, sub := range re.Sub {
			lits, ok := requiredLiterals(sub)
			if !ok {
				return nil, false
			}
			all = append(all, lits...)
		}
		return all, true
	case syntax.OpConcat:
		// Any one part's literals will do: keep the part whose shortest
		// literal is longest, the most selective.
		var best []string
		shortest := func(lits []string) int {
			return len(slices.MinFunc(lits, func(a, b string) int { return len(a) - len(b) }))
		}
		for _, sub := range re.Sub {
			if lits, ok := requiredLiterals(sub); ok && (best == nil || shortest(lits) > shortest(best)) {
				best = lits
			}
		}
		return best, best != nil
	}
	return nil, false
}

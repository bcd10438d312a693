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
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// Limits bound the work on one tree.
const (
	maxFiles     = 20_000
	maxFileBytes = 1 << 20
	// maxPerArea caps the files listed per area: enough to explain.
	maxPerArea = 20
)

var skipDirs = map[string]bool{".git": true, "node_modules": true, "vendor": true, ".venv": true, "venv": true, "__pycache__": true, "dist": true, "build": true}

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
// separated, sorted, at most 20 per area) that touch it.
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
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && skipDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symlinks and devices are not followed
		}
		if files++; files > maxFiles {
			return errTooMany
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, r := range rules {
			if r.path != nil && r.path.MatchString(rel) {
				add(r.area, rel)
			}
		}
		if !sourceExt[strings.ToLower(filepath.Ext(rel))] {
			return nil
		}
		areas, err := scanFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", rel, err)
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
		list := slices.Sorted(func(yield func(string) bool) {
			for f := range set {
				if !yield(f) {
					return
				}
			}
		})
		out[area] = list[:min(len(list), maxPerArea)]
	}
	return out, nil
}

var errTooMany = errors.New("too many files")

// scanFile returns the areas a source file's contents touch.
func scanFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxFileBytes))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	seen := map[string]bool{}
	for sc.Scan() {
		line := sc.Text()
		for _, r := range rules {
			if r.content != nil && !seen[r.area] && r.content.MatchString(line) {
				seen[r.area] = true
			}
		}
	}
	// A line over 64 KiB (minified code) ends the file's scan: what was
	// read still counts.
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return nil, err
	}
	var areas []string
	for a := range seen {
		areas = append(areas, a)
	}
	return areas, nil
}

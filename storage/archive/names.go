package archive

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// checkName validates an entry name from an archive and returns its clean,
// slash-separated form relative to the root ("" for the root itself).
//
// Rejected: NUL, control characters and invalid UTF-8; backslashes (Windows
// separators, UNC paths); absolute paths; Windows drive letters; any ".."
// component, even one that would stay inside the root; components over 255
// bytes or names over 4096 bytes; more than maxDepth components.
func checkName(raw string, maxDepth int) (string, *RejectError) {
	if r := checkChars(raw, ReasonInvalidName); r != nil {
		r.Entry = raw
		return "", r
	}
	if len(raw) > maxNameLen {
		return "", reject(raw, ReasonInvalidName, fmt.Sprintf("longer than %d bytes", maxNameLen))
	}
	if strings.Contains(raw, `\`) {
		return "", reject(raw, ReasonWindowsPath, "contains a backslash")
	}
	if strings.HasPrefix(raw, "/") {
		return "", reject(raw, ReasonAbsolutePath, "")
	}
	if hasDrive(raw) {
		return "", reject(raw, ReasonWindowsPath, "starts with a drive letter")
	}
	parts := make([]string, 0, strings.Count(raw, "/")+1)
	for p := range strings.SplitSeq(raw, "/") {
		switch {
		case p == "" || p == ".":
			continue
		case p == "..":
			return "", reject(raw, ReasonPathEscape, "")
		case len(p) > maxComponentLen:
			return "", reject(raw, ReasonInvalidName, fmt.Sprintf("component longer than %d bytes", maxComponentLen))
		}
		parts = append(parts, p)
	}
	if len(parts) > maxDepth {
		return "", reject(raw, ReasonTooDeep, fmt.Sprintf("%d components, limit %d", len(parts), maxDepth))
	}
	return strings.Join(parts, "/"), nil
}

// checkTarget validates the text of a symlink target: it must be a relative,
// slash-separated path. Whether it stays inside the root is decided by
// tree.checkSymlink.
func checkTarget(target string) *RejectError {
	if target == "" {
		return reject("", ReasonSymlinkEscape, "empty target")
	}
	if r := checkChars(target, ReasonSymlinkEscape); r != nil {
		r.Detail = "target " + r.Detail
		return r
	}
	detail := "target " + quote(target)
	switch {
	case len(target) > maxTargetLen:
		return reject("", ReasonSymlinkEscape, fmt.Sprintf("target longer than %d bytes", maxTargetLen))
	case strings.Contains(target, `\`):
		return reject("", ReasonSymlinkEscape, detail+" contains a backslash")
	case strings.HasPrefix(target, "/"):
		return reject("", ReasonSymlinkEscape, detail+" is absolute")
	case hasDrive(target):
		return reject("", ReasonSymlinkEscape, detail+" starts with a drive letter")
	}
	return nil
}

// checkChars rejects empty names, NUL and other control characters, and
// invalid UTF-8.
func checkChars(s string, reason Reason) *RejectError {
	if s == "" {
		return reject("", reason, "empty")
	}
	if !utf8.ValidString(s) {
		return reject("", reason, "not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case r == 0:
			return reject("", reason, "contains NUL")
		case r < 0x20 || (0x7f <= r && r < 0xa0):
			return reject("", reason, "contains a control character")
		}
	}
	return nil
}

// hasDrive reports whether s starts with a Windows drive such as "C:".
func hasDrive(s string) bool {
	if len(s) < 2 || s[1] != ':' {
		return false
	}
	c := s[0] | 0x20
	return 'a' <= c && c <= 'z'
}

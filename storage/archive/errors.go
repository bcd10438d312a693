package archive

import (
	"errors"
	"strconv"
	"strings"
)

// ErrRejected is wrapped by every error that rejects the archive itself: an
// unsafe or malformed entry, a limit exceeded, corrupt or unknown input.
// Callers map it to exit code 2 or HTTP 422. Errors that do not wrap it are
// operational: the destination could not be written, the source could not be
// read, or the context was cancelled.
var ErrRejected = errors.New("archive rejected")

// Reason says why an archive was rejected. Its value is the human-readable
// text used in error messages.
type Reason string

// Reasons for rejecting an archive.
const (
	ReasonUnknownFormat  Reason = "not a tar, tar.gz or zip archive"
	ReasonCorrupt        Reason = "corrupt or truncated archive"
	ReasonInvalidName    Reason = "invalid entry name"
	ReasonAbsolutePath   Reason = "absolute path"
	ReasonWindowsPath    Reason = "windows drive, UNC or backslash path"
	ReasonPathEscape     Reason = "path escapes the archive root"
	ReasonTooDeep        Reason = "path nested too deep"
	ReasonThroughSymlink Reason = "path goes through a symlink"
	ReasonDuplicate      Reason = "duplicate or conflicting entry"
	ReasonSymlinkEscape  Reason = "symlink target escapes the archive root"
	ReasonHardlink       Reason = "hard link target is not an earlier regular file in the archive"
	ReasonSpecialFile    Reason = "device, fifo or socket entry"
	ReasonUnsupported    Reason = "unsupported entry"
	ReasonTooManyFiles   Reason = "too many entries"
	ReasonFileTooLarge   Reason = "file too large"
	ReasonTooLarge       Reason = "archive too large"
	ReasonBomb           Reason = "compression ratio too high (archive bomb)"
)

// RejectError describes why an archive was rejected. It wraps ErrRejected
// and, when set, Err.
type RejectError struct {
	// Entry is the entry name exactly as stored in the archive, or empty when
	// the archive as a whole is rejected.
	Entry string
	// Reason is the category of the rejection.
	Reason Reason
	// Detail is optional specifics, such as a symlink target or the limit hit.
	Detail string
	// Err is the underlying cause, for corrupt input.
	Err error
}

// maxEntryInMessage bounds how much of a hostile entry name is quoted in an
// error message; the full name stays in RejectError.Entry.
const maxEntryInMessage = 256

// Error reads as one line: entry "x": reason (detail): cause: archive rejected.
// Entry names are quoted, so control characters in them cannot break the line.
func (e *RejectError) Error() string {
	var b strings.Builder
	if e.Entry != "" {
		b.WriteString("entry ")
		b.WriteString(quote(e.Entry))
		b.WriteString(": ")
	}
	b.WriteString(string(e.Reason))
	if e.Detail != "" {
		b.WriteString(" (")
		b.WriteString(e.Detail)
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(oneLine(e.Err.Error()))
	}
	b.WriteString(": ")
	b.WriteString(ErrRejected.Error())
	return b.String()
}

// Unwrap returns ErrRejected and the underlying cause, if any.
func (e *RejectError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrRejected}
	}
	return []error{ErrRejected, e.Err}
}

// reject builds a RejectError for entry.
func reject(entry string, reason Reason, detail string) *RejectError {
	return &RejectError{Entry: entry, Reason: reason, Detail: detail}
}

// quote quotes s for an error message, shortening very long names.
func quote(s string) string {
	if len(s) <= maxEntryInMessage {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:maxEntryInMessage]) + "..."
}

// oneLine replaces line breaks in messages from lower layers.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

package archive

import (
	"fmt"
	"strings"
)

// kind is what an extracted path is.
type kind uint8

const (
	kindNone kind = iota
	kindDir
	kindFile
	kindSymlink
)

const (
	// maxSymlinkHops is how many symlinks one resolution may follow (Linux
	// allows 40 before ELOOP).
	maxSymlinkHops = 40
	// maxSymlinkSteps bounds the path components one resolution may walk.
	maxSymlinkSteps = 1024
)

// tree records every path extracted so far, by clean name, and the target of
// every symlink. It decides conflicts and symlink safety without touching the
// file system, so Pack can run the same rules.
type tree struct {
	kinds   map[string]kind
	targets map[string]string
}

func newTree() *tree {
	return &tree{kinds: make(map[string]kind), targets: make(map[string]string)}
}

// missingParents checks that every parent of name is a directory or absent
// and returns the absent ones, outermost first. A parent that is a symlink or
// a file is rejected: nothing is ever written through a symlink.
func (t *tree) missingParents(raw, name string) ([]string, *RejectError) {
	var missing []string
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		p := name[:i]
		switch t.kinds[p] {
		case kindDir:
		case kindNone:
			missing = append(missing, p)
		case kindSymlink:
			return nil, reject(raw, ReasonThroughSymlink, "symlink "+quote(p))
		default:
			return nil, reject(raw, ReasonDuplicate, "parent "+quote(p)+" is a file")
		}
	}
	return missing, nil
}

// checkSymlink resolves the symlink at name the way the kernel would, using
// the paths known so far, and rejects it if it leaves the root. Earlier
// symlinks met as intermediate components are followed; unknown components
// are taken as directories. Because later entries can change the answer,
// Extract runs it once when the symlink is created and again on every symlink
// once the archive is complete.
func (t *tree) checkSymlink(name string) *RejectError {
	target := t.targets[name]
	stack := strings.Split(name, "/")
	stack = stack[:len(stack)-1] // resolution starts in the link's directory
	pending := splitTarget(target)
	hops, steps := 0, 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		if steps++; steps > maxSymlinkSteps {
			return reject(name, ReasonSymlinkEscape, fmt.Sprintf("target %s resolves through more than %d components", quote(target), maxSymlinkSteps))
		}
		if c == ".." {
			if len(stack) == 0 {
				return reject(name, ReasonSymlinkEscape, "target "+quote(target))
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		if len(pending) == 0 {
			break // the final component is not followed here; every symlink is checked on its own
		}
		p := strings.Join(stack, "/")
		if t.kinds[p] != kindSymlink {
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return reject(name, ReasonSymlinkEscape, fmt.Sprintf("target %s follows more than %d symlinks", quote(target), maxSymlinkHops))
		}
		stack = stack[:len(stack)-1]
		next := splitTarget(t.targets[p])
		pending = append(next[:len(next):len(next)], pending...)
	}
	return nil
}

// checkAllSymlinks re-checks every symlink against the complete tree and
// returns the first failure, in the order given, or nil.
func (t *tree) checkAllSymlinks(order []string) *RejectError {
	for _, name := range order {
		if r := t.checkSymlink(name); r != nil {
			return r
		}
	}
	return nil
}

// splitTarget splits a checked symlink target into components, dropping empty
// and "." ones.
func splitTarget(target string) []string {
	parts := strings.Split(target, "/")
	out := parts[:0]
	for _, p := range parts {
		if p != "" && p != "." {
			out = append(out, p)
		}
	}
	return out
}

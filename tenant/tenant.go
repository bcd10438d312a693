// Package tenant is the one grammar of tenant names. A tenant name selects
// store keys, NATS subjects, Temporal search attributes and deploy targets,
// so it is checked once where a principal is built and again in every
// function that builds a key from it: a name that passes is a single path
// segment and a single subject token, and can never name another tenant's
// objects.
package tenant

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrInvalid is returned (wrapped) for a name outside the grammar.
var ErrInvalid = errors.New("invalid tenant name")

// MaxLen is the longest tenant name.
const MaxLen = 63

// re is a DNS label: 1-63 of a-z, 0-9 and '-', starting and ending with a
// letter or digit. No '.', '/', '_' or upper case: nothing path.Join,
// a NATS subject or a search-attribute query would read specially.
var re = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// Validate checks name against the grammar.
func Validate(name string) error {
	if !re.MatchString(name) {
		return fmt.Errorf("%w %q: use 1-%d of a-z, 0-9 and '-', starting and ending with a letter or digit", ErrInvalid, name, MaxLen)
	}
	return nil
}

// Valid says whether name is in the grammar.
func Valid(name string) bool { return re.MatchString(name) }

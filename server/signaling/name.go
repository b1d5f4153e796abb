package signaling

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest name, in characters (runes) after trimming.
// Long enough for any real nickname, short enough to fit in a list row.
const MaxNameLen = 32

// Reasons a name is refused; each becomes the message of an invalid-name reply.
var (
	errNameEmpty   = errors.New("name is empty")
	errNameTooLong = errors.New("name is longer than 32 characters")
	errNameControl = errors.New("name contains control or invisible characters")
)

// normalizeName trims surrounding white space and validates what is left.
// Any printable Unicode is allowed (小明, José); control characters, line
// breaks and format characters such as zero-width joiners or bidi overrides
// are not, since they let one name impersonate another on screen.
func normalizeName(raw string) (string, error) {
	name := strings.TrimSpace(raw)
	if name == "" {
		return "", errNameEmpty
	}
	if utf8.RuneCountInString(name) > MaxNameLen {
		return "", errNameTooLong
	}
	for _, r := range name {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) ||
			(unicode.IsSpace(r) && r != ' ') {
			return "", errNameControl
		}
	}
	return name, nil
}

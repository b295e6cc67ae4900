package clusterapi

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Names and statuses from an answer are checked before anything uses them:
// they become metric labels, log fields and terminal output, so a value no
// real cluster sends (an escape sequence, a bidi override, 100 KB) makes
// the whole answer an ErrDecode rather than travel on.

// maxName bounds a name from ECX: a DNS name has at most 255 bytes, and no
// ECX object name comes near it.
const (
	maxName   = 255
	maxStatus = 64
)

// checkServerName checks a server name or owner ("current"): an ECX server
// name is a host name, ASCII letters, digits, '-', '_' and '.'. "" (no
// owner, a nameless object) is left to the caller.
func checkServerName(field, v string) error {
	if len(v) > maxName {
		return fmt.Errorf("%q %s is not an ECX server name: longer than %d bytes", field, quoteExcerpt(v), maxName)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q %s is not an ECX server name: only letters, digits, '-', '_' and '.'", field, quoteExcerpt(v))
		}
	}
	return nil
}

// checkText checks a group, resource or cluster name or a status, as the
// configuration checks group names: any printable text, without control
// or format characters (bidi overrides, zero-width marks), at most max
// bytes of valid UTF-8.
func checkText(field, v string, max int) error {
	switch {
	case len(v) > max:
		return fmt.Errorf("%q %s: longer than %d bytes", field, quoteExcerpt(v), max)
	case !utf8.ValidString(v):
		return fmt.Errorf("%q %s is not valid UTF-8", field, quoteExcerpt(v))
	}
	for _, r := range v {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("%q %s holds the control or format character %U", field, quoteExcerpt(v), r)
		}
	}
	return nil
}

// quoteExcerpt shows a bad value safely in an error: its first 40
// characters as a Go string literal with everything outside printable
// ASCII escaped, and its length when it was cut.
func quoteExcerpt(v string) string {
	const n = 40
	if utf8.RuneCountInString(v) <= n {
		return strconv.QuoteToASCII(v)
	}
	end := 0
	for range n {
		_, size := utf8.DecodeRuneInString(v[end:])
		end += size
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.QuoteToASCII(v[:end]), len(v))
}

// firstErr is the first non-nil error: one bad field is reason enough, and
// one line reads better than a joined list.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

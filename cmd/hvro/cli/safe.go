package cli

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable makes a string that came from elsewhere (hvro's answers carry
// ECX owner names, hook fields and host errors) safe for a terminal:
// control characters, bidirectional overrides and isolates, and invalid
// UTF-8 are written as Go escapes (\x1b, \u202e, \xff), everything else as
// it is; and it shows at most max bytes of s, ending in "..." when cut.
func printable(s string, max int) string {
	cut := false
	if len(s) > max {
		i := max
		for i > 0 && i > max-utf8.UTFMax && !utf8.RuneStart(s[i]) {
			i--
		}
		s, cut = s[:i], true
	}
	if strings.IndexFunc(s, unsafeRune) < 0 && utf8.ValidString(s) {
		if cut {
			return s + "..."
		}
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	if cut {
		b.WriteString("...")
	}
	return b.String()
}

// unsafeRune reports runes a terminal acts on instead of showing:
// controls (escape sequences, carriage return, backspace), and the
// invisible formatting characters that reorder or hide text (bidi
// overrides and isolates, U+202A-U+202E and U+2066-U+2069, marks, zero
// widths: Unicode's Cf category).
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

package cli

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of one printed field: a name or state in a table cell, and a
// message or error.
const (
	maxCell = 64
	maxText = 300
)

// cell and text take any string type: phases, kinds and outcomes are
// typed strings of package store.
func cell[S ~string](s S) string { return printable(string(s), maxCell) }
func text[S ~string](s S) string { return printable(string(s), maxText) }

// printable makes a string that came from elsewhere (hvro's answers carry
// ECX owner names, hook fields and host errors) safe for a terminal:
// control characters, bidirectional overrides and isolates, other
// invisible formatting characters and invalid UTF-8 are written as Go
// escapes (\x1b, \u202e, \xff), everything else as it is; the result
// holds at most max bytes of that, followed by "..." when s was cut.
func printable(s string, max int) string {
	if len(s) <= max && strings.IndexFunc(s, unsafeRune) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+n]
		switch {
		case r == utf8.RuneError && n == 1:
			piece = `\x` + strconv.FormatUint(uint64(s[i])>>4, 16) + strconv.FormatUint(uint64(s[i])&15, 16)
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\u202e'
			piece = q[1 : len(q)-1]
		}
		if b.Len()+len(piece) > max {
			b.WriteString("...")
			break
		}
		b.WriteString(piece)
		i += n
	}
	return b.String()
}

// unsafeRune reports runes a terminal acts on instead of showing:
// controls (escape sequences, carriage return, backspace), and the
// invisible formatting characters that reorder or hide text (Unicode's Cf
// category: the bidi overrides and isolates U+202A-U+202E and
// U+2066-U+2069, marks, zero widths); and U+FFFD, which stands for what
// was not UTF-8.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

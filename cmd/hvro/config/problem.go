package config

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Problem is one thing wrong in a config: where (the YAML path, and the
// line when known) and what. Msg never holds a secret value.
type Problem struct {
	Path string // e.g. clusters[1].servers.node3.winrm; "" for the whole file
	Line int    // 1-based line in the file; 0 when unknown
	Msg  string
}

// Error reads `clusters[1].servers.node3.winrm: "htp://x" is not an http(s) URL`,
// with " (line 23)" after the path when the line is known.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.Path)
	if p.Line > 0 {
		if p.Path != "" {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "(line %d)", p.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem of a config, in file order. Load, Parse and
// Validate return it as their error; errors.As(err, &problems) gets the
// list, and errors.As(err, &problem) the first *Problem.
type Problems []*Problem

// Error lists the problems one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As see each *Problem.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// Warning is something in a config that works but is unsafe (a password
// that crosses the network in cleartext): check-config prints it and serve
// logs it, but it never stops hvro.
type Warning struct {
	Path string // the key to change, e.g. winrm.auth
	Line int    // 1-based line in the file; 0 when unknown
	Msg  string // what is unsafe and how to fix it
}

// String reads like a Problem: `winrm.auth (line 24): basic over ...`.
func (w Warning) String() string {
	p := Problem(w)
	return p.Error()
}

// problems collects Problems (and Warnings) and knows the lines of the
// decoded file.
type problems struct {
	list     Problems
	warnings []Warning
	lines    map[string]int
}

// warn records a warning at path.
func (ps *problems) warn(path, format string, args ...any) {
	ps.warnings = append(ps.warnings, Warning{Path: path, Line: ps.lineOf(path), Msg: fmt.Sprintf(format, args...)})
}

func (ps *problems) add(path, format string, args ...any) {
	ps.list = append(ps.list, &Problem{Path: path, Line: ps.lineOf(path), Msg: fmt.Sprintf(format, args...)})
}

// addAt records a problem whose line is known (decoding).
func (ps *problems) addAt(path string, line int, format string, args ...any) {
	ps.list = append(ps.list, &Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// lineOf is the line of path, or of its nearest ancestor that was in the
// file (a missing key points at the mapping that should hold it).
func (ps *problems) lineOf(path string) int {
	for path != "" {
		if l, ok := ps.lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

// err sorts the problems into file order (problems without a line keep
// their order, last) and returns nil or Problems.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(i, j int) bool {
		li, lj := ps.list[i].Line, ps.list[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
	if len(ps.list) > maxProblems {
		more := len(ps.list) - maxProblems
		ps.list = append(ps.list[:maxProblems:maxProblems], &Problem{Msg: fmt.Sprintf("%d more problems not shown; fix these first", more)})
	}
	return ps.list
}

// maxProblems keeps a wildly wrong file (or one alias used a thousand
// times) from burying the first problems.
const maxProblems = 200

// Paths follow the YAML: a.b, a[0], and a["odd key"] for keys that would
// not read as one path segment.
var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func fieldPath(parent, key string) string {
	if !plainKey.MatchString(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		// The bracket opening the last segment; a quoted key may hold '['.
		if i := strings.LastIndex(path, `["`); i >= 0 && strings.HasSuffix(path, `"]`) {
			return path[:i]
		}
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexAny(path, ".]"); i >= 0 {
		if path[i] == ']' {
			return path[:i+1]
		}
		return path[:i]
	}
	return ""
}

// quote shows a user's value in a message, cut short so one bad value
// cannot flood the output. Plain text keeps its backslashes as typed
// ("T:\VMs" would puzzle an admin); anything odd is Go-quoted.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		s = s[:max] + "..."
	}
	if strings.ContainsRune(s, '"') || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return strconv.Quote(s)
	}
	return `"` + s + `"`
}

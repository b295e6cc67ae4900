package wsman

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
)

// maxCmdLine is cmd.exe's command-line buffer: 8191 characters. Longer lines
// fail with "The command line is too long." and exit code 1 (WinRb/WinRM
// #41, #55; hashicorp/vagrant #3816 shows the stderr text and exit code 1).
const maxCmdLine = 8191

// Exit codes of the command layers.
const (
	exitNotRecognized = 9009 // cmd.exe MSG_DIR_BAD_COMMAND_OR_FILE
	// exitPSBadCommandLine is powershell.exe 5.1's ExitCodeBadCommandLineParameter
	// (-196608 = 0xFFFD0000), reported by WinRM as an unsigned DWORD.
	exitPSBadCommandLine = 0xFFFD0000
)

// windowsVersion is what ver prints: Windows Server 2022 (build 20348). It
// is a fixed choice of the emulator, not taken from a particular host.
const windowsVersion = "10.0.20348.587"

// cmdEnv is what a command line can see of its host and shell.
type cmdEnv struct {
	host       string // NetBIOS computer name, as hostname prints it
	whoami     string // domain\user in lower case
	profile    string // the user's profile directory (the shell's working directory)
	powershell PowerShellFunc
	// stdin blocks until the client has sent the whole stdin stream (End="true")
	// or ctx ends.
	stdin func(ctx context.Context) ([]byte, error)
	// scripts records every PowerShell script the line ran, for the command log.
	scripts []string
}

func (e *cmdEnv) vars() map[string]string {
	user := e.whoami
	domain := ""
	if i := strings.IndexByte(user, '\\'); i >= 0 {
		domain, user = strings.ToUpper(user[:i]), user[i+1:]
	}
	return map[string]string{
		"COMPUTERNAME": strings.ToUpper(e.host),
		"USERNAME":     user,
		"USERDOMAIN":   domain,
		"USERPROFILE":  e.profile,
		"SYSTEMROOT":   `C:\Windows`,
		"WINDIR":       `C:\Windows`,
		"COMSPEC":      `C:\Windows\system32\cmd.exe`,
		"OS":           "Windows_NT",
	}
}

// output collects what a command writes.
type output struct {
	stdout, stderr bytes.Buffer
}

// runCmdExe runs a command line the way "cmd.exe /c <line>" does on a
// Windows host, which is how WinRS runs commands unless
// WINRS_SKIP_CMD_SHELL is TRUE.
func runCmdExe(ctx context.Context, env *cmdEnv, line string) Result {
	var out output
	code := cmdLine(ctx, env, line, nil, &out)
	return Result{Stdout: out.stdout.Bytes(), Stderr: out.stderr.Bytes(), ExitCode: code}
}

// cmdLine executes one cmd.exe command line. stdin is the data piped into
// the first command (nil: the shell's stdin stream).
func cmdLine(ctx context.Context, env *cmdEnv, line string, stdin []byte, out *output) int {
	if len(utf16.Encode([]rune(line))) > maxCmdLine {
		out.stderr.WriteString("The command line is too long.\r\n")
		return 1
	}
	line = expandVars(line, env.vars())
	chain, err := parseChain(line)
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			out.stderr.WriteString(se.msg)
			return se.code
		}
		out.stderr.WriteString(err.Error())
		return 1
	}
	level := 0
	for i, link := range chain {
		if i > 0 {
			switch link.op {
			case "&&":
				if level != 0 {
					continue
				}
			case "||":
				if level == 0 {
					continue
				}
			}
		}
		var exit bool
		level, exit = runPipeline(ctx, env, link.pipeline, stdin, level, out)
		if exit {
			break
		}
		stdin = nil
	}
	return level
}

// expandVars replaces %NAME% with the variable's value. Undefined names stay
// as written, as cmd.exe leaves them on an interactive command line. cmd.exe
// expands the line once, when it reads it, before anything runs; the one
// line a WinRM command is therefore sees %ERRORLEVEL% as 0.
func expandVars(line string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(line); {
		if line[i] != '%' {
			b.WriteByte(line[i])
			i++
			continue
		}
		j := strings.IndexByte(line[i+1:], '%')
		if j < 0 {
			b.WriteString(line[i:])
			break
		}
		name := line[i+1 : i+1+j]
		upper := strings.ToUpper(name)
		if v, ok := vars[upper]; ok && name != "" {
			b.WriteString(v)
			i += j + 2
			continue
		}
		if upper == "ERRORLEVEL" {
			b.WriteString("0")
			i += j + 2
			continue
		}
		// Not a variable: keep the first % and rescan from the second, which
		// may open a real reference.
		b.WriteByte('%')
		i++
	}
	return b.String()
}

// A chain is pipelines joined by &, && and ||.
type chainLink struct {
	op       string // operator before this pipeline ("" for the first)
	pipeline []simpleCmd
}

// simpleCmd is one command with its redirections removed.
type simpleCmd struct {
	text      string // command text with quotes and carets as cmd.exe passes it on
	redirects []redirect
}

type redirect struct {
	handle int    // 0 stdin, 1 stdout, 2 stderr
	target string // "nul", "&1", "&2" or a file name
	append bool
}

// parseChain splits a line at the operators cmd.exe recognises outside
// double quotes; ^ escapes the next character.
func parseChain(line string) ([]chainLink, error) {
	var chain []chainLink
	var pipeline []simpleCmd
	var cur strings.Builder
	op := ""
	inQuote := false
	flushCmd := func() error {
		c, err := splitRedirects(cur.String())
		if err != nil {
			return err
		}
		pipeline = append(pipeline, c)
		cur.Reset()
		return nil
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '"' {
			inQuote = !inQuote
			cur.WriteByte(c)
			continue
		}
		if inQuote {
			cur.WriteByte(c)
			continue
		}
		switch c {
		case '^':
			if i+1 < len(line) {
				i++
				cur.WriteByte('^')
				cur.WriteByte(line[i])
			}
		case '&', '|':
			if c == '&' && i > 0 && line[i-1] == '>' {
				cur.WriteByte(c) // 2>&1
				continue
			}
			next := ""
			if i+1 < len(line) && line[i+1] == c {
				next = string([]byte{c, c})
				i++
			} else {
				next = string(c)
			}
			if err := flushCmd(); err != nil {
				return nil, err
			}
			if next == "|" {
				continue // the pipeline goes on
			}
			chain = append(chain, chainLink{op: op, pipeline: pipeline})
			pipeline = nil
			op = next
		default:
			cur.WriteByte(c)
		}
	}
	if err := flushCmd(); err != nil {
		return nil, err
	}
	chain = append(chain, chainLink{op: op, pipeline: pipeline})
	return chain, checkChain(chain)
}

// syntaxError is a line cmd.exe refuses to run; code is its errorlevel.
type syntaxError struct {
	msg  string
	code int
}

func (e *syntaxError) Error() string { return e.msg }

// checkChain refuses operators with nothing on one side, as cmd.exe does:
// "& x" and "| x" are unexpected, "x &&" and "x |" incomplete. A trailing
// single & is allowed.
func checkChain(chain []chainLink) error {
	empty := func(c simpleCmd) bool { return strings.TrimSpace(c.text) == "" }
	if len(chain) > 1 && len(chain[0].pipeline) == 1 && empty(chain[0].pipeline[0]) {
		return &syntaxError{chain[1].op + " was unexpected at this time.\r\n", 255}
	}
	for i, l := range chain {
		for j, c := range l.pipeline {
			if !empty(c) {
				continue
			}
			if len(l.pipeline) > 1 && j == 0 {
				return &syntaxError{"| was unexpected at this time.\r\n", 255}
			}
			if len(l.pipeline) > 1 || (i == len(chain)-1 && l.op != "&" && l.op != "") {
				return &syntaxError{"The syntax of the command is incorrect.\r\n", 1}
			}
		}
	}
	return nil
}

// splitRedirects removes <, > and >> redirections (outside quotes) from a
// command's text.
func splitRedirects(s string) (simpleCmd, error) {
	var cmd simpleCmd
	var text strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			inQuote = !inQuote
		}
		if c == '^' && !inQuote {
			// The caret escapes the next character and disappears, as in
			// cmd.exe: programs never see it.
			if i+1 < len(s) {
				i++
				text.WriteByte(s[i])
			}
			continue
		}
		if inQuote || (c != '>' && c != '<') {
			text.WriteByte(c)
			continue
		}
		r := redirect{handle: 1}
		if c == '<' {
			r.handle = 0
		} else {
			// A single digit right before > names the handle ("2>nul").
			t := text.String()
			if n := len(t); n > 0 && (t[n-1] == '1' || t[n-1] == '2') && (n == 1 || t[n-2] == ' ' || t[n-2] == '\t') {
				r.handle = int(t[n-1] - '0')
				text.Reset()
				text.WriteString(t[:n-1])
			}
			if i+1 < len(s) && s[i+1] == '>' {
				r.append = true
				i++
			}
		}
		j := i + 1
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		k := j
		if k < len(s) && s[k] == '&' {
			k++
		}
		q := false
		for k < len(s) && (q || (s[k] != ' ' && s[k] != '\t' && s[k] != '<' && s[k] != '>')) {
			if s[k] == '"' {
				q = !q
			}
			k++
		}
		r.target = strings.Trim(s[j:k], `"`)
		if r.target == "" {
			return cmd, &syntaxError{"The syntax of the command is incorrect.\r\n", 1}
		}
		cmd.redirects = append(cmd.redirects, r)
		i = k - 1
	}
	cmd.text = text.String()
	return cmd, nil
}

// runPipeline runs "a | b | c": each command gets the previous one's stdout
// as stdin. It returns the errorlevel and whether exit ended cmd.exe.
func runPipeline(ctx context.Context, env *cmdEnv, pipeline []simpleCmd, stdin []byte, level int, out *output) (int, bool) {
	for i, c := range pipeline {
		var step output
		var exit bool
		code, exit, err := runSimple(ctx, env, c, stdin, level, &step)
		if err != nil {
			out.stderr.WriteString(err.Error())
			return 1, false
		}
		if i < len(pipeline)-1 {
			stdin = step.stdout.Bytes()
			if stdin == nil {
				stdin = []byte{}
			}
		} else {
			out.stdout.Write(step.stdout.Bytes())
		}
		out.stderr.Write(step.stderr.Bytes())
		level = code
		if exit && len(pipeline) == 1 {
			return level, true
		}
	}
	return level, false
}

// runSimple applies a command's redirections around its execution.
func runSimple(ctx context.Context, env *cmdEnv, c simpleCmd, stdin []byte, level int, out *output) (int, bool, error) {
	for _, r := range c.redirects {
		t := strings.ToLower(r.target)
		switch {
		case r.handle == 0 && t == "nul":
			stdin = []byte{}
		case r.handle != 0 && (t == "nul" || t == "&1" || t == "&2"):
		default:
			// The emulated host has no file system behind cmd.exe.
			return 0, false, fmt.Errorf("wsman emulator: cmd.exe redirection to %q is not emulated (only nul, &1 and &2).\r\n", r.target)
		}
	}
	var inner output
	code, exit := runCommand(ctx, env, c.text, stdin, level, &inner)
	stdout, stderr := inner.stdout.Bytes(), inner.stderr.Bytes()
	dst := map[int]*bytes.Buffer{1: &out.stdout, 2: &out.stderr}
	for _, r := range c.redirects {
		switch strings.ToLower(r.target) {
		case "nul":
			dst[r.handle] = nil
		case "&1":
			dst[r.handle] = dst[1]
		case "&2":
			dst[r.handle] = dst[2]
		}
	}
	if dst[1] != nil {
		dst[1].Write(stdout)
	}
	if dst[2] != nil {
		dst[2].Write(stderr)
	}
	return code, exit, nil
}

// runCommand runs one command: a cmd.exe built-in or one of the programs
// the emulated host has. It returns the new errorlevel and whether cmd.exe
// exits.
func runCommand(ctx context.Context, env *cmdEnv, text string, stdin []byte, level int, out *output) (int, bool) {
	text = strings.TrimLeft(text, " \t;,=")
	text = strings.TrimPrefix(text, "@")
	text = strings.TrimLeft(text, " \t")
	if strings.TrimSpace(text) == "" {
		return level, false
	}
	if name, rest, ok := builtin(text); ok {
		return runBuiltin(env, name, rest, level, out)
	}
	name, args := splitProgram(text)
	if prog := programName(name); prog != "" {
		return runProgram(ctx, env, prog, args, stdin, out), false
	}
	out.stderr.WriteString("'" + name + "' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n")
	return exitNotRecognized, false
}

// builtin recognises cmd.exe internal commands, which end at a space or at
// one of the delimiters cmd.exe accepts right after their name ("echo.").
func builtin(text string) (name, rest string, ok bool) {
	lower := strings.ToLower(text)
	for _, b := range []string{"echo", "exit", "ver", "rem", "cd", "chdir", "set"} {
		if !strings.HasPrefix(lower, b) {
			continue
		}
		r := text[len(b):]
		if r == "" || strings.ContainsRune(" \t.:/(;,=+[]", rune(r[0])) {
			return b, r, true
		}
	}
	return "", "", false
}

func runBuiltin(env *cmdEnv, name, rest string, level int, out *output) (int, bool) {
	switch name {
	case "echo":
		if strings.TrimSpace(rest) == "" && !strings.ContainsAny(rest, ".:/(") {
			out.stdout.WriteString("ECHO is on.\r\n")
			return level, false
		}
		msg := rest[1:]
		switch strings.ToLower(strings.TrimSpace(msg)) {
		case "on", "off":
			if rest[0] == ' ' || rest[0] == '\t' {
				return level, false
			}
		}
		out.stdout.WriteString(msg + "\r\n")
		return level, false
	case "exit":
		fields := strings.Fields(rest)
		if len(fields) > 0 && strings.EqualFold(fields[0], "/b") {
			fields = fields[1:]
		}
		if len(fields) > 0 {
			level = atoi(fields[0])
		}
		return level, true
	case "ver":
		out.stdout.WriteString("\r\nMicrosoft Windows [Version " + windowsVersion + "]\r\n")
		return level, false
	case "rem":
		return level, false
	case "cd", "chdir":
		if strings.TrimSpace(rest) != "" {
			out.stderr.WriteString("The system cannot find the path specified.\r\n")
			return 1, false
		}
		out.stdout.WriteString(env.profile + "\r\n")
		return level, false
	case "set":
		if strings.TrimSpace(rest) != "" {
			// Assignments cannot affect this line (expansion already happened)
			// and every shell command is a new cmd.exe, so they go nowhere.
			return 0, false
		}
		vars := env.vars()
		names := make([]string, 0, len(vars))
		for k := range vars {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			out.stdout.WriteString(k + "=" + vars[k] + "\r\n")
		}
		return 0, false
	}
	return level, false
}

// atoi converts like the C runtime's atoi, which cmd.exe uses for exit
// codes: leading digits count, anything else is 0.
func atoi(s string) int {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 1<<31 {
			break
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n
}

// splitProgram separates a program name (possibly quoted) from the rest of
// the command text.
func splitProgram(text string) (name, args string) {
	if strings.HasPrefix(text, `"`) {
		if end := strings.IndexByte(text[1:], '"'); end >= 0 {
			return text[1 : end+1], text[end+2:]
		}
		return text[1:], ""
	}
	end := strings.IndexAny(text, " \t")
	if end < 0 {
		return text, ""
	}
	return text[:end], text[end:]
}

// knownPrograms are the executables of the emulated host by full path.
var knownPrograms = map[string]string{
	`c:\windows\system32\hostname.exe`:                          "hostname",
	`c:\windows\system32\whoami.exe`:                            "whoami",
	`c:\windows\system32\cmd.exe`:                               "cmd",
	`c:\windows\system32\windowspowershell\v1.0\powershell.exe`: "powershell",
}

// programName maps what was typed to a known program: a bare name with or
// without .exe (found on PATH), or a full path. Unknown names map to "".
func programName(typed string) string {
	lower := strings.ToLower(typed)
	if strings.ContainsAny(lower, `\/:`) {
		return knownPrograms[strings.ReplaceAll(lower, "/", `\`)]
	}
	lower = strings.TrimSuffix(lower, ".exe")
	switch lower {
	case "hostname", "whoami", "cmd", "powershell":
		return lower
	}
	return ""
}

// runNestedCmd runs "cmd [/d] [/q] [/s] /c <line>".
func runNestedCmd(ctx context.Context, env *cmdEnv, args string, stdin []byte, out *output) int {
	rest := strings.TrimLeft(args, " \t")
	for {
		if len(rest) < 2 || rest[0] != '/' {
			break
		}
		sw := strings.ToLower(rest[1:2])
		if sw == "c" || sw == "k" {
			line := strings.TrimLeft(rest[2:], " \t")
			// cmd.exe strips one pair of outer quotes from the /c line.
			if strings.HasPrefix(line, `"`) {
				if last := strings.LastIndexByte(line, '"'); last > 0 {
					line = line[1:last] + line[last+1:]
				}
			}
			return cmdLine(ctx, env, line, stdin, out)
		}
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			rest = ""
			break
		}
		rest = strings.TrimLeft(rest[end:], " \t")
	}
	out.stderr.WriteString("wsman emulator: an interactive cmd.exe (without /c) is not emulated.\r\n")
	return 1
}

// commandLineToArgv splits program arguments as the Microsoft C runtime
// does: whitespace separates, double quotes group, and backslashes escape
// quotes only when they precede one.
func commandLineToArgv(s string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			n := 0
			for i < len(s) && s[i] == '\\' {
				n++
				i++
			}
			if i < len(s) && s[i] == '"' {
				cur.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					cur.WriteByte('"')
				} else {
					inQuote = !inQuote
				}
				have = true
			} else {
				cur.WriteString(strings.Repeat(`\`, n))
				have = true
				i--
			}
		case c == '"':
			if inQuote && i+1 < len(s) && s[i+1] == '"' {
				cur.WriteByte('"')
				i++
			} else {
				inQuote = !inQuote
			}
			have = true
		case (c == ' ' || c == '\t') && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}

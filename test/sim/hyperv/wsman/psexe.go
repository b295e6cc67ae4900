package wsman

import (
	"context"
	"encoding/base64"
	"strings"
	"unicode/utf16"
)

// Messages of Windows PowerShell 5.1's command-line parser
// (CommandLineParameterParserStrings; the texts are shared with PowerShell 7
// where the resource keys are the same).
const (
	psBadCommandValue       = "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded."
	psMissingCommand        = "Cannot process the command because of a missing parameter. A command must follow -Command."
	psCommandAlreadySet     = "Cannot process command because a command is already specified with -Command or -EncodedCommand."
	psMissingPolicy         = "Cannot process the execution policy because of a missing policy name. A policy name must follow -ExecutionPolicy."
	psMissingFile           = "The command cannot be run because the File parameter requires a file path. Supply a path for the File parameter and then try the command again."
	psTooManyStdinArgs      = "'-' was specified with the -Command parameter; no other arguments to -Command are permitted."
	psMissingWindowStyle    = "Cannot process the command because -WindowStyle requires an argument that is normal, hidden, minimized or maximized. Specify one of these argument values and try again."
	psMissingEncodedArgs    = "Cannot process the command because -EncodedArguments requires a value. Specify a value for the -EncodedArguments parameter."
	psMissingFormatTemplate = "Cannot process the command because -%s requires an argument. Valid formats are:\r\nText\r\nXML\r\nNone\r\n"
)

// psHelp is printed after a command-line error, as powershell.exe does. The
// real text is the full usage page; this is its opening, abbreviated.
const psHelp = "\r\nPowerShell[.exe] [-PSConsoleFile <file> | -Version <version>]\r\n" +
	"    [-NoLogo] [-NoExit] [-Sta] [-Mta] [-NoProfile] [-NonInteractive]\r\n" +
	"    [-InputFormat {Text | XML}] [-OutputFormat {Text | XML}]\r\n" +
	"    [-WindowStyle <style>] [-EncodedCommand <Base64EncodedCommand>]\r\n" +
	"    [-ConfigurationName <string>]\r\n" +
	"    [-File <filePath> <args>] [-ExecutionPolicy <ExecutionPolicy>]\r\n" +
	"    [-Command { - | <script-block> [-args <arg-array>]\r\n" +
	"                  | <string> [<CommandParameters>] } ]\r\n" +
	"\r\n(usage text abbreviated by the emulator)\r\n\r\n"

// psInvocation is what a powershell.exe command line asks for.
type psInvocation struct {
	script    string
	hasScript bool
	encoded   bool   // the script came through -EncodedCommand
	fromStdin bool   // -Command - (or no command at all): the script is stdin
	err       string // command-line error; the process exits with exitPSBadCommandLine
	showHelp  bool   // print usage after err (or alone for -?)
}

// parsePowerShellArgs follows Windows PowerShell 5.1's
// CommandLineParameterParser: switches start with - or /, match by prefix
// down to a minimal abbreviation, case-insensitively; the first argument
// that is not a switch starts the command text, as does an unknown switch.
func parsePowerShellArgs(args []string) psInvocation {
	var inv psInvocation
	fail := func(msg string, help bool) psInvocation {
		inv.err, inv.showHelp = msg, help
		return inv
	}
	for i := 0; i < len(args); i++ {
		arg := strings.ToLower(strings.TrimSpace(args[i]))
		if arg == "" {
			continue
		}
		if !isDash(arg) && arg[0] != '/' {
			return parseCommandText(inv, args[i:])
		}
		key := string([]rune(arg)[1:])
		value := func() (string, bool) {
			if i+1 >= len(args) {
				return "", false
			}
			i++
			return args[i], true
		}
		switch {
		case matchSwitch(key, "help", "h") || key == "?":
			inv.showHelp = true
			return inv
		case matchSwitch(key, "noexit", "noe"), matchSwitch(key, "importsystemmodules", "imp"),
			matchSwitch(key, "showinitialprompt", "show"), matchSwitch(key, "noprofile", "nop"),
			matchSwitch(key, "nologo", "nol"), matchSwitch(key, "noninteractive", "noni"),
			matchSwitch(key, "servermode", "s"), matchSwitch(key, "sta", "s"), matchSwitch(key, "mta", "mta"):
		case matchSwitch(key, "command", "c"):
			if inv.hasScript || inv.fromStdin {
				return fail(psCommandAlreadySet, true)
			}
			if i+1 >= len(args) {
				return fail(psMissingCommand, true)
			}
			return parseCommandText(inv, args[i+1:])
		case matchSwitch(key, "windowstyle", "w"):
			v, ok := value()
			if !ok {
				return fail(psMissingWindowStyle, false)
			}
			switch strings.ToLower(v) {
			case "normal", "hidden", "minimized", "maximized":
			default:
				return fail("Processing -WindowStyle '"+v+"' failed: Cannot convert value \""+v+"\" to type \"System.Diagnostics.ProcessWindowStyle\".", false)
			}
		case matchSwitch(key, "file", "f"):
			v, ok := value()
			if !ok {
				return fail(psMissingFile, true)
			}
			if v == "-" {
				inv.fromStdin = true
				return inv
			}
			// The emulated host has no script files.
			if !strings.HasSuffix(strings.ToLower(v), ".ps1") {
				return fail("Processing -File '"+v+"' failed because the file does not have a '.ps1' extension. Specify a valid PowerShell script file name, and then try again.", false)
			}
			return fail("The argument '"+v+"' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter.", false)
		case matchSwitch(key, "outputformat", "o"), matchSwitch(key, "of", "o"),
			matchSwitch(key, "inputformat", "i"), matchSwitch(key, "if", "i"):
			name := "OutputFormat"
			if key[0] == 'i' {
				name = "InputFormat"
			}
			v, ok := value()
			if !ok {
				return fail(strings.Replace(psMissingFormatTemplate, "%s", name, 1), true)
			}
			switch strings.ToLower(v) {
			case "text", "xml", "none":
			default:
				return fail("Cannot process the command because \""+v+"\" is not a valid value for -"+name+". Valid formats are:\r\nText\r\nXML\r\nNone\r\n", true)
			}
		case matchSwitch(key, "executionpolicy", "ex"), matchSwitch(key, "ep", "ep"):
			if _, ok := value(); !ok {
				return fail(psMissingPolicy, true)
			}
		case matchSwitch(key, "encodedcommand", "e"), matchSwitch(key, "ec", "e"):
			if inv.hasScript || inv.fromStdin {
				return fail(psCommandAlreadySet, true)
			}
			v, ok := value()
			if !ok {
				return fail(psMissingCommand, true)
			}
			script, ok := decodeEncodedCommand(v)
			if !ok {
				return fail(psBadCommandValue, true)
			}
			inv.script, inv.hasScript, inv.encoded = script, true, true
		case matchSwitch(key, "encodedarguments", "encodeda"), matchSwitch(key, "ea", "ea"):
			if _, ok := value(); !ok {
				return fail(psMissingEncodedArgs, true)
			}
		case matchSwitch(key, "version", "v"), matchSwitch(key, "psconsolefile", "psc"):
			// Accepted and ignored: the emulated host has one engine version.
			value()
		default:
			// An unknown switch starts the command text (5.1 behaviour).
			return parseCommandText(inv, args[i:])
		}
	}
	if !inv.hasScript {
		// No command: powershell.exe reads commands from its redirected stdin.
		inv.fromStdin = true
	}
	return inv
}

// parseCommandText handles the arguments after -Command (or starting at the
// first non-switch): "-" means stdin, anything else is joined with spaces.
func parseCommandText(inv psInvocation, rest []string) psInvocation {
	if inv.hasScript || inv.fromStdin {
		inv.err, inv.showHelp = psCommandAlreadySet, true
		return inv
	}
	if rest[0] == "-" {
		if len(rest) > 1 {
			inv.err, inv.showHelp = psTooManyStdinArgs, true
			return inv
		}
		inv.fromStdin = true
		return inv
	}
	inv.script, inv.hasScript = strings.Join(rest, " "), true
	return inv
}

// matchSwitch is 5.1's MatchSwitch: key must be a prefix of the full name and
// at least as long as the shortest accepted abbreviation.
func matchSwitch(key, full, shortest string) bool {
	return strings.HasPrefix(full, key) && len(key) >= len(shortest)
}

// isDash reports a leading dash, including the en, em and horizontal-bar
// dashes PowerShell accepts (SpecialCharacters.IsDash).
func isDash(s string) bool {
	r := []rune(s)[0]
	return r == '-' || r == '\u2013' || r == '\u2014' || r == '\u2015'
}

// EncodeCommand is what a client sends after -EncodedCommand: base64 of the
// script in UTF-16LE (surrogate pairs for characters beyond the BMP).
func EncodeCommand(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// decodeEncodedCommand reverses -EncodedCommand: base64 (whitespace
// ignored, as .NET's Convert.FromBase64String does) of UTF-16LE. An odd
// trailing byte and unpaired surrogates decode to U+FFFD, as
// Encoding.Unicode.GetString does; only invalid base64 fails.
func decodeEncodedCommand(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", false
	}
	u := make([]uint16, 0, len(raw)/2)
	for i := 0; i+1 < len(raw); i += 2 {
		u = append(u, uint16(raw[i])|uint16(raw[i+1])<<8)
	}
	text := string(utf16.Decode(u))
	if len(raw)%2 == 1 {
		text += "\uFFFD"
	}
	return text, true
}

// runPowerShellExe runs powershell.exe with the given argv (program name
// excluded). pipeIn is data piped in by cmd.exe (nil: the shell's stdin).
func runPowerShellExe(ctx context.Context, env *cmdEnv, args []string, pipeIn []byte, out *output) int {
	inv := parsePowerShellArgs(args)
	if inv.err != "" {
		out.stderr.WriteString(inv.err + "\r\n")
		if inv.showHelp {
			out.stdout.WriteString(psHelp)
		}
		return exitPSBadCommandLine
	}
	if inv.showHelp {
		out.stdout.WriteString(psHelp)
		return 0
	}
	script := inv.script
	if inv.fromStdin {
		data := pipeIn
		if data == nil {
			var err error
			data, err = env.stdin(ctx)
			if err != nil {
				// The command was cancelled while waiting for input.
				return 1
			}
		}
		script = string(data)
	}
	env.scripts = append(env.scripts, script)
	res := env.powershell(ctx, script, inv.encoded)
	out.stdout.Write(res.Stdout)
	out.stderr.Write(res.Stderr)
	return res.ExitCode
}

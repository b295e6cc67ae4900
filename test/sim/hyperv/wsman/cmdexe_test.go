package wsman

import (
	"context"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
)

// testEnv is a host whose PowerShell echoes the script it got.
func testEnv(stdin string) *cmdEnv {
	return &cmdEnv{
		host:    "NODE1",
		whoami:  `node1\admin`,
		profile: `C:\Users\admin`,
		powershell: func(_ context.Context, script string, _ bool) Result {
			return Result{Stdout: []byte("PS:" + script + "\r\n")}
		},
		stdin: func(context.Context) ([]byte, error) { return []byte(stdin), nil },
	}
}

func TestCmdExe(t *testing.T) {
	notRecognized := func(name string) string {
		return "'" + name + "' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
	}
	b64 := EncodeCommand("Get-VM | ConvertTo-Json -Compress")
	badPS := psBadCommandValue + "\r\n"
	tests := []struct {
		name, line     string
		stdout, stderr string
		code           int
		scripts        []string
	}{
		{name: "hostname", line: "hostname", stdout: "NODE1\r\n"},
		{name: "hostname.exe in capitals", line: "HOSTNAME.EXE", stdout: "NODE1\r\n"},
		{name: "hostname by full path", line: `C:\Windows\System32\hostname.exe`, stdout: "NODE1\r\n"},
		{name: "quoted program", line: `"hostname"`, stdout: "NODE1\r\n"},
		{name: "hostname with an argument", line: "hostname other", stderr: "sethostname: Use the Network Control Panel Applet to set hostname.\r\n", code: 1},
		{name: "whoami", line: "whoami", stdout: "node1\\admin\r\n"},
		{name: "echo", line: "echo hello  world", stdout: "hello  world\r\n"},
		{name: "echo dot", line: "echo.", stdout: "\r\n"},
		{name: "bare echo", line: "echo", stdout: "ECHO is on.\r\n"},
		{name: "caret escapes", line: "echo a^&b^|c", stdout: "a&b|c\r\n"},
		{name: "quotes protect operators", line: `echo "a & b"`, stdout: "\"a & b\"\r\n"},
		{name: "variables", line: "echo %COMPUTERNAME% %NOPE% 100%", stdout: "NODE1 %NOPE% 100%\r\n"},
		// Built-ins like echo leave ERRORLEVEL alone, so the line still exits
		// with the failure's code.
		{name: "errorlevel is expanded before the line runs", line: "nosuch & echo %ERRORLEVEL%", stdout: "0\r\n", stderr: notRecognized("nosuch"), code: 9009},
		{name: "exit /b", line: "exit /b 5", code: 5},
		{name: "exit stops the line", line: "exit 3 & echo no", code: 3},
		{name: "exit with garbage is 0", line: "exit /b x", code: 0},
		{name: "nested cmd", line: "cmd /c exit /b 4", code: 4},
		{name: "nested cmd with quotes", line: `cmd.exe /d /s /c "echo hi"`, stdout: "hi\r\n"},
		{name: "ver", line: "ver", stdout: "\r\nMicrosoft Windows [Version 10.0.20348.587]\r\n"},
		{name: "rem", line: "rem nothing here", stdout: ""},
		{name: "cd prints the profile", line: "cd", stdout: "C:\\Users\\admin\r\n"},
		{name: "unknown program", line: "frob -x", stderr: notRecognized("frob"), code: 9009},
		{name: "unknown path", line: `C:\tools\frob.exe`, stderr: notRecognized(`C:\tools\frob.exe`), code: 9009},
		{name: "or runs on failure", line: "nosuch || echo fallback", stdout: "fallback\r\n", stderr: notRecognized("nosuch"), code: 9009},
		{name: "or then a program resets the level", line: "nosuch || hostname", stdout: "NODE1\r\n", stderr: notRecognized("nosuch")},
		{name: "and skips on failure", line: "nosuch && echo no", stderr: notRecognized("nosuch"), code: 9009},
		{name: "and then or", line: "nosuch && echo no || echo yes", stdout: "yes\r\n", stderr: notRecognized("nosuch"), code: 9009},
		{name: "sequence", line: "echo a & echo b", stdout: "a \r\nb\r\n"},
		{name: "trailing ampersand", line: "echo x &", stdout: "x \r\n"},
		{name: "leading ampersand", line: "& echo x", stderr: "& was unexpected at this time.\r\n", code: 255},
		{name: "leading pipe", line: "| echo x", stderr: "| was unexpected at this time.\r\n", code: 255},
		{name: "dangling and", line: "echo x &&", stderr: "The syntax of the command is incorrect.\r\n", code: 1},
		{name: "pipe into powershell stdin", line: "echo x| powershell -Command -", stdout: "PS:x\r\n\r\n", scripts: []string{"x\r\n"}},
		{name: "pipe into unknown program", line: "hostname | nosuch", stderr: notRecognized("nosuch"), code: 9009},
		{name: "stdout to nul", line: "hostname >nul", stdout: ""},
		{name: "stderr to nul", line: "nosuch 2>nul", code: 9009},
		{name: "stderr to stdout", line: "nosuch 2>&1", stdout: notRecognized("nosuch"), code: 9009},
		{name: "redirect to a file", line: "hostname > out.txt", stderr: "wsman emulator: cmd.exe redirection to \"out.txt\" is not emulated (only nul, &1 and &2).\r\n", code: 1},
		{name: "longest line", line: "echo " + strings.Repeat("a", maxCmdLine-5), stdout: strings.Repeat("a", maxCmdLine-5) + "\r\n"},
		{name: "line too long", line: "echo " + strings.Repeat("a", maxCmdLine-4), stderr: "The command line is too long.\r\n", code: 1},
		{name: "too long counts UTF-16 units", line: "echo " + strings.Repeat("\U0001F600", (maxCmdLine-3)/2), stderr: "The command line is too long.\r\n", code: 1},
		{name: "nested line too long", line: "cmd /c echo " + strings.Repeat("a", 8190), stderr: "The command line is too long.\r\n", code: 1},
		// PowerShell command lines as clients send them.
		{name: "masterzen", line: "powershell.exe -EncodedCommand " + b64, stdout: "PS:Get-VM | ConvertTo-Json -Compress\r\n", scripts: []string{"Get-VM | ConvertTo-Json -Compress"}},
		{name: "pywinrm", line: "powershell -encodedcommand " + b64, stdout: "PS:Get-VM | ConvertTo-Json -Compress\r\n", scripts: []string{"Get-VM | ConvertTo-Json -Compress"}},
		{name: "all the flags", line: "PowerShell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -OutputFormat Text -EncodedCommand " + b64,
			stdout: "PS:Get-VM | ConvertTo-Json -Compress\r\n", scripts: []string{"Get-VM | ConvertTo-Json -Compress"}},
		{name: "full path", line: `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe -enc ` + b64,
			stdout: "PS:Get-VM | ConvertTo-Json -Compress\r\n", scripts: []string{"Get-VM | ConvertTo-Json -Compress"}},
		{name: "quoted -Command keeps its pipe", line: `powershell -Command "Get-VM | ConvertTo-Json"`, stdout: "PS:Get-VM | ConvertTo-Json\r\n", scripts: []string{"Get-VM | ConvertTo-Json"}},
		{name: "unquoted pipe goes to cmd.exe", line: `powershell -Command Get-VM | ConvertTo-Json`, stderr: notRecognized("ConvertTo-Json"), code: 9009, scripts: []string{"Get-VM"}},
		{name: "bad base64", line: "powershell -EncodedCommand !!!", stdout: psHelp, stderr: badPS, code: exitPSBadCommandLine},
		{name: "missing -File", line: "powershell -File C:\\x.ps1",
			stderr: "The argument 'C:\\x.ps1' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter.\r\n", code: exitPSBadCommandLine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv("")
			res := runCmdExe(context.Background(), env, tc.line)
			if string(res.Stdout) != tc.stdout || string(res.Stderr) != tc.stderr || res.ExitCode != tc.code {
				t.Errorf("got stdout %q stderr %q code %d\nwant stdout %q stderr %q code %d",
					res.Stdout, res.Stderr, res.ExitCode, tc.stdout, tc.stderr, tc.code)
			}
			if !reflect.DeepEqual(env.scripts, tc.scripts) {
				t.Errorf("scripts %q, want %q", env.scripts, tc.scripts)
			}
		})
	}
}

func TestPowerShellArgs(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		script    string
		fromStdin bool
		encoded   bool
		err       string
		help      bool
	}{
		{name: "encoded", args: []string{"-EncodedCommand", EncodeCommand("x")}, script: "x", encoded: true},
		{name: "abbreviations", args: []string{"-nop", "-noni", "-ep", "bypass", "-o", "text", "-e", EncodeCommand("x")}, script: "x", encoded: true},
		{name: "ec and slash switches", args: []string{"/NoProfile", "-ec", EncodeCommand("x")}, script: "x", encoded: true},
		{name: "en dash", args: []string{"\u2013Command", "Get-VM"}, script: "Get-VM"},
		{name: "command joins the rest", args: []string{"-Command", "Get-VM", "-Name", "vm1"}, script: "Get-VM -Name vm1"},
		{name: "c abbreviation", args: []string{"-c", "exit 3"}, script: "exit 3"},
		{name: "first positional starts the command", args: []string{"-NoProfile", "Get-VM", "vm1"}, script: "Get-VM vm1"},
		{name: "unknown switch starts the command", args: []string{"-Frob", "x"}, script: "-Frob x"},
		{name: "ambiguous e is not ExecutionPolicy", args: []string{"-ex", "Bypass", "-Command", "x"}, script: "x"},
		{name: "dash reads stdin", args: []string{"-"}, fromStdin: true},
		{name: "command dash reads stdin", args: []string{"-NonInteractive", "-Command", "-"}, fromStdin: true},
		{name: "no command reads stdin", args: []string{"-NoProfile"}, fromStdin: true},
		{name: "dash with more", args: []string{"-Command", "-", "x"}, err: psTooManyStdinArgs, help: true},
		{name: "missing command", args: []string{"-Command"}, err: psMissingCommand, help: true},
		{name: "missing encoded", args: []string{"-EncodedCommand"}, err: psMissingCommand, help: true},
		{name: "bad base64", args: []string{"-EncodedCommand", "abc"}, err: psBadCommandValue, help: true},
		{name: "two commands", args: []string{"-EncodedCommand", EncodeCommand("x"), "-Command", "y"}, script: "x", err: psCommandAlreadySet, help: true, encoded: true},
		{name: "encoded then text", args: []string{"-EncodedCommand", EncodeCommand("x"), "y"}, script: "x", err: psCommandAlreadySet, help: true, encoded: true},
		{name: "missing policy", args: []string{"-ExecutionPolicy"}, err: psMissingPolicy, help: true},
		{name: "bad output format", args: []string{"-OutputFormat", "json", "-c", "x"}, err: "Cannot process the command because \"json\" is not a valid value for -OutputFormat. Valid formats are:\r\nText\r\nXML\r\nNone\r\n", help: true},
		{name: "file without ps1", args: []string{"-File", "x.txt"}, err: "Processing -File 'x.txt' failed because the file does not have a '.ps1' extension. Specify a valid PowerShell script file name, and then try again."},
		{name: "help", args: []string{"-?"}, help: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := parsePowerShellArgs(tc.args)
			if inv.script != tc.script || inv.fromStdin != tc.fromStdin || inv.encoded != tc.encoded || inv.err != tc.err || inv.showHelp != tc.help {
				t.Errorf("got %+v", inv)
			}
		})
	}
}

func TestDecodeEncodedCommand(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{name: "plain", in: EncodeCommand("Get-VM"), want: "Get-VM", ok: true},
		{name: "non-ASCII", in: EncodeCommand("Write-Host こんにちは 😀"), want: "Write-Host こんにちは 😀", ok: true},
		{name: "whitespace ignored", in: " " + EncodeCommand("ab")[:4] + "\r\n" + EncodeCommand("ab")[4:] + "\t", want: "ab", ok: true},
		{name: "odd byte count", in: base64.StdEncoding.EncodeToString([]byte{'a', 0, 'b'}), want: "a\uFFFD", ok: true},
		{name: "unpaired surrogate", in: base64.StdEncoding.EncodeToString([]byte{0x3d, 0xd8, 'x', 0}), want: "\uFFFDx", ok: true},
		{name: "UTF-8 instead of UTF-16", in: base64.StdEncoding.EncodeToString([]byte("ab")), want: "\u6261", ok: true},
		{name: "not base64", in: "!!!!", ok: false},
		{name: "missing padding", in: "YQB", ok: false},
		{name: "empty", in: "", want: "", ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := decodeEncodedCommand(tc.in)
			if ok != tc.ok || got != tc.want {
				t.Errorf("got %q %v, want %q %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestCommandLineToArgv(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`a b  c`, []string{"a", "b", "c"}},
		{` "a b" c `, []string{"a b", "c"}},
		{`"a\"b"`, []string{`a"b`}},
		{`a\\\"b`, []string{`a\"b`}},
		{`a\\"b c"`, []string{`a\b c`}},
		{`a\b\c`, []string{`a\b\c`}},
		{`""`, []string{""}},
		{`"a""b"`, []string{`a"b`}},
		{``, nil},
	}
	for _, tc := range tests {
		if got := commandLineToArgv(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]string{
		"PT60S": "1m0s", "PT20.000S": "20s", "PT0.5S": "500ms", "PT1M30S": "1m30s",
		"P0DT0H1M0S": "1m0s", "P1D": "24h0m0s", "PT1H": "1h0m0s", "PT7200.000S": "2h0m0s",
	}
	for in, want := range good {
		d, err := parseDuration(in)
		if err != nil || d.String() != want {
			t.Errorf("%s: %v %v, want %s", in, d, err, want)
		}
	}
	for _, in := range []string{"", "P", "PT", "PT-1S", "-PT1S", "PT0S", "60", "PT1Y", "P1Y", "P1M", "PT1.5M", "PT1S1S", "PTS", "PT1", "P1DT", "PT1H2H", "PT99999999999S"} {
		if d, err := parseDuration(in); err == nil {
			t.Errorf("%q parsed as %v", in, d)
		}
	}
}

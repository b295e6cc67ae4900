package deploy

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// hookLine is the invocation both scripts must carry, phase aside: the flags
// of hvro hook (CONTRACTS.md section 2), every value quoted for paths and
// URLs with spaces or & in them.
func hookLine(phase string) string {
	return `"%HVRO_EXE%" hook --url "%HVRO_URL%" --cluster "%HVRO_CLUSTER%" --group "%HVRO_GROUP%" --phase ` + phase +
		` --token-file "%HVRO_TOKEN_FILE%" --wait "%HVRO_WAIT%" %HVRO_CA_ARGS% %HVRO_EXTRA_ARGS%`
}

// crlfLines checks Windows line endings throughout and splits on them.
func crlfLines(t *testing.T, name string, data []byte) []string {
	t.Helper()
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		t.Errorf("%s: does not end with CRLF", name)
	}
	for i, b := range data {
		switch {
		case b == '\n' && (i == 0 || data[i-1] != '\r'):
			t.Errorf("%s: byte %d: LF without CR (the file must keep CRLF line endings)", name, i)
			return nil
		case b == '\r' && (i+1 == len(data) || data[i+1] != '\n'):
			t.Errorf("%s: byte %d: CR without LF", name, i)
			return nil
		}
	}
	return strings.Split(strings.TrimSuffix(string(data), "\r\n"), "\r\n")
}

var (
	gotoLabel = regexp.MustCompile(`\bgoto (\S+)$`)
	exitCode  = regexp.MustCompile(`(?i)exit /b (\S+)`)
)

func isComment(l string) bool {
	l = strings.ToLower(strings.TrimSpace(l))
	return l == "" || strings.HasPrefix(l, "rem ") || l == "rem" || strings.HasPrefix(l, "::")
}

func TestECXScripts(t *testing.T) {
	code := map[string][]string{}
	for _, phase := range []string{"start", "stop"} {
		name := filepath.Join("ecx", phase+".bat")
		lines := crlfLines(t, name, read(t, name))
		idx := func(want string) int {
			return slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == want })
		}
		cd := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, `cd /d "%CLP_SCRIPT_PATH%"`) })
		env := idx(`call "hvro-hook.env.bat"`)
		hook := idx(hookLine(phase))
		switch {
		case cd < 0:
			t.Errorf(`%s: no line starts with cd /d "%%CLP_SCRIPT_PATH%%"`, name)
		case env < 0:
			t.Errorf(`%s: no call "hvro-hook.env.bat"`, name)
		case hook < 0:
			t.Errorf("%s: the hook invocation is missing or changed; want the line\n%s", name, hookLine(phase))
		case !(cd < env && env < hook):
			t.Errorf("%s: want cd (line %d) before the env file (line %d) before the hook (line %d)", name, cd+1, env+1, hook+1)
		case hook+1 >= len(lines) || lines[hook+1] != "exit /b %ERRORLEVEL%":
			t.Errorf("%s: the line after the hook must be exit /b %%ERRORLEVEL%%, so that ECX gets hvro hook's exit code", name)
		}
		other := map[string]string{"start": "stop", "stop": "start"}[phase]
		labels := map[string]bool{}
		for _, l := range lines {
			if strings.HasPrefix(l, ":") && !strings.HasPrefix(l, "::") {
				labels[strings.ToLower(strings.TrimPrefix(l, ":"))] = true
			}
		}
		for i, l := range lines {
			if isComment(l) {
				continue
			}
			code[phase] = append(code[phase], l)
			low := strings.ToLower(strings.TrimSpace(l))
			where := fmt.Sprintf("%s:%d: %s", name, i+1, l)
			// Cluster-Set's scripts read %ERRORLEVEL% inside ( ) blocks, where
			// cmd expands it before the block runs: no blocks here at all.
			if strings.HasSuffix(low, "(") || strings.HasPrefix(low, ")") {
				t.Errorf("%s: a parenthesised block", where)
			}
			if strings.Contains(low, "enabledelayedexpansion") || strings.Contains(l, "!") {
				t.Errorf("%s: delayed expansion; keep the script without it", where)
			}
			if strings.Contains(low, "--phase "+other) {
				t.Errorf("%s: --phase %s in the %s script", where, other, phase)
			}
			for _, f := range strings.Fields(low) {
				if f == "exit" && !strings.Contains(low, "exit /b") {
					t.Errorf("%s: exit without /b", where)
				}
			}
			if m := gotoLabel.FindStringSubmatch(low); m != nil && !labels[strings.TrimPrefix(m[1], ":")] {
				t.Errorf("%s: goto %s: no such label", where, m[1])
			}
		}
		// Every exit code a script produces itself is 2 (configuration), or
		// the hook's own.
		for _, l := range code[phase] {
			if m := exitCode.FindStringSubmatch(l); m != nil && m[1] != "2" && m[1] != "%ERRORLEVEL%" {
				t.Errorf("%s: %q: a script's own exit code must be 2 (configuration error)", name, l)
			}
		}
	}
	// The two scripts are one script with two phases.
	start := strings.Join(code["start"], "\n")
	stop := strings.ReplaceAll(strings.Join(code["stop"], "\n"), "--phase stop", "--phase start")
	if start != stop {
		t.Errorf("start.bat and stop.bat differ in more than the phase:\n--- start\n%s\n--- stop\n%s", start, stop)
	}
}

func TestECXEnvExample(t *testing.T) {
	name := filepath.Join("ecx", "hvro-hook.env.bat.example")
	lines := crlfLines(t, name, read(t, name))
	set := map[string]bool{}
	setLine := regexp.MustCompile(`^set "(HVRO_[A-Z_]+)=[^"]*"$`)
	for i, l := range lines {
		if isComment(l) || l == "@echo off" {
			continue
		}
		m := setLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf(`%s:%d: %q: only set "HVRO_NAME=value" lines belong in the settings file`, name, i+1, l)
			continue
		}
		set[m[1]] = true
	}
	for _, v := range []string{"HVRO_URL", "HVRO_CLUSTER", "HVRO_GROUP", "HVRO_TOKEN_FILE"} {
		if !set[v] {
			t.Errorf("%s: does not set %s, which the scripts require", name, v)
		}
	}
	script := string(read(t, filepath.Join("ecx", "start.bat")))
	for v := range set {
		if !strings.Contains(script, "%"+v+"%") {
			t.Errorf("%s sets %s, which start.bat never uses", name, v)
		}
	}
}

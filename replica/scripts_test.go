package replica

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hvro/hvro/test/pstool"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// scriptCases are the inputs every script is rendered with for the golden
// files: ordinary values, and hostile ones that must stay data.
var scriptCases = []struct {
	name string
	in   ScriptInput
}{
	{"plain", ScriptInput{VM: "vm1", ConfigPath: primaryPath, ReplicaHost: "node3",
		Settings: Settings{Port: 80, Auth: "Kerberos", FrequencySec: 300, Compression: true}}},
	{"hostile", ScriptInput{
		VM:          "a'b; Remove-VM -Name * -Force #$env:X `\" $(whoami) [x]*? ‘’ ’; exit 0 '",
		ConfigPath:  `T:\VM's $(Remove-Item C:\ -Recurse)\My "VMs" & ^%PATH%\$x` + "`" + `\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx`,
		ReplicaHost: "replica-01.corp.example",
		Settings:    Settings{Port: 443, Auth: "certificate", Thumbprint: "0123456789abcdef0123456789ABCDEF01234567", FrequencySec: 30}}},
}

// TestScriptsGolden renders every script the driver can emit, keeps them as
// golden files (-update rewrites), checks their command lines fit cmd.exe,
// and parses them with tree-sitter-powershell: CI fails on a parse error.
func TestScriptsGolden(t *testing.T) {
	dir := filepath.Join("testdata", "scripts")
	if *update {
		old, _ := filepath.Glob(filepath.Join(dir, "*.ps1"))
		for _, f := range old {
			os.Remove(f)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var files []string
	for _, sc := range scriptCases {
		scripts, err := Scripts(sc.in)
		if err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		for _, s := range scripts {
			file := filepath.Join(dir, sc.name+"_"+s.Name+".ps1")
			files = append(files, file)
			if n := len(commandLine(s.Text)); n >= maxCommandLine {
				t.Errorf("%s: command line of %d characters; cmd.exe accepts %d", file, n, maxCommandLine)
			}
			if *update {
				if err := os.WriteFile(file, []byte(s.Text), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Errorf("%v (run go test ./replica -run TestScriptsGolden -update)", err)
				continue
			}
			if !bytes.Equal(want, []byte(s.Text)) {
				t.Errorf("%s drifted from the script the driver emits (review, then go test ./replica -run TestScriptsGolden -update)\n--- emitted:\n%s", file, s.Text)
			}
		}
	}
	all, _ := filepath.Glob(filepath.Join(dir, "*.ps1"))
	for _, f := range all {
		if !slices.Contains(files, f) {
			t.Errorf("%s: golden file of a script the driver no longer emits (run with -update)", f)
		}
	}
	pstool.Parse(t, files...)
}

func TestPSQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"vm1", "'vm1'"},
		{"a'b", "'a''b'"},
		{"''", "''''''"},
		{"$x `n \"y\"", "'$x `n \"y\"'"},
		{"a’b‘c‚d‛e", "'a’’b‘‘c‚‚d‛‛e'"},
		{"日本語", "'日本語'"},
	}
	for _, tc := range tests {
		if got := psQuote(tc.in); got != tc.want {
			t.Errorf("psQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestScriptInputsRefused(t *testing.T) {
	tests := []struct {
		name string
		f    func() (string, error)
		want string
	}{
		{"empty name", func() (string, error) { return inspectScript("") }, "vm name is empty"},
		{"newline", func() (string, error) { return inspectScript("a\nb") }, "control character U+000A"},
		{"nul", func() (string, error) { return actionScript("a\x00b", bodyStartVM) }, "control character U+0000"},
		{"bad utf8", func() (string, error) { return inspectScript("a\xffb") }, "not valid UTF-8"},
		{"long name", func() (string, error) { return inspectScript(strings.Repeat("x", 101)) }, "longer than 100"},
		{"not vmcx", func() (string, error) { return registerScript("vm1", `T:\VMs\x.vhdx`) }, "not a .vmcx"},
		{"ip replica", func() (string, error) { return settingsScript("vm1", "192.0.2.1", Settings{}, bodyEnablePrimary) }, "not an IP address"},
		{"bad host", func() (string, error) { return settingsScript("vm1", "node3'; x", Settings{}, bodyEnablePrimary) }, "not a valid host name"},
		{"frequency", func() (string, error) {
			return settingsScript("vm1", "node3", Settings{FrequencySec: 60}, bodyEnablePrimary)
		}, "30, 300 or 900"},
		{"auth", func() (string, error) { return settingsScript("vm1", "node3", Settings{Auth: "NTLM"}, bodyReverse) }, "Kerberos or Certificate"},
		{"thumbprint missing", func() (string, error) {
			return settingsScript("vm1", "node3", Settings{Auth: "Certificate"}, bodyReverse)
		}, "required for Certificate"},
		{"thumbprint with kerberos", func() (string, error) {
			return settingsScript("vm1", "node3", Settings{Thumbprint: strings.Repeat("a", 40)}, bodyReverse)
		}, "only for Certificate"},
		{"thumbprint not hex", func() (string, error) {
			return settingsScript("vm1", "node3", Settings{Auth: "Certificate", Thumbprint: strings.Repeat("g", 40)}, bodyReverse)
		}, "40 hexadecimal digits"},
		{"port", func() (string, error) { return settingsScript("vm1", "node3", Settings{Port: 70000}, bodyReverse) }, "between 1 and 65535"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.f()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestLongestInputsFit: the longest VM name Hyper-V allows (100
// characters, here all quotes, which double) and a MAX_PATH configuration
// path still fit cmd.exe's command line in every script.
func TestLongestInputsFit(t *testing.T) {
	in := ScriptInput{
		VM:          strings.Repeat("'", 100),
		ConfigPath:  `T:\` + strings.Repeat("'", 260-3-len(".vmcx")) + ".vmcx",
		ReplicaHost: strings.Repeat("r", 63) + "." + strings.Repeat("c", 63) + ".example",
		Settings:    Settings{Auth: "Certificate", Thumbprint: strings.Repeat("A", 40)},
	}
	scripts, err := Scripts(in)
	if err != nil {
		t.Fatal(err)
	}
	longest := 0
	for _, s := range scripts {
		longest = max(longest, len(commandLine(s.Text)))
		if n := len(commandLine(s.Text)); n >= maxCommandLine {
			t.Errorf("%s: command line of %d characters with the longest inputs", s.Name, n)
		}
	}
	t.Logf("longest command line: %d characters (cmd.exe limit %d)", longest, maxCommandLine)
}

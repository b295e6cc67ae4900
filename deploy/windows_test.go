package deploy

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hvro/hvro/test/pstool"
)

// TestWindowsInstallParses parses install.ps1 with tree-sitter-powershell
// (test/pstool, as the replica driver's scripts are; a missing tool is a
// failure, .ci/run installs it) and checks the steps the README promises.
func TestWindowsInstallParses(t *testing.T) {
	script := filepath.Join("windows", "install.ps1")
	pstool.Parse(t, script)
	// The steps the README promises.
	text := string(read(t, script))
	for _, want := range []string{
		"#Requires -RunAsAdministrator",
		"service install --config $configPath --name $Name",
		"check-config --config $configPath",
		"SetAccessRuleProtection($true, $false)",
		"'S-1-5-18'",     // SYSTEM
		"'S-1-5-32-544'", // Administrators
	} {
		if !strings.Contains(text, want) {
			t.Errorf("%s: missing %q", script, want)
		}
	}
}

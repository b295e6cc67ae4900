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
		// A folder someone else created before keeps no owner but Administrators.
		"$acl.SetOwner($AdminsSid)",
		// Links inside are refused, never followed.
		"[System.IO.FileAttributes]::ReparsePoint",
		// The virtual service account by default, LocalSystem on request.
		"[string] $ServiceAccount = 'Virtual'",
		`"NT SERVICE\$Name"`,
		"& sc.exe config $Name obj= $account",
		// An upgrade keeps the account unless asked.
		"$PSBoundParameters.ContainsKey('ServiceAccount')",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("%s: missing %q", script, want)
		}
	}
	// icacls /reset /T and Get-ChildItem -Recurse follow junctions: an ACL
	// change would land wherever one points.
	for _, bad := range []string{"/reset", "-Recurse"} {
		for i, line := range strings.Split(text, "\n") {
			if strings.Contains(line, bad) && !strings.HasPrefix(strings.TrimSpace(line), "#") {
				t.Errorf("%s:%d: %q: %s", script, i+1, bad, strings.TrimSpace(line))
			}
		}
	}
}

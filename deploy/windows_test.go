package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWindowsInstallParses parses install.ps1 with tree-sitter-powershell
// (test/pstool, as the replica driver's scripts are), next to a broken
// canary that proves the parser rejects errors. Like that check, a missing
// tool is a failure: .ci/run installs it.
func TestWindowsInstallParses(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (%v): install Node.js, then run: (cd test/pstool && npm ci)", err)
	}
	tool := filepath.Join("..", "test", "pstool")
	for _, dep := range []string{"web-tree-sitter", "tree-sitter-powershell"} {
		if _, err := os.Stat(filepath.Join(tool, "node_modules", dep)); err != nil {
			t.Fatalf("%s is not installed: run: (cd test/pstool && npm ci)", dep)
		}
	}
	canary := filepath.Join(t.TempDir(), "canary.ps1")
	if err := os.WriteFile(canary, []byte("if ($x { 'unclosed'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join("windows", "install.ps1")
	out, err := exec.Command(node, filepath.Join(tool, "parse.mjs"), canary, script).CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte(canary+":")) {
		t.Fatalf("parse.mjs did not reject a broken script (exit %v):\n%s", err, out)
	}
	if bytes.Contains(out, []byte(script+":")) {
		t.Errorf("tree-sitter-powershell rejects %s:\n%s", script, out)
	}
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

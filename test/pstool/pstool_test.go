package pstool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ps1")
	bad := filepath.Join(dir, "bad.ps1")
	if err := os.WriteFile(good, []byte("$ErrorActionPreference = 'Stop'\nGet-VM -Name 'vm1' | ConvertTo-Json -Compress\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("try { Get-VM\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	problems, err := Check(t.TempDir(), good, bad)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) == 0 {
		t.Fatal("a broken script passed")
	}
	for _, p := range problems {
		if !strings.HasPrefix(p, bad+":") {
			t.Errorf("problem outside the broken script: %s", p)
		}
	}
	// A file parse.mjs cannot read is an error, never a clean pass.
	if _, err := Check(t.TempDir(), filepath.Join(dir, "missing.ps1")); err == nil {
		t.Error("a missing file passed")
	}
}

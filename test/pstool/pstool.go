// Package pstool runs parse.mjs (tree-sitter-powershell under Node.js) from
// Go tests: every PowerShell script hvro emits or ships must parse without
// an error node.
//
// A missing node or npm package is a test failure, not a skip: the check is
// part of CI (.ci/run installs both). Every run adds a broken canary script
// to prove the parser here can fail.
package pstool

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const install = "install Node.js >= 18, then run: (cd test/pstool && npm ci)"

// Parse parses files (paths as the caller's test sees them) and reports
// every parse problem with t.Errorf, one line per problem. A missing tool,
// or a canary the parser accepts, stops the test with t.Fatalf.
func Parse(t testing.TB, files ...string) {
	t.Helper()
	problems, err := Check(t.TempDir(), files...)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Errorf("tree-sitter-powershell rejects %d line(s) of the scripts:\n%s", len(problems), strings.Join(problems, "\n"))
	}
}

// Check is Parse without a testing.TB: scratch is a folder for the canary.
// It returns the parse problems of files ("file:line:col: ERROR ..."), or
// an error when the tool is missing or cannot be trusted.
func Check(scratch string, files ...string) ([]string, error) {
	if len(files) == 0 {
		return nil, errors.New("pstool: no files to parse")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("pstool: node not found (%v): %s", err, install)
	}
	dir, err := toolDir()
	if err != nil {
		return nil, err
	}
	for _, dep := range []string{"web-tree-sitter", "tree-sitter-powershell"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", dep)); err != nil {
			return nil, fmt.Errorf("pstool: %s is not installed in %s: %s", dep, dir, install)
		}
	}
	canary := filepath.Join(scratch, "pstool-canary.ps1")
	if err := os.WriteFile(canary, []byte("if ($x { 'unclosed'\n"), 0o644); err != nil {
		return nil, err
	}
	out, err := exec.Command(node, append([]string{filepath.Join(dir, "parse.mjs"), canary}, files...)...).CombinedOutput()
	// Exit 1 is "a parse problem", which the canary guarantees; anything
	// else (0, or 2 for usage and I/O errors) means the check did not run.
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		return nil, fmt.Errorf("pstool: parse.mjs did not reject the broken canary with exit 1 (%v):\n%s", err, out)
	}
	var problems []string
	canaryFound := false
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case strings.HasPrefix(line, canary+":"):
			canaryFound = true
		case strings.HasSuffix(line, "parse problem(s) in "+fmt.Sprint(len(files)+1)+" file(s)"):
		case line != "":
			problems = append(problems, line)
		}
	}
	if !canaryFound {
		return nil, fmt.Errorf("pstool: parse.mjs did not report the broken canary %s:\n%s", canary, out)
	}
	return problems, nil
}

// toolDir finds test/pstool: next to this source file, or else above the
// working directory (a -trimpath build has no absolute source path).
func toolDir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Dir(file)
		if _, err := os.Stat(filepath.Join(dir, "parse.mjs")); err == nil {
			return dir, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("pstool: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		dir := filepath.Join(d, "test", "pstool")
		if _, err := os.Stat(filepath.Join(dir, "parse.mjs")); err == nil {
			return dir, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("pstool: test/pstool/parse.mjs not found above %s", wd)
		}
	}
}

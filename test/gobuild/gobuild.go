// Package gobuild builds a command of this module for tests that run it as
// a real process (e2e runs hvro, chaos runs hvlab). The one thing to know:
// the binary is built by a "go build" subprocess whose reads the test
// cache cannot see, so such tests call DeclareSources while they run; the
// stats it makes are recorded, and a change to the code reruns the tests
// instead of replaying a cached pass.
package gobuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Build builds pkg (an import path) into dir and returns the binary's
// path. With the race detector on in the test, the binary gets it too.
func Build(dir, pkg string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	args := []string{"build", "-o", bin}
	if RaceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return bin, cmd.Run()
}

// DeclareSources stats every Go source of the module outside test/ (what
// the built commands are made of), once per test process.
var DeclareSources = sync.OnceFunc(func() {
	root := moduleRoot()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" ||
			path == filepath.Join(root, "test")):
			return filepath.SkipDir
		case !d.IsDir() && (strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") || d.Name() == "go.mod" || d.Name() == "go.sum"):
			_, _ = os.Stat(path)
		}
		return nil
	})
	if err != nil {
		// A walk that saw nothing would let the test cache replay a pass
		// after the code changed.
		panic(fmt.Sprintf("gobuild: stat the module's sources under %s: %v", root, err))
	}
})

// moduleRoot is the folder holding go.mod, found from the test's working
// directory (its package folder) upwards: runtime.Caller paths are module
// paths, not folders, under -trimpath.
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(fmt.Sprintf("gobuild: %v", err))
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			panic(fmt.Sprintf("gobuild: no go.mod above %s", dir))
		}
	}
}

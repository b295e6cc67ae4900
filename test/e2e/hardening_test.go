package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hvro/hvro/store"
)

// TestHardening drives the real hvro binary with what an outside review
// and an attack found: backups that must never destroy a file, and
// clients that send hostile requests or never read their answers.
func TestHardening(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.waitConverged("node1", "node3")
	section := func(name string, fn func(t *testing.T)) {
		t.Logf("--- %s", name)
		fn(t)
		e.checker.assertClean()
	}

	section("backup only adds files", func(t *testing.T) {
		live := filepath.Join(e.dir, "data", "hvro.db")
		liveBefore, err := os.Stat(live)
		must(t, err)
		bdir := t.TempDir()

		existing := filepath.Join(bdir, "yesterday.db")
		must(t, os.WriteFile(existing, []byte("yesterday's backup"), 0o600))
		if code, out := hvroCLI(t, nil, "backup", "--config", e.cfgPath, "--out", existing); code == 0 || !strings.Contains(out, "exists") {
			t.Errorf("backup --out an existing file: exit %d, %s; want non-zero", code, out)
		}
		if got, err := os.ReadFile(existing); err != nil || !bytes.Equal(got, []byte("yesterday's backup")) {
			t.Errorf("the existing file after a refused backup: %q, %v", got, err)
		}

		if code, out := hvroCLI(t, nil, "backup", "--config", e.cfgPath, "--out", live); code == 0 || !strings.Contains(out, "live store") {
			t.Errorf("backup --out the live store: exit %d, %s; want a refusal", code, out)
		}
		liveAfter, err := os.Stat(live)
		if err != nil || !os.SameFile(liveBefore, liveAfter) {
			t.Fatalf("the live store after backup --out it: %v (same file: %v)", err, err == nil && os.SameFile(liveBefore, liveAfter))
		}

		// The documented daily backup, twice: both copies stay.
		a, b := filepath.Join(bdir, "hvro-1.db"), filepath.Join(bdir, "hvro-2.db")
		for _, out := range []string{a, b} {
			if code, msg := hvroCLI(t, nil, "backup", "--config", e.cfgPath, "--out", out); code != 0 || !strings.Contains(msg, "online copy") {
				t.Fatalf("backup --out %s: exit %d, %s", out, code, msg)
			}
		}
		for _, out := range []string{a, b} {
			st, err := store.Open(out, store.Options{ReadOnly: true})
			if err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			err = st.View(func(tx store.Tx) error { _, err := tx.Pair("vm1"); return err })
			st.Close()
			if err != nil {
				t.Errorf("%s: %v", out, err)
			}
		}
		// hvro still runs on its store.
		e.waitConverged("node1", "node3")
		if status := e.api("POST", "/v1/pairs/vm1/reconcile", nil, nil); status != 202 {
			t.Errorf("reconcile after the backups: %d", status)
		}
	})
}

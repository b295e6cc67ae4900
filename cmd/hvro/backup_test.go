package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hvro/hvro/store"
)

// exampleConfig writes the shipped example config and its secret files to
// a temp folder and returns the config's path; its data_dir is ./data.
func exampleConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile("../../deploy/examples/hvro.yaml")
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "hvro.yaml"), data, 0o600))
	must(os.Mkdir(filepath.Join(dir, "secrets"), 0o700))
	for name, v := range map[string]string{
		"admin.token": "admin-token-0123456789abcdef", "winrm.pass": "winrm-pass",
		"ecx-cluster1.pass": "ecx1-pass", "ecx-cluster2.pass": "ecx2-pass",
		"hook-cluster1.token": "hook-token-cluster1-0123", "hook-cluster2.token": "hook-token-cluster2-0123",
	} {
		must(os.WriteFile(filepath.Join(dir, "secrets", name), []byte(v+"\n"), 0o600))
	}
	return filepath.Join(dir, "hvro.yaml")
}

// liveStore creates the store of the example config (hvro stopped) and
// returns its path.
func liveStore(t *testing.T, cfgPath string) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(cfgPath), "data", "hvro.db")
	st, err := store.Open(p, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx store.Tx) error {
		return tx.PutPair(store.Pair{Name: "vm1", PrimaryCluster: "cluster1", Phase: "Converged",
			Config: store.PairConfig{VMName: "vm1", Primary: store.Side{Cluster: "cluster1", Group: "failover1"}, Replica: store.Side{Cluster: "cluster2", Group: "failover2"}}})
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func runBackup(t *testing.T, cfgPath, out string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := backupCmd([]string{"--config", cfgPath, "--out", out}, &stdout, &stderr)
	return code, stdout.String() + stderr.String()
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%s is gone: %v", p, err)
	}
	return b
}

// leftovers lists the files of dir that are not in keep: a failed backup
// must not leave its temporary file behind.
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range ents {
		if !strings.Contains(strings.Join(keep, "\x00")+"\x00", e.Name()+"\x00") {
			extra = append(extra, e.Name())
		}
	}
	return extra
}

// TestBackupNeverReplacesOrRemoves: hvro backup only ever adds a file. An
// --out that exists stays byte for byte, the live store above all, however
// --out names it.
func TestBackupNeverReplacesOrRemoves(t *testing.T) {
	cfgPath := exampleConfig(t)
	dir := filepath.Dir(cfgPath)
	live := liveStore(t, cfgPath)
	liveBytes := readFile(t, live)

	t.Run("existing file", func(t *testing.T) {
		out := filepath.Join(dir, "precious.db")
		if err := os.WriteFile(out, []byte("yesterday's backup"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, msg := runBackup(t, cfgPath, out)
		if code == 0 || !strings.Contains(msg, "exists") {
			t.Errorf("backup to an existing file: exit %d, %q; want non-zero naming the existing file", code, msg)
		}
		if got := readFile(t, out); string(got) != "yesterday's backup" {
			t.Errorf("the existing file now holds %q", got)
		}
	})

	liveNames := map[string]string{
		"the store's path":     live,
		"a relative-ish path":  filepath.Join(dir, "data", ".", "hvro.db"),
		"through a dot-dot":    filepath.Join(dir, "secrets", "..", "data", "hvro.db"),
		"through a symlink":    filepath.Join(dir, "link.db"),
		"through a linked dir": filepath.Join(dir, "datalink", "hvro.db"),
		"through a hard link":  filepath.Join(dir, "hard.db"),
	}
	if runtime.GOOS != "windows" {
		if err := os.Symlink(live, filepath.Join(dir, "link.db")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(dir, "data"), filepath.Join(dir, "datalink")); err != nil {
			t.Fatal(err)
		}
	} else {
		delete(liveNames, "through a symlink")
		delete(liveNames, "through a linked dir")
	}
	if err := os.Link(live, filepath.Join(dir, "hard.db")); err != nil {
		t.Fatal(err)
	}
	for name, out := range liveNames {
		t.Run("live store "+name, func(t *testing.T) {
			code, msg := runBackup(t, cfgPath, out)
			if code == 0 || !strings.Contains(msg, "live store") {
				t.Errorf("backup --out %s: exit %d, %q; want a refusal naming the live store", out, code, msg)
			}
			if got := readFile(t, live); !bytes.Equal(got, liveBytes) {
				t.Errorf("the live store changed (%d bytes, was %d)", len(got), len(liveBytes))
			}
		})
	}
	if extra := leftovers(t, filepath.Join(dir, "data"), "hvro.db"); len(extra) > 0 {
		t.Errorf("data_dir holds %q after refused backups", extra)
	}

	t.Run("two names both survive", func(t *testing.T) {
		bdir := t.TempDir()
		a, b := filepath.Join(bdir, "hvro-a.db"), filepath.Join(bdir, "hvro-b.db")
		for _, out := range []string{a, b} {
			if code, msg := runBackup(t, cfgPath, out); code != 0 || !strings.Contains(msg, "offline copy") {
				t.Fatalf("backup --out %s: exit %d, %q", out, code, msg)
			}
		}
		for _, out := range []string{a, b} {
			st, err := store.Open(out, store.Options{ReadOnly: true})
			if err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if err := st.View(func(tx store.Tx) error { _, err := tx.Pair("vm1"); return err }); err != nil {
				t.Errorf("%s: %v", out, err)
			}
			st.Close()
			if fi, err := os.Stat(out); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %04o, want 0600", out, fi.Mode().Perm())
			}
		}
		if extra := leftovers(t, bdir, "hvro-a.db", "hvro-b.db"); len(extra) > 0 {
			t.Errorf("the backup folder holds %q besides the two copies", extra)
		}
		// The same name again: refused, and the first copy stays.
		before := readFile(t, a)
		if code, msg := runBackup(t, cfgPath, a); code == 0 {
			t.Errorf("a second backup to %s: exit 0, %q", a, msg)
		}
		if !bytes.Equal(readFile(t, a), before) {
			t.Errorf("a second backup to %s changed the first", a)
		}
	})

	t.Run("missing folder", func(t *testing.T) {
		out := filepath.Join(dir, "nope", "x.db")
		if code, msg := runBackup(t, cfgPath, out); code == 0 || !strings.Contains(msg, "nope") {
			t.Errorf("backup into a missing folder: exit %d, %q", code, msg)
		}
	})
	if got := readFile(t, live); !bytes.Equal(got, liveBytes) {
		t.Errorf("the live store changed")
	}
}

// TestCheckConfigWarnings: check-config accepts a config that sends
// secrets in cleartext (exit 0) but says so, one "warning:" line per
// finding naming the key; the shipped example has none.
func TestCheckConfigWarnings(t *testing.T) {
	cfgPath := exampleConfig(t)
	run := func() (int, string) {
		var out, errb bytes.Buffer
		code := checkConfigCmd([]string{"--config", cfgPath}, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run(); code != 0 || strings.Contains(out, "warning") {
		t.Errorf("the example: exit %d\n%s", code, out)
	}
	data := readFile(t, cfgPath)
	edited := strings.Replace(string(data), "auth: ntlm ", "auth: basic", 1)
	edited = strings.Replace(edited, "listen: 127.0.0.1:8080", "listen: 0.0.0.0:8080", 1)
	if err := os.WriteFile(cfgPath, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := run()
	var warnings []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "warning: ") {
			warnings = append(warnings, line)
		}
	}
	if code != 0 || len(warnings) != 5 || !strings.HasPrefix(warnings[0], "warning: listen (line ") ||
		!strings.HasPrefix(warnings[1], "warning: winrm.auth (line ") || !strings.Contains(warnings[1], "basic over http://node1.corp.example:5985") {
		t.Errorf("basic over http, listening everywhere without tls: exit %d\n%s", code, out)
	}
}

func TestLocalAddr(t *testing.T) {
	for in, want := range map[string]string{
		":8080": "127.0.0.1:8080", "0.0.0.0:8080": "127.0.0.1:8080", "[::]:8080": "[::1]:8080",
		"192.0.2.5:8080": "192.0.2.5:8080", "[2001:db8::5]:8080": "[2001:db8::5]:8080", "hvro.corp:8443": "hvro.corp:8443",
	} {
		if got := localAddr(in); got != want {
			t.Errorf("localAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

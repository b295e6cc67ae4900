package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestWarnings: what works but sends a secret in cleartext is a warning
// naming the key to change, with its line; the config still loads.
func TestWarnings(t *testing.T) {
	https := func(cluster string, nodes ...string) []edit {
		var es []edit
		for _, n := range nodes {
			es = append(es, edit{"clusters[" + cluster + "].servers." + n, `{winrm: "https://` + n + `.corp.example:5986/wsman"}`})
		}
		return es
	}
	allHTTPS := append(https("0", "node1", "node2"), https("1", "node3", "node4")...)
	tests := []struct {
		name  string
		edits []edit
		setup func(t *testing.T, dir string)
		want  []string // "path: part of the message", in order
	}{
		{name: "the example has none"},
		{name: "basic over http", edits: []edit{{"winrm.auth", "basic"}}, want: []string{
			"winrm.auth: basic over http://node1.corp.example:5985 (clusters[0].servers.node1) sends the password in cleartext; use ntlm, or https",
			"winrm.auth: basic over http://node2.corp.example:5985 (clusters[0].servers.node2)",
			"winrm.auth: basic over http://node3.corp.example:5985 (clusters[1].servers.node3)",
			"winrm.auth: basic over http://node4.corp.example:5985 (clusters[1].servers.node4)",
		}},
		{name: "basic by default over http", edits: []edit{{"winrm.auth", del}}, want: []string{
			"winrm.auth: basic over http://node1.corp.example:5985", "winrm.auth: basic over http://node2", "winrm.auth: basic over http://node3", "winrm.auth: basic over http://node4"}},
		{name: "basic over http for one server", edits: append(append(https("0", "node1"), https("1", "node3", "node4")...), edit{"winrm.auth", "basic"}),
			want: []string{"winrm.auth: basic over http://node2.corp.example:5985 (clusters[0].servers.node2)"}},
		{name: "basic over https", edits: append(allHTTPS, edit{"winrm.auth", "basic"})},
		{name: "ntlm over http"},
		{name: "listen on every interface", edits: []edit{{"listen", ":8080"}},
			want: []string{`listen: ":8080" (every interface) is not a loopback address and tls is not set: the admin token and hook tokens cross the network in cleartext; set tls.cert_file and tls.key_file`}},
		{name: "listen on 0.0.0.0", edits: []edit{{"listen", "0.0.0.0:8080"}}, want: []string{`listen: "0.0.0.0:8080" (every interface) is not a loopback`}},
		{name: "listen on an address", edits: []edit{{"listen", "192.0.2.5:8080"}}, want: []string{`listen: "192.0.2.5:8080" is not a loopback address`}},
		{name: "listen on a name", edits: []edit{{"listen", "hvro.corp.example:8080"}}, want: []string{`listen: "hvro.corp.example:8080" is not a loopback address`}},
		{name: "listen on localhost", edits: []edit{{"listen", "localhost:8080"}}},
		// Windows raises a shorter request to its minimum, which the restart
		// hold would not wait for; the driver refuses such a host.
		{name: "shell idle timeout below Windows' minimum", edits: []edit{{"winrm.shell_idle_timeout", "10s"}},
			want: []string{"winrm.shell_idle_timeout: 10s is below the 1m Windows hosts grant at least: they keep an idle shell 1m, longer than a restart of hvro waits for an orphaned command, and hvro refuses to run commands on a host that reports it; use at least 1m (shorter values are for emulated labs)"}},
		{name: "shell idle timeout at Windows' minimum", edits: []edit{{"winrm.shell_idle_timeout", "60s"}}},
		{name: "listen on ::1", edits: []edit{{"listen", "'[::1]:8080'"}}},
		{name: "listen on 127.0.0.2", edits: []edit{{"listen", "127.0.0.2:8080"}}},
		{name: "listen on every interface with tls", setup: tlsFiles,
			edits: []edit{{"listen", ":8443"}, {"tls", "{cert_file: tls/api.crt, key_file: tls/api.key}"}}},
	}
	base := exampleYAML(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := exampleDir(t)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			c, err := Parse(mutate(t, base, tc.edits...), dir, WithEnv(fakeEnv))
			if err != nil {
				t.Fatalf("a config with warnings must load: %v", err)
			}
			var got []string
			for _, w := range c.Warnings {
				got = append(got, w.String())
				if w.Line == 0 {
					t.Errorf("warning without a line: %v", w)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("warnings:\n%s\nwant %d:\n%s", strings.Join(got, "\n"), len(tc.want), strings.Join(tc.want, "\n"))
			}
			for i, w := range tc.want {
				path, msg, _ := strings.Cut(w, ": ")
				if c.Warnings[i].Path != path || !strings.Contains(c.Warnings[i].Msg, msg) {
					t.Errorf("warning %d: %s; want %s: ...%s...", i, got[i], path, msg)
				}
			}
			// Validate finds the same.
			c.Warnings = nil
			if err := c.Validate(); err != nil || len(c.Warnings) != len(tc.want) {
				t.Errorf("Validate: %v, %d warnings, want %d", err, len(c.Warnings), len(tc.want))
			}
		})
	}
}

// probeFiles is the real file system, except that ProbeDir of one folder
// fails as a read-only mount would.
type probeFiles struct {
	osFiles
	readOnly string
}

func (p probeFiles) ProbeDir(dir string) error {
	if dir == p.readOnly {
		return &fs.PathError{Op: "open", Path: dir + "/.hvro-check-config-1", Err: syscall.EROFS}
	}
	return p.osFiles.ProbeDir(dir)
}

// TestDataDirWritable: check-config refuses a data_dir hvro could not
// write its store to, and leaves no trace in one it can.
func TestDataDirWritable(t *testing.T) {
	dir := exampleDir(t)
	data := filepath.Join(dir, "data")
	mkdir(t, data)
	base := exampleYAML(t)
	if _, err := Parse(base, dir, WithEnv(fakeEnv)); err != nil {
		t.Fatalf("a writable data_dir: %v", err)
	}
	if ents, _ := os.ReadDir(data); len(ents) != 0 {
		t.Errorf("the check left %d files in data_dir", len(ents))
	}
	_, err := Parse(base, dir, WithEnv(fakeEnv), WithFiles(probeFiles{readOnly: data}))
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].Path != "data_dir" || !strings.Contains(ps[0].Msg, `"`+data+`" is not writable: read-only file system`) || ps[0].Line == 0 {
		t.Errorf("a read-only data_dir: %v", err)
	}
	// hvro backup only reads the store: a read-only data_dir is fine there.
	if _, err := Parse(base, dir, WithEnv(fakeEnv), WithFiles(probeFiles{readOnly: data}), ReadOnly()); err != nil {
		t.Errorf("a read-only data_dir for a reader: %v", err)
	}
	if runtime.GOOS == "linux" {
		// Even root cannot create a file in /proc: the real probe.
		_, err := Parse(mutate(t, base, edit{"data_dir", "/proc"}), dir, WithEnv(fakeEnv))
		if ps := problemsOf(t, err); len(ps) != 1 || !strings.Contains(ps[0].Msg, `"/proc" is not writable`) {
			t.Errorf("data_dir /proc: %v", err)
		}
	}
}

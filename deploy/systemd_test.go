package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/cmd/hvro/config"
)

// unitDirectives reads a unit file into section.key -> values, in order.
func unitDirectives(t *testing.T, data []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = strings.Trim(l, "[]")
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("hvro.service:%d: %q is not key=value inside a section", i+1, l)
			}
			out[section+"."+strings.TrimSpace(k)] = append(out[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	d := unitDirectives(t, read(t, filepath.Join("systemd", "hvro.service")))
	want := map[string]string{
		"Service.User":                     "hvro",
		"Service.Group":                    "hvro",
		"Service.ExecStart":                "/usr/local/bin/hvro serve --config /etc/hvro/hvro.yaml",
		"Service.ExecReload":               "/bin/kill -HUP $MAINPID",
		"Service.KillSignal":               "SIGTERM",
		"Service.Restart":                  "on-failure",
		"Service.RestartPreventExitStatus": "2",
		"Service.StateDirectory":           "hvro",
		"Service.ConfigurationDirectory":   "hvro",
		"Service.ProtectSystem":            "strict",
		"Service.ProtectHome":              "yes",
		"Service.PrivateTmp":               "yes",
		"Service.NoNewPrivileges":          "yes",
		"Service.CapabilityBoundingSet":    "",
		"Service.AmbientCapabilities":      "",
		"Service.RestrictAddressFamilies":  "AF_INET AF_INET6 AF_UNIX",
		"Service.UMask":                    "0077",
		"Service.MemoryMax":                "512M",
		"Install.WantedBy":                 "multi-user.target",
	}
	for k, v := range want {
		got, ok := d[k]
		switch {
		case !ok:
			t.Errorf("hvro.service: %s= is missing (want %q)", k, v)
		case len(got) != 1 || got[0] != v:
			t.Errorf("hvro.service: %s=%q, want exactly %q", k, got, v)
		}
	}
	if !slices.Contains(d["Service.SystemCallFilter"], "@system-service") {
		t.Errorf("hvro.service: SystemCallFilter=%q lacks @system-service", d["Service.SystemCallFilter"])
	}
	if _, ok := d["Service.DynamicUser"]; ok {
		t.Error("hvro.service: DynamicUser= is set; the unit runs as the fixed user hvro (README.md says why)")
	}
	// The drain must fit into the stop timeout, or systemd kills hvro in
	// the middle of a step.
	stop, err := time.ParseDuration(strings.Join(d["Service.TimeoutStopSec"], ""))
	if err != nil {
		t.Fatalf("hvro.service: TimeoutStopSec=%q: want a plain duration such as 150s: %v", d["Service.TimeoutStopSec"], err)
	}
	if drain := config.Defaults().ShutdownTimeout; stop < drain+15*time.Second {
		t.Errorf("hvro.service: TimeoutStopSec=%s leaves no margin above the default shutdown_timeout %s", stop, drain)
	}
}

// systemdAnalyze finds systemd-analyze. Like promtool and node, a missing
// tool is a failure (.ci/run installs the systemd package); only
// HVRO_SKIP_SYSTEMD=1 turns it into a skip, out loud.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err == nil {
		return p
	}
	if os.Getenv("HVRO_SKIP_SYSTEMD") == "1" {
		t.Skip("systemd-analyze not installed and HVRO_SKIP_SYSTEMD=1: only TestSystemdUnit's text checks ran")
	}
	t.Fatal("systemd-analyze not found: apt-get install -y systemd (.ci/run does; it needs no running systemd), or set HVRO_SKIP_SYSTEMD=1")
	return ""
}

// offlineSecuritySince is the first systemd whose "systemd-analyze
// security" takes --offline (and --threshold): 250.
const offlineSecuritySince = 250

// systemdVersion reads the major version from "systemd 252 (252.38-1~deb12u1)".
func systemdVersion(t *testing.T, sa string) int {
	t.Helper()
	out, err := exec.Command(sa, "--version").Output()
	if err != nil {
		t.Fatalf("systemd-analyze --version: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != "systemd" {
		t.Fatalf("systemd-analyze --version: unexpected %q", lastLines(out, 1))
	}
	v, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("systemd-analyze --version: version %q is not a number", f[1])
	}
	return v
}

// TestSystemdVerify lets systemd itself judge the unit: systemd-analyze
// verify and security work without systemd running as PID 1 (in CI
// containers too). Canaries prove that each check can fail here.
func TestSystemdVerify(t *testing.T) {
	sa := systemdAnalyze(t)
	dir := t.TempDir()
	// verify insists that ExecStart's binary exists: point it at a stub.
	stub := filepath.Join(dir, "hvro")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(read(t, filepath.Join("systemd", "hvro.service"))), "/usr/local/bin/hvro", stub)
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	verify := func(path string) ([]byte, error) {
		return exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
	}
	// A misspelt directive: verify only warns (exit 0), so any output fails.
	canary := write("canary.service", strings.Replace(unit, "[Service]\n", "[Service]\nProtectSytem=strict\n", 1))
	if out, err := verify(canary); err == nil && len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("systemd-analyze verify accepted a misspelt directive in %s", canary)
	}
	path := write("hvro.service", unit)
	if out, err := verify(path); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	if v := systemdVersion(t, sa); v < offlineSecuritySince {
		// Older systemd (Debian 11 has 247) rates only loaded units. The
		// sandbox is then checked by TestSystemdUnit's directives alone.
		t.Logf("systemd %d has no offline security check (since %d); TestSystemdUnit's directive checks stand in for it", v, offlineSecuritySince)
		return
	}
	// Exposure 0 (locked down) to 10 (unprotected), --threshold in tenths;
	// the unit scores about 1.1. The unit without its sandbox must fail.
	security := func(path string) ([]byte, error) {
		return exec.Command(sa, "security", "--offline=yes", "--threshold=20", "--no-pager", path).CombinedOutput()
	}
	bare := write("bare.service", "[Unit]\nDescription=canary\n[Service]\nExecStart="+stub+"\n")
	if out, err := security(bare); err == nil {
		t.Fatalf("systemd-analyze security passed a unit without a sandbox:\n%s", lastLines(out, 3))
	}
	if out, err := security(path); err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 or an error: %v\n%s", err, lastLines(out, 5))
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// TestSystemdVerify lets systemd itself judge the unit, where it is
// installed: systemd-analyze verify and security work without systemd
// running as PID 1.
func TestSystemdVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; TestSystemdUnit checks the text")
	}
	dir := t.TempDir()
	// verify insists that ExecStart's binary exists: point it at a stub.
	stub := filepath.Join(dir, "hvro")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(read(t, filepath.Join("systemd", "hvro.service"))), "/usr/local/bin/hvro", stub)
	path := filepath.Join(dir, "hvro.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Exposure 0 (locked down) to 10 (unprotected); the unit scores about 1.1.
	out, err = exec.Command(sa, "security", "--offline=yes", "--threshold=20", "--no-pager", path).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("unrecognized option")) {
			t.Logf("this systemd-analyze has no offline security check:\n%s", out)
			return
		}
		t.Errorf("systemd-analyze security: exposure above 2.0 or an error: %v\n%s", err, lastLines(out, 3))
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

package wsman_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv/wsman"
	"github.com/hvro/hvro/test/sim/pywinrm"
	"github.com/hvro/hvro/test/within"
)

type pyResult = pywinrm.Result

func needPywinrm(t *testing.T) {
	t.Helper()
	pywinrm.Require(t)
}

// runPy runs one pywinrm scenario; spec keys are those of pywinrm.Spec.
func runPy(t *testing.T, spec map[string]any) pyResult {
	t.Helper()
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var s pywinrm.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("spec %s: %v", data, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := pywinrm.Run(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestPywinrmCommands(t *testing.T) {
	needPywinrm(t)
	rec := newRecorder()
	h := startHost(t, wsman.HostConfig{Server: baseConfig(rec)})
	url := h.HTTPURL()
	tests := []struct {
		name                   string
		spec                   map[string]any
		stdout, stderr, errCls string
		code                   int64
	}{
		{name: "run_cmd hostname", spec: map[string]any{"kind": "run_cmd", "command": "hostname"}, stdout: "NODE1\r\n"},
		// The same line and result as a Windows capture (pypsrp
		// test_winrs_stderr_rc.yml): trailing spaces before && are kept.
		{name: "run_cmd stderr and exit code", spec: map[string]any{"kind": "run_cmd", "command": "cmd.exe", "args": []string{"/c echo out && echo err>&2 && exit 1"}},
			stdout: "out \r\n", stderr: "err \r\n", code: 1},
		{name: "run_ps", spec: map[string]any{"kind": "run_ps", "script": "out hello from ps; exit 0"}, stdout: "hello from ps\r\n"},
		{name: "powershell stderr through Protocol", spec: map[string]any{"kind": "protocol", "command": "powershell -encodedcommand " + wsman.EncodeCommand("out a; err b; exit 5")},
			stdout: "a\r\n", stderr: "b\r\n", code: 5},
		// powershell.exe 5.1: the error on stderr, its usage on stdout, exit
		// code 0xFFFD0000 (unsigned as WinRM reports it).
		{name: "bad EncodedCommand", spec: map[string]any{"kind": "protocol", "command": "powershell -encodedcommand !!notbase64"},
			stdout: "\r\nPowerShell[.exe] ",
			stderr: "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.\r\n",
			code:   4294770688},
		{name: "wrong password", spec: map[string]any{"kind": "run_cmd", "command": "hostname", "password": "nope"}, errCls: "InvalidCredentialsError"},
		{name: "machine-qualified local account", spec: map[string]any{"kind": "run_cmd", "command": "hostname", "user": `NODE1\admin`}, errCls: "InvalidCredentialsError"},
		{name: "slow command beyond operation timeout", spec: map[string]any{"kind": "protocol", "command": "powershell -encodedcommand " + wsman.EncodeCommand("sleep 2500; out late"),
			"operation_timeout": 1, "read_timeout": 10}, stdout: "late\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec["url"] = url
			res := runPy(t, tc.spec)
			if res.Error != tc.errCls {
				t.Fatalf("error %s %q, want %q", res.Error, res.Message, tc.errCls)
			}
			if tc.errCls != "" {
				return
			}
			stdoutOK := res.Stdout == tc.stdout
			if tc.name == "bad EncodedCommand" {
				stdoutOK = strings.HasPrefix(res.Stdout, tc.stdout)
			}
			if !stdoutOK || res.Stderr != tc.stderr || res.Code != tc.code {
				t.Errorf("stdout %q stderr %q code %d, want %q %q %d", res.Stdout, res.Stderr, res.Code, tc.stdout, tc.stderr, tc.code)
			}
		})
	}
	var scripts []string
	for _, r := range rec.wait(t, 6) {
		if r.Script != "" {
			scripts = append(scripts, r.Script)
		}
	}
	want := "out hello from ps; exit 0"
	found := false
	for _, s := range scripts {
		found = found || s == want
	}
	if !found {
		t.Errorf("decoded scripts %q lack %q", scripts, want)
	}
}

func TestPywinrmShellQuota(t *testing.T) {
	needPywinrm(t)
	h := startHost(t, wsman.HostConfig{Server: baseConfig(nil)})
	res := runPy(t, map[string]any{"kind": "quota", "url": h.HTTPURL(), "count": 31})
	const want = "The WS-Management service cannot process the request. This user is allowed a maximum number of 30 concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user."
	if res.Opened != 30 || res.Error != "WinRMError" || !strings.HasPrefix(res.Message, want) || !strings.Contains(res.Message, "'wsmanfault_code': '2150859173'") {
		t.Fatalf("opened %d, error %s %q", res.Opened, res.Error, res.Message)
	}
	// The script closed its shells; all quota is free again.
	if n := h.Server().Shells(); n != 0 {
		t.Errorf("%d shells left", n)
	}
}

func TestPywinrmHTTPS(t *testing.T) {
	needPywinrm(t)
	ca, tlsCfg := labTLS(t, "node1.lab.local")
	h := startHost(t, wsman.HostConfig{Server: baseConfig(nil), HTTPSAddr: "127.0.0.1:0", TLS: tlsCfg})
	for _, tc := range []struct {
		name   string
		spec   map[string]any
		errCls string
	}{
		{name: "validated with the lab CA", spec: map[string]any{"ca": ca.CertFile()}},
		{name: "validation ignored", spec: map[string]any{"cert_validation": "ignore"}},
		{name: "system trust store rejects the lab CA", spec: map[string]any{}, errCls: "SSLError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := map[string]any{"kind": "run_cmd", "url": h.HTTPSURL(), "transport": "ssl", "command": "hostname"}
			for k, v := range tc.spec {
				spec[k] = v
			}
			res := runPy(t, spec)
			if res.Error != tc.errCls {
				t.Fatalf("error %s %q, want %q", res.Error, res.Message, tc.errCls)
			}
			if tc.errCls == "" && res.Stdout != "NODE1\r\n" {
				t.Errorf("stdout %q", res.Stdout)
			}
		})
	}
}

// TestPywinrmIdleTimeout: pywinrm 0.3.0 sends open_shell's idle_timeout
// unconverted after the streams. An xs:duration string works (the shell of
// a client that then dies is deleted after it, cancelling its command); the
// bare milliseconds of pywinrm issue #377 get Windows' SchemaValidationError.
func TestPywinrmIdleTimeout(t *testing.T) {
	needPywinrm(t)
	rec := newRecorder()
	cfg := baseConfig(rec)
	cfg.MinShellIdleTimeout = 100 * time.Millisecond
	h := startHost(t, wsman.HostConfig{Server: cfg})
	url := h.HTTPURL()

	res := runPy(t, map[string]any{"kind": "protocol", "url": url, "command": "hostname", "idle_timeout": "PT30S"})
	if res.Error != "" || res.Stdout != "NODE1\r\n" {
		t.Fatalf("with idle_timeout PT30S: stdout %q, error %s %q", res.Stdout, res.Error, res.Message)
	}

	res = runPy(t, map[string]any{"kind": "protocol", "url": url, "command": "hostname", "idle_timeout": 3600000})
	const reason = "The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML and retry. "
	if res.Error != "WinRMError" || !strings.HasPrefix(res.Message, reason) ||
		!strings.Contains(res.Message, "'wsmanfault_code': '2150858817'") || !strings.Contains(res.Message, "'fault_subcode': 'w:SchemaValidationError'") {
		t.Fatalf("with idle_timeout 3600000: error %s %q, want WinRMError with SchemaValidationError 2150858817", res.Error, res.Message)
	}

	start := time.Now()
	res = runPy(t, map[string]any{"kind": "orphan", "url": url, "command": "powershell", "args": []string{"-Command", "sleep 30000; out never"}, "idle_timeout": "PT1S"})
	if res.Error != "" {
		t.Fatalf("orphan: error %s %q", res.Error, res.Message)
	}
	recs := rec.wait(t, 2)
	last := recs[len(recs)-1]
	if !last.Canceled || last.Script != "sleep 30000; out never" {
		t.Fatalf("the orphaned command was not cancelled: %+v", last)
	}
	if took := last.Start.Add(last.Duration).Sub(start); took > 10*time.Second {
		t.Errorf("the orphaned command ran %v, far beyond its shell's 1s idle timeout", took)
	}
	within.Eventually(t, "the orphaned shell to be deleted", func() bool { return h.Server().Shells() == 0 })
}

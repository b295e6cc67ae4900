package wsman_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/masterzen/winrm"

	"github.com/hvro/hvro/test/sim/hyperv/wsman"
	"github.com/hvro/hvro/test/sim/mzwinrm"
)

// mzClient connects masterzen/winrm (the module hvro uses) to a host. With
// checked, SOAP faults become errors (see mzwinrm.FaultChecking).
func mzClient(t *testing.T, addr string, https bool, cacert []byte, user, pass, opTimeout string, checked ...bool) *winrm.Client {
	t.Helper()
	c, err := mzwinrm.Client(addr, mzwinrm.Options{HTTPS: https, CACert: cacert, User: user, Password: pass,
		OperationTimeout: opTimeout, HeaderTimeout: 20 * time.Second, Unchecked: len(checked) == 0 || !checked[0]})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMasterzenRunCommands(t *testing.T) {
	rec := newRecorder()
	h := startHost(t, wsman.HostConfig{Server: baseConfig(rec)})
	c := mzClient(t, h.HTTPAddr(), false, nil, testUser, testPassword, "PT10S")

	tests := []struct {
		name       string
		ps         bool
		command    string
		wantStdout string
		wantStderr string
		wantCode   int
	}{
		{name: "hostname", command: "hostname", wantStdout: "NODE1\r\n"},
		{name: "cmd echo with exit code", command: "cmd /c echo hi & exit /b 7", wantStdout: "hi \r\n", wantCode: 7},
		{name: "unknown program", command: "frobnicate --now", wantStderr: "'frobnicate' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", wantCode: 9009},
		{name: "powershell stdout stderr exit", ps: true, command: "out one; err two; exit 3", wantStdout: "one\r\n", wantStderr: "two\r\n", wantCode: 3},
		{name: "powershell script reaches the interpreter", ps: true, command: "echo-script",
			wantStdout: "$ProgressPreference = 'SilentlyContinue';echo-script"},
		{name: "exit code above 2^31", ps: true, command: "exit -196608", wantCode: -196608},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr string
			var code int
			var err error
			if tc.ps {
				stdout, stderr, code, err = c.RunPSWithString(tc.command, "")
			} else {
				stdout, stderr, code, err = c.RunWithString(tc.command, "")
			}
			if err != nil {
				t.Fatal(err)
			}
			if stdout != tc.wantStdout || stderr != tc.wantStderr {
				t.Errorf("stdout %q stderr %q, want %q and %q", stdout, stderr, tc.wantStdout, tc.wantStderr)
			}
			// masterzen parses the unsigned ExitCode with Atoi.
			if want := int(uint32(tc.wantCode)); code != want {
				t.Errorf("exit code %d, want %d", code, want)
			}
		})
	}
	recs := rec.wait(t, len(tests))
	var ps int
	for _, r := range recs {
		if r.User != testUser || r.Host != "NODE1" || r.ShellID == "" || r.CommandID == "" {
			t.Errorf("record %+v lacks identity", r)
		}
		if strings.HasPrefix(r.CommandLine, "powershell.exe -EncodedCommand ") {
			ps++
			if !strings.HasPrefix(r.Script, "$ProgressPreference = 'SilentlyContinue';") {
				t.Errorf("record script %q not decoded", r.Script)
			}
		}
	}
	if ps != 3 {
		t.Errorf("%d PowerShell records, want 3", ps)
	}
	if n := h.Server().Shells(); n != 0 {
		t.Errorf("%d shells left open after RunWithString closed them", n)
	}
}

func TestMasterzenSlowCommandOutlivesOperationTimeout(t *testing.T) {
	h := startHost(t, wsman.HostConfig{Server: baseConfig(nil)})
	// OperationTimeout 1s, command 2.5s: the client receives TimedOut faults
	// and polls again; Endpoint.Timeout (20s) stays above OperationTimeout.
	// The plain client retries because it ignores the fault; the checked one
	// because the fault text names OperationTimeout.
	for _, checked := range []bool{false, true} {
		c := mzClient(t, h.HTTPAddr(), false, nil, testUser, testPassword, "PT1S", checked)
		start := time.Now()
		stdout, stderr, code, err := c.RunPSWithString("sleep 2500; out done; exit 4", "")
		if err != nil {
			t.Fatalf("checked=%v: %v", checked, err)
		}
		if stdout != "done\r\n" || stderr != "" || code != 4 {
			t.Errorf("checked=%v: got %q %q %d", checked, stdout, stderr, code)
		}
		if el := time.Since(start); el < 2500*time.Millisecond {
			t.Errorf("checked=%v: finished after %s, before the command could", checked, el)
		}
	}
}

func TestMasterzenWrongPassword(t *testing.T) {
	h := startHost(t, wsman.HostConfig{Server: baseConfig(nil)})
	for _, cred := range [][2]string{{testUser, "wrong"}, {"nobody", testPassword}, {`NODE1\admin`, testPassword}} {
		c := mzClient(t, h.HTTPAddr(), false, nil, cred[0], cred[1], "PT10S")
		_, _, _, err := c.RunWithString("hostname", "")
		// A 401 without a SOAP body: masterzen reports the content type.
		if err == nil || err.Error() != "http response error: 401 - invalid content type" {
			t.Errorf("%s: err %v, want the 401 error", cred[0], err)
		}
	}
}

func TestMasterzenDomainAccount(t *testing.T) {
	h := startHost(t, wsman.HostConfig{Server: baseConfig(nil)})
	c := mzClient(t, h.HTTPAddr(), false, nil, `lab\SVC`, domainPass, "PT10S")
	stdout, _, code, err := c.RunWithString("whoami", "")
	if err != nil || code != 0 || stdout != "lab\\svc\r\n" {
		t.Fatalf("whoami as domain user: %q %d %v", stdout, code, err)
	}

	cfg := baseConfig(nil)
	cfg.BasicLocalOnly = true
	strict := startHost(t, wsman.HostConfig{Server: cfg})
	c = mzClient(t, strict.HTTPAddr(), false, nil, domainUser, domainPass, "PT10S")
	if _, _, _, err := c.RunWithString("whoami", ""); err == nil {
		t.Fatal("domain account accepted with BasicLocalOnly")
	}
}

func TestMasterzenHTTPS(t *testing.T) {
	ca, tlsCfg := labTLS(t, "node1.lab.local")
	h := startHost(t, wsman.HostConfig{Server: baseConfig(nil), HTTPSAddr: "127.0.0.1:0", TLS: tlsCfg})

	c := mzClient(t, h.HTTPSAddr(), true, ca.CertPEM(), testUser, testPassword, "PT10S")
	stdout, _, code, err := c.RunWithString("hostname", "")
	if err != nil || code != 0 || stdout != "NODE1\r\n" {
		t.Fatalf("over HTTPS: %q %d %v", stdout, code, err)
	}

	// Without the lab CA the certificate must not verify.
	other, err := wsman.NewLabCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c = mzClient(t, h.HTTPSAddr(), true, other.CertPEM(), testUser, testPassword, "PT10S")
	if _, _, _, err := c.RunWithString("hostname", ""); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("foreign CA: err %v, want a certificate error", err)
	}
}

func TestMasterzenShellQuota(t *testing.T) {
	h := startHost(t, wsman.HostConfig{Server: baseConfig(nil)})
	c := mzClient(t, h.HTTPAddr(), false, nil, testUser, testPassword, "PT10S", true)
	var shells []*winrm.Shell
	defer func() {
		for _, s := range shells {
			_ = s.Close()
		}
	}()
	for i := 0; i < 30; i++ {
		s, err := c.CreateShell()
		if err != nil {
			t.Fatalf("shell %d: %v", i+1, err)
		}
		shells = append(shells, s)
	}
	_, err := c.CreateShell()
	const want = "This user is allowed a maximum number of 30 concurrent shells, which has been exceeded."
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `Code="2150859173"`) {
		t.Fatalf("31st shell: err %v, want the quota fault", err)
	}
	// The plain client swallows the fault: CreateShell "succeeds" with an
	// empty ShellId (any command on it would then poll forever), and the
	// server has still only 30 shells.
	plain := mzClient(t, h.HTTPAddr(), false, nil, testUser, testPassword, "PT10S")
	if _, err := plain.CreateShell(); err != nil {
		t.Errorf("plain masterzen reported the fault (%v); its fault handling changed, update the report", err)
	}
	if n := h.Server().Shells(); n != 30 {
		t.Errorf("%d shells open, want 30", n)
	}
	// Another user has a quota of their own.
	other := mzClient(t, h.HTTPAddr(), false, nil, domainUser, domainPass, "PT10S", true)
	s, err := other.CreateShell()
	if err != nil {
		t.Fatalf("other user's shell: %v", err)
	}
	_ = s.Close()
	// Closing a shell frees a slot.
	if err := shells[0].Close(); err != nil {
		t.Fatal(err)
	}
	shells = shells[1:]
	s, err = c.CreateShell()
	if err != nil {
		t.Fatalf("shell after closing one: %v", err)
	}
	shells = append(shells, s)
}

func TestMasterzenCommandLineTooLong(t *testing.T) {
	rec := newRecorder()
	h := startHost(t, wsman.HostConfig{Server: baseConfig(rec)})
	c := mzClient(t, h.HTTPAddr(), false, nil, testUser, testPassword, "PT10S")

	// The line is "powershell.exe -EncodedCommand " (31 characters) plus the
	// base64 of the UTF-16LE script with masterzen's 41-character prefix.
	lineLen := func(script string) int {
		full := "$ProgressPreference = 'SilentlyContinue';" + script
		return 31 + base64.StdEncoding.EncodedLen(2*len(utf16.Encode([]rune(full))))
	}
	fits := "out " + strings.Repeat("x", 3000)
	for lineLen(fits+"y") <= 8191 {
		fits += "y"
	}
	tooLong := fits + strings.Repeat("z", 3)
	if lineLen(fits) > 8191 || lineLen(tooLong) <= 8191 {
		t.Fatalf("bad fixture: %d %d", lineLen(fits), lineLen(tooLong))
	}

	stdout, stderr, code, err := c.RunPSWithString(fits, "")
	if err != nil || code != 0 || !strings.HasPrefix(stdout, "xxx") {
		t.Fatalf("line of %d characters: %q %q %d %v", lineLen(fits), stdout[:min(20, len(stdout))], stderr, code, err)
	}
	stdout, stderr, code, err = c.RunPSWithString(tooLong, "")
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "" || stderr != "The command line is too long.\r\n" || code != 1 {
		t.Fatalf("line of %d characters: %q %q %d", lineLen(tooLong), stdout, stderr, code)
	}
	recs := rec.wait(t, 2)
	if recs[1].Script != "" || recs[1].ExitCode != 1 {
		t.Errorf("too-long record ran PowerShell: %+v", recs[1].Script)
	}
}

func TestMasterzenStdinIsAccepted(t *testing.T) {
	h := startHost(t, wsman.HostConfig{Server: baseConfig(nil)})
	c := mzClient(t, h.HTTPAddr(), false, nil, testUser, testPassword, "PT10S")
	// The command does not read stdin; the Send requests must still succeed.
	stdout, _, code, err := c.RunWithString("hostname", "some input\r\n")
	if err != nil || code != 0 || stdout != "NODE1\r\n" {
		t.Fatalf("%q %d %v", stdout, code, err)
	}
}

func TestMasterzenConcurrentClients(t *testing.T) {
	rec := newRecorder()
	h := startHost(t, wsman.HostConfig{Server: baseConfig(rec)})
	const clients, runs = 8, 5
	errs := make(chan error, clients*runs)
	for i := 0; i < clients; i++ {
		c := mzClient(t, h.HTTPAddr(), false, nil, testUser, testPassword, "PT10S", true)
		go func() {
			for j := 0; j < runs; j++ {
				want := strings.Repeat("x", i*100+j)
				out, _, code, err := c.RunPSWithString("out "+want+"; exit "+string(rune('0'+j)), "")
				if err == nil && (out != want+"\r\n" || code != j) {
					err = errors.New("wrong result " + out)
				}
				errs <- err
			}
		}()
	}
	for i := 0; i < clients*runs; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := len(rec.wait(t, clients*runs)); n != clients*runs {
		t.Errorf("%d records", n)
	}
}

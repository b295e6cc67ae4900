// Package pywinrm drives Debian's python3-winrm (pywinrm 0.3.0), a WinRM
// client nobody on this project wrote, from Go tests, so the emulated hosts
// are checked against a real third-party implementation.
package pywinrm

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Python is Debian's interpreter: python3-winrm imports only under it, and
// another python3 may come first on PATH.
const Python = "/usr/bin/python3"

//go:embed client.py
var client string

// Spec is one scenario for client.py. Kind is run_cmd, run_ps (Session
// API), protocol (a command through Protocol, which survives stderr where
// run_ps 0.3.0 crashes on Python 3), orphan (start a command through
// Protocol and exit without waiting for it or deleting the shell) or quota
// (open Count shells). IdleTimeout goes to Protocol.open_shell unconverted,
// as pywinrm sends it: a string or a number.
type Spec struct {
	Kind             string   `json:"kind"`
	URL              string   `json:"url"`
	User             string   `json:"user,omitempty"`
	Password         string   `json:"password,omitempty"`
	Transport        string   `json:"transport,omitempty"`
	Command          string   `json:"command,omitempty"`
	Args             []string `json:"args,omitempty"`
	Script           string   `json:"script,omitempty"`
	OperationTimeout int      `json:"operation_timeout,omitempty"`
	ReadTimeout      int      `json:"read_timeout,omitempty"`
	CertValidation   string   `json:"cert_validation,omitempty"`
	CA               string   `json:"ca,omitempty"`
	Count            int      `json:"count,omitempty"`
	IdleTimeout      any      `json:"idle_timeout,omitempty"`
}

// Result is what the client saw. Error and Message are set when pywinrm
// raised (its exception class and text); Opened counts shells for quota.
type Result struct {
	Stdout  string `json:"stdout"`
	Stderr  string `json:"stderr"`
	Code    int64  `json:"code"`
	Error   string `json:"error"`
	Message string `json:"message"`
	Opened  int    `json:"opened"`
}

// Available reports whether python3-winrm imports under Python. The answer
// is looked up once per process: it does not change while tests run.
func Available() error { return available() }

var available = sync.OnceValue(func() error {
	out, err := exec.Command(Python, "-c", "import winrm").CombinedOutput()
	if err != nil {
		return fmt.Errorf("python3-winrm is not importable under %s (apt-get install -y python3-winrm; .ci/run does): %v: %s", Python, err, strings.TrimSpace(string(out)))
	}
	return nil
})

// Require fails the test when the client is missing: a protocol test that
// silently skips would pass without testing anything. HVRO_SKIP_PYWINRM=1
// turns the failure into a skip on machines that cannot install it.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("HVRO_SKIP_PYWINRM") == "1" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
}

// Run runs one scenario.
func Run(ctx context.Context, spec Spec) (Result, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return Result{}, err
	}
	cmd := exec.CommandContext(ctx, Python, "-c", client, string(data))
	cmd.Env = hermeticEnv()
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return Result{}, fmt.Errorf("pywinrm client: %w\n%s", err, ee.Stderr)
		}
		return Result{}, fmt.Errorf("pywinrm client: %w", err)
	}
	var res Result
	if err := json.Unmarshal(out, &res); err != nil {
		return Result{}, fmt.Errorf("pywinrm client output %q: %w", out, err)
	}
	for _, f := range []*string{&res.Stdout, &res.Stderr} {
		b, err := base64.StdEncoding.DecodeString(*f)
		if err != nil {
			return Result{}, fmt.Errorf("pywinrm client output: %w", err)
		}
		*f = string(b)
	}
	return res, nil
}

// hermeticEnv keeps the machine's proxy and CA-bundle settings away from
// requests: pywinrm 0.3.0 lets REQUESTS_CA_BUNDLE override
// server_cert_validation='ignore' (Transport.build_session merges the
// environment after setting verify=False), and a proxy would not reach
// loopback.
func hermeticEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "NO_PROXY=*")
}

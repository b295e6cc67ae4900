package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets this test binary stand in for hvlab when the demo's ECX
// scripts run it as "hvlab hook".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "hook" {
		os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestDemo runs the whole narrated tour; it exits 0 only when every step
// converged.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if code := realMain([]string{"demo"}, &out, &out); code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, out.String())
	}
	for _, want := range []string{"[1/6]", "[6/6]", "Every step converged", "vm1   cluster2/node3  cluster1/node2  Converged"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUsageErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("hyperv:\n  control: 10.0.0.1:80\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage:"},
		{[]string{"frob"}, 2, `unknown command "frob"`},
		{[]string{"run"}, 2, "--topology is required"},
		{[]string{"run", "--topology", "/nonexistent.yaml"}, 2, "read topology"},
		{[]string{"run", "--topology", bad}, 2, `hyperv.control: "10.0.0.1:80" is not a loopback address`},
		{[]string{"run", "--topology", bad, "--log-level", "loud"}, 2, `--log-level "loud"`},
		{[]string{"help"}, 0, "hvlab run --topology"},
	}
	for _, tc := range tests {
		var out, errOut bytes.Buffer
		code := realMain(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.want) {
			t.Errorf("hvlab %v: exit %d, output %q; want exit %d with %q", tc.args, code, out.String()+errOut.String(), tc.code, tc.want)
		}
	}
}

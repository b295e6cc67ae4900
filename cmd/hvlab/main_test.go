package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

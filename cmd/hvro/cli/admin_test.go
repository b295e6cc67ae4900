package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAdminUsageExitCode: a misuse exits 2; an error answer of hvro exits
// 1 even when its message says "usage".
func TestAdminUsageExitCode(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"error":{"code":"operation_in_progress","message":"usage of the pair is blocked by operation 7"}}`))
	}))
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tok, []byte("admin-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		switch k {
		case "HVRO_SERVER":
			return srv.URL
		case "HVRO_TOKEN_FILE":
			return tok
		}
		return ""
	}
	run := func(name string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Admin(name, args, env, &out, &errb)
		return code, out.String() + errb.String()
	}

	if code, out := run("failover", "vm1"); code != 2 || !strings.Contains(out, "--mode planned|unplanned is required") {
		t.Errorf("failover without --mode: exit %d, %q; want 2", code, out)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("a usage error sent %d request(s)", n)
	}
	if code, out := run("reconcile", "vm1"); code != 1 || !strings.Contains(out, "usage of the pair") {
		t.Errorf("an API error that mentions usage: exit %d, %q; want 1", code, out)
	}
}

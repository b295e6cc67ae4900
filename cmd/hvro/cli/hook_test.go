package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookServer answers every hook with status (and Retry-After, if set)
// until ok after attempts, then {"outcome":"ok"}; it records the times
// of the attempts.
type hookServer struct {
	status     int
	retryAfter string
	okAfter    int // 0: never

	mu    sync.Mutex
	times []time.Time
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.times = append(h.times, time.Now())
	n := len(h.times)
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if h.okAfter > 0 && n > h.okAfter {
		w.Write([]byte(`{"outcome":"ok","op":3}`))
		return
	}
	if h.retryAfter != "" {
		w.Header().Set("Retry-After", h.retryAfter)
	}
	w.WriteHeader(h.status)
	w.Write([]byte(`{"error":{"code":"some_code","message":"hvro said no"}}`))
}

func (h *hookServer) attempts() []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.times...)
}

func hookTokenFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.token")
	if err := os.WriteFile(p, []byte("hook-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runHook(t *testing.T, url string, extra ...string) (int, string) {
	t.Helper()
	args := append([]string{"--url", url, "--cluster", "cluster1", "--group", "failover1", "--phase", "stop",
		"--token-file", hookTokenFile(t), "--server", "node1", "--wait", "1s"}, extra...)
	var out, errb bytes.Buffer
	code := Hook(args, func(string) string { return "" }, &out, &errb)
	return code, out.String() + errb.String()
}

// TestHookExitCodeByStatus: an answer that says hvro cannot serve now
// (5xx, 429: its disk is full, it is overloaded or restarting) is
// "unreachable": retried within --retry-for, then exit 0 (3 with
// --strict), because ECX may shut a server down when a stop script fails.
// Only a rejection of the request itself is exit 2.
func TestHookExitCodeByStatus(t *testing.T) {
	tests := []struct {
		status      int
		strict      bool
		want        int
		wantRetries bool
		wantOut     string
	}{
		{500, false, 0, true, "failing open"},
		{500, true, 3, true, "--strict"},
		{502, false, 0, true, "failing open"},
		{503, false, 0, true, "failing open"},
		{504, false, 0, true, "failing open"},
		{504, true, 3, true, "--strict"},
		{429, false, 0, true, "failing open"},
		{400, false, 2, false, "rejected"},
		{401, false, 2, false, "rejected"},
		{403, false, 2, false, "rejected"},
		{404, true, 2, false, "rejected"},
	}
	for _, tc := range tests {
		name := http.StatusText(tc.status)
		if tc.strict {
			name += " strict"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hs := &hookServer{status: tc.status}
			srv := httptest.NewServer(hs)
			t.Cleanup(srv.Close)
			extra := []string{"--retry-for", "1500ms"}
			if tc.strict {
				extra = append(extra, "--strict")
			}
			code, out := runHook(t, srv.URL, extra...)
			n := len(hs.attempts())
			if code != tc.want || !strings.Contains(out, tc.wantOut) || !strings.Contains(out, "hvro said no") {
				t.Errorf("HTTP %d: exit %d, %q; want exit %d saying %q and hvro's message", tc.status, code, out, tc.want, tc.wantOut)
			}
			if tc.wantRetries && n < 2 || !tc.wantRetries && n != 1 {
				t.Errorf("HTTP %d: %d attempts (retries wanted: %v)", tc.status, n, tc.wantRetries)
			}
		})
	}
}

// TestHookRecoversWithinRetryFor: hvro failing for a moment and then
// answering gives the real outcome, not a fail-open.
func TestHookRecoversWithinRetryFor(t *testing.T) {
	hs := &hookServer{status: http.StatusInternalServerError, okAfter: 1}
	srv := httptest.NewServer(hs)
	t.Cleanup(srv.Close)
	code, out := runHook(t, srv.URL, "--retry-for", "5s")
	if code != 0 || !strings.Contains(out, ": ok (op 3)") || len(hs.attempts()) != 2 {
		t.Fatalf("exit %d, %q after %d attempts; want ok on the second", code, out, len(hs.attempts()))
	}
}

// TestHookHonoursRetryAfter: 429 and 503 may say when to come back; the
// hook waits that long, but never past --retry-for.
func TestHookHonoursRetryAfter(t *testing.T) {
	t.Run("short", func(t *testing.T) {
		hs := &hookServer{status: http.StatusTooManyRequests, retryAfter: "2", okAfter: 1}
		srv := httptest.NewServer(hs)
		t.Cleanup(srv.Close)
		code, out := runHook(t, srv.URL, "--retry-for", "10s")
		at := hs.attempts()
		if code != 0 || len(at) != 2 || !strings.Contains(out, ": ok") {
			t.Fatalf("exit %d, %q after %d attempts", code, out, len(at))
		}
		if gap := at[1].Sub(at[0]); gap < 1900*time.Millisecond {
			t.Errorf("came back after %s; Retry-After said 2s", gap)
		}
	})
	t.Run("beyond retry-for", func(t *testing.T) {
		hs := &hookServer{status: http.StatusServiceUnavailable, retryAfter: "3600"}
		srv := httptest.NewServer(hs)
		t.Cleanup(srv.Close)
		start := time.Now()
		code, out := runHook(t, srv.URL, "--retry-for", "1s")
		if d := time.Since(start); code != 0 || d > 5*time.Second {
			t.Fatalf("exit %d after %s, %q; want a fail-open soon after --retry-for", code, d, out)
		}
	})
}

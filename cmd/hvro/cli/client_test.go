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

// TestRedirectsAreNotFollowed: the CLI sends a bearer token; a redirect
// would carry it to wherever the Location points. hvro never redirects, so
// the CLI refuses to follow, for every status that redirects.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var reached, withToken atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		if r.Header.Get("Authorization") != "" {
			withToken.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"pairs":[],"outcome":"ok"}`))
	}))
	t.Cleanup(elsewhere.Close)
	tok := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tok, []byte("admin-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), status)
			}))
			t.Cleanup(redirector.Close)
			env := func(k string) string {
				return map[string]string{"HVRO_SERVER": redirector.URL, "HVRO_TOKEN_FILE": tok}[k]
			}
			var out, errb bytes.Buffer
			code := Admin("status", nil, env, &out, &errb)
			if code != 1 || !strings.Contains(errb.String(), "redirect to "+elsewhere.URL) || !strings.Contains(errb.String(), "not followed") {
				t.Errorf("status through a %d: exit %d, %q %q; want 1 naming the redirect", status, code, out.String(), errb.String())
			}
			code, msg := runHook(t, redirector.URL, "--retry-for", "0s")
			if code != hookUsage || !strings.Contains(msg, "not followed") {
				t.Errorf("hook through a %d: exit %d, %q; want 2 naming the redirect", status, code, msg)
			}
		})
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, %d of them with the token", n, withToken.Load())
	}
}

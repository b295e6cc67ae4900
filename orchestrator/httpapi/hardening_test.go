package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hvro/hvro/store"
	"github.com/hvro/hvro/test/within"
)

// pipeListener hands the server one end of a net.Pipe per dial. A pipe has
// no buffer: a client that does not read stalls the server's next write at
// once, as a full socket buffer does after a few hundred kilobytes.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error { l.once.Do(func() { close(l.done) }); return nil }

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// dial connects a client; the test closes it.
func (l *pipeListener) dial(t *testing.T) net.Conn {
	t.Helper()
	server, client := net.Pipe()
	select {
	case l.conns <- server:
	case <-l.done:
		t.Fatal("listener closed")
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// servePipes serves h the way service.Start does, but over pipes.
func servePipes(t *testing.T, h http.Handler) *pipeListener {
	t.Helper()
	ln := newPipeListener()
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "hvro.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// firstWrite says when the first byte of a backup was written: the store's
// read transaction is open then.
type firstWrite struct {
	io.Writer
	once    sync.Once
	started chan struct{}
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.once.Do(func() { close(f.started) })
	return f.Writer.Write(p)
}

// TestBackupClientCannotFreezeTheStore: a GET /v1/backup client that never
// reads must not keep the store's read transaction open, or bbolt could
// never grow its map and every write of hvro would wait for that client.
func TestBackupClientCannotFreezeTheStore(t *testing.T) {
	st := openStore(t)
	tmp := t.TempDir()
	started := make(chan struct{})
	h := Handler(Deps{Controller: &fakeController{}, Store: st, AdminToken: "admin-secret", TempDir: tmp,
		Backup: func(w io.Writer) (int64, error) {
			return st.Backup(&firstWrite{Writer: w, started: started})
		}})
	ln := servePipes(t, h)
	c := ln.dial(t)
	if _, err := fmt.Fprint(c, "GET /v1/backup HTTP/1.1\r\nHost: hvro\r\nAuthorization: Bearer admin-secret\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	within.Recv(t, started, "the backup's first write")

	// A write larger than the file makes bbolt grow its map, which waits
	// for every open read transaction.
	wrote := make(chan error, 1)
	go func() {
		wrote <- st.Update(func(tx store.Tx) error {
			_, err := tx.AppendEvent(store.Event{Kind: "note", Message: strings.Repeat("x", 4<<20)})
			return err
		})
	}()
	if err := within.Recv(t, wrote, "a store write while a backup client does not read"); err != nil {
		t.Fatal(err)
	}

	// The stalled client still gets a complete, consistent copy.
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Fatalf("backup answer: %d, %d bytes (Content-Length %d), %v", resp.StatusCode, len(data), resp.ContentLength, err)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(copyPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cp, err := store.Open(copyPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("the copy: %v", err)
	}
	cp.Close()
	within.Eventually(t, "the snapshot file removed", func() bool {
		ents, _ := os.ReadDir(tmp)
		return len(ents) == 0
	})
}

// TestErrorBodiesAreBounded: whatever a client sends, an error answer
// repeats at most a short, escaped piece of it.
func TestErrorBodiesAreBounded(t *testing.T) {
	st := openStore(t)
	h := Handler(Deps{Controller: &fakeController{paused: map[string]bool{}}, Store: st, AdminToken: "admin-secret",
		HookTokens: map[string]string{"cluster1": "hook-1"}})
	long := strings.Repeat("a", 200000)
	lt := strings.Repeat("%3C", 66667) // "<" escapes to 6 bytes in JSON
	ctl := strings.Repeat("%1B%E2%80%AE", 20000)
	hookBody := func(cluster string) string {
		return `{"cluster":"` + cluster + `","group":"g","server":"s","phase":"start"}`
	}
	tests := []struct {
		name, method, target, token, ctype, body string
		status                                   int
		max                                      int
	}{
		{"404 long path", "GET", "/" + long, "", "", "", 404, 512},
		{"404 escaped path", "GET", "/" + lt, "", "", "", 404, 1024},
		{"404 control characters", "GET", "/" + ctl, "", "", "", 404, 1024},
		{"405 long path", "DELETE", "/v1/pairs/" + long, "admin-secret", "", "", 405, 512},
		{"405 escaped path", "DELETE", "/v1/pairs/" + lt, "admin-secret", "", "", 405, 1024},
		{"unknown pair", "GET", "/v1/pairs/" + long, "admin-secret", "", "", 404, 512},
		{"bad operation id", "GET", "/v1/operations/" + lt, "admin-secret", "", "", 400, 1024},
		{"bad limit", "GET", "/v1/operations?limit=" + lt, "admin-secret", "", "", 400, 1024},
		{"bad wait", "POST", "/v1/hooks?wait=" + lt, "hook-1", "application/json", hookBody("cluster1"), 400, 1024},
		{"long content type", "POST", "/v1/hooks", "hook-1", "text/" + strings.Repeat("<", 60000), hookBody("cluster1"), 415, 1024},
		{"other cluster", "POST", "/v1/hooks", "hook-1", "application/json", hookBody(strings.Repeat("<", 60000)), 403, 1024},
		{"unknown field", "POST", "/v1/hooks", "hook-1", "application/json", `{"` + strings.Repeat("<", 60000) + `":1}`, 400, 8 << 10},
		{"bad mode", "POST", "/v1/pairs/vm1/failover", "admin-secret", "application/json", `{"mode":"` + strings.Repeat("\u202e", 20000) + `"}`, 400, 1024},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body := rec.Body.Bytes()
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" {
				t.Fatalf("%d %.200q: not an error object (%v)", rec.Code, body, err)
			}
			if rec.Code != tc.status || len(body) > tc.max {
				t.Errorf("%d with a %d-byte body (%.120q...); want %d with at most %d bytes", rec.Code, len(body), body, tc.status, tc.max)
			}
			for _, bad := range []string{"\x1b", "\u202e"} {
				if strings.Contains(e.Error.Message, bad) {
					t.Errorf("the message carries %q raw: %.200q", bad, e.Error.Message)
				}
			}
		})
	}
}

// TestStalledClientIsCutOff: an answer that the client does not take is
// abandoned after the write timeout, freeing the connection and what the
// handler holds.
func TestStalledClientIsCutOff(t *testing.T) {
	wrote := make(chan error, 1)
	big := strings.Repeat("x", 32<<10)
	st := openStore(t)
	tmp := t.TempDir()
	h := Handler(Deps{Controller: &fakeController{}, Store: st, AdminToken: "admin-secret", MetricsPublic: true,
		WriteTimeout: 200 * time.Millisecond, TempDir: tmp, Backup: st.Backup,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for range 64 { // 2 MiB
				if _, err := io.WriteString(w, big); err != nil {
					wrote <- err
					return
				}
			}
			wrote <- nil
		})})
	ln := servePipes(t, h)

	c := ln.dial(t)
	fmt.Fprint(c, "GET /metrics HTTP/1.1\r\nHost: hvro\r\n\r\n")
	start := time.Now()
	if err := within.Recv(t, wrote, "the end of an answer nobody reads"); err == nil {
		t.Fatal("2 MiB written to a client that reads nothing")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cut off after %s, want about the write timeout (200ms)", d)
	}

	// A backup is sent chunk by chunk, each within the write timeout.
	if err := st.Update(func(tx store.Tx) error {
		_, err := tx.AppendEvent(store.Event{Kind: "note", Message: strings.Repeat("y", 1<<20)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c = ln.dial(t)
	fmt.Fprint(c, "GET /v1/backup HTTP/1.1\r\nHost: hvro\r\nAuthorization: Bearer admin-secret\r\n\r\n")
	snapshots := func() int {
		ents, _ := os.ReadDir(tmp)
		return len(ents)
	}
	within.Eventually(t, "the snapshot of a stalled backup", func() bool { return snapshots() == 1 })
	within.Eventually(t, "the snapshot of a stalled backup removed", func() bool { return snapshots() == 0 })
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		n, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if rerr == nil {
			t.Fatalf("a stalled backup client still got all %d bytes after the write timeout", n)
		}
	}
}

// TestHookAnswerOutlivesWriteTimeout: a hook's long poll answers after
// its wait, later than the write timeout of other requests; its answer
// must still go out.
func TestHookAnswerOutlivesWriteTimeout(t *testing.T) {
	fc := &fakeController{paused: map[string]bool{}, hookTakes: 600 * time.Millisecond}
	srv := httptest.NewServer(Handler(Deps{Controller: fc, AdminToken: "admin-secret", HookTokens: map[string]string{"cluster1": "hook-1"},
		WriteTimeout: 100 * time.Millisecond}))
	t.Cleanup(srv.Close)
	status, m := call(t, srv, "POST", "/v1/hooks?wait=5s", "hook-1", hookJSON)
	if status != 200 || m["outcome"] != "ok" {
		t.Fatalf("hook answered after 600ms with a 100ms write timeout: %d %v", status, m)
	}
}

// TestHookWaitCappedByMaxWait: ?wait= longer than hooks.max_wait is
// shortened to it (CONTRACTS section 6), not refused; a wait that is not a
// duration, or negative, is refused.
func TestHookWaitCappedByMaxWait(t *testing.T) {
	tests := []struct {
		name    string
		maxWait time.Duration
		wait    string
		status  int
		got     time.Duration // what the controller was asked to wait
	}{
		{"within max_wait", 2 * time.Minute, "1m", 200, time.Minute},
		{"longer than max_wait", 2 * time.Minute, "5m", 200, 2 * time.Minute},
		{"longer than 30m", 10 * time.Minute, "2h", 200, 10 * time.Minute},
		{"no wait", 2 * time.Minute, "", 200, 0},
		{"max_wait 0 answers at once", 0, "5m", 200, 0},
		{"max_wait above 30m", time.Hour, "45m", 200, 30 * time.Minute},
		{"negative", 2 * time.Minute, "-1s", 400, -1},
		{"not a duration", 2 * time.Minute, "soon", 400, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := &fakeController{paused: map[string]bool{}}
			h := Handler(Deps{Controller: fc, AdminToken: "admin-secret", HookTokens: map[string]string{"cluster1": "hook-1"}, HookMaxWait: tc.maxWait})
			target := "/v1/hooks"
			if tc.wait != "" {
				target += "?wait=" + tc.wait
			}
			req := httptest.NewRequest("POST", target, strings.NewReader(hookJSON))
			req.Header.Set("Authorization", "Bearer hook-1")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tc.status)
			}
			switch {
			case tc.got < 0 && len(fc.waits) != 0:
				t.Errorf("a refused hook reached the controller with wait %s", fc.waits[0])
			case tc.got >= 0 && (len(fc.waits) != 1 || fc.waits[0] != tc.got):
				t.Errorf("the controller was asked to wait %v, want %s", fc.waits, tc.got)
			}
		})
	}
}

// TestHookTokenCheckedBeforeBody: a caller without a valid token learns
// nothing about the body's rules: 401 whatever it sent.
func TestHookTokenCheckedBeforeBody(t *testing.T) {
	srv, fc := newAPI(t)
	for _, tc := range []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"no token, bad body", "", `{"nonsense":`, 401, "unauthorized"},
		{"wrong token, bad body", "hook-x", `{"nonsense":`, 401, "unauthorized"},
		{"wrong token, unknown field", "hook-x", `{"cluster":"cluster1","grop":"x"}`, 401, "unauthorized"},
		{"wrong token, oversized body", "hook-x", `{"group":"` + strings.Repeat("x", 70<<10) + `"}`, 401, "unauthorized"},
		{"a hook token, bad body", "hook-1", `{"nonsense":`, 400, "invalid_body"},
		{"the other cluster's token", "hook-2", hookJSON, 403, "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := call(t, srv, "POST", "/v1/hooks", tc.token, tc.body)
			if status != tc.status || errCode(m) != tc.code {
				t.Fatalf("%d %v, want %d %s", status, m, tc.status, tc.code)
			}
		})
	}
	if len(fc.hooks) != 0 {
		t.Fatalf("rejected hooks reached the controller: %+v", fc.hooks)
	}
}

// TestHeadHealth: HEAD /healthz and /readyz answer like GET, without a
// body (load balancers probe with HEAD).
func TestHeadHealth(t *testing.T) {
	ready := error(nil)
	srv := httptest.NewServer(Handler(Deps{Controller: &fakeController{}, AdminToken: "a", Ready: func() error { return ready }}))
	t.Cleanup(srv.Close)
	head := func(path string) (int, int64) {
		t.Helper()
		resp, err := http.Head(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) != 0 {
			t.Errorf("HEAD %s: a %d-byte body", path, len(body))
		}
		return resp.StatusCode, resp.ContentLength
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, _ := head(path); status != 200 {
			t.Errorf("HEAD %s: %d, want 200", path, status)
		}
	}
	ready = fmt.Errorf("the store cannot commit")
	if status, _ := head("/readyz"); status != 503 {
		t.Errorf("HEAD /readyz while not ready: %d, want 503", status)
	}
}

// TestOneBackupAtATime: each snapshot is a copy of the store on the
// store's disk, so a second backup while one is taken is refused with
// Retry-After; snapshots a kill left behind are removed at start.
func TestOneBackupAtATime(t *testing.T) {
	st := openStore(t)
	tmp := t.TempDir()
	inside, release := make(chan struct{}), make(chan struct{})
	h := Handler(Deps{Controller: &fakeController{}, Store: st, AdminToken: "admin-secret", TempDir: tmp,
		Backup: func(w io.Writer) (int64, error) {
			close(inside)
			<-release
			return st.Backup(w)
		}})
	first := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v1/backup", nil)
		req.Header.Set("Authorization", "Bearer admin-secret")
		h.ServeHTTP(rec, req)
		first <- rec.Code
	}()
	within.Recv(t, inside, "the first backup's snapshot")
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/backup", nil)
	req.Header.Set("Authorization", "Bearer admin-secret")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "backup_in_progress") {
		t.Fatalf("a second backup while one runs: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	close(release)
	if code := within.Recv(t, first, "the first backup"); code != http.StatusOK {
		t.Fatalf("the first backup: %d", code)
	}

	left := filepath.Join(tmp, ".hvro-backup-123.db")
	if err := os.WriteFile(left, []byte("a snapshot a kill left"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RemoveSnapshots(tmp); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the leftover snapshot: %v", err)
	}
}

package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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

package clusterapi

import (
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
)

// TestTLS: an https endpoint with a self-signed certificate, as ECX clusters
// often run, verified with a CA file or not at all.
func TestTLS(t *testing.T) {
	l := newLab(t)
	srv := httptest.NewUnstartedServer(l.c.HandlerFor("tls"))
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	l.urls["tls"] = srv.URL

	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"CA file", Config{CAFile: caFile}, true},
		{"insecure", Config{InsecureSkipVerify: true}, true},
		{"unverified certificate", Config{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Endpoints = []string{srv.URL}
			conns.Store(0)
			c := l.clientWith(t, tc.cfg)
			_, err := c.Group(testCtx(t), "failover1")
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok {
				if !errors.Is(err, ErrTransport) {
					t.Fatalf("err %v, want ErrTransport", err)
				}
				// A certificate error is not retried.
				if calls := l.calls.take(); !slices.Equal(calls, []string{"tls transport"}) || conns.Load() != 1 {
					t.Fatalf("calls %q, %d connections", calls, conns.Load())
				}
			}
			l.calls.take()
		})
	}
}

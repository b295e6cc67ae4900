package wsman_test

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv/wsman"
)

func TestHostCrashAndRestart(t *testing.T) {
	rec := newRecorder()
	h := startHost(t, wsman.HostConfig{Server: baseConfig(rec)})
	addr := h.HTTPAddr()
	c := newRaw(t, h)
	shell := c.createShell()
	id := c.command(shell, "powershell", "-Command", "sleep 60000")

	// A client long-polls the running command while the host crashes.
	polled := make(chan error, 1)
	go func() {
		body := msg{action: actReceive, shellID: shell, timeout: "PT30S", body: receiveBody(id)}.String()
		req, _ := http.NewRequest(http.MethodPost, h.HTTPURL(), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
		req.SetBasicAuth(testUser, testPassword)
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
		if err == nil {
			resp.Body.Close()
			err = errors.New("answered with " + resp.Status)
		}
		polled <- err
	}()
	time.Sleep(50 * time.Millisecond) // head start; a late poll is refused, which fails it too

	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if h.Running() || h.Server() != nil {
		t.Fatal("host still running after Stop")
	}
	select {
	case err := <-polled:
		if err == nil || strings.Contains(err.Error(), "answered") {
			t.Errorf("long poll across the crash: %v, want a transport error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll not cut by the crash")
	}
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("dial succeeded on a stopped host")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial error %v, want connection refused", err)
	}
	recs := rec.wait(t, 1)
	if !recs[0].Canceled || recs[0].Script != "sleep 60000" {
		t.Errorf("record of the running command: %+v", recs[0])
	}

	// Back up on the same address, with no memory of old shells.
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	if h.HTTPAddr() != addr {
		t.Fatalf("restarted on %s, want %s", h.HTTPAddr(), addr)
	}
	checkFault(t, c.post(msg{action: actCommand, shellID: shell, body: commandBody("hostname")}),
		faultWant{"s:Sender", "w:InvalidSelectors", "2150858843", "shell was not found"})
	mz := mzClient(t, addr, false, nil, testUser, testPassword, "PT10S")
	stdout, _, code, err := mz.RunWithString("hostname", "")
	if err != nil || code != 0 || stdout != "NODE1\r\n" {
		t.Fatalf("after restart: %q %d %v", stdout, code, err)
	}
	// Start and Stop are idempotent.
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestHostHTTPAndHTTPS(t *testing.T) {
	ca, tlsCfg := labTLS(t, "node1", "node1.lab.local", "10.0.0.5")
	cfg := baseConfig(nil)
	cfg.RequireHTTPS = true
	h := startHost(t, wsman.HostConfig{Server: cfg, HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", TLS: tlsCfg})
	if !strings.HasPrefix(h.HTTPURL(), "http://127.0.0.1:") || !strings.HasPrefix(h.HTTPSURL(), "https://127.0.0.1:") {
		t.Fatalf("URLs %s %s", h.HTTPURL(), h.HTTPSURL())
	}
	// AllowUnencrypted=false: Basic over HTTP is refused like bad credentials.
	plain := mzClient(t, h.HTTPAddr(), false, nil, testUser, testPassword, "PT10S")
	if _, _, _, err := plain.RunWithString("hostname", ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("HTTP with RequireHTTPS: %v", err)
	}
	secure := mzClient(t, h.HTTPSAddr(), true, ca.CertPEM(), testUser, testPassword, "PT10S")
	if out, _, _, err := secure.RunWithString("hostname", ""); err != nil || out != "NODE1\r\n" {
		t.Errorf("HTTPS: %q %v", out, err)
	}
}

func TestNewHostAndServerValidate(t *testing.T) {
	good := baseConfig(nil)
	tests := []struct {
		name string
		mod  func(*wsman.HostConfig)
		want string
	}{
		{"no listener", func(c *wsman.HostConfig) { c.HTTPAddr = "" }, "neither HTTPAddr nor HTTPSAddr"},
		{"HTTPS without TLS", func(c *wsman.HostConfig) { c.HTTPSAddr = "127.0.0.1:0" }, "TLS is nil"},
		{"no host name", func(c *wsman.HostConfig) { c.Server.Host = "" }, "Host is empty"},
		{"no PowerShell", func(c *wsman.HostConfig) { c.Server.PowerShell = nil }, "PowerShell is nil"},
		{"no users", func(c *wsman.HostConfig) { c.Server.Users = nil }, "Users is empty"},
		{"UPN user", func(c *wsman.HostConfig) { c.Server.Users = map[string]string{"admin@lab.local": "x"} }, `"admin@lab.local"`},
		{"dot domain", func(c *wsman.HostConfig) { c.Server.Users = map[string]string{`.\admin`: "x"} }, "without a domain"},
		{"tiny envelope", func(c *wsman.HostConfig) { c.Server.MaxEnvelopeSize = 1000 }, "below the WS-Management minimum"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hc := wsman.HostConfig{Server: good, HTTPAddr: "127.0.0.1:0"}
			hc.Server.Users = map[string]string{"admin": "x"}
			tc.mod(&hc)
			_, err := wsman.NewHost(hc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// A crash right after a start refuses connections too, although the
// listeners' Serve goroutines may not have run yet.
func TestHostStopRightAfterStart(t *testing.T) {
	h, err := wsman.NewHost(wsman.HostConfig{Server: baseConfig(nil), HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := h.Start(); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if err := h.Stop(); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
		if conn, err := net.DialTimeout("tcp", h.HTTPAddr(), 5*time.Second); err == nil {
			conn.Close()
			t.Fatalf("round %d: the stopped host accepted a connection", i)
		}
	}
}

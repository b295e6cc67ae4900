package clusterapi

import (
	"context"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hvro/hvro/test/capture"
	"github.com/hvro/hvro/test/sim/ecx"
)

// The test binary doubles as a script resource command: with
// CLUSTERAPI_HELPER=fail it exits 1 (an activation failure); with
// CLUSTERAPI_HELPER=fail-on:NODE2 only on that server.
func TestMain(m *testing.M) {
	switch h := os.Getenv("CLUSTERAPI_HELPER"); {
	case h == "fail", h != "" && h == "fail-on:"+os.Getenv("COMPUTERNAME"):
		os.Exit(1)
	case h != "":
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	user     = "Administrator"
	password = "Pa55-w0rd!secret"
)

// lab is one emulated cluster served on loopback as endpoints "fip", "node1", "node2".
type lab struct {
	c     *ecx.Cluster
	urls  map[string]string // endpoint name -> base URL
	calls *callLog
	logs  *capture.Buffer // everything the clients logged, at debug level
}

type groupOpt func(*ecx.GroupConfig)

// failingStart makes the group's start script fail on every server, or
// only on the one whose COMPUTERNAME is given.
func failingStart(t testing.TB, computerName ...string) groupOpt {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	mode := "fail"
	if len(computerName) > 0 {
		mode = "fail-on:" + computerName[0]
	}
	return func(g *ecx.GroupConfig) {
		g.Scripts = ecx.Scripts{Start: []string{exe}, Env: []string{"CLUSTERAPI_HELPER=" + mode, "GORACE=atexit_sleep_ms=0"}, Timeout: 20 * time.Second}
	}
}

func newLab(t testing.TB, opts ...groupOpt) *lab {
	t.Helper()
	return newLabObserved(t, nil, opts...)
}

// newLabObserved is newLab with obs told of the cluster's transitions.
func newLabObserved(t testing.TB, obs ecx.Observer, opts ...groupOpt) *lab {
	t.Helper()
	g1 := ecx.GroupConfig{Name: "failover1", Owner: "node1", Disk: "T1"}
	for _, o := range opts {
		o(&g1)
	}
	c, err := ecx.New(ecx.Config{
		Name: "cluster1", Username: user, Password: password,
		Servers: []string{"node1", "node2"},
		Groups:  []ecx.GroupConfig{g1, {Name: "failover2", Disk: "T2"}},
		Timing:  ecx.Timing{Pending: 10 * time.Millisecond, DiskSwitch: 5 * time.Millisecond},
	}, obs, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l := &lab{c: c, urls: map[string]string{}, calls: &callLog{}, logs: &capture.Buffer{}}
	for _, name := range []string{"fip", "node1", "node2"} {
		addr, err := c.Listen(name, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.urls[name] = "http://" + addr.String()
	}
	return l
}

// client builds a Client on the named endpoints with fast retries.
func (l *lab) client(t testing.TB, endpoints ...string) *Client {
	t.Helper()
	var urls []string
	for _, e := range endpoints {
		if u, ok := l.urls[e]; ok {
			urls = append(urls, u)
		} else {
			urls = append(urls, e) // a raw URL
		}
	}
	return l.clientWith(t, Config{Endpoints: urls})
}

func (l *lab) clientWith(t testing.TB, cfg Config) *Client {
	t.Helper()
	cfg.Name = "cluster1"
	if cfg.Username == "" {
		cfg.Username, cfg.Password = user, password
	}
	if cfg.Timeout == 0 {
		// Long enough for a loaded CI machine; tests of hangs set a short one.
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 1
	}
	if cfg.RetryWaitMin == 0 {
		cfg.RetryWaitMin, cfg.RetryWaitMax = 10*time.Millisecond, 20*time.Millisecond
	}
	cfg.Logger = slog.New(slog.NewTextHandler(l.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	record := l.calls.add(l.urls)
	if also := cfg.OnRequest; also != nil {
		cfg.OnRequest = func(ep, outcome string, d time.Duration) {
			record(ep, outcome, d)
			also(ep, outcome, d)
		}
	} else {
		cfg.OnRequest = record
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// callLog records OnRequest calls as "endpoint-name outcome".
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (cl *callLog) add(urls map[string]string) func(string, string, time.Duration) {
	return func(ep, outcome string, _ time.Duration) {
		name := ep
		for n, u := range urls {
			if u == ep {
				name = n
			}
		}
		cl.mu.Lock()
		cl.calls = append(cl.calls, name+" "+outcome)
		cl.mu.Unlock()
	}
}

func (cl *callLog) take() []string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	out := cl.calls
	cl.calls = nil
	return out
}

// deadURL is a loopback address nothing listens on: connections are refused.
func deadURL(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

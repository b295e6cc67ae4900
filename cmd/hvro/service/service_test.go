package service

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/orchestrator"
	"github.com/hvro/hvro/orchestrator/metrics"
	"github.com/hvro/hvro/store"
	"github.com/hvro/hvro/test/capture"
	"github.com/hvro/hvro/test/within"
)

// fakeHost is a driver that records how often it was closed.
type fakeHost struct {
	name   string
	url    string
	peers  func(string) string
	mu     sync.Mutex
	closed int
}

func (h *fakeHost) Inspect(context.Context, string) (orchestrator.HostView, error) {
	return orchestrator.HostView{}, fmt.Errorf("fake host %s", h.name)
}

func (h *fakeHost) Run(context.Context, string, orchestrator.Step, orchestrator.Settings) (string, error) {
	return "", fmt.Errorf("fake host %s", h.name)
}

func (h *fakeHost) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed++
	return nil
}

func (h *fakeHost) closes() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// fakeHosts builds fakeHosts and remembers every one.
type fakeHosts struct {
	mu    sync.Mutex
	built []*fakeHost
}

func (f *fakeHosts) factory(h config.Host, names HostNames, _ *metrics.Metrics, _ *slog.Logger) (orchestrator.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := &fakeHost{name: h.Server, url: h.URL, peers: names.Peer}
	f.built = append(f.built, d)
	return d, nil
}

func (f *fakeHosts) all() []*fakeHost {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeHost(nil), f.built...)
}

// testConfig has cluster1 (node1, node2) and cluster2 (node3, node4) and
// the pair vm1, primary on cluster1.
func testConfig(dataDir string) *config.Config {
	c := config.Defaults()
	c.DataDir = dataDir
	c.Listen = "127.0.0.1:0"
	c.Auth.AdminToken = config.NewSecret("admin-token-0123456789")
	c.WinRM.Username = `LAB\admin`
	c.WinRM.Password = config.NewSecret("lab-pass")
	for i, name := range []string{"cluster1", "cluster2"} {
		cl := config.DefaultCluster()
		cl.Name = name
		cl.API.Endpoints = []string{fmt.Sprintf("http://127.0.0.1:%d", 29009+i)}
		cl.API.Username = "Administrator"
		cl.API.Password = config.NewSecret("lab-pass")
		cl.HookToken = config.NewSecret(fmt.Sprintf("hook-token-%d-0123456789", i))
		cl.Servers = map[string]config.Server{
			fmt.Sprintf("node%d", 2*i+1): {WinRM: fmt.Sprintf("http://node%d.lab.local:5985/wsman", 2*i+1)},
			fmt.Sprintf("node%d", 2*i+2): {WinRM: fmt.Sprintf("http://node%d.lab.local:5985/wsman", 2*i+2)},
		}
		c.Clusters = append(c.Clusters, cl)
	}
	p := config.DefaultPair()
	p.Name, p.VMName = "vm1", "vm1"
	p.Primary = config.Side{Cluster: "cluster1", Group: "failover1", VMConfigPath: `T:\VMs\vm1.vmcx`}
	p.Replica = config.Side{Cluster: "cluster2", Group: "failover2", VMConfigPath: `T:\Replica\vm1.vmcx`}
	c.Pairs = append(c.Pairs, p)
	return c
}

// TestReloadAllOrNothing: a reload that the controller refuses leaves the
// drivers and the configuration as they were and closes what it built; a
// good one keeps unchanged drivers, retires replaced ones without closing
// them (a step may still hold one), and Shutdown closes every driver once.
func TestReloadAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	hosts := &fakeHosts{}
	cfg1 := testConfig(dir)
	s, err := New(cfg1, Options{Hosts: hosts.factory})
	if err != nil {
		t.Fatal(err)
	}
	original := map[string]*fakeHost{}
	for _, h := range hosts.all() {
		original[h.name] = h
	}
	if len(original) != 4 {
		t.Fatalf("built %d drivers, want 4", len(original))
	}
	current := func(key string) *fakeHost {
		h, ok := s.host(key)
		if !ok {
			return nil
		}
		return h.(*fakeHost)
	}

	// The store says cluster1 holds vm1's primary role; a configuration
	// whose vm1 lives on cluster2 and cluster3 is refused by SetPairs.
	bad := testConfig(dir)
	c3 := config.DefaultCluster()
	c3.Name = "cluster3"
	c3.API = bad.Clusters[1].API
	c3.HookToken = config.NewSecret("hook-token-3-0123456789")
	c3.Servers = map[string]config.Server{"node5": {WinRM: "http://node5.lab.local:5985/wsman"}}
	bad.Clusters = append(bad.Clusters, c3)
	bad.Pairs[0].Primary = config.Side{Cluster: "cluster2", Group: "failover2", VMConfigPath: `T:\Replica\vm1.vmcx`}
	bad.Pairs[0].Replica = config.Side{Cluster: "cluster3", Group: "failover3", VMConfigPath: `T:\VMs\vm1.vmcx`}
	err = s.Reload(bad)
	if err == nil || !strings.Contains(err.Error(), "holds the primary role") {
		t.Fatalf("Reload of a config the store contradicts: %v", err)
	}
	if s.cfg != cfg1 {
		t.Error("a refused reload replaced the configuration")
	}
	for name, h := range original {
		if current(name) != h || h.closes() != 0 {
			t.Errorf("%s after a refused reload: current %v, closed %d times", name, current(name) == h, h.closes())
		}
	}
	if current("node5") != nil {
		t.Error("a refused reload left node5's driver in place")
	}
	for _, h := range hosts.all() {
		if original[h.name] != h && h.closes() != 1 {
			t.Errorf("driver %s built by the refused reload closed %d times, want 1", h.name, h.closes())
		}
	}

	// A good reload: node2 moves, node4 goes, node6 comes.
	good := testConfig(dir)
	good.Clusters[0].Servers["node2"] = config.Server{WinRM: "http://node2b.lab.local:5985/wsman"}
	delete(good.Clusters[1].Servers, "node4")
	good.Clusters[1].Servers["node6"] = config.Server{WinRM: "http://node6.lab.local:5985/wsman"}
	if err := s.Reload(good); err != nil {
		t.Fatal(err)
	}
	if s.cfg != good {
		t.Error("the configuration was not replaced")
	}
	for _, name := range []string{"node1", "node3"} {
		if current(name) != original[name] {
			t.Errorf("%s: a driver whose settings did not change was replaced", name)
		}
	}
	if h := current("node2"); h == nil || h == original["node2"] || h.url != "http://node2b.lab.local:5985/wsman" {
		t.Errorf("node2: %+v, want a new driver for the new URL", h)
	}
	if current("node4") != nil || current("node6") == nil {
		t.Error("node4 still there or node6 missing")
	}
	for name, h := range original {
		if h.closes() != 0 {
			t.Errorf("%s closed %d times by the reload; a running step may still hold it", name, h.closes())
		}
	}
	// Reloads build drivers only for new or changed hosts: node5 (refused
	// reload), then node2 and node6.
	if built := len(hosts.all()); built != 4+1+2 {
		t.Errorf("built %d drivers in all, want 7", built)
	}
	// A kept driver learns the names of new hosts.
	if got := original["node1"].peers("node6"); got != "node6.lab.local" {
		t.Errorf("node1's peers(node6) = %q, want node6.lab.local", got)
	}

	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts.all() {
		if h.closes() != 1 {
			t.Errorf("driver %s (%s) closed %d times, want 1", h.name, h.url, h.closes())
		}
	}
}

// TestReloadAppliesTunables: a reload applies workers, retry.*,
// resync_interval and the step deadline that follows winrm.timeout
// (issue 8, item 11); before, only pairs, clusters and drivers changed.
func TestReloadAppliesTunables(t *testing.T) {
	dir := t.TempDir()
	hosts := &fakeHosts{}
	s, err := New(testConfig(dir), Options{Hosts: hosts.factory})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	next := testConfig(dir)
	next.Workers = 17
	next.Retry.MaxAttempts = 9
	next.Retry.InitialBackoff = 3 * time.Second
	next.Retry.MaxBackoff = 7 * time.Minute
	next.ResyncInterval = 11 * time.Minute
	next.WinRM.Timeout = 10 * time.Minute
	next.WinRM.ShellIdleTimeout = 90 * time.Second
	if err := s.Reload(next); err != nil {
		t.Fatal(err)
	}
	got := s.ctrl.Tunables()
	want := orchestrator.Tunables{Workers: 17, StepRetries: 8, RetryBase: 3 * time.Second, BackoffMax: 7 * time.Minute,
		ResyncInterval: 11 * time.Minute, StepTimeout: 10*time.Minute + 5*time.Second, CommandTimeout: 10 * time.Minute,
		ShellIdleTimeout: 90 * time.Second, ProgressInterval: 2 * time.Second, DegradeAfter: 3}
	if got != want {
		t.Fatalf("tunables after the reload\n got  %+v\n want %+v", got, want)
	}
	// retry.max_attempts: 1 is one attempt, not the orchestrator's default.
	next.Retry.MaxAttempts = 1
	if err := s.Reload(next); err != nil {
		t.Fatal(err)
	}
	if got := s.ctrl.Tunables().StepRetries; got != 0 {
		t.Fatalf("retry.max_attempts 1 gives %d retries, want 0", got)
	}
}

// TestHTTPServerBounds: the server hvro serve runs has a bound on every
// phase of a connection, and a request line or header too large for it is
// refused with a short answer instead of being read, routed and echoed.
func TestHTTPServerBounds(t *testing.T) {
	hosts := &fakeHosts{}
	s, err := New(testConfig(t.TempDir()), Options{Hosts: hosts.factory})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	srv := s.server
	for name, d := range map[string]time.Duration{"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
		"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout} {
		if d <= 0 || d > 2*time.Minute {
			t.Errorf("%s = %s, want a bound of at most 2m", name, d)
		}
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 64<<10 {
		t.Errorf("MaxHeaderBytes = %d, want at most 64 KiB", srv.MaxHeaderBytes)
	}
	for name, req := range map[string]string{
		"200,000-character path": "GET /" + strings.Repeat("%3C", 66667) + " HTTP/1.1\r\nHost: hvro\r\n\r\n",
		"100 KiB header":         "GET /healthz HTTP/1.1\r\nHost: hvro\r\nX-Big: " + strings.Repeat("x", 100<<10) + "\r\n\r\n",
	} {
		c, err := net.Dial("tcp", s.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(within.Limit))
		go io.WriteString(c, req) // net/http answers before it read everything
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		c.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || len(body) > 1024 {
			t.Errorf("%s: %d with %d bytes, want 431 with a short body", name, resp.StatusCode, len(body))
		}
	}
}

// TestWarningsLogged: serve repeats check-config's warnings in its log at
// start and after every reload.
func TestWarningsLogged(t *testing.T) {
	var logBuf capture.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := testConfig(t.TempDir()) // winrm.auth basic over http URLs
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 4 {
		t.Fatalf("test config warnings: %v", cfg.Warnings)
	}
	s, err := New(cfg, Options{Hosts: (&fakeHosts{}).factory, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	logged := func() int {
		return strings.Count(logBuf.String(), `level=WARN msg="configuration warning" key=winrm.auth`)
	}
	if n := logged(); n != 4 {
		t.Errorf("start logged %d warnings, want 4:\n%s", n, logBuf.String())
	}
	s.ReloadSource(func() (*config.Config, error) { return cfg, nil })
	if err := s.ReloadFromSource(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := logged(); n != 8 {
		t.Errorf("start and reload logged %d warnings, want 8:\n%s", n, logBuf.String())
	}
}

// TestReadyFollowsStoreCommits: /readyz's Ready is an error while the
// store's writes fail, naming why.
func TestReadyFollowsStoreCommits(t *testing.T) {
	s, err := New(testConfig(t.TempDir()), Options{Hosts: (&fakeHosts{}).factory})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	if err := s.Ready(); err != nil {
		t.Fatalf("a started service: %v", err)
	}
	// A store that cannot write any more: here closed under the service.
	s.store.Close()
	if err := s.store.Update(func(store.Tx) error { return nil }); err == nil {
		t.Fatal("a write to a closed store succeeded")
	}
	if err := s.Ready(); err == nil || !strings.Contains(err.Error(), "failed to commit") {
		t.Fatalf("Ready after a failed write: %v", err)
	}
}

// TestReloadRebuildsDriverOnWinRMSettings: a reload keeps a host's driver
// only when nothing it was built from changed; the shell idle timeout it
// asks hosts for is one of those settings.
func TestReloadRebuildsDriverOnWinRMSettings(t *testing.T) {
	tests := []struct {
		name   string
		change func(*config.Config)
		same   bool
	}{
		{name: "nothing", change: func(*config.Config) {}, same: true},
		{name: "timeout", change: func(c *config.Config) { c.WinRM.Timeout = 2 * time.Minute }},
		{name: "shell idle timeout", change: func(c *config.Config) { c.WinRM.ShellIdleTimeout = 5 * time.Minute }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := testConfig(t.TempDir()), testConfig(t.TempDir())
			tc.change(b)
			if got := sameHostConfig(a, b, "node1"); got != tc.same {
				t.Fatalf("sameHostConfig = %v, want %v", got, tc.same)
			}
		})
	}
}

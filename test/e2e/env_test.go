package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hvro/hvro/test/capture"
	"github.com/hvro/hvro/test/gobuild"
	"github.com/hvro/hvro/test/sim/hyperv"
	"github.com/hvro/hvro/test/sim/lab"
)

// hvroBin is the hvro binary under test, built once by TestMain.
var hvroBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hvro-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The service under test gets the race detector when the test has it;
	// a report in its stderr fails the test that ran it.
	hvroBin, err = gobuild.Build(dir, "github.com/hvro/hvro/cmd/hvro")
	if err != nil {
		fmt.Fprintln(os.Stderr, "build hvro:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	vmID        = "C520D71E-AE84-40D6-A2B5-B1F697821703"
	primaryPath = `T:\VMs\Virtual Machines\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx`
	replicaPath = `T:\VMs\Hyper-V Replica\Virtual Machines\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx`
)

// env is one lab (two ECX clusters, four Hyper-V hosts) and one hvro serve
// process driving it.
type env struct {
	t       *testing.T
	dir     string
	lab     *lab.Lab
	hooks   bool
	hvroURL string
	admin   string
	cfgPath string

	proc   *exec.Cmd
	stderr *capture.Buffer
	// extraEnv is added to hvro's environment (failpoints).
	extraEnv []string

	checker *checker
}

type envOptions struct {
	hooks bool
	// configure edits the generated hvro.yaml text.
	configure func(string) string
	// env is added to hvro's environment, e.g. a failpoint.
	env []string
	// topology edits the lab before it starts.
	topology func(*lab.Topology)
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, hooks: o.hooks, extraEnv: o.env}
	secrets := filepath.Join(dir, "secrets")
	must(t, os.Mkdir(secrets, 0o700))
	write := func(name, v string) string {
		p := filepath.Join(secrets, name)
		must(t, os.WriteFile(p, []byte(v+"\n"), 0o600))
		return p
	}
	e.admin = "admin-token-0123456789abcdef"
	adminFile := write("admin.token", e.admin)
	hook1 := write("hook1.token", "hook-token-cluster1-0123456789")
	hook2 := write("hook2.token", "hook-token-cluster2-0123456789")
	winrmPass := write("winrm.pass", "lab-pass")
	ecx1 := write("ecx1.pass", "lab-pass-1")
	ecx2 := write("ecx2.pass", "lab-pass-2")

	e.hvroURL = "http://" + freeAddr(t)
	script := func(cluster, group, phase, token string) []string {
		if !o.hooks {
			return nil
		}
		return []string{hvroBin, "hook", "--url", e.hvroURL, "--cluster", cluster, "--group", group, "--phase", phase,
			"--token-file", token, "--wait", "60s", "--retry-for", "3s"}
	}
	fast := lab.ECXTiming{Pending: 30 * time.Millisecond, DiskSwitch: 30 * time.Millisecond}
	topo := &lab.Topology{
		Domain: "lab.local", Dir: dir,
		ECX: []lab.ECXCluster{
			{Name: "cluster1", Listen: "127.0.0.1:0", Username: "Administrator", Password: "lab-pass-1", Servers: []string{"node1", "node2"},
				NodeListen: map[string]string{"node1": "127.0.0.1:0", "node2": "127.0.0.1:0"}, Timing: fast,
				Groups: []lab.ECXGroup{{Name: "failover1", Owner: "node1", Disk: "sd1", Scripts: lab.ECXScripts{
					Start: script("cluster1", "failover1", "start", hook1), Stop: script("cluster1", "failover1", "stop", hook1), Timeout: 2 * time.Minute}}}},
			{Name: "cluster2", Listen: "127.0.0.1:0", Username: "Administrator", Password: "lab-pass-2", Servers: []string{"node3", "node4"},
				NodeListen: map[string]string{"node3": "127.0.0.1:0", "node4": "127.0.0.1:0"}, Timing: fast,
				Groups: []lab.ECXGroup{{Name: "failover2", Owner: "node3", Disk: "sd2", Scripts: lab.ECXScripts{
					Start: script("cluster2", "failover2", "start", hook2), Stop: script("cluster2", "failover2", "stop", hook2), Timeout: 2 * time.Minute}}}},
		},
		HyperV: lab.HyperV{
			Control: "127.0.0.1:0", Username: `LAB\admin`, Password: "lab-pass",
			Hosts: []lab.HyperVHost{{Name: "node1", Listen: "127.0.0.1:0"}, {Name: "node2", Listen: "127.0.0.1:0"},
				{Name: "node3", Listen: "127.0.0.1:0"}, {Name: "node4", Listen: "127.0.0.1:0"}},
			Disks: []lab.HyperVDisk{{Name: "T1", Group: lab.DiskGroup{Cluster: "cluster1", Group: "failover1"}},
				{Name: "T2", Group: lab.DiskGroup{Cluster: "cluster2", Group: "failover2"}}},
			VMs: []lab.HyperVVM{{Name: "vm1", ID: vmID, Copies: []lab.VMCopy{
				{Disk: "T1", ConfigPath: primaryPath, RegisteredOn: "node1", State: "Running"},
				{Disk: "T2", ConfigPath: replicaPath, RegisteredOn: "node3", State: "Off"}}}},
			Timing: &lab.HyperVTiming{InitialReplication: 200 * time.Millisecond, Resync: 200 * time.Millisecond,
				Cycle: 100 * time.Millisecond, ErrorAfter: 500 * time.Millisecond, DiskSettle: 100 * time.Millisecond},
		},
	}
	if o.topology != nil {
		o.topology(topo)
	}
	l, err := lab.Start(context.Background(), topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.lab = l
	t.Cleanup(func() { l.Close() })

	a := l.Addrs()
	winrm := func(h string) string { return a.WinRM[h] }
	cfg := fmt.Sprintf(`listen: %s
data_dir: %s
log_level: debug
log_format: text
resync_interval: 5s
retry: {max_attempts: 5, initial_backoff: 200ms, max_backoff: 2s}
auth: {admin_token_file: %s, metrics_public: true}
winrm: {username: 'LAB\admin', password_file: %s, auth: basic, timeout: 30s}
clusters:
  - name: cluster1
    api: {endpoints: [%s, %s], username: Administrator, password_file: %s, timeout: 2s}
    poll_interval: 1s
    hook_token_file: %s
    servers: {node1: {winrm: %q}, node2: {winrm: %q}}
  - name: cluster2
    api: {endpoints: [%s, %s], username: Administrator, password_file: %s, timeout: 2s}
    poll_interval: 1s
    hook_token_file: %s
    servers: {node3: {winrm: %q}, node4: {winrm: %q}}
pairs:
  - name: vm1
    primary: {cluster: cluster1, group: failover1, vm_config_path: '%s'}
    replica: {cluster: cluster2, group: failover2, vm_config_path: '%s'}
    replication: {frequency: 30s}
`, strings.TrimPrefix(e.hvroURL, "http://"), filepath.Join(dir, "data"), adminFile, winrmPass,
		a.ECX["cluster1"]["fip"], a.ECX["cluster1"]["node2"], ecx1, hook1, winrm("node1"), winrm("node2"),
		a.ECX["cluster2"]["fip"], a.ECX["cluster2"]["node4"], ecx2, hook2, winrm("node3"), winrm("node4"),
		primaryPath, replicaPath)
	if o.configure != nil {
		cfg = o.configure(cfg)
	}
	e.cfgPath = filepath.Join(dir, "hvro.yaml")
	must(t, os.WriteFile(e.cfgPath, []byte(cfg), 0o600))
	e.startHvro()
	e.checker = startChecker(e)
	t.Cleanup(func() {
		e.checker.stop()
		e.stopHvro(syscall.SIGTERM)
		if t.Failed() {
			logPath := filepath.Join(os.TempDir(), fmt.Sprintf("hvro-e2e-%s.log", strings.ReplaceAll(t.Name(), "/", "_")))
			os.WriteFile(logPath, []byte(e.stderr.String()), 0o644)
			t.Logf("hvro's log: %s; its end:\n%s", logPath, tail(e.stderr.String(), 3000))
		}
	})
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (e *env) startHvro() {
	e.t.Helper()
	if e.stderr == nil {
		e.stderr = &capture.Buffer{}
	}
	gobuild.DeclareSources()
	cmd := exec.Command(hvroBin, "serve", "--config", e.cfgPath)
	cmd.Env = append(os.Environ(), e.extraEnv...)
	cmd.Stdout, cmd.Stderr = e.stderr, e.stderr
	must(e.t, cmd.Start())
	e.proc = cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(e.hvroURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("hvro did not become ready: %v\n%s", err, tail(e.stderr.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopHvro signals hvro and waits for it; it returns the exit code.
func (e *env) stopHvro(sig syscall.Signal) int {
	if e.proc == nil || e.proc.ProcessState != nil {
		return -1
	}
	e.proc.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- e.proc.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		e.proc.Process.Kill()
		<-done
		e.t.Errorf("hvro did not stop within 60s after %v", sig)
	}
	if strings.Contains(e.stderr.String(), "WARNING: DATA RACE") {
		e.t.Errorf("the race detector reported a data race in hvro:\n%s", tail(e.stderr.String(), 8000))
	}
	return e.proc.ProcessState.ExitCode()
}

// api calls hvro's API with the admin token.
func (e *env) api(method, path string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.hvroURL+path, rd)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode
}

type pairView struct {
	Name     string
	Phase    string
	Primary  struct{ Cluster, Host string }
	Replica  struct{ Cluster, Host string }
	Degraded *struct {
		Reason, Error string
	}
	Replication struct{ State, Health string }
}

// pair is vm1's view, the pair every env has.
func (e *env) pair() pairView {
	e.t.Helper()
	return e.pairNamed("vm1")
}

func (e *env) pairNamed(name string) pairView {
	e.t.Helper()
	var r struct{ Pairs []pairView }
	e.api("GET", "/v1/pairs", nil, &r)
	for _, p := range r.Pairs {
		if p.Name == name {
			return p
		}
	}
	e.t.Fatalf("no pair %s in %+v", name, r)
	return pairView{}
}

// control calls the lab's control API and fails the test on an error;
// only from the test's goroutine (see controlErr).
func (e *env) control(method, path string, body any) {
	e.t.Helper()
	if err := e.controlErr(method, path, body); err != nil {
		e.t.Fatal(err)
	}
}

// controlErr calls the lab's control API; safe from any goroutine.
func (e *env) controlErr(method, path string, body any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return e.lab.Control(ctx, method, path, body)
}

func (e *env) state() lab.State { return e.lab.State() }

func vmOn(st lab.State, host string) (hyperv.VMEntry, bool) {
	for _, h := range st.Hosts {
		if h.Name == host {
			for _, v := range h.VMs {
				if v.ID == vmID {
					return v, h.Up
				}
			}
		}
	}
	return hyperv.VMEntry{}, false
}

// resolve is the lab host a name Hyper-V reports resolves to (its server
// name, FQDN, identity or a DNS alias, in any case), "" for none.
func resolve(st lab.State, name string) string {
	for _, h := range st.Hosts {
		for _, n := range append([]string{h.Name, h.FQDN, h.Identity}, h.DNSNames...) {
			if name != "" && strings.EqualFold(n, name) {
				return h.Name
			}
		}
	}
	return ""
}

// converged checks I4 on the lab: the VM runs on p only, replicating
// p -> r, Replicating/Normal on both halves, and no live registration on
// any other host keeps a relationship or an Error.
func converged(st lab.State, p, r string) error {
	pv, up := vmOn(st, p)
	if !up || pv.Storage != "live" || !pv.Running {
		return fmt.Errorf("vm1 on %s: %+v (up %v), want running with live storage", p, pv, up)
	}
	if pv.Replication == nil || pv.Replication.Mode != "Primary" || pv.Replication.State != "Replicating" || pv.Replication.Health != "Normal" ||
		resolve(st, pv.Replication.ReplicaServer) != r {
		return fmt.Errorf("primary half on %s: %+v, want Primary/Replicating/Normal to %s", p, pv.Replication, r)
	}
	rv, up := vmOn(st, r)
	if !up || rv.Storage != "live" || rv.Running {
		return fmt.Errorf("vm1 on %s: %+v, want off with live storage", r, rv)
	}
	if rv.Replication == nil || rv.Replication.Mode != "Replica" || rv.Replication.State != "Replicating" || resolve(st, rv.Replication.PrimaryServer) != p {
		return fmt.Errorf("replica half on %s: %+v, want Replica/Replicating from %s", r, rv.Replication, p)
	}
	for _, h := range st.Hosts {
		if h.Name == p || h.Name == r || !h.Up {
			continue
		}
		for _, v := range h.VMs {
			if v.ID != vmID || v.Storage != "live" {
				continue
			}
			if v.Running || v.Replication != nil {
				return fmt.Errorf("%s still has vm1 running=%v replication %+v", h.Name, v.Running, v.Replication)
			}
		}
	}
	return nil
}

// waitConverged waits until hvro says Converged and the lab agrees.
func (e *env) waitConverged(p, r string) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("convergence %s -> %s", p, r), 45*time.Second, func() error {
		pv := e.pair()
		if pv.Phase != "Converged" || pv.Primary.Host != p || pv.Replica.Host != r {
			return fmt.Errorf("hvro: %s, primary %s replica %s, degraded %+v", pv.Phase, pv.Primary.Host, pv.Replica.Host, pv.Degraded)
		}
		return converged(e.state(), p, r)
	})
	e.checker.assertClean()
}

func (e *env) waitFor(what string, d time.Duration, cond func() error) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

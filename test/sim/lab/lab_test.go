package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv"
	"github.com/hvro/hvro/test/sim/hyperv/wsman"
	"github.com/hvro/hvro/test/sim/mzwinrm"
	"github.com/hvro/hvro/test/sim/pywinrm"
	"github.com/hvro/hvro/test/within"
)

const (
	vmID        = "C520D71E-AE84-40D6-A2B5-B1F697821703"
	primaryPath = `T:\VMs\Virtual Machines\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx`
	replicaPath = `T:\VMs\Hyper-V Replica\Virtual Machines\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx`
	labUser     = `LAB\admin`
	labPass     = "lab-pass"
)

// testTopology is the two-cluster lab of CONTRACTS.md section 4 on free
// loopback ports, with fast timing.
func testTopology(t *testing.T) *Topology {
	t.Helper()
	fast := ECXTiming{Pending: 20 * time.Millisecond, DiskSwitch: 20 * time.Millisecond}
	return &Topology{
		Domain: "lab.local",
		Dir:    t.TempDir(),
		ECX: []ECXCluster{
			{Name: "cluster1", Listen: "127.0.0.1:0", Username: "Administrator", Password: "lab-pass-1", Servers: []string{"node1", "node2"},
				NodeListen: map[string]string{"node1": "127.0.0.1:0", "node2": "127.0.0.1:0"},
				Groups:     []ECXGroup{{Name: "failover1", Owner: "node1", Disk: "sd1"}}, Timing: fast},
			{Name: "cluster2", Listen: "127.0.0.1:0", Username: "Administrator", Password: "lab-pass-2", Servers: []string{"node3", "node4"},
				Groups: []ECXGroup{{Name: "failover2", Owner: "node3", Disk: "sd2"}}, Timing: fast},
		},
		HyperV: HyperV{
			Control: "127.0.0.1:0", Username: labUser, Password: labPass,
			Hosts: []HyperVHost{
				{Name: "node1", Listen: "127.0.0.1:0", HTTPS: true},
				{Name: "node2", Listen: "127.0.0.1:0", ComputerName: "HV-NODE2"},
				{Name: "node3", Listen: "127.0.0.1:0", DNSNames: []string{"node3-mgmt.corp"}},
				{Name: "node4", Listen: "127.0.0.1:0"},
			},
			Disks: []HyperVDisk{
				{Name: "T1", Group: DiskGroup{Cluster: "cluster1", Group: "failover1"}},
				{Name: "T2", Group: DiskGroup{Cluster: "cluster2", Group: "failover2"}},
			},
			VMs: []HyperVVM{{Name: "vm1", ID: vmID, Copies: []VMCopy{
				{Disk: "T1", ConfigPath: primaryPath, RegisteredOn: "node1", State: "Off"},
				{Disk: "T2", ConfigPath: replicaPath, RegisteredOn: "node3", State: "Off"},
			}}},
			Timing: &HyperVTiming{InitialReplication: 150 * time.Millisecond, Resync: 150 * time.Millisecond,
				Cycle: 100 * time.Millisecond, ErrorAfter: 600 * time.Millisecond, DiskSettle: 30 * time.Millisecond},
		},
	}
}

func startLab(t *testing.T, topo *Topology) *Lab {
	t.Helper()
	l, err := Start(context.Background(), topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if errs := l.Errors(); len(errs) > 0 {
			t.Errorf("lab errors: %v", errs)
		}
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}

// runner runs PowerShell on a lab host through a real WinRM client.
type runner interface {
	name() string
	run(t *testing.T, host, script string) (stdout, stderr string, code int)
}

type mzRunner struct{ l *Lab }

func (mzRunner) name() string { return "masterzen" }

func (r mzRunner) run(t *testing.T, host, script string) (string, string, int) {
	t.Helper()
	c, err := mzwinrm.Client(hostAddr(t, r.l.Addrs().WinRM[host]), mzwinrm.Options{User: labUser, Password: labPass, OperationTimeout: "PT20S"})
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code, err := c.RunPSWithString(script, "")
	if err != nil {
		t.Fatalf("masterzen on %s: %v", host, err)
	}
	return out, errOut, code
}

type pyRunner struct{ l *Lab }

func (pyRunner) name() string { return "pywinrm" }

func (r pyRunner) run(t *testing.T, host, script string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := pywinrm.Run(ctx, pywinrm.Spec{Kind: "run_ps", URL: r.l.Addrs().WinRM[host], User: labUser, Password: labPass, Script: script})
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != "" {
		t.Fatalf("pywinrm on %s raised %s: %s", host, res.Error, res.Message)
	}
	return res.Stdout, res.Stderr, int(res.Code)
}

func hostAddr(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// ok runs a script that must succeed and returns its trimmed stdout.
func ok(t *testing.T, r runner, host, script string) string {
	t.Helper()
	out, errOut, code := r.run(t, host, script)
	if code != 0 || errOut != "" {
		t.Fatalf("%s on %s: %s\nexit %d, stderr %q, stdout %q", r.name(), host, script, code, errOut, out)
	}
	return strings.TrimSpace(out)
}

func vmOn(l *Lab, host string) (hyperv.VMEntry, bool) {
	for _, h := range l.World.State().Hosts {
		if h.Name == host {
			for _, v := range h.VMs {
				if v.ID == vmID {
					return v, true
				}
			}
		}
	}
	return hyperv.VMEntry{}, false
}

func repState(l *Lab, host string) string {
	v, ok := vmOn(l, host)
	if !ok || v.Replication == nil {
		return ""
	}
	return v.Replication.State
}

func control(t *testing.T, l *Lab, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, l.Addrs().Control+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// TestCmdletsOverWinRM runs every Hyper-V cmdlet of the emulator through
// each real client: the seed's crash repair, replication set-up, health,
// suspend/resume, settings, a planned failover, a test failover, a
// completed failover and removal.
func TestCmdletsOverWinRM(t *testing.T) {
	pywinrm.Require(t)
	for _, mk := range []func(*Lab) runner{
		func(l *Lab) runner { return mzRunner{l} },
		func(l *Lab) runner { return pyRunner{l} },
	} {
		t.Run(mk(nil).name(), func(t *testing.T) {
			// One lab per client, started here so it does not tick while
			// the other client's scenario runs.
			l := startLab(t, testTopology(t))
			r := mk(l)
			scenario(t, l, r)
			var scripts strings.Builder
			for _, rec := range l.World.Log() {
				scripts.WriteString(rec.Script + "\n")
			}
			for _, c := range hyperv.CmdletNames() {
				// A whole name: Get-VM must not count as Get-VMReplication.
				word := regexp.MustCompile(`(?i)(^|[^\w-])` + regexp.QuoteMeta(c) + `($|[^\w-])`)
				if !word.MatchString(scripts.String()) {
					t.Errorf("%s never ran through %s", c, r.name())
				}
			}
		})
	}
}

func scenario(t *testing.T, l *Lab, r runner) {
	got := ok(t, r, "node1", `Get-VM | Select-Object Name, Id, @{n='State';e={[string]$_.State}}, ReplicationMode | ConvertTo-Json -Compress`)
	if got != `{"Name":"vm1","Id":"c520d71e-ae84-40d6-a2b5-b1f697821703","State":"Off","ReplicationMode":0}` {
		t.Fatalf("Get-VM: %s", got)
	}
	ok(t, r, "node1", `Start-VM -Name vm1`)

	// The seed: node1 crashes with vm1 running, ECX fails the group over
	// to node2, and the VM's configuration references saved state that is
	// gone. Compare-VM -> Remove-VMSavedState -> Import-VM -> Start-VM.
	if code, body := control(t, l, "POST", "/sim/ecx/cluster1/servers/node1/down", nil); code != 200 {
		t.Fatalf("server down: %d %s", code, body)
	}
	within.Eventually(t, "T1 online on node2 and settled", func() bool {
		for _, d := range l.World.State().Disks {
			if d.Name == "T1" {
				return d.Owner == "node2"
			}
		}
		return false
	})
	time.Sleep(50 * time.Millisecond) // past the disk's settle window
	got = ok(t, r, "node2", `$report = Compare-VM -Path '`+primaryPath+`'; ($report.Incompatibilities | ForEach-Object { $_.MessageId }) -join ','`)
	if got != "40004,40006" {
		t.Fatalf("Compare-VM incompatibilities %q", got)
	}
	got = ok(t, r, "node2", `$report = Compare-VM -Path '`+primaryPath+`'
$report.Incompatibilities[0].Source | Remove-VMSavedState
Import-VM -CompatibilityReport $report | Out-Null
Start-VM -Name vm1
(Get-VM -Name vm1).State.ToString()`)
	if got != "Running" {
		t.Fatalf("after repair vm1 is %q on node2", got)
	}
	ok(t, r, "node2", `Stop-VM -Name vm1 -Force`)
	if code, body := control(t, l, "POST", "/sim/ecx/cluster1/servers/node1/up", nil); code != 200 {
		t.Fatalf("server up: %d %s", code, body)
	}

	// Replication node2 -> node3, the Cluster-Set way with -UseBackup.
	got = ok(t, r, "node3", `Enable-VMReplication -VMName vm1 -AsReplica -Passthru | Select-Object VMName, @{n='Mode';e={[string]$_.ReplicationMode}} | ConvertTo-Json -Compress`)
	if got != `{"VMName":"vm1","Mode":"Replica"}` {
		t.Fatalf("Enable -AsReplica: %s", got)
	}
	got = ok(t, r, "node2", `Get-VMHost | Select-Object ComputerName, FullyQualifiedDomainName | ConvertTo-Json -Compress`)
	if got != `{"ComputerName":"HV-NODE2","FullyQualifiedDomainName":"HV-NODE2.lab.local"}` {
		t.Fatalf("Get-VMHost: %s", got)
	}
	ok(t, r, "node2", `Enable-VMReplication -VMName vm1 -ReplicaServerName node3-mgmt.corp -ReplicaServerPort 80 -AuthenticationType Kerberos -CompressionEnabled $true -ReplicationFrequencySec 300`)
	ok(t, r, "node2", `Start-VMInitialReplication -VMName vm1 -UseBackup`)
	within.Eventually(t, "initial replication", func() bool { return repState(l, "node2") == "Replicating" })
	got = ok(t, r, "node2", `Get-VMReplication -VMName vm1 | Select-Object @{n='State';e={[string]$_.State}}, PrimaryServer, ReplicaServer, ReplicaPort | ConvertTo-Json -Compress`)
	// Hyper-V reports the primary by its identity (computer name and
	// domain) and the replica server as it was given (node3's alias).
	if got != `{"State":"Replicating","PrimaryServer":"HV-NODE2.lab.local","ReplicaServer":"node3-mgmt.corp","ReplicaPort":80}` {
		t.Fatalf("Get-VMReplication: %s", got)
	}
	within.Eventually(t, "a replication cycle", func() bool {
		return ok(t, r, "node2", `(Measure-VMReplication -VMName vm1).SuccessfulReplicationCount -gt 0`) == "True"
	})
	ok(t, r, "node2", `Suspend-VMReplication -VMName vm1; Resume-VMReplication -VMName vm1 -Resynchronize`)
	within.Eventually(t, "resynchronization", func() bool { return repState(l, "node2") == "Replicating" })
	ok(t, r, "node2", `Set-VMReplication -VMName vm1 -ReplicationFrequencySec 30`)
	got = ok(t, r, "node3", `Set-VMReplicationServer -ReplicationEnabled $true -ReplicationAllowedFromAnyServer $true -DefaultStorageLocation 'D:\Replica'; (Get-VMReplicationServer).DefaultStorageLocation`)
	if got != `D:\Replica` {
		t.Fatalf("replication server storage %q", got)
	}

	// Planned failover in the documented order: node3 becomes primary.
	ok(t, r, "node2", `Start-VMFailover -VMName vm1 -Prepare -Confirm:$false`)
	ok(t, r, "node3", `Start-VMFailover -VMName vm1 -Confirm:$false; Set-VMReplication -VMName vm1 -Reverse; Start-VM -Name vm1`)
	if v, _ := vmOn(l, "node3"); v.State != "Running" || v.Replication.Mode != "Primary" {
		t.Fatalf("after planned failover node3 has %s/%+v", v.State, v.Replication)
	}

	// Test failover on the new replica, then a completed failover.
	ok(t, r, "node2", `Start-VMFailover -VMName vm1 -AsTest -Confirm:$false; Stop-VMFailover -VMName vm1`)
	ok(t, r, "node3", `Stop-VM -Name vm1`)
	ok(t, r, "node2", `Start-VMFailover -VMName vm1 -Confirm:$false; Complete-VMFailover -VMName vm1`)
	if s := repState(l, "node2"); s != "FailedOver" {
		t.Fatalf("after Complete-VMFailover node2 is %s", s)
	}
	ok(t, r, "node2", `Remove-VMReplication -VMName vm1`)
	ok(t, r, "node3", `Remove-VMReplication -VMName vm1`)
	if got := ok(t, r, "node3", `@(Get-VMReplication).Count`); got != "0" {
		t.Fatalf("replication left on node3: %s", got)
	}
}

// TestSlowCmdlet makes a cmdlet outlast the client's OperationTimeout: the
// host answers the WS-Man TimedOut fault, both clients poll again, and the
// command completes once, with its output.
func TestSlowCmdlet(t *testing.T) {
	pywinrm.Require(t)
	l := startLab(t, testTopology(t))
	if code, body := control(t, l, "POST", "/sim/latency", map[string]any{"cmdlet": "Get-VM", "ms": 2500}); code != 200 {
		t.Fatalf("latency: %d %s", code, body)
	}
	c, err := mzwinrm.Client(hostAddr(t, l.Addrs().WinRM["node2"]), mzwinrm.Options{User: labUser, Password: labPass, OperationTimeout: "PT1S", HeaderTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	out, _, code, err := c.RunPSWithString(`@(Get-VM).Count`, "")
	if err != nil || code != 0 || strings.TrimSpace(out) != "0" {
		t.Fatalf("masterzen: out %q code %d err %v", out, code, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := pywinrm.Run(ctx, pywinrm.Spec{Kind: "run_ps", URL: l.Addrs().WinRM["node1"], User: labUser, Password: labPass,
		Script: `(Get-VM).Name`, OperationTimeout: 1, ReadTimeout: 5})
	if err != nil || res.Error != "" || strings.TrimSpace(res.Stdout) != "vm1" {
		t.Fatalf("pywinrm: %+v %v", res, err)
	}
	n := 0
	for _, rec := range l.World.Log() {
		if strings.Contains(rec.Script, "Get-VM") {
			n++
			if rec.DurationMS < 2500 {
				t.Errorf("slow command took %d ms", rec.DurationMS)
			}
		}
	}
	if n != 2 {
		t.Errorf("the slow commands ran %d times, want once per client", n)
	}
}

func TestWrongPasswordAndQuota(t *testing.T) {
	pywinrm.Require(t)
	l := startLab(t, testTopology(t))
	url := l.Addrs().WinRM["node3"]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	res, err := pywinrm.Run(ctx, pywinrm.Spec{Kind: "run_ps", URL: url, User: labUser, Password: "wrong", Script: "1"})
	if err != nil || res.Error != "InvalidCredentialsError" {
		t.Fatalf("pywinrm with a wrong password: %+v %v", res, err)
	}
	c, _ := mzwinrm.Client(hostAddr(t, url), mzwinrm.Options{User: labUser, Password: "wrong"})
	if _, _, _, err := c.RunPSWithString("1", ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("masterzen with a wrong password: %v", err)
	}
	if n := len(l.World.Log()); n != 0 {
		t.Fatalf("%d commands ran without valid credentials", n)
	}

	res, err = pywinrm.Run(ctx, pywinrm.Spec{Kind: "quota", URL: url, User: labUser, Password: labPass, Count: 31})
	if err != nil || res.Opened != 30 || !strings.Contains(res.Message, "maximum number of 30 concurrent shells") {
		t.Fatalf("pywinrm quota: %+v %v", res, err)
	}
	c, _ = mzwinrm.Client(hostAddr(t, url), mzwinrm.Options{User: labUser, Password: labPass})
	var shells []interface{ Close() error }
	defer func() {
		for _, s := range shells {
			s.Close()
		}
	}()
	for i := 0; i < 30; i++ {
		s, err := c.CreateShell()
		if err != nil {
			t.Fatalf("masterzen shell %d: %v", i+1, err)
		}
		shells = append(shells, s)
	}
	if _, err := c.CreateShell(); err == nil || !strings.Contains(err.Error(), "maximum number of 30 concurrent shells") {
		t.Fatalf("masterzen 31st shell: %v", err)
	}
}

// TestHTTPS runs commands over the lab CA's TLS listener with both clients.
func TestHTTPS(t *testing.T) {
	pywinrm.Require(t)
	l := startLab(t, testTopology(t))
	a := l.Addrs()
	if a.CAFile == "" || a.WinRMS["node1"] == "" {
		t.Fatalf("no HTTPS listener: %+v", a)
	}
	ca, err := os.ReadFile(a.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := mzwinrm.Client(hostAddr(t, a.WinRMS["node1"]), mzwinrm.Options{HTTPS: true, CACert: ca, User: labUser, Password: labPass})
	out, _, code, err := c.RunPSWithString(`(Get-VM).Name`, "")
	if err != nil || code != 0 || strings.TrimSpace(out) != "vm1" {
		t.Fatalf("masterzen over HTTPS: %q %d %v", out, code, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := pywinrm.Run(ctx, pywinrm.Spec{Kind: "run_cmd", URL: a.WinRMS["node1"], User: labUser, Password: labPass, Command: "hostname", CA: a.CAFile})
	if err != nil || res.Error != "" || res.Stdout != "NODE1\r\n" {
		t.Fatalf("pywinrm over HTTPS: %+v %v", res, err)
	}
}

// TestPowerShellErrorsOverWinRM checks a Hyper-V error reaches pywinrm as
// powershell.exe reports it: exit code 1, and on stderr CLIXML after
// -EncodedCommand, plain text after -Command.
func TestPowerShellErrorsOverWinRM(t *testing.T) {
	pywinrm.Require(t)
	l := startLab(t, testTopology(t))
	const msg = `Start-VM : Hyper-V was unable to find a virtual machine with name "vm1".`
	for _, tc := range []struct {
		name, command string
		clixml        bool
	}{
		{"encoded", "powershell -NoProfile -NonInteractive -encodedcommand " + wsman.EncodeCommand(`Start-VM -Name vm1`), true},
		{"command", "powershell -NoProfile -NonInteractive -Command Start-VM -Name vm1", false},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := pywinrm.Run(ctx, pywinrm.Spec{Kind: "protocol", URL: l.Addrs().WinRM["node2"], User: labUser, Password: labPass, Command: tc.command})
		cancel()
		if err != nil || res.Error != "" {
			t.Fatalf("%s: %+v %v", tc.name, res, err)
		}
		if res.Code != 1 || strings.HasPrefix(res.Stderr, "#< CLIXML\r\n") != tc.clixml || !strings.Contains(res.Stderr, msg) {
			t.Errorf("%s: exit %d stderr %q, want exit 1 with CLIXML %v", tc.name, res.Code, res.Stderr, tc.clixml)
		}
	}
}

func TestControlAPI(t *testing.T) {
	l := startLab(t, testTopology(t))
	r := mzRunner{l}

	code, body := control(t, l, "GET", "/sim/state", nil)
	var st State
	if code != 200 || json.Unmarshal(body, &st) != nil || len(st.Hosts) != 4 || len(st.ECX) != 2 || len(st.Disks) != 2 {
		t.Fatalf("state: %d %.300s", code, body)
	}

	// Faults: the next Start-VM on node1 fails with the named error, once.
	code, body = control(t, l, "POST", "/sim/faults", map[string]any{"host": "node1", "cmdlet": "Start-VM", "error": "config_not_accessible", "times": 1})
	if code != 200 {
		t.Fatalf("fault: %d %s", code, body)
	}
	_, errOut, exit := r.run(t, "node1", `Start-VM vm1`)
	if exit != 1 || !strings.Contains(errOut, "because the configuration was not accessible") {
		t.Fatalf("faulted Start-VM: exit %d %q", exit, errOut)
	}
	ok(t, r, "node1", `Start-VM vm1`)

	for _, tc := range []struct {
		path string
		body any
		want string
	}{
		{"/sim/faults", map[string]any{"host": "nodeX", "cmdlet": "Start-VM", "error": "invalid_state", "times": 1}, `fault host \"nodeX\": no such host`},
		{"/sim/faults", map[string]any{"host": "node1", "cmdlet": "Get-Date", "error": "invalid_state", "times": 1}, `fault cmdlet \"Get-Date\"`},
		{"/sim/faults", map[string]any{"host": "node1", "cmdlet": "Start-VM", "error": "meltdown", "times": 1}, `fault error \"meltdown\": not a known error`},
		{"/sim/faults", map[string]any{"host": "node1", "cmdlet": "Start-VM", "error": "invalid_state", "times": 0}, "fault times 0"},
		{"/sim/faults", map[string]any{"host": "node1", "cmdlet": "Start-VM", "error": "invalid_state", "times": 1, "extra": 1}, `unknown field \"extra\"`},
		{"/sim/latency", map[string]any{"cmdlet": "Start-VM"}, "ms: missing"},
		{"/sim/latency", map[string]any{"cmdlet": "Start-VM", "ms": -5}, "must be between 0 and 10m"},
	} {
		code, body := control(t, l, "POST", tc.path, tc.body)
		if code != 400 || !strings.Contains(string(body), tc.want) {
			t.Errorf("POST %s %v: %d %s, want 400 with %q", tc.path, tc.body, code, body, tc.want)
		}
	}
	if code, body := control(t, l, "POST", "/sim/hosts/nodeX/crash", nil); code != 404 || !strings.Contains(string(body), `"code":"not_found"`) {
		t.Errorf("crash unknown host: %d %s", code, body)
	}
	if code, _ := control(t, l, "GET", "/sim/nope", nil); code != 404 {
		t.Errorf("unknown route: %d", code)
	}

	// Crash and boot a host: its listener refuses connections while down.
	if code, body := control(t, l, "POST", "/sim/hosts/node4/crash", nil); code != 200 {
		t.Fatalf("crash: %d %s", code, body)
	}
	if code, body := control(t, l, "POST", "/sim/hosts/node4/crash", nil); code != 409 {
		t.Errorf("second crash: %d %s", code, body)
	}
	if _, err := http.Get(l.Addrs().WinRM["node4"]); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("crashed host still answers: %v", err)
	}
	if code, body := control(t, l, "POST", "/sim/hosts/node4/boot", nil); code != 200 {
		t.Fatalf("boot: %d %s", code, body)
	}
	ok(t, r, "node4", `@(Get-VM).Count`)

	// An ECX move moves the disk: vm1 on node1 loses its storage while
	// running and the move's stop script would have had to stop it.
	if code, body := control(t, l, "POST", "/sim/ecx/cluster1/groups/failover1/move", map[string]string{"target": "node2"}); code != 200 {
		t.Fatalf("move: %d %s", code, body)
	}
	if v, _ := vmOn(l, "node1"); v.Storage != "lost" || v.State != "PausedCritical" {
		t.Fatalf("vm1 on node1 after the move: %+v", v)
	}

	code, body = control(t, l, "GET", "/sim/log?host=node1", nil)
	var lg struct{ Commands []hyperv.CommandRecord }
	if code != 200 || json.Unmarshal(body, &lg) != nil || len(lg.Commands) != 2 || lg.Commands[1].Script == "" {
		t.Fatalf("log: %d %.400s", code, body)
	}
	if code, _ := control(t, l, "GET", "/sim/log?since=yesterday", nil); code != 400 {
		t.Errorf("bad since: %d", code)
	}
}

// TestDiskFollowsECXURL binds a disk to a group of another lab's ECX API.
func TestDiskFollowsECXURL(t *testing.T) {
	ecxLab := startLab(t, testTopology(t))
	topo := testTopology(t)
	topo.ECX = topo.ECX[1:]
	topo.HyperV.Disks[0].Group = DiskGroup{URL: ecxLab.Addrs().ECX["cluster1"]["fip"], Username: "Administrator", Password: "lab-pass-1",
		Group: "failover1", Poll: 30 * time.Millisecond}
	l := startLab(t, topo)
	if v, _ := vmOn(l, "node1"); v.Storage != "live" {
		t.Fatalf("vm1 on node1 at start: %+v", v)
	}
	if err := ecxLab.Clusters["cluster1"].Move(context.Background(), "failover1", "node2"); err != nil {
		t.Fatal(err)
	}
	within.Eventually(t, "the disk to follow the group", func() bool {
		owner, _ := l.World.DiskOwner("T1")
		return owner == "node2"
	})
}

func TestTopologyValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Topology)
		want   []string
	}{
		{"non-loopback control", func(t *Topology) { t.HyperV.Control = "0.0.0.0:1" }, []string{`hyperv.control: "0.0.0.0:1" is not a loopback address`}},
		{"duplicate host", func(t *Topology) { t.HyperV.Hosts[1].Name = "node1" }, []string{`hyperv.hosts[1].name: "node1" is defined twice`}},
		{"unknown server", func(t *Topology) { t.ECX[0].Servers = []string{"node1", "node9"} },
			[]string{`ecx[0].servers[1]: "node9" is not a hyperv host`}},
		{"owner not a server", func(t *Topology) { t.ECX[0].Groups[0].Owner = "node3" }, []string{`ecx[0].groups[0].owner: "node3" is not one of the cluster's servers`}},
		{"disk without group", func(t *Topology) { t.HyperV.Disks[0].Group = DiskGroup{} }, []string{"hyperv.disks[0].group: missing"}},
		{"two disks on one group", func(t *Topology) { t.HyperV.Disks[1].Group = t.HyperV.Disks[0].Group },
			[]string{"hyperv.disks[1].group: group failover1 is already bound to disk T1"}},
		{"two disks of one cluster on one drive", func(t *Topology) {
			t.ECX[0].Groups = append(t.ECX[0].Groups, ECXGroup{Name: "failover3", Owner: "node1", Disk: "sd3"})
			t.HyperV.Disks = append(t.HyperV.Disks, HyperVDisk{Name: "T3", Letter: "t", Group: DiskGroup{Cluster: "cluster1", Group: "failover3"}})
		}, []string{"hyperv.disks[2].letter: T3: disk T1 of cluster cluster1 already uses drive T:"}},
		{"disk on unknown cluster", func(t *Topology) { t.HyperV.Disks[1].Group.Cluster = "c9" }, []string{`hyperv.disks[1].group.cluster: "c9" is not an ecx cluster`}},
		{"negative shell idle minimum", func(t *Topology) { t.HyperV.MinShellIdleTimeout = -time.Second }, []string{"hyperv.min_shell_idle_timeout: negative"}},
		{"several problems", func(t *Topology) {
			t.HyperV.VMs[0].ID = "nope"
			t.HyperV.VMs[0].Copies[1].State = "Paused"
			t.HyperV.VMs[0].Copies[0].ConfigPath = "vm.vmcx"
		}, []string{`hyperv.vms[0].id: "nope" is not a GUID`, `hyperv.vms[0].copies[1].state: "Paused"`, `hyperv.vms[0].copies[0].config_path`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo := testTopology(t)
			tc.mutate(topo)
			err := topo.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadExample(t *testing.T) {
	topo, err := Load("testdata/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.ECX) != 2 || len(topo.HyperV.Hosts) != 4 || len(topo.HyperV.VMs) != 1 {
		t.Fatalf("example topology: %+v", topo)
	}
	dir := t.TempDir()
	bad := dir + "/bad.yaml"
	os.WriteFile(bad, []byte("domain: x\nhyperv:\n  controll: 127.0.0.1:1\n"), 0o600)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "field controll not found") {
		t.Fatalf("unknown key: %v", err)
	}
}

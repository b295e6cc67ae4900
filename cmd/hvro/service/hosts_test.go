package service

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/orchestrator"
	"github.com/hvro/hvro/orchestrator/metrics"
	"github.com/hvro/hvro/replica"
	"github.com/hvro/hvro/test/capture"
	"github.com/hvro/hvro/test/sim/hyperv"
	"github.com/hvro/hvro/test/sim/lab"
	"github.com/hvro/hvro/test/within"
)

const (
	labVMID    = "C520D71E-AE84-40D6-A2B5-B1F697821703"
	labPrimary = `T:\VMs\Virtual Machines\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx`
	labReplica = `T:\VMs\Hyper-V Replica\Virtual Machines\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx`
)

// startHostLab runs two clusters (node1, node2 | node3, node4) with vm1
// running on node1 and its replica copy on node3; mutate edits the
// topology first.
func startHostLab(t *testing.T, mutate ...func(*lab.Topology)) *lab.Lab {
	t.Helper()
	fast := lab.ECXTiming{Pending: 20 * time.Millisecond, DiskSwitch: 20 * time.Millisecond}
	topo := &lab.Topology{
		Domain: "lab.local", Dir: t.TempDir(),
		ECX: []lab.ECXCluster{
			{Name: "cluster1", Listen: "127.0.0.1:0", Username: "Administrator", Password: "lab-pass-1", Servers: []string{"node1", "node2"},
				Groups: []lab.ECXGroup{{Name: "failover1", Owner: "node1", Disk: "sd1"}}, Timing: fast},
			{Name: "cluster2", Listen: "127.0.0.1:0", Username: "Administrator", Password: "lab-pass-2", Servers: []string{"node3", "node4"},
				Groups: []lab.ECXGroup{{Name: "failover2", Owner: "node3", Disk: "sd2"}}, Timing: fast},
		},
		HyperV: lab.HyperV{
			Control: "127.0.0.1:0", Username: `LAB\admin`, Password: "lab-pass",
			Hosts: []lab.HyperVHost{{Name: "node1", Listen: "127.0.0.1:0"}, {Name: "node2", Listen: "127.0.0.1:0"},
				{Name: "node3", Listen: "127.0.0.1:0"}, {Name: "node4", Listen: "127.0.0.1:0"}},
			Disks: []lab.HyperVDisk{{Name: "T1", Group: lab.DiskGroup{Cluster: "cluster1", Group: "failover1"}},
				{Name: "T2", Group: lab.DiskGroup{Cluster: "cluster2", Group: "failover2"}}},
			VMs: []lab.HyperVVM{{Name: "vm1", ID: labVMID, Copies: []lab.VMCopy{
				{Disk: "T1", ConfigPath: labPrimary, RegisteredOn: "node1", State: "Running"},
				{Disk: "T2", ConfigPath: labReplica, RegisteredOn: "node3", State: "Off"}}}},
			Timing: &lab.HyperVTiming{InitialReplication: 50 * time.Millisecond, Resync: 50 * time.Millisecond,
				Cycle: 50 * time.Millisecond, ErrorAfter: 300 * time.Millisecond, DiskSettle: 10 * time.Millisecond},
		},
	}
	for _, m := range mutate {
		m(topo)
	}
	l, err := lab.Start(context.Background(), topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// labConfig is an hvro configuration of the lab's hosts (no pairs),
// with the given replica_name per server.
func labConfig(l *lab.Lab, replicaNames map[string]string) *config.Config {
	c := config.Defaults()
	c.WinRM.Username, c.WinRM.Password, c.WinRM.Timeout = `LAB\admin`, config.NewSecret("lab-pass"), 20*time.Second
	for _, cl := range [][]string{{"cluster1", "node1", "node2"}, {"cluster2", "node3", "node4"}} {
		cc := config.DefaultCluster()
		cc.Name = cl[0]
		cc.Servers = map[string]config.Server{}
		for _, server := range cl[1:] {
			cc.Servers[server] = config.Server{WinRM: l.Addrs().WinRM[server], ReplicaName: replicaNames[server]}
		}
		c.Clusters = append(c.Clusters, cc)
	}
	return c
}

// labHosts builds the service's WinRM adapters for every lab host, sharing
// one HostNames as the service does.
func labHosts(t *testing.T, l *lab.Lab, replicaNames map[string]string) map[string]replicaHost {
	t.Helper()
	cfg := labConfig(l, replicaNames)
	names := newHostNames(cfg, metrics.New("test"), slog.New(slog.DiscardHandler))
	out := map[string]replicaHost{}
	for _, c := range cfg.Clusters {
		for _, h := range cfg.Hosts(c.Name) {
			d, err := winrmHost(h, names, metrics.New("test"), nil)
			if err != nil {
				t.Fatal(err)
			}
			out[h.Server] = d.(replicaHost)
			t.Cleanup(func() { d.(replicaHost).Close() })
		}
	}
	names.learners = func() map[string]func(context.Context) (replica.Identity, error) {
		m := map[string]func(context.Context) (replica.Identity, error){}
		for k, h := range out {
			m[k] = h.Identity
		}
		return m
	}
	return out
}

// labHost is the service's WinRM adapter for one lab host.
func labHost(t *testing.T, l *lab.Lab, server string) replicaHost {
	t.Helper()
	return labHosts(t, l, nil)[server]
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func lastStopOn(l *lab.Lab, host string) (running bool, how string) {
	for _, h := range l.State().Hosts {
		if h.Name == host {
			for _, v := range h.VMs {
				if strings.EqualFold(v.ID, labVMID) {
					return v.Running, v.LastStop
				}
			}
		}
	}
	return false, ""
}

// TestStopStepIsAForcedShutdown: a stop step without a mode shuts the VM
// down through the guest, forced (what every stop did before modes), and
// says so; a guest that cannot shut down is a permanent shutdown_refused,
// the signal to escalate.
func TestStopStepIsAForcedShutdown(t *testing.T) {
	l := startHostLab(t)
	h := labHost(t, l, "node1")
	ctx := ctxFor(t)
	step := orchestrator.Step{Kind: orchestrator.StepStopVM, Host: "node1"}

	if err := l.World.AddFault(hyperv.Fault{Host: "node1", Cmdlet: "Stop-VM", Error: "shutdown_unavailable", Times: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(ctx, "vm1", step, orchestrator.Settings{}); !replica.IsPermanent(err) || replica.Reason(err) != replica.ReasonShutdownRefused {
		t.Fatalf("stop of a guest that cannot shut down: %v", err)
	}
	if running, _ := lastStopOn(l, "node1"); !running {
		t.Fatal("vm1 stopped although the guest refused")
	}
	msg, err := h.Run(ctx, "vm1", step, orchestrator.Settings{})
	if running, how := lastStopOn(l, "node1"); err != nil || running || how != "force" || msg != "shut down (forced)" {
		t.Fatalf("stop step: %q %v; vm1 running %v, stopped by %q", msg, err, running, how)
	}
	if msg, err := h.Run(ctx, "vm1", step, orchestrator.Settings{}); err != nil || msg != "already off" {
		t.Fatalf("stop step of an off VM: %q %v", msg, err)
	}
}

func TestStopMode(t *testing.T) {
	for in, want := range map[string]replica.StopMode{"": replica.StopForce, "shutdown": replica.StopShutdown, "force": replica.StopForce, "turnoff": replica.StopTurnOff, "bogus": "bogus"} {
		if got := stopMode(in); got != want {
			t.Errorf("stopMode(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestInspectTranslatesReportedNames: Hyper-V reports a primary by its own
// identity (here WIN-HV1.lab.local for ECX server node1) and a Replica
// server by the name it was given (here node3's alias node3-mgmt.corp).
// The adapter must hand the orchestrator host keys, or it sees a
// mismatch and rebuilds replication on every pass; a name no host has
// stays as reported.
func TestInspectTranslatesReportedNames(t *testing.T) {
	l := startHostLab(t, func(topo *lab.Topology) {
		topo.HyperV.Hosts[0].ComputerName = "WIN-HV1"
		topo.HyperV.Hosts[2].DNSNames = []string{"node3-mgmt.corp"}
		topo.HyperV.Hosts[3].DNSNames = []string{"legacy-hv.corp"}
	})
	hosts := labHosts(t, l, map[string]string{"node3": "node3-mgmt.corp"})
	ctx := ctxFor(t)
	run := func(host, script string) {
		t.Helper()
		h, _ := l.World.Host(host)
		if r := h.RunPowerShell(ctx, script, false); r.ExitCode != 0 {
			t.Fatalf("%s on %s: %s", script, host, r.Stderr)
		}
	}
	run("node3", `Enable-VMReplication -VMName vm1 -AsReplica`)
	run("node1", `Enable-VMReplication -VMName vm1 -ReplicaServerName node3-mgmt.corp -ReplicaServerPort 80 -AuthenticationType Kerberos`)

	tests := []struct {
		host             string
		primary, replica string
	}{
		{"node1", "node1", "node3"},
		{"node3", "node1", ""},
	}
	for _, tc := range tests {
		v, err := hosts[tc.host].Inspect(ctx, "vm1")
		if err != nil {
			t.Fatal(err)
		}
		if v.Rep == nil || v.Rep.Primary != tc.primary || v.Rep.Replica != tc.replica {
			t.Errorf("%s reports %+v, want primary %q replica %q", tc.host, v.Rep, tc.primary, tc.replica)
		}
	}

	// A replica host inspected before the primary host ever was: the
	// unknown primary name (node1's computer name) is passed on as is, and
	// makes hvro read the identities it lacks in the background, so a
	// later inspection translates it. No inspection waits for that.
	fresh := labHosts(t, l, map[string]string{"node3": "node3-mgmt.corp"})
	if v, err := fresh["node3"].Inspect(ctx, "vm1"); err != nil || v.Rep == nil || !strings.EqualFold(v.Rep.Primary, "WIN-HV1.lab.local") {
		t.Errorf("node3 inspected first: %+v %v, want primary as reported (WIN-HV1.lab.local)", v.Rep, err)
	}
	within.Eventually(t, "the primary's identity to be learned", func() bool {
		v, err := fresh["node3"].Inspect(ctx, "vm1")
		return err == nil && v.Rep != nil && v.Rep.Primary == "node1"
	})

	// A Replica server name no configured host has stays as reported.
	run("node1", `Remove-VMReplication vm1`)
	run("node3", `Remove-VMReplication vm1`)
	run("node1", `Enable-VMReplication -VMName vm1 -ReplicaServerName legacy-hv.corp -ReplicaServerPort 80 -AuthenticationType Kerberos`)
	v, err := hosts["node1"].Inspect(ctx, "vm1")
	if err != nil {
		t.Fatal(err)
	}
	if v.Rep == nil || v.Rep.Replica != "legacy-hv.corp" || v.Rep.Primary != "node1" {
		t.Errorf("node1 reports %+v, want replica legacy-hv.corp as reported", v.Rep)
	}
}

// TestHostIdentityMismatch: a learned identity that matches neither the
// ECX server name nor a configured name is flagged (metric and warning);
// one that matches is not; a name the configuration gives another server
// keeps standing for that server.
func TestHostIdentityMismatch(t *testing.T) {
	cfg := config.Defaults()
	cl := config.DefaultCluster()
	cl.Name = "cluster1"
	cl.Servers = map[string]config.Server{
		"node1": {WinRM: "http://10.0.0.1:5985/wsman"},
		"node2": {WinRM: "http://hv2-mgmt.corp:5985/wsman"},
		"node3": {WinRM: "http://10.0.0.3:5985/wsman", ReplicaName: "WIN-HV3.corp"},
	}
	cfg.Clusters = []config.Cluster{cl}
	m := metrics.New("test")
	logs := &capture.Buffer{}
	n := newHostNames(cfg, m, slog.New(slog.NewTextHandler(logs, nil)))
	n.Learned("node1", replica.Identity{ComputerName: "WIN-HV1", FQDN: "WIN-HV1.corp"})
	n.Learned("node2", replica.Identity{ComputerName: "HV2-MGMT", FQDN: "hv2-mgmt.corp"})
	n.Learned("node3", replica.Identity{ComputerName: "WIN-HV3", FQDN: "WIN-HV3.corp"})
	for host, want := range map[string]float64{"node1": 1, "node2": 0, "node3": 0} {
		if got := gaugeValue(t, m, "hvro_host_identity_mismatch", host); got != want {
			t.Errorf("hvro_host_identity_mismatch{host=%q} = %v, want %v", host, got, want)
		}
	}
	if !strings.Contains(logs.String(), "server=node1 identity=WIN-HV1.corp") || strings.Count(logs.String(), "identity differs") != 1 {
		t.Errorf("want one warning naming node1 and WIN-HV1.corp:\n%s", logs.String())
	}
	for reported, want := range map[string]string{"WIN-HV1.corp": "node1", "win-hv1": "node1", "HV2-MGMT.corp.": "node2", "win-hv3.corp": "node3", "node1": "node1", "other.corp": "other.corp"} {
		if got := n.Key(context.Background(), reported); got != want {
			t.Errorf("Key(%q) = %q, want %q", reported, got, want)
		}
	}
	// node2's identity claims node3's replica_name: the configuration wins.
	n.configure(cfg)
	n.Learned("node2", replica.Identity{ComputerName: "WIN-HV3", FQDN: "WIN-HV3.corp"})
	if got := n.Key(context.Background(), "WIN-HV3.corp"); got != "node3" {
		t.Errorf("Key(WIN-HV3.corp) = %q, want node3 (configured)", got)
	}
	if !strings.Contains(logs.String(), "configured as another server's name") {
		t.Errorf("no warning about the clash:\n%s", logs.String())
	}
}

// gaugeValue reads one host's series of a gauge, -1 when absent.
func gaugeValue(t *testing.T, m *metrics.Metrics, name, host string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "host" && l.GetValue() == host {
					return s.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/orchestrator"
	"github.com/hvro/hvro/orchestrator/metrics"
	"github.com/hvro/hvro/replica"
	"github.com/hvro/hvro/test/sim/hyperv"
	"github.com/hvro/hvro/test/sim/lab"
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

// labHost is the service's WinRM host adapter for a lab host.
func labHost(t *testing.T, l *lab.Lab, server string, peers func(string) string) replicaHost {
	t.Helper()
	if peers == nil {
		peers = func(k string) string { return k }
	}
	h, err := winrmHost(config.Host{Server: server, URL: l.Addrs().WinRM[server],
		WinRM: config.WinRM{Username: `LAB\admin`, Password: config.NewSecret("lab-pass"), Timeout: 20 * time.Second}},
		peers, metrics.New("test"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.(replicaHost).Close() })
	return h.(replicaHost)
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
	h := labHost(t, l, "node1", nil)
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

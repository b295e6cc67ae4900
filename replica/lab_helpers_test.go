package replica

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/test/capture"
	"github.com/hvro/hvro/test/sim/lab"
)

const (
	vmID        = "C520D71E-AE84-40D6-A2B5-B1F697821703"
	primaryPath = `T:\VMs\Virtual Machines\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx`
	replicaPath = `T:\VMs\Hyper-V Replica\Virtual Machines\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx`
	labUser     = `LAB\admin`
	labPass     = "lab-pass-S3cret"
)

var vm1 = VMRef{Name: "vm1"}

// topology is the lab of CONTRACTS.md section 4 on free loopback ports with
// fast timing: cluster1 (node1 with https, node2) holds the primary copy
// of vm1 on disk T1, cluster2 (node3, node4) the replica copy on T2.
func topology(t testing.TB) *lab.Topology {
	t.Helper()
	fast := lab.ECXTiming{Pending: 20 * time.Millisecond, DiskSwitch: 20 * time.Millisecond}
	return &lab.Topology{
		Domain: "lab.local",
		Dir:    t.TempDir(),
		ECX: []lab.ECXCluster{
			{Name: "cluster1", Listen: "127.0.0.1:0", Username: "Administrator", Password: "lab-pass-1", Servers: []string{"node1", "node2"},
				Groups: []lab.ECXGroup{{Name: "failover1", Owner: "node1", Disk: "sd1"}}, Timing: fast},
			{Name: "cluster2", Listen: "127.0.0.1:0", Username: "Administrator", Password: "lab-pass-2", Servers: []string{"node3", "node4"},
				Groups: []lab.ECXGroup{{Name: "failover2", Owner: "node3", Disk: "sd2"}}, Timing: fast},
		},
		HyperV: lab.HyperV{
			Control: "127.0.0.1:0", Username: labUser, Password: labPass,
			Hosts: []lab.HyperVHost{
				{Name: "node1", Listen: "127.0.0.1:0", HTTPS: true},
				{Name: "node2", Listen: "127.0.0.1:0"},
				{Name: "node3", Listen: "127.0.0.1:0"},
				{Name: "node4", Listen: "127.0.0.1:0"},
			},
			Disks: []lab.HyperVDisk{
				{Name: "T1", Group: lab.DiskGroup{Cluster: "cluster1", Group: "failover1"}},
				{Name: "T2", Group: lab.DiskGroup{Cluster: "cluster2", Group: "failover2"}},
			},
			VMs: []lab.HyperVVM{{Name: "vm1", ID: vmID, Copies: []lab.VMCopy{
				{Disk: "T1", ConfigPath: primaryPath, RegisteredOn: "node1", State: "Off"},
				{Disk: "T2", ConfigPath: replicaPath, RegisteredOn: "node3", State: "Off"},
			}}},
			Timing: &lab.HyperVTiming{InitialReplication: 150 * time.Millisecond, Resync: 150 * time.Millisecond,
				Cycle: 100 * time.Millisecond, ErrorAfter: 300 * time.Millisecond, DiskSettle: 30 * time.Millisecond},
		},
	}
}

// testLab is a running lab plus a log buffer that must never see a secret.
type testLab struct {
	*lab.Lab
	t    *testing.T
	logs *capture.Buffer
}

func startLab(t *testing.T, mutate ...func(*lab.Topology)) *testLab {
	t.Helper()
	topo := topology(t)
	for _, m := range mutate {
		m(topo)
	}
	l, err := lab.Start(context.Background(), topo, nil)
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLab{Lab: l, t: t, logs: &capture.Buffer{}}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
		if strings.Contains(tl.logs.String(), labPass) {
			t.Errorf("the WinRM password appears in the driver's logs")
		}
	})
	return tl
}

// driver returns a driver for a lab host over plain HTTP; mutate adjusts
// the configuration.
func (l *testLab) driver(host string, mutate ...func(*Config)) *Driver {
	l.t.Helper()
	cfg := Config{
		Endpoint: l.Addrs().WinRM[host],
		Username: labUser,
		Password: labPass,
		Timeout:  20 * time.Second,
		Logger:   slog.New(slog.NewTextHandler(l.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	d, err := New(host, cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		if err := d.Close(); err != nil {
			l.t.Errorf("close driver: %v", err)
		}
	})
	return d
}

// eventually polls cond until it holds (bounded).
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// retry runs f until it returns nil or a non-transient error (bounded), as
// the orchestrator does with transient errors.
func retry(t *testing.T, what string, f func() error) error {
	t.Helper()
	var err error
	eventually(t, what, func() (bool, error) {
		err = f()
		return err == nil || !IsTransient(err), err
	})
	return err
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

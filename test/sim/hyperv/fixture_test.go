package hyperv

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	vmID        = "C520D71E-AE84-40D6-A2B5-B1F697821703"
	primaryPath = `T:\VMs\Virtual Machines\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx`
	replicaPath = `T:\VMs\Hyper-V Replica\Virtual Machines\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx`
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// lab is the two-cluster estate of CONTRACTS.md section 4: node1/node2 share
// disk T1 (primary copy of vm1), node3/node4 share T2 (replica copy).
type lab struct {
	t     *testing.T
	w     *World
	clock *fakeClock
}

func newLab(t *testing.T) *lab {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	w := NewWorld(Config{Domain: "lab.local", Clock: clock.Now, Timing: Timing{
		InitialReplication:        10 * time.Second,
		InitialReplicationNetwork: 60 * time.Second,
		Resync:                    20 * time.Second,
		Cycle:                     30 * time.Second,
		ErrorAfter:                90 * time.Second,
		DiskSettle:                5 * time.Second,
	}})
	l := &lab{t: t, w: w, clock: clock}
	for _, h := range []string{"node1", "node2", "node3", "node4"} {
		if _, err := w.AddHost(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	l.must(w.AddDisk("T1", "T"))
	l.must(w.AddDisk("T2", "T"))
	l.must(w.DiskOnline("T1", "node1"))
	l.must(w.DiskOnline("T2", "node3"))
	l.must(w.AddVMCopy(VMCopy{ID: vmID, Name: "vm1", Disk: "T1", ConfigPath: primaryPath, RegisteredOn: "node1"}))
	l.must(w.AddVMCopy(VMCopy{ID: vmID, Name: "vm1", Disk: "T2", ConfigPath: replicaPath, RegisteredOn: "node3"}))
	l.advance(10 * time.Second) // past the settle window of the initial disks
	return l
}

func (l *lab) must(err error) {
	l.t.Helper()
	if err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) advance(d time.Duration) {
	l.clock.mu.Lock()
	l.clock.t = l.clock.t.Add(d)
	l.clock.mu.Unlock()
	l.w.Tick()
}

func (l *lab) host(name string) *Host {
	h, ok := l.w.Host(name)
	if !ok {
		l.t.Fatalf("no host %s", name)
	}
	return h
}

type result struct {
	stdout, stderr string
	exit           int
}

func (l *lab) run(host, script string) result {
	l.t.Helper()
	r := l.host(host).RunPowerShell(context.Background(), script, false)
	return result{r.Stdout, r.Stderr, r.ExitCode}
}

// ok runs a script that must succeed with nothing on stderr.
func (l *lab) ok(host, script string) string {
	l.t.Helper()
	r := l.run(host, script)
	if r.exit != 0 || r.stderr != "" {
		l.t.Fatalf("%s on %s: exit %d\nstderr:\n%s\nstdout:\n%s", script, host, r.exit, r.stderr, r.stdout)
	}
	return strings.TrimSpace(r.stdout)
}

// fails runs a script that must fail with an error whose text and
// FullyQualifiedErrorId prefix are given.
func (l *lab) fails(host, script, wantText, wantID string) result {
	l.t.Helper()
	r := l.run(host, script)
	if r.exit == 0 {
		l.t.Fatalf("%s on %s: exit 0, want failure %q\nstdout: %s", script, host, wantText, r.stdout)
	}
	if !strings.Contains(r.stderr, wantText) {
		l.t.Fatalf("%s on %s: stderr does not contain %q:\n%s", script, host, wantText, r.stderr)
	}
	if wantID != "" && !strings.Contains(r.stderr, "FullyQualifiedErrorId : "+wantID) {
		l.t.Fatalf("%s on %s: stderr lacks FullyQualifiedErrorId %q:\n%s", script, host, wantID, r.stderr)
	}
	return r
}

// vm returns the emulator's view of vm1 on a host.
func (l *lab) vm(host string) (VMEntry, bool) {
	l.t.Helper()
	for _, h := range l.w.State().Hosts {
		if strings.EqualFold(h.Name, host) {
			for _, v := range h.VMs {
				if strings.EqualFold(v.ID, vmID) {
					return v, true
				}
			}
		}
	}
	return VMEntry{}, false
}

// expect checks vm1 on a host: state, replication mode and state.
func (l *lab) expect(host, state, mode, repState string) VMEntry {
	l.t.Helper()
	v, ok := l.vm(host)
	if !ok {
		l.t.Fatalf("vm1 not registered on %s", host)
	}
	gotMode, gotRep := "None", "Disabled"
	if v.Replication != nil {
		gotMode, gotRep = v.Replication.Mode, v.Replication.State
	}
	if (state != "" && v.State != state) || (mode != "" && gotMode != mode) || (repState != "" && gotRep != repState) {
		l.t.Fatalf("vm1 on %s: state %s, mode %s, replication %s; want %s, %s, %s", host, v.State, gotMode, gotRep, state, mode, repState)
	}
	return v
}

func (l *lab) health(host string) string {
	l.t.Helper()
	v, ok := l.vm(host)
	if !ok || v.Replication == nil {
		l.t.Fatalf("vm1 on %s has no replication", host)
	}
	return v.Replication.Health
}

const (
	enableReplica = `Enable-VMReplication -VMName vm1 -AsReplica`
	enablePrimary = `Enable-VMReplication -VMName vm1 -ReplicaServerName node3 -ReplicaServerPort 80 -AuthenticationType Kerberos`
)

// replicate sets up vm1 replicating node1 -> node3 the Cluster-Set way.
func (l *lab) replicate() {
	l.t.Helper()
	l.ok("node3", enableReplica)
	l.ok("node1", enablePrimary)
	l.ok("node1", `Start-VMInitialReplication -VMName vm1 -UseBackup`)
	l.advance(11 * time.Second)
	l.expect("node1", "", "Primary", "Replicating")
	l.expect("node3", "", "Replica", "Replicating")
}

// moveDisk moves a disk between hosts like an ECX group move.
func (l *lab) moveDisk(disk, from, to string) {
	l.t.Helper()
	l.must(l.w.DiskOffline(disk, from))
	l.must(l.w.DiskOnline(disk, to))
	l.advance(6 * time.Second)
}

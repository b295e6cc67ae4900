package replica

import (
	"context"
	"errors"
	"fmt"
	"github.com/hvro/hvro/test/within"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv"
	"github.com/hvro/hvro/test/sim/lab"
)

var kerberos = Settings{Port: 80, Auth: "Kerberos", FrequencySec: 300, Compression: true}

// replicate sets up vm1 node1 -> node3 the Cluster-Set way and waits
// until both halves replicate.
func replicate(t *testing.T, l *testLab) (p, r *Driver) {
	t.Helper()
	ctx := ctxT(t)
	p, r = l.driver("node1"), l.driver("node3")
	if err := r.EnableReplica(ctx, vm1); err != nil {
		t.Fatal(err)
	}
	if err := p.EnablePrimary(ctx, vm1, "node3", kerberos); err != nil {
		t.Fatal(err)
	}
	if err := p.StartInitialReplication(ctx, vm1, true); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, "Replicating")
	waitState(t, r, "Replicating")
	return p, r
}

// waitState polls Inspect until the replication state is want.
func waitState(t *testing.T, d *Driver, want string) View {
	t.Helper()
	var v View
	eventually(t, d.Host()+" replication "+want, func() (bool, error) {
		var err error
		v, err = d.Inspect(ctxT(t), vm1)
		return err == nil && v.Replication != nil && v.Replication.State == want, err
	})
	return v
}

func TestInspect(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)

	t.Run("absent", func(t *testing.T) {
		for _, name := range []string{"nope", "vm*", "v[m]1", "a'b; Remove-VM"} {
			v, err := l.driver("node2").Inspect(ctx, VMRef{name})
			if err != nil || v.VM != nil || v.Replication != nil {
				t.Errorf("Inspect(%q) on node2 = %+v, %v; want an empty view", name, v, err)
			}
		}
	})
	t.Run("registered", func(t *testing.T) {
		v, err := l.driver("node1").Inspect(ctx, vm1)
		if err != nil {
			t.Fatal(err)
		}
		want := VM{Name: "vm1", ID: strings.ToLower(vmID), State: "Off", Path: `T:\VMs`}
		if v.VM == nil || *v.VM != want || v.Replication != nil {
			t.Fatalf("got %+v %+v, want %+v and no replication", v.VM, v.Replication, want)
		}
	})
	t.Run("wildcard names do not match", func(t *testing.T) {
		v, err := l.driver("node1").Inspect(ctx, VMRef{"vm?"})
		if err != nil || v.VM != nil {
			t.Fatalf("vm? matched %+v (%v)", v.VM, err)
		}
	})
	t.Run("replicating", func(t *testing.T) {
		p, r := replicate(t, l)
		v := waitState(t, p, "Replicating")
		eventually(t, "a replication cycle", func() (bool, error) {
			var err error
			v, err = p.Inspect(ctx, vm1)
			return err == nil && !v.Replication.LastReplication.IsZero(), err
		})
		rep := *v.Replication
		if rep.Mode != "Primary" || rep.Health != "Normal" || rep.PrimaryServer != "node1" || rep.ReplicaServer != "node3" ||
			rep.PrimaryFQDN != "NODE1.lab.local" || rep.ReplicaFQDN != "node3" || rep.Port != 80 || rep.Auth != "Kerberos" ||
			rep.FrequencySec != 300 || time.Since(rep.LastReplication) > time.Minute || rep.LastReplication.Location() != time.UTC {
			t.Errorf("primary half: %+v", rep)
		}
		rv, err := r.Inspect(ctx, vm1)
		if err != nil || rv.Replication == nil || rv.Replication.Mode != "Replica" || rv.Replication.PrimaryServer != "node1" || rv.VM.Running {
			t.Errorf("replica half: %+v %+v %v", rv.VM, rv.Replication, err)
		}
	})
	t.Run("critical", func(t *testing.T) {
		d := l.driver("node1")
		if _, err := d.StartVM(ctx, vm1); err != nil {
			t.Fatal(err)
		}
		// ECX moves the group: the disk leaves node1 under the running VM.
		if err := l.Clusters["cluster1"].Move(ctx, "failover1", "node2"); err != nil {
			t.Fatal(err)
		}
		v, err := d.Inspect(ctx, vm1)
		if err != nil {
			t.Fatal(err)
		}
		if v.VM.State != "PausedCritical" || !v.VM.Critical || v.VM.Running {
			t.Errorf("vm1 on node1 after its disk left: %+v", v.VM)
		}
		if v.Replication == nil || v.Replication.State != "Error" || v.Replication.Health != "Critical" {
			t.Errorf("replication on node1 after its disk left: %+v", v.Replication)
		}
		// Changing it now is refused as "configuration was not accessible": transient.
		_, err = d.StartVM(ctx, vm1)
		if !IsTransient(err) || !strings.Contains(err.Error(), "configuration was not accessible") {
			t.Errorf("StartVM on the critical VM: %v", err)
		}
		var e *Error
		if !errors.As(err, &e) || e.Reason != ReasonConfigNotAccessible || e.HResult != hrAbort || e.Host != "node1" || e.VM != "vm1" {
			t.Errorf("error fields: %+v", e)
		}
	})
}

// TestRegisterRepairsAfterCrash is the seed scenario: node1 crashes with vm1
// running, the disk moves to node2, and the configuration there references
// saved-state files that are gone.
func TestRegisterRepairsAfterCrash(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	n1, n2 := l.driver("node1"), l.driver("node2")
	if _, err := n1.StartVM(ctx, vm1); err != nil {
		t.Fatal(err)
	}
	if err := l.CrashHost("node1"); err != nil {
		t.Fatal(err)
	}
	if err := l.World.DiskOffline("T1", "node1"); err != nil {
		t.Fatal(err)
	}
	if err := l.World.DiskOnline("T1", "node2"); err != nil {
		t.Fatal(err)
	}
	var res RegisterResult
	err := retry(t, "register on node2", func() (err error) {
		res, err = n2.Register(ctx, vm1, primaryPath)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.AlreadyRegistered || len(res.Repaired) != 2 || res.Repaired[0] != 40004 || res.Repaired[1] != 40006 {
		t.Fatalf("register: %+v, want Repaired [40004 40006]", res)
	}
	sr, err := n2.StartVM(ctx, vm1)
	if err != nil || sr.AlreadyRunning || sr.DiscardedSavedState {
		t.Fatalf("start after repair: %+v %v", sr, err)
	}
	res, err = n2.Register(ctx, vm1, primaryPath)
	if err != nil || !res.AlreadyRegistered || res.Repaired != nil {
		t.Fatalf("second register: %+v %v", res, err)
	}
	// A missing configuration is a permanent error naming the path.
	_, err = l.driver("node4").Register(ctx, VMRef{"ghost"}, `T:\nowhere\ghost.vmcx`)
	if !IsPermanent(err) || !strings.Contains(err.Error(), `T:\nowhere\ghost.vmcx`) {
		t.Fatalf("register of a missing file: %v", err)
	}
}

// TestStartVMDiscardsStaleSavedState: node1 crashes with vm1 running and
// boots with the disk still there; Start-VM fails on the missing
// saved-state files, the driver removes the saved state and starts.
func TestStartVMDiscardsStaleSavedState(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	d := l.driver("node1")
	if _, err := d.StartVM(ctx, vm1); err != nil {
		t.Fatal(err)
	}
	if err := l.CrashHost("node1"); err != nil {
		t.Fatal(err)
	}
	_, err := d.Inspect(ctx, vm1)
	if !IsTransient(err) {
		t.Fatalf("inspect of a crashed host: %v, want transient", err)
	}
	if err := l.BootHost("node1"); err != nil {
		t.Fatal(err)
	}
	v, err := d.Inspect(ctx, vm1)
	if err != nil || v.VM.State != "Saved" {
		t.Fatalf("after boot: %+v %v", v.VM, err)
	}
	r, err := d.StartVM(ctx, vm1)
	if err != nil || !r.DiscardedSavedState || r.AlreadyRunning {
		t.Fatalf("start: %+v %v", r, err)
	}
	if v, _ := d.Inspect(ctx, vm1); !v.VM.Running {
		t.Fatalf("vm1 not running after StartVM: %+v", v.VM)
	}
}

func TestStopVM(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	d := l.driver("node2")
	if _, err := d.StopVM(ctx, vm1, StopShutdown); !IsNotFound(err) || !IsPermanent(err) {
		t.Fatalf("stop of a VM node2 does not have: %v", err)
	}
	d = l.driver("node1")
	for _, mode := range []StopMode{StopShutdown, StopForce, StopTurnOff} {
		t.Run(string(mode), func(t *testing.T) {
			if _, err := d.StartVM(ctx, vm1); err != nil {
				t.Fatal(err)
			}
			r, err := d.StopVM(ctx, vm1, mode)
			if err != nil || r.AlreadyOff {
				t.Fatalf("StopVM(%s): %+v %v", mode, r, err)
			}
			if v, err := d.Inspect(ctx, vm1); err != nil || v.VM.State != "Off" {
				t.Fatalf("after StopVM(%s): %+v %v", mode, v.VM, err)
			}
			if got := lastStop(l, "node1"); got != string(mode) {
				t.Fatalf("the host stopped vm1 by %q, want %q", got, mode)
			}
			if r, err := d.StopVM(ctx, vm1, mode); err != nil || !r.AlreadyOff {
				t.Fatalf("StopVM(%s) of an off VM: %+v %v", mode, r, err)
			}
		})
	}
	n := len(l.World.Log())
	if _, err := d.StopVM(ctx, vm1, "pull-the-plug"); !IsPermanent(err) || Reason(err) != ReasonInvalidArgument || !strings.Contains(err.Error(), `stop mode "pull-the-plug"`) {
		t.Fatalf("unknown mode: %v", err)
	}
	if len(l.World.Log()) != n {
		t.Fatal("a command was sent for an unknown stop mode")
	}
}

// TestStopVMEscalation: a guest that does not shut down refuses the
// graceful and the forced shutdown with a permanent shutdown_refused, and
// turning it off still works; a locked guest gives way to the forced one.
func TestStopVMEscalation(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	d := l.driver("node1")
	tests := []struct {
		fault   string
		refused []StopMode
		stops   StopMode
	}{
		{"shutdown_unavailable", []StopMode{StopShutdown, StopForce}, StopTurnOff},
		{"guest_locked", []StopMode{StopShutdown}, StopForce},
	}
	for _, tc := range tests {
		t.Run(tc.fault, func(t *testing.T) {
			if _, err := d.StartVM(ctx, vm1); err != nil {
				t.Fatal(err)
			}
			if err := l.World.AddFault(hyperv.Fault{Host: "node1", Cmdlet: "Stop-VM", Error: tc.fault, Times: 5}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(l.World.ClearFaults)
			for _, mode := range tc.refused {
				_, err := d.StopVM(ctx, vm1, mode)
				if !IsPermanent(err) || Reason(err) != ReasonShutdownRefused || !strings.Contains(err.Error(), "Failed to shut down the virtual machine 'vm1'") {
					t.Fatalf("StopVM(%s): %v, want permanent %s", mode, err, ReasonShutdownRefused)
				}
				if v, _ := d.Inspect(ctx, vm1); v.VM == nil || !v.VM.Running {
					t.Fatalf("vm1 after a refused StopVM(%s): %+v", mode, v.VM)
				}
			}
			if r, err := d.StopVM(ctx, vm1, tc.stops); err != nil || r.AlreadyOff {
				t.Fatalf("StopVM(%s): %+v %v", tc.stops, r, err)
			}
			if got := lastStop(l, "node1"); got != string(tc.stops) {
				t.Fatalf("the host stopped vm1 by %q, want %q", got, tc.stops)
			}
		})
	}
}

// lastStop is how the emulated host last stopped vm1.
func lastStop(l *testLab, host string) string {
	for _, h := range l.State().Hosts {
		if h.Name != host {
			continue
		}
		for _, v := range h.VMs {
			if strings.EqualFold(v.ID, vmID) {
				return v.LastStop
			}
		}
	}
	return ""
}

// TestIdentity: the driver learns how a host names itself once, with one
// command however many callers ask at once.
func TestIdentity(t *testing.T) {
	l := startLab(t, func(topo *lab.Topology) { topo.HyperV.Hosts[1].ComputerName = "WIN-HV2" })
	ctx := ctxT(t)
	for host, want := range map[string]Identity{
		"node1": {ComputerName: "NODE1", FQDN: "NODE1.lab.local"},
		"node2": {ComputerName: "WIN-HV2", FQDN: "WIN-HV2.lab.local"},
	} {
		d := l.driver(host)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if id, err := d.Identity(ctx); err != nil || id != want {
					t.Errorf("%s: %+v %v, want %+v", host, id, err, want)
				}
			}()
		}
		wg.Wait()
	}
	n := 0
	for _, r := range l.World.Log() {
		if strings.Contains(r.Script, "Get-VMHost") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("Get-VMHost ran %d times for two hosts", n)
	}

	// A host that cannot answer is not asked again at once.
	d := l.driver("node3")
	if err := l.World.AddFault(hyperv.Fault{Host: "node3", Cmdlet: "Get-VMHost", Error: "access_denied", Times: 1}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := d.Identity(ctx); !IsPermanent(err) || Reason(err) != ReasonAccessDenied {
			t.Fatalf("identity %d with the host refusing: %v", i, err)
		}
	}
	if got := len(l.World.Log()); got != 3 {
		t.Fatalf("%d commands, want 3 (one for node3)", got)
	}

	// A caller that gives up is no answer of the host: the next caller
	// asks again instead of getting the first one's deadline.
	if err := l.World.SetLatency("Get-VMHost", 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	d4 := l.driver("node4")
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := d4.Identity(short)
	cancel()
	if !IsTransient(err) {
		t.Fatalf("identity with a 100ms caller: %v, want the caller's deadline", err)
	}
	if id, err := d4.Identity(ctx); err != nil || id.ComputerName != "NODE4" {
		t.Fatalf("identity after a caller gave up: %+v %v", id, err)
	}
}

// TestReplicationLifecycle: enable, initial replication, resume after the
// replica was down (plain and resync), remove on both sides, and the
// idempotent repeats.
func TestReplicationLifecycle(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	p, r := replicate(t, l)

	// Repeats change nothing.
	if err := r.EnableReplica(ctx, vm1); err != nil {
		t.Errorf("EnableReplica again: %v", err)
	}
	if err := p.EnablePrimary(ctx, vm1, "node3.lab.local", kerberos); err != nil {
		t.Errorf("EnablePrimary again: %v", err)
	}
	if err := p.StartInitialReplication(ctx, vm1, true); err != nil {
		t.Errorf("StartInitialReplication again: %v", err)
	}
	if err := p.ResumeReplication(ctx, vm1, false); err != nil {
		t.Errorf("ResumeReplication while replicating: %v", err)
	}
	// Enabling towards another replica while replicating is refused.
	if err := p.EnablePrimary(ctx, vm1, "node4", kerberos); !IsPermanent(err) {
		t.Errorf("EnablePrimary to another host: %v, want permanent", err)
	}

	for _, resync := range []bool{false, true} {
		if err := l.CrashHost("node3"); err != nil {
			t.Fatal(err)
		}
		waitState(t, p, "Error")
		if err := l.BootHost("node3"); err != nil {
			t.Fatal(err)
		}
		if err := p.ResumeReplication(ctx, vm1, resync); err != nil {
			t.Fatalf("resume (resync=%v): %v", resync, err)
		}
		waitState(t, p, "Replicating")
	}

	for _, d := range []*Driver{p, r} {
		removed, err := d.RemoveReplication(ctx, vm1)
		if err != nil || !removed {
			t.Fatalf("remove on %s: %v %v", d.Host(), removed, err)
		}
		removed, err = d.RemoveReplication(ctx, vm1)
		if err != nil || removed {
			t.Fatalf("second remove on %s: %v %v", d.Host(), removed, err)
		}
		if v, err := d.Inspect(ctx, vm1); err != nil || v.Replication != nil {
			t.Fatalf("after remove on %s: %+v %v", d.Host(), v.Replication, err)
		}
	}
}

// TestPlannedFailover runs the documented order: stop and prepare on the
// primary, fail over and reverse on the replica, start there.
func TestPlannedFailover(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	p, r := replicate(t, l)
	if _, err := p.StartVM(ctx, vm1); err != nil {
		t.Fatal(err)
	}
	if err := p.PrepareFailover(ctx, vm1); !IsPermanent(err) {
		t.Fatalf("prepare with the VM running: %v, want permanent", err)
	}
	steps := []struct {
		name string
		f    func() error
	}{
		{"stop on primary", func() error { _, err := p.StopVM(ctx, vm1, StopShutdown); return err }},
		{"prepare", func() error { return p.PrepareFailover(ctx, vm1) }},
		{"fail over", func() error { return r.Failover(ctx, vm1) }},
		{"reverse", func() error { return r.Reverse(ctx, vm1, "node1", kerberos) }},
		{"start on new primary", func() error { _, err := r.StartVM(ctx, vm1); return err }},
	}
	for _, s := range steps {
		if err := s.f(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		// Every step is idempotent: the orchestrator may repeat it after a crash.
		if err := s.f(); err != nil {
			t.Fatalf("%s repeated: %v", s.name, err)
		}
	}
	nv, err := r.Inspect(ctx, vm1)
	if err != nil || !nv.VM.Running || nv.Replication.Mode != "Primary" || nv.Replication.ReplicaServer != "node1" {
		t.Fatalf("node3 after failover: %+v %+v %v", nv.VM, nv.Replication, err)
	}
	ov, err := p.Inspect(ctx, vm1)
	if err != nil || ov.VM.Running || ov.Replication.Mode != "Replica" || ov.Replication.PrimaryServer != "node3" {
		t.Fatalf("node1 after failover: %+v %+v %v", ov.VM, ov.Replication, err)
	}
}

// TestCancelFailover: a planned failover that stopped after the prepare,
// or after the replica failed over, is undone by CancelFailover on each
// side; the VM then starts again on the primary, which a prepared VM
// refuses (the chaos runner found a pair stuck Degraded that way).
func TestCancelFailover(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	p, r := replicate(t, l)
	for _, step := range []func() error{
		func() error { return p.PrepareFailover(ctx, vm1) },
		func() error { return r.Failover(ctx, vm1) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.StartVM(ctx, vm1); !IsPermanent(err) {
		t.Fatalf("start of a prepared VM: %v, want the permanent refusal", err)
	}
	for _, d := range []*Driver{p, r, p} { // the second cancel on node1 finds nothing to do
		if err := d.CancelFailover(ctx, vm1); err != nil {
			t.Fatalf("cancel on %s: %v", d.Host(), err)
		}
	}
	for _, d := range []*Driver{p, r} {
		v, err := d.Inspect(ctx, vm1)
		if err != nil || v.Replication == nil || v.Replication.State != "Replicating" {
			t.Fatalf("%s after the cancels: %+v %v", d.Host(), v.Replication, err)
		}
	}
	if _, err := p.StartVM(ctx, vm1); err != nil {
		t.Fatalf("start after the cancel: %v", err)
	}
}

// TestUnplannedFailover: the primary is lost; the replica fails over,
// starts and completes; the old primary comes back as a replica and
// replication is reversed and restarted.
func TestUnplannedFailover(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	p, r := replicate(t, l)
	eventually(t, "a replication cycle on node3", func() (bool, error) {
		v, err := r.Inspect(ctx, vm1)
		return err == nil && !v.Replication.LastReplication.IsZero(), err
	})
	if err := r.CompleteFailover(ctx, vm1); !IsPermanent(err) {
		t.Fatalf("complete before failover: %v, want permanent", err)
	}
	steps := []struct {
		name string
		f    func() error
	}{
		{"fail over", func() error { return r.Failover(ctx, vm1) }},
		{"start on replica", func() error { _, err := r.StartVM(ctx, vm1); return err }},
		{"complete", func() error { return r.CompleteFailover(ctx, vm1) }},
		// What hvro does with the old primary (rather than the docs'
		// Set-VMReplication -AsReplica): drop its relationship, make it a replica.
		{"remove on the old primary", func() error { _, err := p.RemoveReplication(ctx, vm1); return err }},
		{"old primary as replica", func() error { return p.EnableReplica(ctx, vm1) }},
		{"reverse", func() error { return r.Reverse(ctx, vm1, "node1", kerberos) }},
		{"initial replication", func() error { return r.StartInitialReplication(ctx, vm1, false) }},
	}
	for _, s := range steps {
		if err := s.f(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if err := s.f(); err != nil {
			t.Fatalf("%s repeated: %v", s.name, err)
		}
	}
	waitState(t, r, "Replicating")
	if v, err := p.Inspect(ctx, vm1); err != nil || v.Replication.Mode != "Replica" || v.Replication.PrimaryServer != "node3" {
		t.Fatalf("node1 at the end: %+v %v", v.Replication, err)
	}
}

// TestFaultsClassified injects every error of the emulator's catalogue
// into Get-VM (which every script runs) and checks the class.
func TestFaultsClassified(t *testing.T) {
	want := map[string]struct {
		kind   error
		reason string
	}{
		"config_not_accessible":       {ErrTransient, ReasonConfigNotAccessible},
		"operation_aborted":           {ErrTransient, ReasonConfigNotAccessible},
		"vmms_busy":                   {ErrTransient, ReasonBusy},
		"replica_unreachable":         {ErrTransient, ReasonReplicaUnreachable},
		"replica_unresolved":          {ErrTransient, ReasonReplicaUnreachable},
		"access_denied":               {ErrPermanent, ReasonAccessDenied},
		"replica_not_accepting":       {ErrPermanent, ReasonAccessDenied},
		"vm_not_found":                {ErrPermanent, ReasonVMNotFound},
		"invalid_state":               {ErrPermanent, ReasonInvalidState},
		"invalid_replication_state":   {ErrPermanent, ReasonInvalidState},
		"replication_not_enabled":     {ErrPermanent, ReasonInvalidState},
		"replication_already_enabled": {ErrPermanent, ReasonInvalidState},
		"replica_cannot_modify":       {ErrPermanent, ReasonInvalidState},
		"not_replica_server":          {ErrPermanent, ReasonInvalidState},
		"replica_start_refused":       {ErrPermanent, ReasonInvalidState},
		"prepared_locked":             {ErrPermanent, ReasonInvalidState},
		"vm_must_be_off":              {ErrPermanent, ReasonInvalidState},
		"not_saved":                   {ErrPermanent, ReasonInvalidState},
		"replica_vm_conflict":         {ErrPermanent, ReasonConflict},
		"vm_exists":                   {ErrPermanent, ReasonConflict},
		"invalid_frequency":           {ErrPermanent, ReasonInvalidParameter},
		"invalid_replica_name":        {ErrPermanent, ReasonInvalidParameter},
		"thumbprint_required":         {ErrPermanent, ReasonInvalidParameter},
		"thumbprint_not_allowed":      {ErrPermanent, ReasonInvalidParameter},
		"prepare_required":            {ErrPermanent, ReasonInvalidParameter},
		"import_path_not_found":       {ErrPermanent, ReasonNotFound},
		"not_supported":               {ErrPermanent, ReasonNotSupported},
		"shutdown_unavailable":        {ErrPermanent, ReasonShutdownRefused},
		"guest_locked":                {ErrPermanent, ReasonShutdownRefused},
		"saved_state_missing":         {ErrUnknown, ReasonScript},
		"import_config_errors":        {ErrUnknown, ReasonScript},
	}
	l := startLab(t)
	d, d1 := l.driver("node2"), l.driver("node1")
	hostOf := func(cmdlet string) string {
		if cmdlet == "Stop-VM" {
			return "node1"
		}
		return "node2"
	}
	for _, name := range hyperv.FaultNames() {
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("no expected class for the emulator's error %q: add it", name)
			}
			// Guest faults affect only a shutdown: stop a running VM.
			cmdlet, call := "Get-VM", func() error { _, err := d.Inspect(ctxT(t), vm1); return err }
			if name == "shutdown_unavailable" || name == "guest_locked" {
				if _, err := d1.StartVM(ctxT(t), vm1); err != nil {
					t.Fatal(err)
				}
				cmdlet, call = "Stop-VM", func() error { _, err := d1.StopVM(ctxT(t), vm1, StopShutdown); return err }
			}
			if err := l.World.AddFault(hyperv.Fault{Host: hostOf(cmdlet), Cmdlet: cmdlet, Error: name, Times: 1}); err != nil {
				t.Fatal(err)
			}
			err := call()
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, w.kind) || e.Reason != w.reason {
				t.Fatalf("got %v, want %v (%s)", err, w.kind, w.reason)
			}
			if e.Type == "" || e.FQID == "" || e.Message == "" || e.HResult == 0 {
				t.Errorf("error record fields missing: %+v", e)
			}
			// The fault was used up: the next call works.
			if err := call(); err != nil {
				t.Errorf("after the fault: %v", err)
			}
		})
	}
}

func TestHostDownAndCredentials(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	var outcomes []string
	var mu sync.Mutex
	onReq := func(c *Config) {
		c.OnRequest = func(host, outcome string, d time.Duration) {
			mu.Lock()
			outcomes = append(outcomes, host+"/"+outcome)
			mu.Unlock()
		}
	}
	down := l.driver("node4", onReq)
	if err := l.CrashHost("node4"); err != nil {
		t.Fatal(err)
	}
	_, err := down.Inspect(ctx, vm1)
	var e *Error
	if !IsTransient(err) || !errors.As(err, &e) || e.Reason != ReasonConnection {
		t.Fatalf("inspect of a crashed host: %v", err)
	}

	wrong := l.driver("node3", onReq, func(c *Config) { c.Password = "wrong-" + labPass })
	_, err = wrong.Inspect(ctx, vm1)
	if !IsPermanent(err) || Reason(err) != ReasonAuthRefused || !strings.Contains(err.Error(), "the WinRM credentials were refused by 127.0.0.1:") {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), labPass) {
		t.Fatalf("the error shows the password: %v", err)
	}
	// The emulator does not speak NTLM: the handshake ends in 401.
	ntlm := l.driver("node3", onReq, func(c *Config) { c.Auth = "ntlm" })
	if _, err := ntlm.Inspect(ctx, vm1); !IsPermanent(err) || Reason(err) != ReasonAuthRefused {
		t.Fatalf("ntlm against a basic-only host: %v", err)
	}
	// The lab's control API instead of the host's WinRM port: an HTTP
	// server that is not WS-Management.
	wrongPort := l.driver("node3", onReq, func(c *Config) { c.Endpoint = l.Addrs().Control + "/wsman" })
	if _, err := wrongPort.Inspect(ctx, vm1); !IsPermanent(err) || Reason(err) != ReasonNotWinRM || !strings.Contains(err.Error(), "not WS-Management: check the URL/port") {
		t.Fatalf("the lab's control API as the WinRM URL: %v", err)
	}
	// The ECX API's port: it wants its own credentials, so it is a 401,
	// but the message points at the URL too.
	ecxPort := l.driver("node3", onReq, func(c *Config) { c.Endpoint = l.Addrs().ECX["cluster1"]["fip"] + "/wsman" })
	if _, err := ecxPort.Inspect(ctx, vm1); !IsPermanent(err) || Reason(err) != ReasonAuthRefused || !strings.Contains(err.Error(), "check also the URL/port") {
		t.Fatalf("the ECX API's port as the WinRM URL: %v", err)
	}
	if n := len(l.World.Log()); n != 0 {
		t.Fatalf("%d commands ran without valid credentials", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(outcomes, " ") != "node4/transient node3/permanent node3/permanent node3/permanent node3/permanent" {
		t.Fatalf("OnRequest outcomes: %v", outcomes)
	}
}

func TestHTTPS(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	a := l.Addrs()
	if a.CAFile == "" || a.WinRMS["node1"] == "" {
		t.Fatalf("no HTTPS listener in the lab: %+v", a)
	}
	d := l.driver("node1", func(c *Config) { c.Endpoint, c.CAFile = a.WinRMS["node1"], a.CAFile })
	v, err := d.Inspect(ctx, vm1)
	if err != nil || v.VM == nil || v.VM.Name != "vm1" {
		t.Fatalf("inspect over https: %+v %v", v, err)
	}
	untrusted := l.driver("node1", func(c *Config) { c.Endpoint = a.WinRMS["node1"] })
	_, err = untrusted.Inspect(ctx, vm1)
	var e *Error
	if !IsPermanent(err) || !errors.As(err, &e) || e.Reason != ReasonTLS {
		t.Fatalf("https without the lab CA: %v", err)
	}
	insecure := l.driver("node1", func(c *Config) { c.Endpoint, c.InsecureSkipVerify = a.WinRMS["node1"], true })
	if _, err := insecure.Inspect(ctx, vm1); err != nil {
		t.Fatalf("https with insecure_skip_verify: %v", err)
	}
}

// TestProgressNoise: CLIXML progress records on stderr of every command
// change nothing.
func TestProgressNoise(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	l.World.SetProgressNoise(true)
	d := l.driver("node1")
	v, err := d.Inspect(ctx, vm1)
	if err != nil || v.VM == nil || v.VM.State != "Off" {
		t.Fatalf("inspect with progress noise: %+v %v", v, err)
	}
	if _, err := d.StartVM(ctx, vm1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.StartVM(ctx, VMRef{"nope"}); !IsNotFound(err) {
		t.Fatalf("missing VM with progress noise: %v", err)
	}
	// The host logs a command just after answering it.
	eventually(t, "three commands with progress on stderr", func() (bool, error) {
		noisy := 0
		for _, rec := range l.World.Log() {
			if strings.Contains(rec.Stderr, "CLIXML") && strings.Contains(rec.Stderr, "progress") {
				noisy++
			}
		}
		return noisy == 3, fmt.Errorf("%d noisy commands", noisy)
	})
}

// TestCancelDeletesShell: a command stuck in a slow cmdlet returns at the
// caller's deadline, well before the cmdlet would finish, and its shell is
// deleted: the host cancels the command (the log shows it ending early)
// and later commands run.
func TestCancelDeletesShell(t *testing.T) {
	l := startLab(t)
	const latency = 3 * time.Second
	if err := l.World.SetLatency("Get-VM", latency); err != nil {
		t.Fatal(err)
	}
	d := l.driver("node2")
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(l.World.Log())
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := d.Inspect(ctx, vm1)
			took := time.Since(start)
			if !errors.Is(err, tc.want) || !IsTransient(err) {
				t.Fatalf("got %v, want a transient error wrapping %v", err, tc.want)
			}
			if took > latency/2 {
				t.Fatalf("returned after %s; the cmdlet takes %s", took, latency)
			}
			eventually(t, "the host to record the cancelled command", func() (bool, error) {
				return len(l.World.Log()) > before, nil
			})
			rec := l.World.Log()[before]
			if rec.DurationMS >= latency.Milliseconds() || !strings.Contains(rec.Script, "Get-VM") {
				t.Fatalf("the host ran the command for %d ms: its shell was not deleted", rec.DurationMS)
			}
		})
	}
	// The caller's deadline in the middle of a command of the driver's own
	// timeout: the driver's timeout wins and says so.
	short := l.driver("node2", func(c *Config) { c.Timeout = 300 * time.Millisecond })
	_, err := short.Inspect(ctxT(t), vm1)
	var e *Error
	if !errors.As(err, &e) || !IsTransient(err) || e.Reason != ReasonTimeout || !strings.Contains(err.Error(), "command timeout 300ms") {
		t.Fatalf("driver timeout: %v", err)
	}
	if err := l.World.SetLatency("Get-VM", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inspect(ctxT(t), vm1); err != nil {
		t.Fatalf("after the cancelled commands: %v", err)
	}
}

// TestConcurrencyBound: with MaxConcurrent 2, never more than two commands
// run on the host at once (measured from the host's own command log), and
// two do run together.
func TestConcurrencyBound(t *testing.T) {
	l := startLab(t)
	if err := l.World.SetLatency("Get-VM", 150*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	d := l.driver("node1", func(c *Config) { c.MaxConcurrent = 2 })
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := d.Inspect(ctxT(t), vm1)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the host to log 8 commands", func() (bool, error) { return len(l.World.Log()) == 8, nil })
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, rec := range l.World.Log() {
		edges = append(edges, edge{rec.Time, +1}, edge{rec.Time.Add(time.Duration(rec.DurationMS) * time.Millisecond), -1})
	}
	if len(edges) != 16 {
		t.Fatalf("%d commands logged, want 8", len(edges)/2)
	}
	// Ends sort before starts at the same instant.
	slicesSortEdges := func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	}
	slices.SortFunc(edges, slicesSortEdges)
	peak, n := 0, 0
	for _, e := range edges {
		n += e.delta
		peak = max(peak, n)
	}
	if peak != 2 {
		t.Fatalf("at most %d commands ran at once, want exactly 2", peak)
	}
}

// TestSentScriptsAreTheGoldenOnes: every method sends exactly a script of
// Scripts (so the golden files and the parser check cover what reaches
// hosts), and every script of Scripts is sent by some method.
func TestSentScriptsAreTheGoldenOnes(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t)
	in := scriptCases[0].in
	cert := in.Settings
	cert.Auth, cert.Thumbprint = "Certificate", strings.Repeat("AB", 20)
	d := l.driver("node1")
	vm := VMRef{in.VM}
	// Errors are expected (states do not fit every call); the scripts ran.
	calls := []func() error{
		func() error { _, err := d.Inspect(ctx, vm); return err },
		func() error { _, err := d.Identity(ctx); return err },
		func() error { _, err := d.StartVM(ctx, vm); return err },
		func() error { _, err := d.StopVM(ctx, vm, StopShutdown); return err },
		func() error { _, err := d.StopVM(ctx, vm, StopForce); return err },
		func() error { _, err := d.StopVM(ctx, vm, StopTurnOff); return err },
		func() error { _, err := d.Register(ctx, vm, in.ConfigPath); return err },
		func() error { return d.EnableReplica(ctx, vm) },
		func() error { return d.EnablePrimary(ctx, vm, in.ReplicaHost, in.Settings) },
		func() error { return d.EnablePrimary(ctx, vm, in.ReplicaHost, cert) },
		func() error { return d.StartInitialReplication(ctx, vm, false) },
		func() error { return d.StartInitialReplication(ctx, vm, true) },
		func() error { return d.ResumeReplication(ctx, vm, false) },
		func() error { return d.ResumeReplication(ctx, vm, true) },
		func() error { _, err := d.RemoveReplication(ctx, vm); return err },
		func() error { return d.PrepareFailover(ctx, vm) },
		func() error { return d.Failover(ctx, vm) },
		func() error { return d.CompleteFailover(ctx, vm) },
		func() error { return d.CancelFailover(ctx, vm) },
		func() error { return d.Reverse(ctx, vm, in.ReplicaHost, in.Settings) },
		func() error { return d.Reverse(ctx, vm, in.ReplicaHost, cert) },
	}
	for _, c := range calls {
		if err := c(); err != nil && (IsUnknown(err) || strings.Contains(err.Error(), "Parse")) {
			t.Errorf("unexpected unknown error: %v", err)
		}
	}
	scripts, err := Scripts(in)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the host to log every command", func() (bool, error) { return len(l.World.Log()) == len(calls), nil })
	sent := map[string]bool{}
	for _, rec := range l.World.Log() {
		sent[rec.Script] = true
	}
	for _, s := range scripts {
		if !sent[s.Text] {
			t.Errorf("script %s was never sent", s.Name)
		}
		delete(sent, s.Text)
	}
	for s := range sent {
		t.Errorf("a script outside Scripts was sent:\n%s", s)
	}
}

// TestHostileNames: a VM whose name is PowerShell code, quotes and
// wildcards is found by exactly its name, acted on, and nothing else is.
func TestHostileNames(t *testing.T) {
	const hostile = "a'b; Remove-VM -Name * -Force #$env:X `\" $(Stop-VM vm1) [x]*?"
	const id = "0B9D3A52-7C1E-4D5F-9A8B-123456789ABC"
	path := `T:\VM's $(x)\Virtual Machines\` + id + ".vmcx"
	l := startLab(t, func(topo *lab.Topology) {
		topo.HyperV.VMs = append(topo.HyperV.VMs, lab.HyperVVM{Name: hostile, ID: id, Copies: []lab.VMCopy{
			{Disk: "T1", ConfigPath: path, RegisteredOn: "node1", State: "Off"}}})
		for _, twin := range []string{"11111111-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002"} {
			topo.HyperV.VMs = append(topo.HyperV.VMs, lab.HyperVVM{Name: "Twin", ID: twin, Copies: []lab.VMCopy{
				{Disk: "T1", ConfigPath: `T:\Twins\` + twin + ".vmcx", RegisteredOn: "node1", State: "Off"}}})
		}
	})
	ctx := ctxT(t)
	d := l.driver("node1")
	if _, err := d.StartVM(ctx, vm1); err != nil {
		t.Fatal(err)
	}
	v, err := d.Inspect(ctx, VMRef{hostile})
	if err != nil || v.VM == nil || v.VM.Name != hostile || v.VM.ID != strings.ToLower(id) {
		t.Fatalf("inspect %q: %+v %v", hostile, v.VM, err)
	}
	for _, near := range []string{hostile[:len(hostile)-1], "a'b*", "a?b*", strings.ToUpper(hostile) + " "} {
		if v, err := d.Inspect(ctx, VMRef{near}); err != nil || v.VM != nil {
			t.Errorf("inspect %q found %+v (%v)", near, v.VM, err)
		}
	}
	if _, err := d.StartVM(ctx, VMRef{hostile}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.StopVM(ctx, VMRef{hostile}, StopTurnOff); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Inspect(ctx, vm1); v.VM == nil || !v.VM.Running {
		t.Fatalf("vm1 was touched: %+v", v.VM)
	}
	// Case differs only: Hyper-V compares names case-insensitively.
	if v, err := d.Inspect(ctx, VMRef{"VM1"}); err != nil || v.VM == nil || v.VM.Name != "vm1" {
		t.Fatalf("inspect VM1: %+v %v", v.VM, err)
	}
	// Two VMs of one name: the driver refuses to guess.
	for _, f := range []func() error{
		func() error { _, err := d.Inspect(ctx, VMRef{"twin"}); return err },
		func() error { _, err := d.StartVM(ctx, VMRef{"twin"}); return err },
	} {
		var e *Error
		if err := f(); !errors.As(err, &e) || !IsPermanent(err) || e.Reason != ReasonAmbiguousName || !strings.Contains(err.Error(), `2 virtual machines are named "twin"`) {
			t.Fatalf("two VMs named twin: %v", err)
		}
	}
	// Register by path with quotes and $ in it: already registered.
	if r, err := d.Register(ctx, VMRef{hostile}, path); err != nil || !r.AlreadyRegistered {
		t.Fatalf("register: %+v %v", r, err)
	}
}

// TestNextCommandWaitsForTheAbandonedOne: a command whose caller gave up
// ends on the host only once its shell is deleted, in the background; the
// next command on the same VM must not reach the host before that
// deletion (the chaos runner saw a retry start 12-15ms before the
// abandoned command ended on a loaded host: two commands changing one VM
// at once, I3).
func TestNextCommandWaitsForTheAbandonedOne(t *testing.T) {
	l := startLab(t)
	if err := l.World.SetLatency("Get-VM", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	d := l.driver("node1", func(c *Config) { c.Timeout = 300 * time.Millisecond; c.MaxConcurrent = 4 })
	deleted := make(chan time.Time, 4)
	d.beforeDelete = func() {
		time.Sleep(400 * time.Millisecond) // the host takes its time
		deleted <- time.Now()
	}
	if _, err := d.Inspect(ctxT(t), vm1); !IsTransient(err) {
		t.Fatalf("first inspect: %v, want the command timeout", err)
	}
	if _, err := d.Inspect(ctxT(t), vm1); !IsTransient(err) {
		t.Fatalf("second inspect: %v, want the command timeout", err)
	}
	secondEnd := time.Now()
	first := within.Recv(t, deleted, "the first shell's deletion")
	// The second command may reach the host only once the first shell is
	// gone, and then takes its own 300ms to time out.
	if secondEnd.Before(first) {
		t.Fatalf("the second command ended %v before the first command's shell was deleted", first.Sub(secondEnd))
	}
}

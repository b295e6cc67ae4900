package hyperv

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// stateCases holds one case per row of STATES.md, keyed by the row id.
var stateCases = map[string]func(l *lab){
	"S01": func(l *lab) {
		out := l.ok("node1", `Get-VM -Name vm1 | Select-Object Name, @{n='State';e={[string]$_.State}}, ReplicationMode, Id | ConvertTo-Json -Compress`)
		want := `{"Name":"vm1","State":"Off","ReplicationMode":0,"Id":"c520d71e-ae84-40d6-a2b5-b1f697821703"}`
		if out != want {
			l.t.Fatalf("Get-VM: %s\nwant %s", out, want)
		}
	},
	"S02": func(l *lab) {
		l.fails("node1", `Get-VM -Name nope`, `Hyper-V was unable to find a virtual machine with name "nope".`, "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM")
	},
	"S03": func(l *lab) {
		l.ok("node1", `Start-VM -Name vm1`)
		l.expect("node1", "Running", "None", "")
	},
	"S04": func(l *lab) {
		l.ok("node1", `Start-VM vm1`)
		l.fails("node1", `Start-VM vm1`, "The operation cannot be performed while the object is in its current state.", "InvalidState,Microsoft.HyperV.PowerShell.Commands.StartVM")
	},
	"S05": func(l *lab) {
		l.moveDisk("T1", "node1", "node2")
		l.fails("node1", `Start-VM vm1`, "Operation not allowed for virtual machine 'vm1' because the configuration was not accessible. Try again later.", "OperationFailed,Microsoft.HyperV.PowerShell.Commands.StartVM")
	},
	"S06": func(l *lab) {
		l.ok("node1", `Start-VM vm1`)
		l.must(l.w.Crash("node1"))
		l.must(l.w.DiskOffline("T1", "node1"))
		l.must(l.w.DiskOnline("T1", "node2"))
		l.advance(6 * time.Second)
		// node2 had vm1 registered from an earlier stay of the group.
		l.must(l.w.DiskOffline("T1", "node2"))
		l.must(l.w.Boot("node1"))
		l.must(l.w.DiskOnline("T1", "node1"))
		l.advance(6 * time.Second)
		l.expect("node1", "Saved", "", "")
		l.fails("node1", `Start-VM vm1`, "failed to restore its saved state: The system cannot find the file specified. (0x80070002)", "OperationFailed,Microsoft.HyperV.PowerShell.Commands.StartVM")
		l.expect("node1", "Saved", "", "")
	},
	"S07": func(l *lab) {
		l.replicate()
		l.fails("node3", `Start-VM vm1`, "'vm1' cannot be started because it is a Replica virtual machine.", "InvalidState,")
	},
	"S08": func(l *lab) {
		l.replicate()
		l.ok("node1", `Start-VMFailover -VMName vm1 -Prepare -Confirm:$false`)
		l.fails("node1", `Start-VM vm1`, "prepared for a planned failover", "InvalidState,")
	},
	"S09": func(l *lab) {
		for _, c := range []struct{ flags, stop string }{{"", "shutdown"}, {" -Force", "force"}, {" -TurnOff", "turnoff"}, {" -TurnOff -Force", "turnoff"}} {
			l.ok("node1", `Start-VM vm1`)
			l.ok("node1", `Stop-VM vm1`+c.flags)
			v := l.expect("node1", "Off", "", "")
			if v.LastStop != c.stop || v.SavedState != "none" {
				l.t.Fatalf("Stop-VM%s: last stop %q, saved state %s; want %q, none", c.flags, v.LastStop, v.SavedState, c.stop)
			}
		}
	},
	"S10": func(l *lab) {
		l.ok("node1", `Start-VM vm1`)
		l.ok("node1", `Stop-VM vm1 -Save`)
		v := l.expect("node1", "Saved", "", "")
		if v.SavedState != "present" {
			l.t.Fatalf("saved state %s, want present", v.SavedState)
		}
		l.ok("node1", `Start-VM vm1`)
		l.expect("node1", "Running", "", "")
	},
	"S11": func(l *lab) {
		l.ok("node1", `Stop-VM vm1 -Force`)
		l.expect("node1", "Off", "", "")
	},
	"S12": func(l *lab) {
		l.ok("node1", `Start-VM vm1`)
		l.must(l.w.DiskOffline("T1", "node1"))
		v := l.expect("node1", "PausedCritical", "", "")
		if v.Storage != "lost" || v.Running {
			l.t.Fatalf("after disk loss: storage %s running %v", v.Storage, v.Running)
		}
		if f := l.file("T1"); f.SavedState != "stale" {
			l.t.Fatalf("file saved state %s, want stale", f.SavedState)
		}
		if lost := l.w.State().LostRunning; len(lost) != 1 || lost[0].Host != "node1" || lost[0].VMID != vmID || lost[0].Disk != "T1" {
			l.t.Fatalf("lost_running %+v, want vm1's disk T1 lost on node1", lost)
		}
	},
	"S13": func(l *lab) {
		l.replicate()
		l.must(l.w.DiskOffline("T1", "node1"))
		if lost := l.w.State().LostRunning; len(lost) != 0 {
			l.t.Fatalf("lost_running %+v for a VM that was off", lost)
		}
		l.expect("node1", "OffCritical", "Primary", "Error")
		if h := l.health("node1"); h != "Critical" {
			l.t.Fatalf("health %s, want Critical", h)
		}
		out := l.ok("node1", `Get-VMReplication -VMName vm1 | Select-Object @{n='s';e={[string]$_.State}}, @{n='h';e={[string]$_.Health}} | ConvertTo-Json -Compress`)
		if out != `{"s":"Error","h":"Critical"}` {
			l.t.Fatalf("Get-VMReplication on the old primary: %s", out)
		}
	},
	"S14": func(l *lab) {
		l.moveDisk("T1", "node1", "node2")
		l.ok("node2", `Import-VM -Path '`+primaryPath+`' | Out-Null; Start-VM vm1; Stop-VM vm1 -Save`)
		l.must(l.w.DiskOffline("T1", "node2"))
		l.must(l.w.DiskOnline("T1", "node1"))
		l.advance(6 * time.Second)
		v := l.expect("node1", "Saved", "", "")
		if v.Storage != "live" {
			l.t.Fatalf("storage %s, want live", v.Storage)
		}
	},
	"S15": func(l *lab) {
		l.ok("node1", `Start-VM vm1`)
		l.must(l.w.Crash("node1"))
		if l.host("node1").Up() {
			l.t.Fatal("node1 up after crash")
		}
		if f := l.file("T1"); f.SavedState != "stale" {
			l.t.Fatalf("file saved state %s, want stale", f.SavedState)
		}
		l.must(l.w.DiskOffline("T1", "node1"))
		l.must(l.w.DiskOnline("T1", "node2"))
		l.must(l.w.Boot("node1"))
		l.advance(6 * time.Second)
		if out := l.ok("node1", `@(Get-VM).Count`); out != "0" {
			l.t.Fatalf("node1 lists %s VMs after boot without its disk", out)
		}
		if v, _ := l.vm("node1"); v.Storage != "unloaded" {
			l.t.Fatalf("storage %s, want unloaded", v.Storage)
		}
	},
	"S16": func(l *lab) {
		l.must(l.w.DiskOffline("T1", "node1"))
		l.must(l.w.DiskOnline("T1", "node2"))
		l.fails("node2", `Import-VM -Path '`+primaryPath+`'`, "because the configuration was not accessible. Try again later.", "OperationFailed,")
		l.advance(6 * time.Second)
		l.ok("node2", `Import-VM -Path '`+primaryPath+`' | Out-Null`)
	},
	"S17": func(l *lab) {
		l.moveDisk("T1", "node1", "node2")
		out := l.ok("node2", `$vm = Import-VM -Path '`+primaryPath+`'; "$($vm.Name) $($vm.Id) $($vm.State)"`)
		if out != "vm1 c520d71e-ae84-40d6-a2b5-b1f697821703 Off" {
			l.t.Fatalf("Import-VM output %q", out)
		}
		l.expect("node2", "Off", "None", "")
	},
	"S18": func(l *lab) {
		l.fails("node1", `Import-VM -Path '`+primaryPath+`'`, "a virtual machine with the same identifier already exists", "OperationFailed,Microsoft.HyperV.PowerShell.Commands.ImportVM")
	},
	"S19": func(l *lab) {
		l.crashOver()
		l.fails("node2", `Import-VM -Path '`+primaryPath+`'`, "Unable to import virtual machine due to configuration errors.  Please use Compare-VM to repair the virtual machine.", "OperationFailed,")
	},
	"S20": func(l *lab) {
		l.fails("node2", `Import-VM -Path '`+primaryPath+`'`, "because the configuration was not accessible", "OperationFailed,")
	},
	"S21": func(l *lab) {
		l.fails("node1", `Import-VM -Path 'T:\VMs\nope.vmcx'`, "The system cannot find the path specified.", "OperationFailed,")
	},
	"S22": func(l *lab) {
		l.crashOver()
		out := l.ok("node2", `$r = Compare-VM -Path '`+primaryPath+`'; $r.Incompatibilities | ForEach-Object { "$($_.MessageId) $($_.Source.Name)" }`)
		if out != "40004 vm1\r\n40006 vm1" {
			l.t.Fatalf("incompatibilities: %q", out)
		}
	},
	"S23": func(l *lab) {
		l.moveDisk("T1", "node1", "node2")
		if out := l.ok("node2", `@((Compare-VM -Path '`+primaryPath+`').Incompatibilities).Count`); out != "0" {
			l.t.Fatalf("clean file has %s incompatibilities", out)
		}
	},
	"S24": func(l *lab) {
		l.crashOver()
		l.ok("node2", `$report = Compare-VM -Path '`+primaryPath+`'; $report.Incompatibilities[0].Source | Remove-VMSavedState; Import-VM -CompatibilityReport $report | Out-Null; Start-VM vm1`)
		v := l.expect("node2", "Running", "", "")
		if l.file("T1").SavedState != "none" || v.SavedState != "none" {
			l.t.Fatalf("saved state after repair: %s", l.file("T1").SavedState)
		}
	},
	"S25": func(l *lab) {
		l.crashOver()
		l.fails("node2", `$r = Compare-VM -Path '`+primaryPath+`'; $ErrorActionPreference='Stop'; Import-VM -CompatibilityReport $r`, "Unable to import virtual machine due to configuration errors.", "OperationFailed,")
	},
	"S26": func(l *lab) {
		l.ok("node1", `Start-VM vm1`)
		l.must(l.w.Crash("node1"))
		l.must(l.w.Boot("node1"))
		l.advance(time.Second)
		l.expect("node1", "Saved", "", "")
		l.ok("node1", `Remove-VMSavedState -VMName vm1`)
		l.expect("node1", "Off", "", "")
		l.ok("node1", `Start-VM vm1`)
	},
	"S27": func(l *lab) {
		l.fails("node1", `Remove-VMSavedState -VMName vm1`, "The virtual machine 'vm1' does not have a saved state.", "InvalidState,")
	},
	"S28": func(l *lab) {
		l.ok("node3", enableReplica)
		l.expect("node3", "Off", "Replica", "WaitingForInitialReplication")
	},
	"S29": func(l *lab) {
		l.ok("node3", `Set-VMReplicationServer -ReplicationEnabled $false`)
		l.fails("node3", enableReplica, "Hyper-V is not configured as a Replica server on 'node3.lab.local'.", "InvalidState,")
	},
	"S30": func(l *lab) {
		l.ok("node3", enableReplica)
		l.fails("node3", enableReplica, "Replication is already enabled for virtual machine 'vm1'.", "InvalidState,")
	},
	"S31": func(l *lab) {
		l.ok("node3", enableReplica)
		l.ok("node1", enablePrimary)
		// The replica server as typed; the primary as its own identity.
		v := l.expect("node1", "", "Primary", "ReadyForInitialReplication")
		if v.Replication.ReplicaServer != "node3" || v.Replication.PrimaryServer != "NODE1.lab.local" {
			l.t.Fatalf("primary half %+v", v.Replication)
		}
		r := l.expect("node3", "", "Replica", "WaitingForInitialReplication")
		if r.Replication.PrimaryServer != "NODE1.lab.local" {
			l.t.Fatalf("replica half primary %q", r.Replication.PrimaryServer)
		}
		out := l.ok("node1", `Get-VMReplication vm1 | Select-Object PrimaryServer, ReplicaServer, PrimaryServerName, ReplicaServerName | ConvertTo-Json -Compress`)
		if out != `{"PrimaryServer":"NODE1.lab.local","ReplicaServer":"node3","PrimaryServerName":"NODE1.lab.local","ReplicaServerName":"node3"}` {
			l.t.Fatalf("Get-VMReplication: %s", out)
		}
	},
	"S32": func(l *lab) {
		l.ok("node3", enableReplica)
		l.ok("node1", enablePrimary)
		l.fails("node1", enablePrimary, "Replication is already enabled for virtual machine 'vm1'.", "InvalidState,")
	},
	"S33": func(l *lab) {
		l.ok("node3", enableReplica)
		l.fails("node1", enablePrimary+` -ReplicationFrequencySec 60`, "The replication frequency 60 is not valid.", "InvalidParameter,")
		l.expect("node1", "", "None", "")
	},
	"S34": func(l *lab) {
		l.fails("node1", `Enable-VMReplication -VMName vm1 -ReplicaServerName 192.0.2.1 -ReplicaServerPort 80 -AuthenticationType Kerberos`, "The Replica server name '192.0.2.1' is not valid.", "InvalidParameter,")
	},
	"S35": func(l *lab) {
		l.ok("node3", enableReplica)
		l.fails("node1", `Enable-VMReplication vm1 node3 443 Certificate`, "A certificate thumbprint must be specified", "InvalidParameter,")
	},
	"S36": func(l *lab) {
		l.ok("node3", enableReplica)
		l.must(l.w.Crash("node3"))
		l.fails("node1", enablePrimary, "Hyper-V cannot connect to the specified Replica server 'node3'. Error: A connection with the server could not be established (0x00002EFD).", "OperationFailed,")
	},
	"S37": func(l *lab) {
		l.ok("node3", enableReplica)
		for _, name := range []string{"nosuch", "node3-mgmt.corp", "node3.other.example"} {
			l.fails("node1", `Enable-VMReplication -VMName vm1 -ReplicaServerName `+name+` -ReplicaServerPort 80 -AuthenticationType Kerberos`,
				"Hyper-V cannot connect to the specified Replica server '"+name+"'. Error: The server name or address could not be resolved (0x00002EE7).", "OperationFailed,")
		}
		l.expect("node1", "", "None", "")
	},
	"S38": func(l *lab) {
		l.ok("node3", enableReplica)
		l.fails("node1", `Enable-VMReplication -VMName vm1 -ReplicaServerName node3 -ReplicaServerPort 8080 -AuthenticationType Kerberos`, "is not configured to accept replication from this primary server using Kerberos authentication on port 8080", "OperationFailed,")
		l.ok("node3", `Set-VMReplicationServer -ReplicationEnabled $false`)
		l.fails("node1", enablePrimary, "is not configured to accept replication", "OperationFailed,")
	},
	"S39": func(l *lab) {
		l.fails("node1", enablePrimary, "already has virtual machine 'vm1'", "OperationFailed,")
	},
	"S40": func(l *lab) {
		l.ok("node1", `Enable-VMReplication -VMName vm1 -ReplicaServerName node4 -ReplicaServerPort 80 -AuthenticationType Kerberos`)
		v := l.expect("node4", "Off", "Replica", "WaitingForInitialReplication")
		if v.Disk != "" || !strings.HasPrefix(v.ConfigPath, `C:\ReplicaStorage\`) {
			l.t.Fatalf("replica VM created at %q on disk %q, want host-local default storage", v.ConfigPath, v.Disk)
		}
	},
	"S41": func(l *lab) {
		l.ok("node3", enableReplica)
		l.ok("node1", enablePrimary)
		l.ok("node1", `Start-VMInitialReplication -VMName vm1 -UseBackup`)
		l.expect("node1", "", "Primary", "InitialReplicationInProgress")
		l.expect("node3", "", "Replica", "WaitingForInitialReplication")
		l.advance(11 * time.Second)
		l.expect("node1", "", "Primary", "Replicating")
		l.expect("node3", "", "Replica", "Replicating")
		if l.health("node1") != "Normal" || l.health("node3") != "Normal" {
			l.t.Fatalf("health %s/%s", l.health("node1"), l.health("node3"))
		}
	},
	"S42": func(l *lab) {
		l.ok("node3", enableReplica)
		l.ok("node1", enablePrimary)
		l.ok("node1", `Start-VMInitialReplication -VMName vm1`)
		l.advance(11 * time.Second)
		l.expect("node1", "", "Primary", "InitialReplicationInProgress")
		l.advance(50 * time.Second)
		l.expect("node1", "", "Primary", "Replicating")
	},
	"S43": func(l *lab) {
		l.replicate()
		l.fails("node1", `Start-VMInitialReplication vm1`, "current state: Replicating", "InvalidState,")
		l.fails("node3", `Start-VMInitialReplication vm1`, "current state: Replicating", "InvalidState,")
	},
	"S44": func(l *lab) {
		l.ok("node3", enableReplica)
		l.ok("node1", enablePrimary)
		l.must(l.w.Crash("node3"))
		l.fails("node1", `Start-VMInitialReplication vm1 -UseBackup`, "A connection with the server could not be established", "OperationFailed,")
	},
	"S45": func(l *lab) {
		l.replicate()
		l.must(l.w.DiskOffline("T2", "node3"))
		l.advance(30 * time.Second)
		l.expect("node1", "", "Primary", "Replicating")
		if h := l.health("node1"); h != "Warning" {
			l.t.Fatalf("health %s, want Warning", h)
		}
		l.advance(91 * time.Second)
		l.expect("node1", "", "Primary", "Error")
		if h := l.health("node1"); h != "Critical" {
			l.t.Fatalf("health %s, want Critical", h)
		}
	},
	"S46": func(l *lab) {
		tm := l.w.cfg.Timing
		tm.ResyncRequiredAfter = 5 * time.Minute
		l.w.SetTiming(tm)
		l.replicate()
		l.must(l.w.Crash("node3"))
		l.advance(30 * time.Second)
		l.advance(91 * time.Second)
		l.expect("node1", "", "Primary", "Error")
		l.advance(6 * time.Minute)
		l.expect("node1", "", "Primary", "WaitingForStartResynchronize")
	},
	"S47": func(l *lab) {
		l.replicate()
		l.must(l.w.DiskOffline("T2", "node3"))
		l.advance(30 * time.Second)
		l.advance(91 * time.Second)
		l.expect("node1", "", "Primary", "Error")
		l.must(l.w.DiskOnline("T2", "node3"))
		l.advance(6 * time.Second)
		l.ok("node1", `Resume-VMReplication vm1`)
		l.advance(31 * time.Second)
		l.expect("node1", "", "Primary", "Replicating")
		if h := l.health("node1"); h != "Normal" {
			l.t.Fatalf("health %s, want Normal", h)
		}
	},
	"S48": func(l *lab) {
		l.replicate()
		l.ok("node1", `Suspend-VMReplication vm1`)
		l.ok("node1", `Resume-VMReplication vm1 -Resynchronize`)
		l.expect("node1", "", "Primary", "Resynchronizing")
		l.advance(21 * time.Second)
		l.expect("node1", "", "Primary", "Replicating")
	},
	"S49": func(l *lab) {
		tm := l.w.cfg.Timing
		tm.ResyncRequiredAfter = time.Minute
		l.w.SetTiming(tm)
		l.replicate()
		l.must(l.w.Crash("node3"))
		l.advance(30 * time.Second)
		l.advance(91 * time.Second)
		l.advance(2 * time.Minute)
		l.expect("node1", "", "Primary", "WaitingForStartResynchronize")
		l.must(l.w.Boot("node3"))
		l.ok("node1", `Resume-VMReplication vm1`)
		l.expect("node1", "", "Primary", "Resynchronizing")
		l.advance(21 * time.Second)
		l.expect("node1", "", "Primary", "Replicating")
	},
	"S50": func(l *lab) {
		l.replicate()
		l.fails("node1", `Resume-VMReplication vm1`, "current state: Replicating", "InvalidState,")
	},
	"S51": func(l *lab) {
		l.replicate()
		l.ok("node1", `Suspend-VMReplication vm1`)
		l.expect("node1", "", "Primary", "Suspended")
		l.ok("node1", `Remove-VMReplication vm1`)
		l.ok("node3", `Remove-VMReplication vm1; Enable-VMReplication vm1 -AsReplica`)
		l.ok("node1", enablePrimary)
		l.fails("node1", `Suspend-VMReplication vm1`, "current state: ReadyForInitialReplication", "InvalidState,")
	},
	"S52": func(l *lab) {
		l.replicate()
		l.ok("node1", `Remove-VMReplication -VMName vm1`)
		l.expect("node1", "", "None", "Disabled")
		l.expect("node3", "", "Replica", "Replicating")
	},
	"S53": func(l *lab) {
		l.fails("node1", `Remove-VMReplication vm1`, "Replication is not enabled for virtual machine 'vm1'.", "InvalidState,Microsoft.HyperV.PowerShell.Commands.RemoveVMReplication")
	},
	"S54": func(l *lab) {
		l.replicate()
		l.must(l.w.DiskOffline("T1", "node1"))
		r := l.fails("node1", `Remove-VMReplication vm1`, "Hyper-V failed to remove replication for 'vm1': Operation aborted (0x80004004).", "OperationFailed,")
		if !strings.Contains(r.stderr, "Operation not allowed for virtual machine 'vm1' because the configuration was not accessible. Try again later.") {
			l.t.Fatalf("second line missing:\n%s", r.stderr)
		}
	},
	"S55": func(l *lab) {
		l.fails("node1", `Get-VMReplication -VMName vm1`, "Replication is not enabled for virtual machine 'vm1'.", "InvalidState,")
		if out := l.ok("node1", `@(Get-VMReplication).Count`); out != "0" {
			l.t.Fatalf("Get-VMReplication lists %s", out)
		}
		l.replicate()
		if out := l.ok("node1", `@(Get-VMReplication).Count`); out != "1" {
			l.t.Fatalf("Get-VMReplication lists %s", out)
		}
	},
	"S56": func(l *lab) {
		l.replicate()
		l.ok("node1", `Stop-VM vm1`)
		l.moveDisk("T1", "node1", "node2")
		l.ok("node2", `Import-VM -Path '`+primaryPath+`' | Out-Null`)
		l.advance(31 * time.Second)
		l.advance(91 * time.Second)
		l.expect("node2", "", "Primary", "Error")
		l.ok("node2", `Remove-VMReplication vm1`)
		l.expect("node2", "", "None", "")
	},
	"S57": func(l *lab) {
		l.replicate()
		l.fails("node3", `Set-VMReplication vm1 -ReplicationFrequencySec 30`, "cannot be modified on the Replica virtual machine 'vm1'", "InvalidOperation,")
	},
	"S58": func(l *lab) {
		l.replicate()
		l.ok("node1", `Set-VMReplication vm1 -ReplicationFrequencySec 30 -CompressionEnabled $false`)
		out := l.ok("node1", `$r = Get-VMReplication vm1; "$($r.ReplicationFrequencySec) $($r.CompressionEnabled) $($r.FrequencySec)"`)
		if out != "30 False 30" {
			l.t.Fatalf("settings %q", out)
		}
	},
	"S59": func(l *lab) {
		l.ok("node3", `Set-VMReplication vm1 -AsReplica`)
		l.expect("node3", "", "Replica", "WaitingForInitialReplication")
		l.ok("node1", `Start-VM vm1`)
		l.fails("node1", `Set-VMReplication vm1 -AsReplica`, "while it is running", "InvalidState,")
	},
	"S60": func(l *lab) {
		l.replicate()
		l.ok("node1", `Start-VMFailover -VMName vm1 -Prepare -Confirm:$false`)
		l.expect("node1", "", "Primary", "PreparedForFailover")
	},
	"S61": func(l *lab) {
		l.replicate()
		l.ok("node1", `Start-VM vm1`)
		l.fails("node1", `Start-VMFailover -VMName vm1 -Prepare -Confirm:$false`, "while it is running", "InvalidState,")
	},
	"S62": func(l *lab) {
		l.replicate()
		l.fails("node1", `Start-VMFailover -VMName vm1 -Confirm:$false`, "requires -Prepare", "InvalidParameter,")
	},
	"S63": func(l *lab) {
		l.replicate()
		l.ok("node3", `Start-VMFailover -VMName vm1 -Confirm:$false`)
		l.expect("node3", "Off", "Replica", "FailedOverWaitingCompletion")
		// Starting the failed-over replica while the primary still runs is
		// a split brain Hyper-V allows and the world records.
		l.ok("node1", `Start-VM vm1`)
		l.ok("node3", `Start-VM vm1`)
		if d := l.w.State().DualRuns; len(d) != 1 || strings.Join(d[0].Hosts, ",") != "node3,node1" {
			l.t.Fatalf("dual runs %+v", d)
		}
	},
	"S64": func(l *lab) {
		l.ok("node3", enableReplica)
		l.fails("node3", `Start-VMFailover -VMName vm1 -Confirm:$false`, "current state: WaitingForInitialReplication", "InvalidState,")
	},
	"S65": func(l *lab) {
		l.replicate()
		l.fails("node3", `Start-VMFailover -VMName vm1`, "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.", "HostFunctionNotImplemented")
		l.expect("node3", "", "Replica", "Replicating")
	},
	"S66": func(l *lab) {
		l.replicate()
		l.fails("node3", `Complete-VMFailover vm1`, "current state: Replicating", "InvalidState,")
		l.ok("node3", `Start-VMFailover vm1 -Confirm:$false; Complete-VMFailover vm1`)
		l.expect("node3", "", "Replica", "FailedOver")
		if h := l.health("node3"); h != "Warning" {
			l.t.Fatalf("health %s, want Warning", h)
		}
	},
	"S67": func(l *lab) {
		l.replicate()
		defer func() {
			// The replica was started while the primary was off: no dual run.
			if d := l.w.State().DualRuns; len(d) != 0 {
				l.t.Fatalf("dual runs %+v", d)
			}
		}()
		l.ok("node1", `Start-VMFailover vm1 -Prepare -Confirm:$false; Stop-VMFailover vm1`)
		l.expect("node1", "", "Primary", "Replicating")
		l.ok("node3", `Start-VMFailover vm1 -Confirm:$false; Start-VM vm1`)
		l.expect("node3", "Running", "Replica", "FailedOverWaitingCompletion")
		l.ok("node3", `Stop-VMFailover vm1`)
		l.expect("node3", "Off", "Replica", "Replicating")
	},
	"S68": func(l *lab) {
		l.replicate()
		out := l.ok("node3", `Start-VMFailover vm1 -AsTest -Confirm:$false; (Get-VM -Name 'vm1 - Test').State.ToString()`)
		if out != "Off" {
			l.t.Fatalf("test VM state %q", out)
		}
		l.ok("node3", `Stop-VMFailover vm1`)
		if out := l.ok("node3", `@(Get-VM).Count`); out != "1" {
			l.t.Fatalf("%s VMs after Stop-VMFailover, want the replica only", out)
		}
	},
	"S69": func(l *lab) {
		l.replicate()
		l.ok("node1", `Start-VMFailover vm1 -Prepare -Confirm:$false`)
		l.ok("node3", `Start-VMFailover vm1 -Confirm:$false; Set-VMReplication vm1 -Reverse; Start-VM vm1`)
		if d := l.w.State().DualRuns; len(d) != 0 {
			l.t.Fatalf("a planned failover ran the VM twice: %+v", d)
		}
		l.expect("node3", "Running", "Primary", "Replicating")
		l.expect("node1", "Off", "Replica", "Replicating")
		l.advance(31 * time.Second)
		l.expect("node3", "Running", "Primary", "Replicating")
		if l.health("node3") != "Normal" {
			l.t.Fatalf("reversed health %s", l.health("node3"))
		}
	},
	"S70": func(l *lab) {
		l.replicate()
		l.fails("node1", `Set-VMReplication vm1 -Reverse`, "current state: Replicating", "InvalidState,")
	},
	"S71": func(l *lab) {
		l.replicate()
		l.ok("node3", `Start-VMFailover vm1 -Confirm:$false; Complete-VMFailover vm1; Start-VM vm1`)
		l.ok("node1", `Set-VMReplication vm1 -AsReplica`)
		l.ok("node3", `Set-VMReplication vm1 -Reverse -ReplicaServerName node1`)
		l.expect("node3", "Running", "Primary", "ReadyForInitialReplication")
		l.ok("node3", `Start-VMInitialReplication vm1`)
		l.advance(61 * time.Second)
		l.expect("node3", "Running", "Primary", "Replicating")
		l.expect("node1", "Off", "Replica", "Replicating")
	},
	"S72": func(l *lab) {
		l.replicate()
		l.advance(61 * time.Second)
		out := l.ok("node1", `$m = Measure-VMReplication vm1; "$($m.ReplicationHealth) $($m.SuccessfulReplicationCount -gt 0) $($m.ReplicationMode)"`)
		if out != "Normal True Primary" {
			l.t.Fatalf("Measure-VMReplication: %q", out)
		}
	},
	"S73": func(l *lab) {
		out := l.ok("node3", `$s = Get-VMReplicationServer; "$($s.ReplicationEnabled) $($s.AllowedAuthenticationType) $($s.KerberosAuthenticationPort)"`)
		if out != "True Kerberos 80" {
			l.t.Fatalf("Get-VMReplicationServer: %q", out)
		}
		l.fails("node3", `Set-VMReplicationServer -AllowedAuthenticationType Certificate`, "A certificate thumbprint must be specified", "InvalidParameter,")
		l.ok("node3", `Set-VMReplicationServer -AllowedAuthenticationType CertificateAndKerberos -CertificateThumbprint 'AB12'`)
		if out := l.ok("node3", `(Get-VMReplicationServer).AllowedAuthenticationType.ToString()`); out != "CertificateAndKerberos" {
			l.t.Fatalf("after Set: %q", out)
		}
	},
	"S74": func(l *lab) {
		l.replicate()
		l.must(l.w.DiskOffline("T1", "node1"))
		for _, s := range []string{`Stop-VM vm1`, `Resume-VMReplication vm1`, `Suspend-VMReplication vm1`} {
			l.fails("node1", s, "because the configuration was not accessible", "OperationFailed,")
		}
	},
	"S75": func(l *lab) {
		l.replicate()
		l.ok("node1", `Start-VM vm1`)
		l.ok("node1", `Stop-VM vm1; Start-VMFailover -VMName vm1 -Prepare -Confirm:$false`)
		l.ok("node3", `Start-VMFailover -VMName vm1 -Confirm:$false; Set-VMReplication -VMName vm1 -Reverse; Start-VM vm1`)
		l.expect("node3", "Running", "Primary", "Replicating")
		l.expect("node1", "Off", "Replica", "Replicating")
	},
	"S77": func(l *lab) {
		l.ok("node1", `Start-VM vm1`)
		l.must(l.w.AddFault(Fault{Host: "node1", Cmdlet: "Stop-VM", Error: "shutdown_unavailable", Times: 3}))
		// The shutdown goes through the guest, forced or not: both refused.
		for _, flags := range []string{"", " -Force"} {
			l.fails("node1", `Stop-VM vm1`+flags, "Failed to shut down the virtual machine 'vm1': the Shutdown integration service of the guest did not respond.", "OperationFailed,Microsoft.HyperV.PowerShell.Commands.StopVM")
			l.expect("node1", "Running", "", "")
		}
		// Saving and turning off do not need the guest.
		l.ok("node1", `Stop-VM vm1 -TurnOff -Force`)
		if v := l.expect("node1", "Off", "", ""); v.LastStop != "turnoff" || v.SavedState != "none" {
			l.t.Fatalf("after -TurnOff: last stop %q saved %s", v.LastStop, v.SavedState)
		}
		l.ok("node1", `Start-VM vm1; Stop-VM vm1 -Save`)
		l.expect("node1", "Saved", "", "")
		// The fault's third refusal is still pending.
		l.ok("node1", `Start-VM vm1`)
		l.fails("node1", `Stop-VM vm1`, "did not respond", "OperationFailed,")
		l.ok("node1", `Stop-VM vm1`)
		l.expect("node1", "Off", "", "")
	},
	"S78": func(l *lab) {
		l.ok("node1", `Start-VM vm1`)
		l.must(l.w.AddFault(Fault{Host: "node1", Cmdlet: "Stop-VM", Error: "guest_locked", Times: 1}))
		l.fails("node1", `Stop-VM vm1`, "Failed to shut down the virtual machine 'vm1': The machine is locked and cannot be shut down without the force option.", "OperationFailed,Microsoft.HyperV.PowerShell.Commands.StopVM")
		l.expect("node1", "Running", "", "")
		l.ok("node1", `Stop-VM vm1 -Force`)
		if v := l.expect("node1", "Off", "", ""); v.LastStop != "force" {
			l.t.Fatalf("after -Force: last stop %q", v.LastStop)
		}
	},
	"S79": func(l *lab) {
		l.must(l.w.SetHostNames("node3", "", []string{"node3-mgmt.corp"}))
		for _, name := range []string{"node3-mgmt.corp", "NODE3.LAB.LOCAL", "Node3"} {
			l.ok("node3", enableReplica)
			l.ok("node1", `Enable-VMReplication -VMName vm1 -ReplicaServerName `+name+` -ReplicaServerPort 80 -AuthenticationType Kerberos`)
			if v := l.expect("node1", "", "Primary", "ReadyForInitialReplication"); v.Replication.ReplicaServer != name {
				l.t.Fatalf("replica server %q, want it as typed: %q", v.Replication.ReplicaServer, name)
			}
			// The name keeps resolving: replication flows to node3.
			l.ok("node1", `Start-VMInitialReplication vm1`)
			l.advance(70 * time.Second)
			l.expect("node1", "", "Primary", "Replicating")
			l.expect("node3", "", "Replica", "Replicating")
			l.ok("node1", `Remove-VMReplication vm1`)
			l.ok("node3", `Remove-VMReplication vm1`)
		}
	},
	"S80": func(l *lab) {
		out := l.ok("node1", `Get-VMHost | Select-Object Name, ComputerName, FullyQualifiedDomainName | ConvertTo-Json -Compress`)
		if out != `{"Name":"NODE1","ComputerName":"NODE1","FullyQualifiedDomainName":"NODE1.lab.local"}` {
			l.t.Fatalf("Get-VMHost: %s", out)
		}
		// A computer name other than the ECX server name: the host answers
		// to it, reports it, and replicates under it.
		l.must(l.w.SetHostNames("node1", "WIN-HV1", nil))
		out = l.ok("node1", `(Get-VMHost).FullyQualifiedDomainName; $env:COMPUTERNAME; (Get-VMHost -ComputerName WIN-HV1.lab.local).ComputerName`)
		if out != "WIN-HV1.lab.local\r\nWIN-HV1\r\nWIN-HV1" {
			l.t.Fatalf("renamed host: %q", out)
		}
		l.ok("node3", enableReplica)
		l.ok("node1", enablePrimary)
		if r := l.expect("node3", "", "Replica", "WaitingForInitialReplication"); r.Replication.PrimaryServer != "WIN-HV1.lab.local" {
			l.t.Fatalf("replica half primary %q", r.Replication.PrimaryServer)
		}
		l.ok("node1", `Start-VMInitialReplication vm1`)
		l.advance(70 * time.Second)
		l.expect("node3", "", "Replica", "Replicating")
		if err := l.w.SetHostNames("node2", "", []string{"node3-mgmt.corp", "WIN-HV1.lab.local"}); err == nil || !strings.Contains(err.Error(), "WIN-HV1.lab.local") {
			l.t.Fatalf("an alias already naming another host: %v", err)
		}
		if err := l.w.SetHostNames("node2", "", []string{"192.0.2.7"}); err == nil {
			l.t.Fatal("an IP address accepted as a DNS name")
		}
	},
	"S76": func(l *lab) {
		l.replicate()
		l.ok("node3", `Start-VMFailover vm1 -AsTest -Confirm:$false`)
		l.ok("node3", `Remove-VMReplication vm1`)
		if out := l.ok("node3", `@(Get-VM).Count`); out != "1" {
			l.t.Fatalf("%s VMs after Remove-VMReplication, want the replica copy only", out)
		}
		// The test VM's configuration file went with it: nothing to import.
		test := `C:\ReplicaStorage\Test\Virtual Machines\` + testVMID(vmID) + ".vmcx"
		l.fails("node3", "Import-VM -Path '"+test+"'", "The system cannot find the path specified. (0x80070003)", "OperationFailed,")
	},
}

// TestGuestFaultsOnlyOnStopVM: the guest faults describe the guest's
// shutdown, so they are refused for any other cmdlet.
func TestGuestFaultsOnlyOnStopVM(t *testing.T) {
	l := newLab(t)
	for _, name := range []string{"shutdown_unavailable", "guest_locked"} {
		err := l.w.AddFault(Fault{Host: "node1", Cmdlet: "Start-VM", Error: name, Times: 1})
		if err == nil || !strings.Contains(err.Error(), "only Stop-VM") {
			t.Errorf("%s on Start-VM: %v", name, err)
		}
		if err := l.w.AddFault(Fault{Host: "node1", Cmdlet: "Stop-VM", Error: name, Times: 1}); err != nil {
			t.Errorf("%s on Stop-VM: %v", name, err)
		}
	}
}

// crashOver crashes node1 with vm1 running and fails T1 over to node2,
// leaving a file with stale saved state and vm1 unregistered on node2.
func (l *lab) crashOver() {
	l.t.Helper()
	l.ok("node1", `Start-VM vm1`)
	l.must(l.w.Crash("node1"))
	l.moveDisk("T1", "node1", "node2")
}

func (l *lab) file(disk string) FileState {
	l.t.Helper()
	for _, d := range l.w.State().Disks {
		if d.Name == disk {
			for _, f := range d.Files {
				if strings.EqualFold(f.ID, vmID) {
					return f
				}
			}
		}
	}
	l.t.Fatalf("no vm1 file on %s", disk)
	return FileState{}
}

func TestStates(t *testing.T) {
	ids := make([]string, 0, len(stateCases))
	for id := range stateCases {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			stateCases[id](newLab(t))
		})
	}
}

// TestStatesDocumented keeps STATES.md and the cases in step.
func TestStatesDocumented(t *testing.T) {
	doc, err := os.ReadFile("STATES.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile(`(?m)^\| (S\d+) \|`).FindAllStringSubmatch(string(doc), -1)
	documented := map[string]bool{}
	for _, r := range rows {
		if documented[r[1]] {
			t.Errorf("STATES.md lists %s twice", r[1])
		}
		documented[r[1]] = true
		if stateCases[r[1]] == nil {
			t.Errorf("STATES.md row %s has no test case", r[1])
		}
	}
	for id := range stateCases {
		if !documented[id] {
			t.Errorf("test case %s has no row in STATES.md", id)
		}
	}
	if len(documented) < 70 {
		t.Errorf("only %d rows found in STATES.md; the table format changed?", len(documented))
	}
}

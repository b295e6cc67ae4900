package hyperv

import (
	"fmt"
	"strings"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv/ps"
)

// vmRef is the handle a VirtualMachine object carries so that piping it to
// another cmdlet acts on the same registration.
type vmRef struct {
	host *Host
	id   string
}

// plannedVM is the VM of a compatibility report (not registered yet).
type plannedVM struct{ report *compatReport }

// compatReport is what Compare-VM returns and Import-VM consumes.
type compatReport struct {
	host    *Host
	path    string
	planned *VMConfig
}

// vmView is what a host shows for one registration.
type vmView struct {
	reg   *Registration
	cfg   *VMConfig // live configuration or the last one seen
	state VMState
	live  bool
}

// view returns what host h shows for reg; ok is false when the VM is not
// listed at all (unloaded after a boot without its storage).
func (w *World) view(h *Host, reg *Registration) (vmView, bool) {
	switch reg.view {
	case viewUnloaded:
		return vmView{}, false
	case viewLost:
		return vmView{reg: reg, cfg: reg.snap, state: reg.snapState}, reg.snap != nil
	}
	cfg := w.config(h, reg)
	if cfg == nil {
		return vmView{}, false
	}
	st := Off
	switch {
	case reg.running:
		st = Running
	case cfg.Saved != NoSavedState:
		st = Saved
	}
	return vmView{reg: reg, cfg: cfg, state: st, live: true}, true
}

func guidOf(id string) ps.Guid { return ps.Guid(strings.ToLower(id)) }

func timeSpan(d time.Duration) *ps.Object {
	o := ps.NewObject("System.TimeSpan")
	d = d.Truncate(time.Millisecond)
	o.Text = fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	o.Set("Ticks", int64(d/100)).
		Set("Days", int64(d.Hours()/24)).
		Set("Hours", int64(d.Hours())%24).
		Set("Milliseconds", int64(d.Milliseconds())%1000).
		Set("Minutes", int64(d.Minutes())%60).
		Set("Seconds", int64(d.Seconds())%60).
		Set("TotalDays", d.Hours()/24).
		Set("TotalHours", d.Hours()).
		Set("TotalMilliseconds", float64(d.Milliseconds())).
		Set("TotalMinutes", d.Minutes()).
		Set("TotalSeconds", d.Seconds())
	return o
}

func vmText(name, id string) string {
	return fmt.Sprintf("VirtualMachine (Name = '%s') [Id = '%s']", name, strings.ToLower(id))
}

func vmFolder(cfgPath string) string {
	// T:\VMs\Virtual Machines\<id>.vmcx -> T:\VMs
	p := cfgPath
	if i := strings.LastIndexByte(p, '\\'); i >= 0 {
		p = p[:i]
	}
	if strings.HasSuffix(strings.ToLower(p), `\virtual machines`) {
		p = p[:len(p)-len(`\virtual machines`)]
	}
	return p
}

func (w *World) vmObject(h *Host, v vmView) *ps.Object {
	cfg := v.cfg
	o := ps.NewObject(hvns + "VirtualMachine")
	o.Text = vmText(cfg.Name, cfg.ID)
	o.Native = &vmRef{host: h, id: cfg.ID}
	status := "Operating normally"
	if !v.live {
		status = "Critical: the virtual machine configuration is not accessible"
	}
	var uptime time.Duration
	var mem int64
	if v.state == Running {
		uptime = w.now().Sub(v.reg.startedAt)
		mem = cfg.MemoryMB << 20
	}
	mode, rstate, health := ModeNone, Disabled, NotApplicable
	if cfg.Rep != nil {
		mode, rstate, health = cfg.Rep.Mode, cfg.Rep.State, cfg.Rep.Health
	}
	o.Set("Name", cfg.Name).
		Set("Id", guidOf(cfg.ID)).
		Set("State", enumOf(vmStateEnum, int(v.state))).
		Set("Status", status).
		Set("CPUUsage", int64(0)).
		Set("MemoryAssigned", mem).
		Set("Uptime", timeSpan(uptime)).
		Set("ReplicationState", enumOf(repStateEnum, int(rstate))).
		Set("ReplicationHealth", enumOf(healthEnum, int(health))).
		Set("ReplicationMode", enumOf(modeEnum, int(mode))).
		Set("Generation", int64(cfg.Generation)).
		Set("Version", "9.0").
		Set("Path", vmFolder(cfg.Path)).
		Set("ConfigurationLocation", vmFolder(cfg.Path)).
		Set("VirtualMachineType", enumOf(vmTypeEnum, 3)).
		Set("Notes", "").
		Set("IsClustered", false).
		Set("ComputerName", h.ComputerName).
		Set("IsDeleted", false).
		Set("VMName", cfg.Name).
		Set("VMId", guidOf(cfg.ID))
	return o
}

// plannedObject is the VirtualMachine of a compatibility report.
func plannedObject(h *Host, rep *compatReport) *ps.Object {
	cfg := rep.planned
	o := ps.NewObject(hvns + "VirtualMachine")
	o.Text = vmText(cfg.Name, cfg.ID)
	o.Native = &plannedVM{report: rep}
	st := Off
	if cfg.Saved != NoSavedState {
		st = Saved
	}
	o.Set("Name", cfg.Name).
		Set("Id", guidOf(cfg.ID)).
		Set("State", enumOf(vmStateEnum, int(st))).
		Set("Path", vmFolder(cfg.Path)).
		Set("ConfigurationLocation", vmFolder(cfg.Path)).
		Set("VirtualMachineType", enumOf(vmTypeEnum, 4)).
		Set("ComputerName", h.ComputerName).
		Set("IsDeleted", false).
		Set("VMName", cfg.Name).
		Set("VMId", guidOf(cfg.ID))
	return o
}

func nullableTime(t time.Time) ps.Value {
	if t.IsZero() {
		return nil
	}
	return t
}

func authEnum(a string) ps.Value {
	e, err := repAuthEnum.Parse(a)
	if err != nil {
		return nil
	}
	return e
}

func (w *World) replicationObject(h *Host, cfg *VMConfig) *ps.Object {
	r := cfg.Rep
	o := ps.NewObject(hvns + "VMReplication")
	o.Text = fmt.Sprintf("VMReplication (VMName = '%s') [ReplicationMode = '%s']", cfg.Name, r.Mode)
	o.Native = &vmRef{host: h, id: cfg.ID}
	var test ps.Value
	if r.TestVMID != "" {
		if reg := h.regs[strings.ToLower(r.TestVMID)]; reg != nil {
			if v, ok := w.view(h, reg); ok {
				test = w.vmObject(h, v)
			}
		}
	}
	o.Set("VMName", cfg.Name).
		Set("VMId", guidOf(cfg.ID)).
		Set("ReplicationState", enumOf(repStateEnum, int(r.State))).
		Set("ReplicationHealth", enumOf(healthEnum, int(r.Health))).
		Set("ReplicationMode", enumOf(modeEnum, int(r.Mode))).
		Set("ReplicationRelationshipType", enumOf(relationshipEnum, 0)).
		Set("PrimaryServerName", r.PrimaryServer).
		Set("ReplicaServerName", r.ReplicaServer).
		Set("CurrentReplicaServerName", r.ReplicaServer).
		Set("ReplicaServerPort", int64(r.Port)).
		Set("AuthenticationType", authEnum(r.Auth)).
		Set("CertificateThumbprint", r.Thumbprint).
		Set("CompressionEnabled", r.Compression).
		Set("ReplicationFrequencySec", int64(r.FrequencySec)).
		Set("RecoveryHistory", int64(r.RecoveryHistory)).
		Set("LastReplicationTime", nullableTime(r.LastReplication)).
		Set("LastAppliedLogTime", nullableTime(r.LastReplication)).
		Set("AllowedPrimaryServer", r.AllowedPrimaryServer).
		Set("TestVirtualMachine", test).
		Set("ComputerName", h.ComputerName).
		Set("IsDeleted", false).
		// Alias properties from the Hyper-V module's type data: the
		// default table view and public scripts use these names.
		Set("State", enumOf(repStateEnum, int(r.State))).
		Set("Health", enumOf(healthEnum, int(r.Health))).
		Set("Mode", enumOf(modeEnum, int(r.Mode))).
		Set("FrequencySec", int64(r.FrequencySec)).
		Set("PrimaryServer", r.PrimaryServer).
		Set("ReplicaServer", r.ReplicaServer).
		Set("ReplicaPort", int64(r.Port)).
		Set("AuthType", authEnum(r.Auth)).
		Set("Relationship", enumOf(relationshipEnum, 0))
	return o
}

func (w *World) replicationHealthObject(h *Host, cfg *VMConfig) *ps.Object {
	r := cfg.Rep
	o := ps.NewObject(hvns + "VMReplicationHealth")
	o.Text = fmt.Sprintf("VMReplicationHealth (VMName = '%s')", cfg.Name)
	details := []ps.Value{}
	switch r.Health {
	case Warning:
		details = append(details, "Replication is lagging or a replication cycle was missed.")
	case Critical:
		details = append(details, "Replication is not working: the Replica server could not be reached or replication is in Error.")
	}
	o.Set("VMName", cfg.Name).
		Set("VMId", guidOf(cfg.ID)).
		Set("ReplicationState", enumOf(repStateEnum, int(r.State))).
		Set("ReplicationHealth", enumOf(healthEnum, int(r.Health))).
		Set("ReplicationMode", enumOf(modeEnum, int(r.Mode))).
		Set("PrimaryServerName", r.PrimaryServer).
		Set("ReplicaServerName", r.ReplicaServer).
		Set("CurrentReplicaServerName", r.ReplicaServer).
		Set("LastReplicationTime", nullableTime(r.LastReplication)).
		Set("PendingReplicationSize", int64(0)).
		Set("AverageReplicationSize", int64(0)).
		Set("ReplicationErrors", int64(r.errors)).
		Set("SuccessfulReplicationCount", int64(r.successful)).
		Set("MissedReplicationCount", int64(r.missed)).
		Set("ReplicationHealthDetails", details).
		Set("ComputerName", h.ComputerName).
		Set("IsDeleted", false)
	return o
}

// vmHostObject is Get-VMHost's answer, with the properties the emulator
// models (the names of Hyper-V's VMHost type).
func vmHostObject(h *Host) *ps.Object {
	o := ps.NewObject(hvns + "VMHost")
	o.Text = hvns + "VMHost"
	o.Set("Name", h.ComputerName).
		Set("ComputerName", h.ComputerName).
		Set("FullyQualifiedDomainName", h.Identity).
		Set("VirtualMachinePath", `C:\ProgramData\Microsoft\Windows\Hyper-V`).
		Set("VirtualHardDiskPath", `C:\Users\Public\Documents\Hyper-V\Virtual Hard Disks`).
		Set("IsDeleted", false)
	return o
}

func replicationServerObject(h *Host) *ps.Object {
	rs := h.repServer
	o := ps.NewObject(hvns + "VMReplicationServer")
	o.Text = hvns + "VMReplicationServer"
	auth, _ := recoveryAuthEnum.Parse(rs.AllowedAuth)
	entries := []ps.Value{}
	for _, s := range rs.AuthorizedServer {
		e := ps.NewObject(hvns + "VMReplicationAuthorizationEntry")
		e.Set("AllowedPrimaryServer", s).Set("ReplicaStorageLocation", rs.DefaultStorage).Set("TrustGroup", "DEFAULT")
		entries = append(entries, e)
	}
	o.Set("ReplicationEnabled", rs.Enabled).
		Set("AllowedAuthenticationType", auth).
		Set("ReplicationAllowedFromAnyServer", rs.AllowAnyServer).
		Set("AuthorizationEntries", entries).
		Set("DefaultStorageLocation", rs.DefaultStorage).
		Set("KerberosAuthenticationPort", int64(rs.KerberosPort)).
		Set("CertificateAuthenticationPort", int64(rs.CertificatePort)).
		Set("CertificateThumbprint", rs.Thumbprint).
		Set("MonitoringInterval", timeSpan(12*time.Hour)).
		Set("MonitoringStartTime", timeSpan(15*time.Hour)).
		Set("ComputerName", h.ComputerName).
		Set("IsDeleted", false)
	return o
}

func reportObject(h *Host, rep *compatReport) *ps.Object {
	o := ps.NewObject(hvns + "VMCompatibilityReport")
	o.Native = rep
	vm := plannedObject(h, rep)
	inc := []ps.Value{}
	if rep.planned.Saved == StaleSavedState {
		base := rep.path
		if i := strings.LastIndexByte(base, '.'); i >= 0 {
			base = base[:i]
		}
		for _, e := range []struct {
			id  int64
			msg string
		}{
			{40004, fmt.Sprintf("The saved state file '%s.vsv' that the virtual machine configuration references could not be found.", base)},
			{40006, fmt.Sprintf("The memory file '%s.bin' that the virtual machine configuration references could not be found.", base)},
		} {
			ce := ps.NewObject(hvns + "VMCompatibilityError")
			ce.Text = hvns + "VMCompatibilityError"
			ce.Set("Message", e.msg).Set("MessageId", e.id).Set("Source", vm)
			inc = append(inc, ce)
		}
	}
	o.Set("VM", vm).
		Set("OperationType", enumOf(operationTypeEnum, 1)).
		Set("Destination", strings.ToUpper(h.Name)).
		Set("Path", rep.path).
		Set("SnapshotPath", vmFolder(rep.path)+`\Snapshots`).
		Set("VhdDestinationPath", nil).
		Set("VhdSourcePath", nil).
		Set("Incompatibilities", inc)
	return o
}

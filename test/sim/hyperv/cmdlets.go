package hyperv

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"cmp"
	"github.com/hvro/hvro/test/sim/hyperv/ps"
	"slices"
)

const cmdClass = "Microsoft.HyperV.PowerShell.Commands."

var vmType = []string{hvns + "VirtualMachine"}

// Parameter sets shared by the cmdlets that act on VMs by name or object.
var (
	pVMName  = ps.Param{Name: "VMName", Aliases: []string{"Name"}, Type: ps.TStringArray, Position: 0, Mandatory: true, Sets: []string{"VMName"}}
	pVM      = ps.Param{Name: "VM", Type: ps.TObjectArray, ObjectTypes: vmType, Position: 0, Mandatory: true, FromPipeline: true, Sets: []string{"VMObject"}}
	pPass    = ps.Named("Passthru", ps.TSwitch, "PassThru")
	pCompute = ps.Param{Name: "ComputerName", Type: ps.TStringArray, Position: -1, Sets: []string{"VMName"}}
	vmSets   = []string{"VMName", "VMObject"}
)

func vmParams(extra ...ps.Param) []ps.Param {
	return append([]ps.Param{pVMName, pVM, pCompute, pPass}, extra...)
}

// exec is one cmdlet invocation against a host, with the world locked.
type exec struct {
	c *ps.Call
	h *Host
	w *World
}

// commandTable builds the cmdlets of the subset bound to host h.
func (h *Host) commandTable() *ps.CommandTable {
	t := ps.NewCommandTable()
	registerEnums(t)
	add := func(name string, params []ps.Param, sets []string, run func(x *exec) error, opts ...func(*ps.Cmdlet)) {
		c := &ps.Cmdlet{Name: name, Class: cmdClass + strings.ReplaceAll(name, "-", ""), Params: params, Sets: sets}
		c.Process = h.wrap(name, run)
		for _, o := range opts {
			o(c)
		}
		t.Add(c)
	}
	getVMParams := []ps.Param{
		{Name: "Name", Aliases: []string{"VMName"}, Type: ps.TStringArray, Position: 0, Sets: []string{"Name"}},
		{Name: "Id", Type: ps.TString, Position: -1, Sets: []string{"Id"}},
		{Name: "ComputerName", Type: ps.TStringArray, Position: -1},
	}
	add("Get-VM", getVMParams, []string{"Name", "Id"}, (*exec).getVM)
	add("Start-VM", vmParams(), vmSets, (*exec).startVM)
	add("Stop-VM", vmParams(ps.Named("Force", ps.TSwitch), ps.Named("TurnOff", ps.TSwitch), ps.Named("Save", ps.TSwitch)), vmSets, (*exec).stopVM)
	add("Import-VM", []ps.Param{
		{Name: "Path", Type: ps.TString, Position: 0, Mandatory: true, Sets: []string{"Register"}},
		{Name: "CompatibilityReport", Type: ps.TObject, ObjectTypes: []string{hvns + "VMCompatibilityReport"}, Position: 0, Mandatory: true, FromPipeline: true, Sets: []string{"CompatibilityReport"}},
		{Name: "Register", Type: ps.TSwitch, Position: -1, Sets: []string{"Register"}},
		{Name: "Copy", Type: ps.TSwitch, Position: -1, Sets: []string{"Register"}},
		{Name: "GenerateNewId", Type: ps.TSwitch, Position: -1, Sets: []string{"Register"}},
		{Name: "ComputerName", Type: ps.TStringArray, Position: -1},
	}, []string{"Register", "CompatibilityReport"}, (*exec).importVM)
	add("Compare-VM", []ps.Param{
		{Name: "Path", Type: ps.TString, Position: 0, Mandatory: true, Sets: []string{"Register"}},
		{Name: "CompatibilityReport", Type: ps.TObject, ObjectTypes: []string{hvns + "VMCompatibilityReport"}, Position: 0, Mandatory: true, FromPipeline: true, Sets: []string{"CompatibilityReport"}},
		{Name: "Register", Type: ps.TSwitch, Position: -1, Sets: []string{"Register"}},
		{Name: "ComputerName", Type: ps.TStringArray, Position: -1},
	}, []string{"Register", "CompatibilityReport"}, (*exec).compareVM)
	add("Remove-VMSavedState", vmParams(), vmSets, (*exec).removeSavedState)
	filters := []ps.Param{
		ps.Named("ReplicaServerName", ps.TString),
		ps.Named("PrimaryServerName", ps.TString),
		{Name: "ReplicationState", Type: ps.TEnum, Enum: repStateEnum, Position: -1},
		{Name: "ReplicationHealth", Type: ps.TEnum, Enum: healthEnum, Position: -1},
		{Name: "ReplicationMode", Type: ps.TEnum, Enum: modeEnum, Position: -1},
	}
	getRepName := pVMName
	getRepName.Mandatory = false
	getRepVM := pVM
	add("Get-VMReplication", append([]ps.Param{getRepName, getRepVM, pCompute}, filters...), vmSets, (*exec).getReplication)
	add("Measure-VMReplication", append([]ps.Param{getRepName, getRepVM, pCompute}, filters...), vmSets, (*exec).measureReplication)
	replSettings := []ps.Param{
		{Name: "ReplicaServerName", Aliases: []string{"ReplicaServer"}, Type: ps.TString, Position: 1},
		{Name: "ReplicaServerPort", Aliases: []string{"ReplicaPort"}, Type: ps.TInt, Position: 2},
		{Name: "AuthenticationType", Aliases: []string{"AuthType"}, Type: ps.TEnum, Enum: repAuthEnum, Position: 3},
		ps.Named("CertificateThumbprint", ps.TString, "Thumbprint", "Cert"),
		ps.Named("CompressionEnabled", ps.TBool),
		ps.Named("ReplicationFrequencySec", ps.TInt, "RepFreq"),
		ps.Named("RecoveryHistory", ps.TInt, "RecHist"),
		ps.Named("BypassProxyServer", ps.TBool),
		ps.Named("AllowedPrimaryServer", ps.TString, "AllowedPS"),
		ps.Named("AsReplica", ps.TSwitch),
	}
	add("Enable-VMReplication", vmParams(replSettings...), vmSets, (*exec).enableReplication)
	add("Set-VMReplication", vmParams(append(replSettings, ps.Named("Reverse", ps.TSwitch))...), vmSets, (*exec).setReplication)
	add("Start-VMInitialReplication", vmParams(ps.Named("UseBackup", ps.TSwitch), ps.Named("DestinationPath", ps.TString), ps.Named("InitialReplicationStartTime", ps.TDateTime)), vmSets, (*exec).startInitialReplication)
	add("Remove-VMReplication", vmParams(ps.Named("ReplicationRelationshipType", ps.TString)), vmSets, (*exec).removeReplication)
	add("Suspend-VMReplication", vmParams(), vmSets, (*exec).suspendReplication)
	add("Resume-VMReplication", vmParams(ps.Named("Resynchronize", ps.TSwitch), ps.Named("ResynchronizeStartTime", ps.TDateTime), ps.Named("Continue", ps.TSwitch)), vmSets, (*exec).resumeReplication)
	add("Start-VMFailover", vmParams(ps.Named("Prepare", ps.TSwitch), ps.Named("AsTest", ps.TSwitch)), vmSets, (*exec).startFailover,
		func(c *ps.Cmdlet) { c.HighImpact = true })
	add("Complete-VMFailover", vmParams(), vmSets, (*exec).completeFailover)
	add("Stop-VMFailover", vmParams(), vmSets, (*exec).stopFailover)
	add("Get-VMReplicationServer", []ps.Param{{Name: "ComputerName", Type: ps.TStringArray, Position: -1}}, nil, (*exec).getReplicationServer)
	add("Get-VMHost", []ps.Param{{Name: "ComputerName", Type: ps.TStringArray, Position: 0}}, nil, (*exec).getVMHost)
	add("Set-VMReplicationServer", []ps.Param{
		{Name: "ReplicationEnabled", Aliases: []string{"RepEnabled"}, Type: ps.TBool, Position: 0},
		{Name: "AllowedAuthenticationType", Aliases: []string{"AuthType"}, Type: ps.TEnum, Enum: recoveryAuthEnum, Position: 1},
		{Name: "ReplicationAllowedFromAnyServer", Aliases: []string{"AllowAnyServer"}, Type: ps.TBool, Position: 2},
		ps.Named("CertificateThumbprint", ps.TString, "Thumbprint"),
		ps.Named("DefaultStorageLocation", ps.TString, "StorageLoc"),
		ps.Named("KerberosAuthenticationPort", ps.TInt, "KerbAuthPort"),
		ps.Named("CertificateAuthenticationPort", ps.TInt, "CertAuthPort"),
		ps.Named("Force", ps.TSwitch),
		pPass,
		{Name: "ComputerName", Type: ps.TStringArray, Position: -1},
	}, nil, (*exec).setReplicationServer)
	return t
}

// wrap applies what every Hyper-V cmdlet shares: -ComputerName must name
// this host, injected latency, injected faults, and one world lock.
func (h *Host) wrap(name string, run func(x *exec) error) func(c *ps.Call) error {
	return func(c *ps.Call) error {
		w := h.world
		for _, cn := range c.Strings("ComputerName") {
			if !h.isLocalName(cn) {
				return c.Fail(hvError("not_supported", fmt.Sprintf("The Hyper-V emulator runs cmdlets only on the local host; -ComputerName '%s' is not this host (%s). Connect to that host instead.", cn, h.Name)))
			}
		}
		if d := w.delayFor(h, name, c); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-c.Ctx.Done():
				t.Stop()
				return c.Ctx.Err()
			}
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if !h.up {
			return errHostDown
		}
		w.tick()
		x := &exec{c: c, h: h, w: w}
		if kind, ok := w.takeFault(h, name, c); ok {
			return c.WriteError(hvError(kind, x.subject()))
		}
		return run(x)
	}
}

func (h *Host) isLocalName(n string) bool {
	n = strings.ToLower(strings.TrimSpace(n))
	return n == "localhost" || n == "." || n == "127.0.0.1" || h.hasName(n)
}

// subject names the VM a failing call was about, for injected faults.
func (x *exec) subject() string {
	if names := x.c.Strings("VMName"); len(names) > 0 {
		return names[0]
	}
	if names := x.c.Strings("Name"); len(names) > 0 {
		return names[0]
	}
	for _, o := range x.c.Objects("VM") {
		if obj, ok := o.(*ps.Object); ok {
			if n, ok := obj.Get("Name"); ok {
				return ps.ToString(n)
			}
		}
	}
	if p := x.c.String("Path"); p != "" {
		return p
	}
	return x.h.Name
}

// fail reports a per-VM error as Hyper-V does: non-terminating.
func (x *exec) fail(r *ps.ErrorRecord) error { return x.c.WriteError(r) }

// target is one VM a cmdlet acts on.
type target struct {
	reg *Registration
	v   vmView
}

// targets resolves -VMName (wildcards allowed) or -VM objects.
func (x *exec) targets() ([]target, error) {
	var out []target
	if x.c.Has("VM") {
		for _, o := range x.c.Objects("VM") {
			obj := o.(*ps.Object)
			ref, ok := obj.Native.(*vmRef)
			if !ok || ref.host != x.h {
				name, _ := obj.Get("Name")
				if err := x.fail(hvError("vm_not_found", ps.ToString(name))); err != nil {
					return nil, err
				}
				continue
			}
			reg := x.h.regs[strings.ToLower(ref.id)]
			var v vmView
			if reg != nil {
				v, ok = x.w.view(x.h, reg)
			}
			if reg == nil || !ok {
				name, _ := obj.Get("Name")
				if err := x.fail(hvError("vm_not_found", ps.ToString(name))); err != nil {
					return nil, err
				}
				continue
			}
			out = append(out, target{reg, v})
		}
		return out, nil
	}
	names := x.c.Strings("VMName")
	if !x.c.Has("VMName") {
		names = []string{"*"}
	}
	all := x.visible()
	for _, n := range names {
		found := false
		for _, t := range all {
			if ps.Wildcard(n, t.v.cfg.Name) {
				out = append(out, t)
				found = true
			}
		}
		if !found && !ps.HasWildcard(n) {
			if err := x.fail(hvError("vm_not_found", n)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// visible lists the VMs Get-VM shows on the host, sorted by name.
func (x *exec) visible() []target {
	var out []target
	for _, reg := range x.h.regs {
		if v, ok := x.w.view(x.h, reg); ok {
			out = append(out, target{reg, v})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].v.cfg.Name != out[j].v.cfg.Name {
			return out[i].v.cfg.Name < out[j].v.cfg.Name
		}
		return out[i].reg.ID < out[j].reg.ID
	})
	return out
}

// each runs fn for every target, reporting per-VM errors non-terminating.
func (x *exec) each(fn func(t target) *ps.ErrorRecord) error {
	ts, err := x.targets()
	if err != nil {
		return err
	}
	for _, t := range ts {
		if r := fn(t); r != nil {
			if err := x.fail(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// live returns the configuration for a change, or the error Hyper-V gives
// when the host cannot reach the VM's storage.
func (x *exec) live(t target, removingReplication bool) (*VMConfig, *ps.ErrorRecord) {
	if !t.v.live || x.w.settling(t.reg) {
		return nil, notAccessible(t.v.cfg.Name, removingReplication)
	}
	return t.v.cfg, nil
}

// eachReplicated runs fn for every target whose storage is live and which
// has replication enabled; the rest get Hyper-V's errors.
func (x *exec) eachReplicated(fn func(t target, cfg *VMConfig, r *Replication) *ps.ErrorRecord) error {
	return x.each(func(t target) *ps.ErrorRecord {
		cfg, e := x.live(t, false)
		if e != nil {
			return e
		}
		if cfg.Rep == nil {
			return hvError("replication_not_enabled", cfg.Name)
		}
		return fn(t, cfg, cfg.Rep)
	})
}

func (x *exec) passthru(t target) {
	if !x.c.Bool("Passthru") {
		return
	}
	if v, ok := x.w.view(x.h, t.reg); ok {
		x.c.Write(x.w.vmObject(x.h, v))
	}
}

func (x *exec) passthruReplication(cfg *VMConfig) {
	if x.c.Bool("Passthru") && cfg.Rep != nil {
		x.c.Write(x.w.replicationObject(x.h, cfg))
	}
}

// ---- VMs ----

func (x *exec) getVM() error {
	if x.c.Has("Id") {
		id := strings.Trim(strings.ToLower(x.c.String("Id")), "{}")
		for _, t := range x.visible() {
			if strings.ToLower(t.reg.ID) == id {
				x.c.Write(x.w.vmObject(x.h, t.v))
				return nil
			}
		}
		return x.fail(hvError("vm_not_found", x.c.String("Id")))
	}
	names := x.c.Strings("Name")
	if len(names) == 0 {
		names = []string{"*"}
	}
	all := x.visible()
	for _, n := range names {
		found := false
		for _, t := range all {
			if ps.Wildcard(n, t.v.cfg.Name) {
				x.c.Write(x.w.vmObject(x.h, t.v))
				found = true
			}
		}
		if !found && !ps.HasWildcard(n) {
			if err := x.fail(hvError("vm_not_found", n)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (x *exec) startVM() error {
	return x.each(func(t target) *ps.ErrorRecord {
		cfg, e := x.live(t, false)
		if e != nil {
			return e
		}
		if t.reg.running {
			return hvError("invalid_state")
		}
		if r := cfg.Rep; r != nil {
			switch {
			case r.Mode == Replica && r.State != FailedOverWaitingCompletion && r.State != FailedOver:
				return hvError("replica_start_refused", cfg.Name)
			case r.Mode == Primary && r.State == PreparedForFailover:
				return hvError("prepared_locked", cfg.Name)
			}
		}
		switch cfg.Saved {
		case StaleSavedState:
			return hvError("saved_state_missing", cfg.Name, cfg.ID, cfg.Name)
		case ValidSavedState:
			cfg.Saved = NoSavedState
		}
		t.reg.running, t.reg.startedAt = true, x.w.now()
		x.w.noteDualRun(x.h, cfg.ID)
		x.passthru(t)
		return nil
	})
}

// noteDualRun records when another host already runs a copy of the VM.
func (w *World) noteDualRun(h *Host, id string) {
	hosts := []string{h.Name}
	for _, o := range w.sortedHosts() {
		if o == h || !o.up {
			continue
		}
		if reg := o.regs[strings.ToLower(id)]; reg != nil && reg.running {
			hosts = append(hosts, o.Name)
		}
	}
	if len(hosts) > 1 {
		w.dualRuns = append(w.dualRuns, DualRun{At: w.now(), VMID: id, Hosts: hosts})
	}
}

func (x *exec) stopVM() error {
	return x.each(func(t target) *ps.ErrorRecord {
		cfg, e := x.live(t, false)
		if e != nil {
			return e
		}
		if !t.reg.running {
			// Stopping a VM that is already off changes nothing.
			x.passthru(t)
			return nil
		}
		t.reg.running = false
		switch {
		case x.c.Bool("Save"):
			cfg.Saved = ValidSavedState
			t.reg.lastStop = "save"
		case x.c.Bool("TurnOff"):
			t.reg.lastStop = "turnoff"
		case x.c.Bool("Force"):
			t.reg.lastStop = "force"
		default:
			t.reg.lastStop = "shutdown"
		}
		x.passthru(t)
		return nil
	})
}

func (x *exec) importVM() error {
	if x.c.Bool("Copy") || x.c.Bool("GenerateNewId") {
		return x.c.Fail(hvError("not_supported", "Import-VM -Copy and -GenerateNewId are not supported by the Hyper-V emulator; register in place with Import-VM -Path."))
	}
	var cfg *VMConfig
	var saved SavedState
	var path string
	if x.c.Has("CompatibilityReport") {
		rep, ok := x.c.Args["CompatibilityReport"].(*ps.Object).Native.(*compatReport)
		if !ok || rep.host != x.h {
			return x.fail(hvError("import_path_not_found", "<compatibility report of another host>"))
		}
		path, saved = rep.path, rep.planned.Saved
	} else {
		path = x.c.String("Path")
	}
	cfg, d, e := x.configAt(path)
	if e != nil {
		return x.fail(e)
	}
	if !x.c.Has("CompatibilityReport") {
		saved = cfg.Saved
	}
	if _, exists := x.h.regs[strings.ToLower(cfg.ID)]; exists {
		return x.fail(hvError("vm_exists", cfg.ID))
	}
	if saved == StaleSavedState {
		return x.fail(hvError("import_config_errors"))
	}
	cfg.Saved = saved
	reg := &Registration{ID: cfg.ID, Path: cfg.Path}
	if d != nil {
		reg.Disk = d.Name
	}
	x.h.regs[strings.ToLower(cfg.ID)] = reg
	v, _ := x.w.view(x.h, reg)
	x.c.Write(x.w.vmObject(x.h, v))
	return nil
}

// configAt finds the configuration file at path for Import-VM and
// Compare-VM: not found, or not accessible while its disk is elsewhere or
// still settling.
func (x *exec) configAt(path string) (*VMConfig, *Disk, *ps.ErrorRecord) {
	cfg, d, ok := x.w.resolvePath(x.h, path)
	if !ok {
		if x.w.pathOnForeignDisk(x.h, path) {
			return nil, nil, notAccessible(vmNameFromPath(path), false)
		}
		return nil, nil, hvError("import_path_not_found", path)
	}
	if x.w.diskSettling(d) {
		return nil, nil, notAccessible(cfg.Name, false)
	}
	return cfg, d, nil
}

func vmNameFromPath(p string) string {
	if i := strings.LastIndexByte(p, '\\'); i >= 0 {
		p = p[i+1:]
	}
	return strings.TrimSuffix(strings.TrimSuffix(p, ".vmcx"), ".VMCX")
}

func (x *exec) compareVM() error {
	path := x.c.String("Path")
	if x.c.Has("CompatibilityReport") {
		rep, ok := x.c.Args["CompatibilityReport"].(*ps.Object).Native.(*compatReport)
		if !ok || rep.host != x.h {
			return x.fail(hvError("import_path_not_found", "<compatibility report of another host>"))
		}
		// Re-checking a report keeps the fixes already applied to it.
		x.c.Write(reportObject(x.h, rep))
		return nil
	}
	cfg, _, e := x.configAt(path)
	if e != nil {
		return x.fail(e)
	}
	rep := &compatReport{host: x.h, path: cfg.Path, planned: cfg.clone()}
	x.c.Write(reportObject(x.h, rep))
	return nil
}

func (x *exec) removeSavedState() error {
	if x.c.Has("VM") {
		var regular []ps.Value
		for _, o := range x.c.Objects("VM") {
			obj := o.(*ps.Object)
			if p, ok := obj.Native.(*plannedVM); ok {
				if p.report.planned.Saved == NoSavedState {
					if err := x.fail(hvError("not_saved", p.report.planned.Name)); err != nil {
						return err
					}
					continue
				}
				p.report.planned.Saved = NoSavedState
				continue
			}
			regular = append(regular, o)
		}
		if len(regular) == 0 {
			return nil
		}
		x.c.Args["VM"] = regular
	}
	return x.each(func(t target) *ps.ErrorRecord {
		cfg, e := x.live(t, false)
		if e != nil {
			return e
		}
		if t.reg.running {
			return hvError("invalid_state")
		}
		if cfg.Saved == NoSavedState {
			return hvError("not_saved", cfg.Name)
		}
		cfg.Saved = NoSavedState
		x.passthru(t)
		return nil
	})
}

// ---- replication ----

func (x *exec) replicationTargets(all bool) ([]target, error) {
	if !x.c.Has("VMName") && !x.c.Has("VM") {
		var out []target
		for _, t := range x.visible() {
			if t.v.cfg.Rep != nil || all {
				out = append(out, t)
			}
		}
		return out, nil
	}
	ts, err := x.targets()
	if err != nil {
		return nil, err
	}
	var out []target
	for _, t := range ts {
		if t.v.cfg.Rep == nil {
			if err := x.fail(hvError("replication_not_enabled", t.v.cfg.Name)); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

func (x *exec) matchesFilters(r *Replication) bool {
	c := x.c
	if c.Has("ReplicaServerName") && !sameHost(c.String("ReplicaServerName"), r.ReplicaServer) {
		return false
	}
	if c.Has("PrimaryServerName") && !sameHost(c.String("PrimaryServerName"), r.PrimaryServer) {
		return false
	}
	if c.Has("ReplicationState") && c.Enum("ReplicationState").Value != int64(r.State) {
		return false
	}
	if c.Has("ReplicationHealth") && c.Enum("ReplicationHealth").Value != int64(r.Health) {
		return false
	}
	if c.Has("ReplicationMode") && c.Enum("ReplicationMode").Value != int64(r.Mode) {
		return false
	}
	return true
}

func sameHost(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if a == b {
		return true
	}
	return firstLabel(a) == firstLabel(b) && (!strings.Contains(a, ".") || !strings.Contains(b, "."))
}

func (x *exec) getReplication() error {
	ts, err := x.replicationTargets(false)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if x.matchesFilters(t.v.cfg.Rep) {
			x.c.Write(x.w.replicationObject(x.h, t.v.cfg))
		}
	}
	return nil
}

func (x *exec) measureReplication() error {
	ts, err := x.replicationTargets(false)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if x.matchesFilters(t.v.cfg.Rep) {
			x.c.Write(x.w.replicationHealthObject(x.h, t.v.cfg))
		}
	}
	return nil
}

var validFrequencies = map[int64]bool{30: true, 300: true, 900: true}

// settings validates the replication settings of Enable-/Set-VMReplication.
func (x *exec) settings(r *Replication) *ps.ErrorRecord {
	c := x.c
	if c.Has("ReplicationFrequencySec") {
		f := c.Int("ReplicationFrequencySec")
		if !validFrequencies[f] {
			return hvError("invalid_frequency", f)
		}
		r.FrequencySec = int(f)
	}
	if c.Has("ReplicaServerPort") {
		p := c.Int("ReplicaServerPort")
		if p < 1 || p > 65535 {
			return hvError("not_supported", fmt.Sprintf("The port %d is not valid.", p))
		}
		r.Port = int(p)
	}
	if c.Has("AuthenticationType") {
		r.Auth = c.Enum("AuthenticationType").Name
	}
	if c.Has("CertificateThumbprint") {
		r.Thumbprint = c.String("CertificateThumbprint")
	}
	if c.Has("CompressionEnabled") {
		r.Compression = c.Bool("CompressionEnabled")
	}
	if c.Has("RecoveryHistory") {
		r.RecoveryHistory = int(c.Int("RecoveryHistory"))
	}
	if c.Has("AllowedPrimaryServer") {
		r.AllowedPrimaryServer = c.String("AllowedPrimaryServer")
	}
	switch {
	case strings.EqualFold(r.Auth, "Certificate") && r.Thumbprint == "":
		return hvError("thumbprint_required")
	case strings.EqualFold(r.Auth, "Kerberos") && r.Thumbprint != "":
		return hvError("thumbprint_not_allowed")
	}
	return nil
}

var replicaSettingNames = []string{"ReplicaServerName", "ReplicaServerPort", "AuthenticationType", "CertificateThumbprint", "CompressionEnabled", "ReplicationFrequencySec", "RecoveryHistory", "BypassProxyServer"}

func (x *exec) ambiguousSet() error {
	r := ps.NewError("System.Management.Automation.ParameterBindingException", "Parameter set cannot be resolved using the specified named parameters.", "AmbiguousParameterSet", "InvalidArgument", nil)
	return x.c.Fail(r)
}

// hasReplicaSetting reports whether the call sets anything of a primary
// half, which -AsReplica cannot take.
func (x *exec) hasReplicaSetting() bool {
	return slices.ContainsFunc(replicaSettingNames, x.c.Has)
}

// replicaHalf is the relationship -AsReplica makes: a Replica waiting for
// its initial replication from the allowed primary server.
func (x *exec) replicaHalf() *Replication {
	return &Replication{Mode: Replica, State: WaitingForInitialReplication, Health: Normal, FrequencySec: 300,
		AllowedPrimaryServer: cmp.Or(x.c.String("AllowedPrimaryServer"), "*")}
}

func (x *exec) enableReplication() error {
	c := x.c
	if c.Bool("AsReplica") {
		if x.hasReplicaSetting() {
			return x.ambiguousSet()
		}
		return x.each(func(t target) *ps.ErrorRecord {
			cfg, e := x.live(t, false)
			if e != nil {
				return e
			}
			if cfg.Rep != nil {
				return hvError("replication_already_enabled", cfg.Name)
			}
			if !x.h.repServer.Enabled {
				return hvError("not_replica_server", x.h.FQDN)
			}
			cfg.Rep = x.replicaHalf()
			x.passthruReplication(cfg)
			return nil
		})
	}
	for _, n := range []string{"ReplicaServerName", "ReplicaServerPort", "AuthenticationType"} {
		if !c.Has(n) {
			r := ps.NewError("System.Management.Automation.ParameterBindingException",
				fmt.Sprintf("Cannot process command because of one or more missing mandatory parameters: %s.", n), "MissingMandatoryParameter", "InvalidArgument", nil)
			return c.Fail(r)
		}
	}
	if isIPLiteral(c.String("ReplicaServerName")) {
		return x.fail(hvError("invalid_replica_name", c.String("ReplicaServerName")))
	}
	return x.each(func(t target) *ps.ErrorRecord {
		cfg, e := x.live(t, false)
		if e != nil {
			return e
		}
		if cfg.Rep != nil {
			return hvError("replication_already_enabled", cfg.Name)
		}
		r := &Replication{Mode: Primary, State: ReadyForInitialReplication, Health: Normal, FrequencySec: 300, PrimaryServer: x.h.Identity, RecoveryHistory: 0}
		if e := x.settings(r); e != nil {
			return e
		}
		if e := x.linkReplica(cfg, r, c.String("ReplicaServerName")); e != nil {
			return e
		}
		cfg.Rep = r
		x.passthruReplication(cfg)
		return nil
	})
}

// replicaServer resolves server, the Replica server name as given, for
// the primary half r on this host, records the name as given in r (Hyper-V
// keeps it and resolves it again for every cycle), and checks the host is
// up and takes replication from here with r's authentication and port.
func (x *exec) replicaServer(server string, r *Replication) (*Host, *ps.ErrorRecord) {
	rh := x.w.hostByName(server)
	if rh == nil {
		return nil, hvError("replica_unresolved", server)
	}
	r.ReplicaServer = server
	if !rh.up {
		return nil, hvError("replica_unreachable", server, r.Port)
	}
	if !rh.accepts(x.h, r.Auth, r.Port) {
		return nil, hvError("replica_not_accepting", server, r.Auth, r.Port)
	}
	return rh, nil
}

// linkReplica connects a primary half to the Replica server: the VM there
// must be a Replica waiting for this primary, or absent (then Hyper-V
// creates it in the server's default storage location).
func (x *exec) linkReplica(cfg *VMConfig, r *Replication, server string) *ps.ErrorRecord {
	r.ReplicaServer = server
	rh, e := x.replicaServer(server, r)
	if e != nil {
		return e
	}
	reg := rh.regs[strings.ToLower(cfg.ID)]
	if reg == nil {
		path := rh.repServer.DefaultStorage + `\Hyper-V Replica\Virtual Machines\` + cfg.ID + ".vmcx"
		rcfg := &VMConfig{ID: cfg.ID, Name: cfg.Name, Path: path, Generation: cfg.Generation, MemoryMB: cfg.MemoryMB,
			Rep: &Replication{Mode: Replica, State: WaitingForInitialReplication, Health: Normal, PrimaryServer: x.h.Identity, FrequencySec: r.FrequencySec, AllowedPrimaryServer: "*"}}
		rh.local[strings.ToLower(path)] = rcfg
		rh.regs[strings.ToLower(cfg.ID)] = &Registration{ID: cfg.ID, Path: path}
		return nil
	}
	if reg.view != viewLive || x.w.settling(reg) {
		return hvError("replica_unreachable", server, r.Port)
	}
	rcfg := x.w.config(rh, reg)
	if rcfg == nil || rcfg.Rep == nil || rcfg.Rep.Mode != Replica || rcfg.Rep.State != WaitingForInitialReplication ||
		(rcfg.Rep.PrimaryServer != "" && !x.h.hasName(rcfg.Rep.PrimaryServer)) ||
		!allowedPrimary(rcfg.Rep.AllowedPrimaryServer, x.h) {
		return hvError("replica_vm_conflict", rh.FQDN, cfg.Name, cfg.ID)
	}
	rcfg.Rep.PrimaryServer = x.h.Identity
	rcfg.Rep.FrequencySec = r.FrequencySec
	return nil
}

func allowedPrimary(allowed string, h *Host) bool {
	return allowed == "" || allowed == "*" || h.hasName(allowed)
}

func (x *exec) startInitialReplication() error {
	if x.c.Has("DestinationPath") || x.c.Has("InitialReplicationStartTime") {
		return x.c.Fail(hvError("not_supported", "Start-VMInitialReplication -DestinationPath and -InitialReplicationStartTime are not supported by the Hyper-V emulator."))
	}
	return x.eachReplicated(func(t target, cfg *VMConfig, r *Replication) *ps.ErrorRecord {
		if r.Mode != Primary || r.State != ReadyForInitialReplication {
			return hvError("invalid_replication_state", cfg.Name, r.State)
		}
		if _, why := x.w.replicaFor(x.h, cfg); why != "" {
			return connectError(why, r)
		}
		r.State, r.Health, r.phaseStart = InitialReplicationInProgress, Normal, x.w.now()
		r.phaseDur = x.w.cfg.Timing.InitialReplicationNetwork
		if x.c.Bool("UseBackup") {
			r.phaseDur = x.w.cfg.Timing.InitialReplication
		}
		x.passthruReplication(cfg)
		return nil
	})
}

func (x *exec) removeReplication() error {
	return x.each(func(t target) *ps.ErrorRecord {
		cfg, e := x.live(t, true)
		if e != nil {
			return e
		}
		if cfg.Rep == nil {
			return hvError("replication_not_enabled", cfg.Name)
		}
		x.h.removeTestVM(cfg.Rep)
		cfg.Rep = nil
		x.passthru(t)
		return nil
	})
}

func (x *exec) setReplication() error {
	c := x.c
	if c.Bool("Reverse") && c.Bool("AsReplica") {
		return x.ambiguousSet()
	}
	if c.Bool("AsReplica") {
		if x.hasReplicaSetting() {
			return x.ambiguousSet()
		}
	}
	return x.each(func(t target) *ps.ErrorRecord {
		cfg, e := x.live(t, false)
		if e != nil {
			return e
		}
		switch {
		case c.Bool("AsReplica"):
			if t.reg.running {
				return hvError("vm_must_be_off", cfg.Name)
			}
			if cfg.Rep != nil && cfg.Rep.Mode == Replica {
				return hvError("invalid_replication_state", cfg.Name, cfg.Rep.State)
			}
			cfg.Rep = x.replicaHalf()
		case c.Bool("Reverse"):
			if e := x.reverse(t, cfg); e != nil {
				return e
			}
		default:
			r := cfg.Rep
			if r == nil {
				return hvError("replication_not_enabled", cfg.Name)
			}
			if r.Mode != Primary {
				return hvError("replica_cannot_modify", cfg.Name)
			}
			next := *r
			if e := x.settings(&next); e != nil {
				return e
			}
			if c.Has("ReplicaServerName") && !sameHost(c.String("ReplicaServerName"), r.ReplicaServer) {
				if isIPLiteral(c.String("ReplicaServerName")) {
					return hvError("invalid_replica_name", c.String("ReplicaServerName"))
				}
				if e := x.linkReplica(cfg, &next, c.String("ReplicaServerName")); e != nil {
					return e
				}
				next.State, next.LastReplication = ReadyForInitialReplication, time.Time{}
			}
			*r = next
		}
		x.passthruReplication(cfg)
		return nil
	})
}

// reverse implements Set-VMReplication -Reverse on a failed-over replica.
func (x *exec) reverse(t target, cfg *VMConfig) *ps.ErrorRecord {
	r := cfg.Rep
	if r == nil {
		return hvError("replication_not_enabled", cfg.Name)
	}
	if r.Mode != Replica || (r.State != FailedOverWaitingCompletion && r.State != FailedOver) {
		return hvError("invalid_replication_state", cfg.Name, r.State)
	}
	server := x.c.String("ReplicaServerName")
	if server == "" {
		server = r.PrimaryServer
	}
	next := &Replication{Mode: Primary, Health: Normal, PrimaryServer: x.h.Identity, FrequencySec: r.FrequencySec,
		Port: 80, Auth: "Kerberos", Compression: true}
	if e := x.settings(next); e != nil {
		return e
	}
	oh, e := x.replicaServer(server, next)
	if e != nil {
		return e
	}
	oreg := oh.regs[strings.ToLower(cfg.ID)]
	var ocfg *VMConfig
	if oreg != nil && oreg.view == viewLive && !x.w.settling(oreg) {
		ocfg = x.w.config(oh, oreg)
	}
	switch {
	case ocfg != nil && ocfg.Rep != nil && ocfg.Rep.Mode == Primary && ocfg.Rep.State == PreparedForFailover:
		// Planned failover: the old primary becomes the replica and the
		// changes it sent before failing over are already here.
		now := x.w.now()
		next.State, next.LastReplication = Replicating, now
		ocfg.Rep = &Replication{Mode: Replica, State: Replicating, Health: Normal, PrimaryServer: x.h.Identity, FrequencySec: next.FrequencySec, AllowedPrimaryServer: "*", LastReplication: now}
	case ocfg != nil && ocfg.Rep != nil && ocfg.Rep.Mode == Replica && ocfg.Rep.State == WaitingForInitialReplication:
		// Unplanned failover: the old primary was set -AsReplica.
		next.State = ReadyForInitialReplication
		ocfg.Rep.PrimaryServer = x.h.Identity
	default:
		return hvError("replica_vm_conflict", oh.FQDN, cfg.Name, cfg.ID)
	}
	cfg.Rep = next
	return nil
}

func (x *exec) suspendReplication() error {
	return x.eachReplicated(func(t target, cfg *VMConfig, r *Replication) *ps.ErrorRecord {
		switch r.State {
		case Replicating, InitialReplicationInProgress, WaitingForInitialReplication:
			r.State = Suspended
		case Resynchronizing:
			r.State = ResynchronizeSuspended
		default:
			return hvError("invalid_replication_state", cfg.Name, r.State)
		}
		x.passthruReplication(cfg)
		return nil
	})
}

func (x *exec) resumeReplication() error {
	return x.eachReplicated(func(t target, cfg *VMConfig, r *Replication) *ps.ErrorRecord {
		switch r.State {
		case Suspended, Error, WaitingForStartResynchronize, ResynchronizeSuspended:
		default:
			return hvError("invalid_replication_state", cfg.Name, r.State)
		}
		resync := x.c.Bool("Resynchronize") || r.State == WaitingForStartResynchronize || r.State == ResynchronizeSuspended
		r.failSince, r.Health = time.Time{}, Normal
		if resync && r.Mode == Primary {
			r.State, r.phaseStart, r.phaseDur = Resynchronizing, x.w.now(), x.w.cfg.Timing.Resync
		} else if r.Mode == Primary && r.LastReplication.IsZero() {
			// Suspended before the initial copy finished.
			r.State, r.phaseStart, r.phaseDur = InitialReplicationInProgress, x.w.now(), x.w.cfg.Timing.InitialReplication
		} else if r.Mode == Replica && r.LastReplication.IsZero() {
			r.State = WaitingForInitialReplication
		} else {
			r.State = Replicating
		}
		x.passthruReplication(cfg)
		return nil
	})
}

func (x *exec) startFailover() error {
	return x.eachReplicated(func(t target, cfg *VMConfig, r *Replication) *ps.ErrorRecord {
		if r.Mode == Primary {
			if !x.c.Bool("Prepare") || x.c.Bool("AsTest") {
				return hvError("prepare_required", cfg.Name)
			}
			if t.reg.running {
				return hvError("vm_must_be_off", cfg.Name)
			}
			if r.State != Replicating {
				return hvError("invalid_replication_state", cfg.Name, r.State)
			}
			// The final changes are sent to the replica as part of prepare.
			if rcfg, why := x.w.replicaFor(x.h, cfg); why == "" {
				now := x.w.now()
				r.LastReplication, rcfg.Rep.LastReplication = now, now
			} else {
				return connectError(why, r)
			}
			r.State = PreparedForFailover
			x.passthru(t)
			return nil
		}
		if x.c.Bool("Prepare") {
			return hvError("invalid_replication_state", cfg.Name, r.State)
		}
		if t.reg.running {
			return hvError("vm_must_be_off", cfg.Name)
		}
		if x.c.Bool("AsTest") {
			if r.State != Replicating && r.State != Suspended || r.TestVMID != "" {
				return hvError("invalid_replication_state", cfg.Name, r.State)
			}
			id := testVMID(cfg.ID)
			path := x.h.repServer.DefaultStorage + `\Test\Virtual Machines\` + id + ".vmcx"
			x.h.local[strings.ToLower(path)] = &VMConfig{ID: id, Name: cfg.Name + " - Test", Path: path, Generation: cfg.Generation, MemoryMB: cfg.MemoryMB}
			x.h.regs[strings.ToLower(id)] = &Registration{ID: id, Path: path, testVM: true}
			r.TestVMID = id
			if reg := x.h.regs[strings.ToLower(id)]; reg != nil && x.c.Bool("Passthru") {
				v, _ := x.w.view(x.h, reg)
				x.c.Write(x.w.vmObject(x.h, v))
			}
			return nil
		}
		switch r.State {
		case Replicating, Resynchronizing, Suspended:
			if r.LastReplication.IsZero() {
				return hvError("invalid_replication_state", cfg.Name, r.State)
			}
		default:
			return hvError("invalid_replication_state", cfg.Name, r.State)
		}
		r.State = FailedOverWaitingCompletion
		x.passthru(t)
		return nil
	})
}

// testVMID derives the test VM's id from the replica's so runs are repeatable.
func testVMID(id string) string {
	b := []byte(strings.ToUpper(id))
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '-' {
			continue
		}
		if b[i] == 'F' {
			b[i] = '0'
			continue
		}
		if b[i] == '9' {
			b[i] = 'A'
		} else {
			b[i]++
		}
		break
	}
	return string(b)
}

func (x *exec) completeFailover() error {
	return x.eachReplicated(func(t target, cfg *VMConfig, r *Replication) *ps.ErrorRecord {
		if r.Mode != Replica || r.State != FailedOverWaitingCompletion {
			return hvError("invalid_replication_state", cfg.Name, r.State)
		}
		r.State, r.Health = FailedOver, Warning
		x.passthru(t)
		return nil
	})
}

func (x *exec) stopFailover() error {
	return x.eachReplicated(func(t target, cfg *VMConfig, r *Replication) *ps.ErrorRecord {
		switch {
		case r.Mode == Primary && r.State == PreparedForFailover:
			r.State = Replicating
		case r.Mode == Replica && r.State == FailedOverWaitingCompletion:
			t.reg.running = false
			r.State = Replicating
		case r.Mode == Replica && r.TestVMID != "":
			x.h.removeTestVM(r)
		default:
			return hvError("invalid_replication_state", cfg.Name, r.State)
		}
		x.passthru(t)
		return nil
	})
}

func (x *exec) getVMHost() error {
	x.c.Write(vmHostObject(x.h))
	return nil
}

func (x *exec) getReplicationServer() error {
	x.c.Write(replicationServerObject(x.h))
	return nil
}

func (x *exec) setReplicationServer() error {
	c := x.c
	rs := x.h.repServer
	if c.Has("ReplicationEnabled") {
		rs.Enabled = c.Bool("ReplicationEnabled")
	}
	if c.Has("AllowedAuthenticationType") {
		rs.AllowedAuth = c.Enum("AllowedAuthenticationType").Name
	}
	if c.Has("ReplicationAllowedFromAnyServer") {
		rs.AllowAnyServer = c.Bool("ReplicationAllowedFromAnyServer")
	}
	if c.Has("CertificateThumbprint") {
		rs.Thumbprint = c.String("CertificateThumbprint")
	}
	if c.Has("DefaultStorageLocation") {
		rs.DefaultStorage = c.String("DefaultStorageLocation")
	}
	if c.Has("KerberosAuthenticationPort") {
		rs.KerberosPort = int(c.Int("KerberosAuthenticationPort"))
	}
	if c.Has("CertificateAuthenticationPort") {
		rs.CertificatePort = int(c.Int("CertificateAuthenticationPort"))
	}
	if rs.Enabled && strings.Contains(rs.AllowedAuth, "Certificate") && rs.Thumbprint == "" {
		return x.fail(hvError("thumbprint_required"))
	}
	if rs.Enabled && rs.AllowAnyServer && rs.DefaultStorage == "" {
		return x.fail(hvError("not_supported", "The default storage location must be specified when replication is allowed from any server."))
	}
	x.h.repServer = rs
	if c.Bool("Passthru") {
		x.c.Write(replicationServerObject(x.h))
	}
	return nil
}

var errHostDown = errors.New("host is down")

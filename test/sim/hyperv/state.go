package hyperv

import (
	"sort"
	"strings"
	"time"
)

// State is the emulator's view of the estate (GET /sim/state).
type State struct {
	Hosts []HostState `json:"hosts"`
	Disks []DiskState `json:"disks"`
	// DualRuns lists every moment two hosts ran copies of the same VM.
	DualRuns []DualRun `json:"dual_runs"`
	// LostRunning lists every VM whose disk went offline under it while it
	// ran on a live host.
	LostRunning []LostRun `json:"lost_running"`
}

// HostState is one host and the VMs registered on it.
type HostState struct {
	Name string `json:"name"`
	FQDN string `json:"fqdn"`
	// Identity is the name Hyper-V reports for the host as a primary
	// server (computer name + domain, exact case); DNSNames its aliases.
	Identity          string            `json:"identity"`
	DNSNames          []string          `json:"dns_names,omitempty"`
	Up                bool              `json:"up"`
	ReplicationServer ReplicationServer `json:"replication_server"`
	VMs               []VMEntry         `json:"vms"`
}

// VMEntry is a VM registered on a host.
type VMEntry struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	// State is what Get-VM shows ("" when the host does not list the VM).
	State   string `json:"state"`
	Running bool   `json:"running"`
	// Storage: live (configuration readable here), settling (disk just
	// came online), lost (storage went away; last state shown, critical),
	// unloaded (host booted without the storage; not listed).
	Storage    string `json:"storage"`
	Disk       string `json:"disk,omitempty"`
	ConfigPath string `json:"config_path"`
	SavedState string `json:"saved_state"`
	TestVM     bool   `json:"test_vm,omitempty"`
	// LastStop is how Stop-VM last stopped the VM on this host: shutdown
	// (through the guest), force (through the guest, forced), turnoff
	// (power cut) or save; "" when it never did. Hyper-V keeps this only
	// in its event log; the emulator shows it so tests can tell.
	LastStop    string   `json:"last_stop,omitempty"`
	Replication *RepView `json:"replication,omitempty"`
}

// RepView is one half of a replication relationship.
type RepView struct {
	Mode            string     `json:"mode"`
	State           string     `json:"state"`
	Health          string     `json:"health"`
	PrimaryServer   string     `json:"primary_server"`
	ReplicaServer   string     `json:"replica_server"`
	Port            int        `json:"port"`
	Auth            string     `json:"auth"`
	FrequencySec    int        `json:"frequency_sec"`
	LastReplication *time.Time `json:"last_replication,omitempty"`
}

// DiskState is a shared disk, its owner and the configurations on it.
type DiskState struct {
	Name   string      `json:"name"`
	Letter string      `json:"letter"`
	Owner  string      `json:"owner"`
	Files  []FileState `json:"files"`
}

// FileState is a VM configuration file on a disk.
type FileState struct {
	Path        string   `json:"path"`
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	SavedState  string   `json:"saved_state"`
	Replication *RepView `json:"replication,omitempty"`
}

func repView(r *Replication) *RepView {
	if r == nil {
		return nil
	}
	v := &RepView{Mode: r.Mode.String(), State: r.State.String(), Health: r.Health.String(),
		PrimaryServer: r.PrimaryServer, ReplicaServer: r.ReplicaServer, Port: r.Port, Auth: r.Auth, FrequencySec: r.FrequencySec}
	if !r.LastReplication.IsZero() {
		t := r.LastReplication
		v.LastReplication = &t
	}
	return v
}

// State returns a consistent snapshot.
func (w *World) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tick()
	st := State{DualRuns: append([]DualRun{}, w.dualRuns...), LostRunning: append([]LostRun{}, w.lostRunning...)}
	for _, h := range w.sortedHosts() {
		hs := HostState{Name: h.Name, FQDN: h.FQDN, Identity: h.Identity, DNSNames: append([]string(nil), h.DNSNames...), Up: h.up, ReplicationServer: h.repServer, VMs: []VMEntry{}}
		for _, reg := range sortedRegs(h) {
			e := VMEntry{ID: reg.ID, Running: reg.running, Disk: reg.Disk, ConfigPath: reg.Path, TestVM: reg.testVM, LastStop: reg.lastStop}
			switch {
			case reg.view == viewLost:
				e.Storage = "lost"
			case reg.view == viewUnloaded:
				e.Storage = "unloaded"
			case w.settling(reg):
				e.Storage = "settling"
			default:
				e.Storage = "live"
			}
			if v, ok := w.view(h, reg); ok && h.up {
				e.Name, e.State = v.cfg.Name, v.state.String()
				e.SavedState = v.cfg.Saved.String()
				e.Replication = repView(v.cfg.Rep)
			} else if cfg := w.fileFor(reg); cfg != nil {
				e.Name, e.SavedState = cfg.Name, cfg.Saved.String()
			}
			hs.VMs = append(hs.VMs, e)
		}
		st.Hosts = append(st.Hosts, hs)
	}
	names := make([]string, 0, len(w.disks))
	for k := range w.disks {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		d := w.disks[k]
		ds := DiskState{Name: d.Name, Letter: d.Letter, Owner: d.owner, Files: []FileState{}}
		paths := make([]string, 0, len(d.files))
		for p := range d.files {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			f := d.files[p]
			ds.Files = append(ds.Files, FileState{Path: f.Path, ID: f.ID, Name: f.Name, SavedState: f.Saved.String(), Replication: repView(f.Rep)})
		}
		st.Disks = append(st.Disks, ds)
	}
	return st
}

// fileFor returns the configuration file a registration points at,
// wherever its disk is.
func (w *World) fileFor(reg *Registration) *VMConfig {
	if reg.Disk == "" {
		return nil
	}
	d := w.disks[strings.ToLower(reg.Disk)]
	if d == nil {
		return nil
	}
	return d.files[strings.ToLower(reg.Path)]
}

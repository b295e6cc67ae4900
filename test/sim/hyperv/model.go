package hyperv

import (
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv/ps"
)

// The model follows STATES.md. Its central choice: a VM's configuration,
// including its half of a replication relationship, lives in a file on a
// shared disk, as on real Hyper-V. A host's registration is a pointer to
// that file. A host can only read or change the file while the disk is
// online on it; otherwise the registration shows the last state it saw, in
// a critical variant, and refuses changes ("configuration was not
// accessible").

// Timing sets how long the model's asynchronous transitions take. The lab
// uses milliseconds where real Hyper-V takes minutes.
type Timing struct {
	InitialReplication        time.Duration // Start-VMInitialReplication -UseBackup
	InitialReplicationNetwork time.Duration // Start-VMInitialReplication over the network
	Resync                    time.Duration // Resume-VMReplication -Resynchronize
	Cycle                     time.Duration // one replication cycle (FrequencySec, scaled down)
	ErrorAfter                time.Duration // replica unreachable this long: primary goes to Error
	ResyncRequiredAfter       time.Duration // in Error this long: WaitingForStartResynchronize (0 = never)
	Shutdown                  time.Duration // Stop-VM guest shutdown
	DiskSettle                time.Duration // after a disk comes online its VMs are briefly not accessible
}

// DefaultTiming is fast enough for tests and the demo.
func DefaultTiming() Timing {
	return Timing{
		InitialReplication:        300 * time.Millisecond,
		InitialReplicationNetwork: 1500 * time.Millisecond,
		Resync:                    400 * time.Millisecond,
		Cycle:                     200 * time.Millisecond,
		ErrorAfter:                800 * time.Millisecond,
		Shutdown:                  50 * time.Millisecond,
		DiskSettle:                150 * time.Millisecond,
	}
}

// Config configures a World.
type Config struct {
	Domain string // hosts report FQDNs name.domain
	Timing Timing
	Clock  func() time.Time // defaults to time.Now
	Logger *slog.Logger
}

// World is the whole emulated Hyper-V estate: hosts, shared disks and the
// VM configurations on them. All methods are safe for concurrent use; each
// cmdlet runs atomically against the world.
type World struct {
	mu      sync.Mutex
	cfg     Config
	hosts   map[string]*Host
	order   []string
	disks   map[string]*Disk
	faults  []*Fault
	latency map[string]time.Duration
	log     *commandLog

	progressNoise bool
	dualRuns      []DualRun
	lostRunning   []LostRun
}

// LostRun records a VM whose disk went offline while it ran on a live host
// (a move or a stop of its group that did not shut it down first): the
// guest dies with unwritten data. A host crash is not one: nothing runs
// there any more to lose it.
type LostRun struct {
	At   time.Time `json:"at"`
	Host string    `json:"host"`
	VMID string    `json:"vm_id"`
	Disk string    `json:"disk"`
}

// DualRun records a moment two hosts ran copies of the same VM: what the
// VM's owner would call a split brain.
type DualRun struct {
	At    time.Time `json:"at"`
	VMID  string    `json:"vm_id"`
	Hosts []string  `json:"hosts"`
}

// NewWorld creates an empty world.
func NewWorld(cfg Config) *World {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timing == (Timing{}) {
		cfg.Timing = DefaultTiming()
	}
	return &World{
		cfg:     cfg,
		hosts:   map[string]*Host{},
		disks:   map[string]*Disk{},
		latency: map[string]time.Duration{},
		log:     newCommandLog(2000),
	}
}

func (w *World) now() time.Time { return w.cfg.Clock() }

// SetTiming replaces the timing (tests).
func (w *World) SetTiming(t Timing) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cfg.Timing = t
}

// ReplicationServer is a host's Hyper-V Replica server configuration.
type ReplicationServer struct {
	Enabled          bool     `json:"enabled"`
	AllowedAuth      string   `json:"allowed_auth"` // Kerberos | Certificate | CertificateAndKerberos
	AllowAnyServer   bool     `json:"allow_any_server"`
	KerberosPort     int      `json:"kerberos_port"`
	CertificatePort  int      `json:"certificate_port"`
	Thumbprint       string   `json:"thumbprint,omitempty"`
	DefaultStorage   string   `json:"default_storage"`
	AuthorizedServer []string `json:"authorized_servers,omitempty"` // when !AllowAnyServer
}

// Host is one emulated Hyper-V host.
type Host struct {
	Name string // short name, as ECX knows it
	FQDN string // lower-case name.domain, one of the names that resolve to it
	// ComputerName is the Windows computer name ($env:COMPUTERNAME),
	// upper case by default; Identity is ComputerName.domain in their
	// configured case, the name Hyper-V reports for this host as a
	// primary server (Get-VMHost's FullyQualifiedDomainName).
	ComputerName string
	Identity     string
	// DNSNames are further names that resolve to the host.
	DNSNames  []string
	up        bool
	repServer ReplicationServer
	regs      map[string]*Registration // by lower-case VM id
	local     map[string]*VMConfig     // host-local configuration files by lower-case path
	world     *World
	cmds      *ps.CommandTable // the cmdlets as this host runs them; fixed at AddHost
}

// Disk is a shared disk: online on at most one host at a time.
type Disk struct {
	Name        string
	Letter      string // drive letter the VMs' paths use, e.g. "T"
	owner       string // lower-case host name, "" when offline
	onlineSince time.Time
	files       map[string]*VMConfig // by lower-case path
}

// SavedState is the saved-state part of a VM configuration.
type SavedState int

const (
	NoSavedState SavedState = iota
	ValidSavedState
	// StaleSavedState: the configuration references .vsv/.bin files that
	// no longer exist (host crash or storage lost while running): starting
	// fails until Compare-VM/Remove-VMSavedState repairs it (40004/40006).
	StaleSavedState
)

func (s SavedState) String() string {
	switch s {
	case ValidSavedState:
		return "present"
	case StaleSavedState:
		return "stale"
	}
	return "none"
}

// VMConfig is a VM configuration file (.vmcx) with its replication half.
type VMConfig struct {
	ID         string // GUID, upper case
	Name       string
	Path       string // full path of the .vmcx
	Disk       string // shared disk name; "" for host-local storage
	Generation int
	MemoryMB   int64
	Saved      SavedState
	Rep        *Replication // nil: replication not enabled
}

func (c *VMConfig) clone() *VMConfig {
	cp := *c
	if c.Rep != nil {
		r := *c.Rep
		cp.Rep = &r
	}
	return &cp
}

// Replication is one host's half of a Hyper-V Replica relationship.
type Replication struct {
	Mode                 Mode
	State                RepState
	Health               Health
	PrimaryServer        string // FQDN
	ReplicaServer        string // FQDN
	Port                 int
	Auth                 string // Kerberos | Certificate
	Thumbprint           string
	Compression          bool
	FrequencySec         int
	RecoveryHistory      int
	AllowedPrimaryServer string
	LastReplication      time.Time
	TestVMID             string

	phaseStart time.Time
	phaseDur   time.Duration
	failSince  time.Time
	errorSince time.Time
	successful int
	missed     int
	errors     int
}

// regView says whether a host can see a registered VM's configuration.
type regView int

const (
	viewLive     regView = iota // storage online here
	viewLost                    // storage went away while the host was up: last state shown, critical
	viewUnloaded                // host booted while storage was elsewhere: not listed
)

// Registration is a VM registered on a host.
type Registration struct {
	ID        string
	Disk      string // "" = host-local
	Path      string
	running   bool
	startedAt time.Time
	view      regView
	snap      *VMConfig // last configuration seen (viewLost)
	snapState VMState   // state shown while lost
	testVM    bool      // a "<name> - Test" VM created by Start-VMFailover -AsTest
	lastStop  string    // how Stop-VM last stopped it (VMEntry.LastStop)
}

// ---- construction (used by the lab) ----

// AddHost adds a host that is up and, unless repServer says otherwise, a
// Replica server accepting Kerberos on port 80 from any server.
func (w *World) AddHost(name string, rs *ReplicationServer) (*Host, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := strings.ToLower(name)
	if name == "" || strings.ContainsAny(name, ". \\/") {
		return nil, fmt.Errorf("host name %q: want a short NetBIOS-style name", name)
	}
	if _, dup := w.hosts[key]; dup {
		return nil, fmt.Errorf("host %q defined twice", name)
	}
	h := &Host{
		Name:  name,
		FQDN:  strings.ToLower(name),
		up:    true,
		regs:  map[string]*Registration{},
		local: map[string]*VMConfig{},
		world: w,
		repServer: ReplicationServer{
			Enabled: true, AllowedAuth: "Kerberos", AllowAnyServer: true,
			KerberosPort: 80, CertificatePort: 443, DefaultStorage: `C:\ReplicaStorage`,
		},
	}
	if w.cfg.Domain != "" {
		h.FQDN = strings.ToLower(name) + "." + strings.ToLower(w.cfg.Domain)
	}
	h.setComputerName(strings.ToUpper(name))
	if rs != nil {
		h.repServer = *rs
	}
	h.cmds = h.commandTable()
	w.hosts[key] = h
	w.order = append(w.order, key)
	return h, nil
}

func (h *Host) setComputerName(cn string) {
	h.ComputerName, h.Identity = cn, cn
	if d := h.world.cfg.Domain; d != "" {
		h.Identity = cn + "." + d
	}
}

// hasName reports whether n resolves to this host: its ECX server name,
// FQDN, computer name, identity or a DNS alias, in any case.
func (h *Host) hasName(n string) bool {
	n = strings.TrimSuffix(strings.TrimSpace(n), ".")
	if n == "" {
		return false
	}
	for _, m := range append([]string{h.Name, h.FQDN, h.ComputerName, h.Identity}, h.DNSNames...) {
		if strings.EqualFold(n, m) {
			return true
		}
	}
	return false
}

var netbiosName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,14}$`)
var dnsName = regexp.MustCompile(`^(?i:[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.(?i:[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?))*$`)

// SetHostNames gives a host a computer name other than its ECX server
// name ("" keeps it) and DNS aliases (replacing the previous ones). No
// name may resolve to two hosts.
func (w *World) SetHostNames(host, computerName string, dnsNames []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.hostByName(host)
	if h == nil {
		return fmt.Errorf("host %q: no such host", host)
	}
	if computerName != "" && !netbiosName.MatchString(computerName) {
		return fmt.Errorf("host %s: computer name %q: want 1 to 15 letters, digits or '-'", host, computerName)
	}
	for _, n := range dnsNames {
		if !dnsName.MatchString(n) || len(n) > 253 || net.ParseIP(n) != nil {
			return fmt.Errorf("host %s: DNS name %q is not a host name", host, n)
		}
	}
	names := append([]string{computerName}, dnsNames...)
	if computerName != "" && w.cfg.Domain != "" {
		names = append(names, computerName+"."+w.cfg.Domain)
	}
	for _, o := range w.hosts {
		if o == h {
			continue
		}
		for _, n := range names {
			if n != "" && o.hasName(n) {
				return fmt.Errorf("host %s: name %q already resolves to host %s", host, n, o.Name)
			}
		}
	}
	if computerName != "" {
		h.setComputerName(computerName)
	}
	h.DNSNames = append([]string(nil), dnsNames...)
	return nil
}

// Host returns a host by any name that resolves to it.
func (w *World) Host(name string) (*Host, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.hostByName(name)
	return h, h != nil
}

func (w *World) hostByName(name string) *Host {
	n := strings.ToLower(strings.TrimSpace(name))
	if h, ok := w.hosts[n]; ok {
		return h
	}
	for _, k := range w.order {
		if h := w.hosts[k]; h.hasName(n) {
			return h
		}
	}
	return nil
}

// AddDisk adds a shared disk, offline.
func (w *World) AddDisk(name, letter string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := strings.ToLower(name)
	if _, dup := w.disks[key]; dup {
		return fmt.Errorf("disk %q defined twice", name)
	}
	if len(letter) != 1 || !isLetter(letter[0]) {
		return fmt.Errorf("disk %q: drive letter %q is not a single letter", name, letter)
	}
	w.disks[key] = &Disk{Name: name, Letter: strings.ToUpper(letter), files: map[string]*VMConfig{}}
	return nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// VMCopy describes a VM configuration to place on a disk at start.
type VMCopy struct {
	ID           string
	Name         string
	Disk         string
	ConfigPath   string
	RegisteredOn string // host that has it registered ("" = none)
	Running      bool
}

// AddVMCopy writes a VM configuration onto a disk and registers it.
func (w *World) AddVMCopy(c VMCopy) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	d, ok := w.disks[strings.ToLower(c.Disk)]
	if !ok {
		return fmt.Errorf("vm %s: disk %q is not defined", c.Name, c.Disk)
	}
	if !guidPattern(c.ID) {
		return fmt.Errorf("vm %s: id %q is not a GUID", c.Name, c.ID)
	}
	letter, _, ok := splitDrive(c.ConfigPath)
	if !ok || !strings.EqualFold(letter, d.Letter) {
		return fmt.Errorf("vm %s: config path %q is not on drive %s: of disk %s", c.Name, c.ConfigPath, d.Letter, d.Name)
	}
	key := strings.ToLower(c.ConfigPath)
	if _, dup := d.files[key]; dup {
		return fmt.Errorf("vm %s: config path %q used twice on disk %s", c.Name, c.ConfigPath, d.Name)
	}
	cfg := &VMConfig{ID: strings.ToUpper(c.ID), Name: c.Name, Path: c.ConfigPath, Disk: d.Name, Generation: 2, MemoryMB: 2048}
	d.files[key] = cfg
	if c.RegisteredOn != "" {
		h := w.hostByName(c.RegisteredOn)
		if h == nil {
			return fmt.Errorf("vm %s: registered_on %q is not a host", c.Name, c.RegisteredOn)
		}
		if _, dup := h.regs[strings.ToLower(cfg.ID)]; dup {
			return fmt.Errorf("vm %s: already registered on %s", c.Name, h.Name)
		}
		reg := &Registration{ID: cfg.ID, Disk: d.Name, Path: c.ConfigPath}
		if d.owner != strings.ToLower(h.Name) {
			reg.view = viewUnloaded
		}
		if c.Running {
			if reg.view != viewLive {
				return fmt.Errorf("vm %s: cannot run on %s: disk %s is not online there", c.Name, h.Name, d.Name)
			}
			reg.running, reg.startedAt = true, w.now()
		}
		h.regs[strings.ToLower(cfg.ID)] = reg
	}
	return nil
}

func guidPattern(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func splitDrive(p string) (letter, rest string, ok bool) {
	if len(p) >= 3 && isLetter(p[0]) && p[1] == ':' && p[2] == '\\' {
		return strings.ToUpper(p[:1]), p[3:], true
	}
	return "", "", false
}

// ---- storage events ----

// DiskOnline brings a disk online on a host (ECX started its group there).
func (w *World) DiskOnline(disk, host string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tick()
	d, h, err := w.diskAndHost(disk, host)
	if err != nil {
		return err
	}
	if d.owner != "" && d.owner != strings.ToLower(h.Name) {
		return fmt.Errorf("disk %s is online on %s; it must go offline before it can come online on %s", d.Name, d.owner, h.Name)
	}
	d.owner = strings.ToLower(h.Name)
	d.onlineSince = w.now()
	for _, reg := range h.regs {
		if strings.EqualFold(reg.Disk, d.Name) {
			// The host reads the configuration from the disk again; what
			// ran here before is gone (another host may have changed it).
			reg.view, reg.snap, reg.running = viewLive, nil, false
		}
	}
	w.cfg.Logger.Info("disk online", "disk", d.Name, "host", h.Name)
	return nil
}

// PlaceDisk makes a disk online on a host at lab start: unlike DiskOnline
// there is no settle window, as if the disk had been there for a while.
func (w *World) PlaceDisk(disk, host string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	d, h, err := w.diskAndHost(disk, host)
	if err != nil {
		return err
	}
	if d.owner != "" {
		return fmt.Errorf("disk %s is already online on %s", d.Name, d.owner)
	}
	d.owner, d.onlineSince = strings.ToLower(h.Name), time.Time{}
	for _, reg := range h.regs {
		if strings.EqualFold(reg.Disk, d.Name) {
			reg.view = viewLive
		}
	}
	return nil
}

// DiskOwner returns the host a disk is online on ("" when offline).
func (w *World) DiskOwner(disk string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d, ok := w.disks[strings.ToLower(disk)]
	if !ok {
		return "", false
	}
	return d.owner, true
}

// DiskOffline takes a disk offline from its host (ECX stopped or moved its
// group, or the host crashed). VMs still running on it lose their storage:
// they show a critical state there and their configuration on the disk
// keeps references to runtime state files that no longer exist.
func (w *World) DiskOffline(disk, host string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tick()
	d, h, err := w.diskAndHost(disk, host)
	if err != nil {
		return err
	}
	if d.owner != strings.ToLower(h.Name) {
		return fmt.Errorf("disk %s is not online on %s (owner %q)", d.Name, h.Name, d.owner)
	}
	d.owner = ""
	for _, reg := range h.regs {
		if !strings.EqualFold(reg.Disk, d.Name) {
			continue
		}
		cfg := d.files[strings.ToLower(reg.Path)]
		if cfg == nil {
			continue
		}
		if reg.running {
			cfg.Saved = StaleSavedState
			if h.up {
				w.lostRunning = append(w.lostRunning, LostRun{At: w.now(), Host: h.Name, VMID: reg.ID, Disk: d.Name})
			}
		}
		if h.up {
			reg.view = viewLost
			reg.snap = cfg.clone()
			reg.snapState = criticalState(reg.running, cfg.Saved)
			if reg.snap.Rep != nil {
				reg.snap.Rep.State, reg.snap.Rep.Health = Error, Critical
			}
		} else {
			reg.view = viewUnloaded
		}
		reg.running = false
	}
	w.cfg.Logger.Info("disk offline", "disk", d.Name, "host", h.Name)
	return nil
}

func criticalState(running bool, saved SavedState) VMState {
	switch {
	case running:
		return PausedCritical
	case saved == ValidSavedState:
		return SavedCritical
	}
	return OffCritical
}

func (w *World) diskAndHost(disk, host string) (*Disk, *Host, error) {
	d, ok := w.disks[strings.ToLower(disk)]
	if !ok {
		return nil, nil, fmt.Errorf("no disk %q", disk)
	}
	h := w.hostByName(host)
	if h == nil {
		return nil, nil, fmt.Errorf("no host %q", host)
	}
	return d, h, nil
}

// Crash takes a host down: its VMs stop without saving, their
// configurations keep references to saved-state files that are gone.
func (w *World) Crash(host string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tick()
	h := w.hostByName(host)
	if h == nil {
		return fmt.Errorf("no host %q", host)
	}
	if !h.up {
		return fmt.Errorf("host %s is already down", h.Name)
	}
	h.up = false
	for _, reg := range h.regs {
		cfg := w.config(h, reg)
		if reg.running && cfg != nil {
			cfg.Saved = StaleSavedState
		}
		reg.running = false
		if cfg != nil && cfg.Rep != nil {
			h.removeTestVM(cfg.Rep)
		}
	}
	w.cfg.Logger.Info("host crashed", "host", h.Name)
	return nil
}

// removeTestVM deletes the test failover VM of a replica, if it has one:
// its registration, its host-local configuration and the replica's link
// to it.
func (h *Host) removeTestVM(r *Replication) {
	if r == nil || r.TestVMID == "" {
		return
	}
	delete(h.regs, strings.ToLower(r.TestVMID))
	for k, lc := range h.local {
		if strings.EqualFold(lc.ID, r.TestVMID) {
			delete(h.local, k)
		}
	}
	r.TestVMID = ""
}

// Boot brings a crashed host back. Registrations whose storage is online
// elsewhere are not loaded (and not listed) until their disk returns.
func (w *World) Boot(host string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tick()
	h := w.hostByName(host)
	if h == nil {
		return fmt.Errorf("no host %q", host)
	}
	if h.up {
		return fmt.Errorf("host %s is already up", h.Name)
	}
	h.up = true
	for _, reg := range h.regs {
		reg.snap = nil
		if reg.Disk == "" || w.disks[strings.ToLower(reg.Disk)].owner == strings.ToLower(h.Name) {
			reg.view = viewLive
		} else {
			reg.view = viewUnloaded
		}
	}
	w.cfg.Logger.Info("host booted", "host", h.Name)
	return nil
}

// Up reports whether a host is up.
func (h *Host) Up() bool {
	h.world.mu.Lock()
	defer h.world.mu.Unlock()
	return h.up
}

// config returns the live configuration a registration points at, or nil
// when the host cannot read it.
func (w *World) config(h *Host, reg *Registration) *VMConfig {
	if reg.Disk == "" {
		return h.local[strings.ToLower(reg.Path)]
	}
	d := w.disks[strings.ToLower(reg.Disk)]
	if d == nil || d.owner != strings.ToLower(h.Name) {
		return nil
	}
	return d.files[strings.ToLower(reg.Path)]
}

// settling reports whether a registration's disk came online too recently
// for Hyper-V to have re-read the configuration.
func (w *World) settling(reg *Registration) bool {
	if reg.Disk == "" {
		return false
	}
	return w.diskSettling(w.disks[strings.ToLower(reg.Disk)])
}

// diskSettling reports whether d came online too recently for its files
// to be accessible; a nil disk (host-local storage) never settles.
func (w *World) diskSettling(d *Disk) bool {
	return d != nil && w.now().Sub(d.onlineSince) < w.cfg.Timing.DiskSettle
}

// resolvePath finds the configuration file a path names on a host.
func (w *World) resolvePath(h *Host, p string) (*VMConfig, *Disk, bool) {
	if cfg, ok := h.local[strings.ToLower(p)]; ok {
		return cfg, nil, true
	}
	letter, _, ok := splitDrive(p)
	if !ok {
		return nil, nil, false
	}
	for _, d := range w.disks {
		if d.Letter == letter && d.owner == strings.ToLower(h.Name) {
			cfg, ok := d.files[strings.ToLower(p)]
			return cfg, d, ok
		}
	}
	return nil, nil, false
}

// pathOnForeignDisk reports whether p lies on a shared disk's drive letter
// that is not online on h (a disk that moved away).
func (w *World) pathOnForeignDisk(h *Host, p string) bool {
	letter, _, ok := splitDrive(p)
	if !ok {
		return false
	}
	for _, d := range w.disks {
		if d.Letter == letter {
			if d.owner == strings.ToLower(h.Name) {
				return false
			}
			if _, ok := d.files[strings.ToLower(p)]; ok {
				return true
			}
		}
	}
	return false
}

func isIPLiteral(s string) bool { return net.ParseIP(strings.Trim(s, "[]")) != nil }

// sortedHosts returns the hosts in definition order.
func (w *World) sortedHosts() []*Host {
	out := make([]*Host, 0, len(w.order))
	for _, k := range w.order {
		out = append(out, w.hosts[k])
	}
	return out
}

func sortedRegs(h *Host) []*Registration {
	out := make([]*Registration, 0, len(h.regs))
	for _, r := range h.regs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hvro/hvro/test/sim/ecx"
	"github.com/hvro/hvro/test/sim/hyperv"
	"github.com/hvro/hvro/test/sim/hyperv/wsman"
)

// Lab is a running topology.
type Lab struct {
	topo     *Topology
	log      *slog.Logger
	World    *hyperv.World
	Clusters map[string]*ecx.Cluster
	hosts    map[string]*wsman.Host // by lower-case host name
	ca       *wsman.LabCA
	caTemp   string
	control  *http.Server
	ctlAddr  net.Addr
	disks    map[string]string // "cluster/group" -> hyperv disk name
	ecxAddrs map[string]map[string]string

	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []string // asynchronous errors (observer, watchers), newest last
}

// Addrs are the addresses a running lab listens on.
type Addrs struct {
	Control string                       `json:"control"`
	ECX     map[string]map[string]string `json:"ecx"`    // cluster -> endpoint -> http://addr
	WinRM   map[string]string            `json:"winrm"`  // host -> http://addr/wsman
	WinRMS  map[string]string            `json:"winrms"` // host -> https://addr/wsman
	CAFile  string                       `json:"ca_file,omitempty"`
}

// Start runs a topology until Close. Listen addresses may use port 0.
func Start(ctx context.Context, t *Topology, log *slog.Logger) (_ *Lab, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	l := &Lab{
		topo: t, log: log,
		Clusters: map[string]*ecx.Cluster{},
		hosts:    map[string]*wsman.Host{},
		disks:    map[string]string{},
		ecxAddrs: map[string]map[string]string{},
		stop:     make(chan struct{}),
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	cfg := hyperv.Config{Domain: t.Domain, Logger: log.With("sim", "hyperv")}
	cfg.Timing = hyperv.DefaultTiming()
	if tm := t.HyperV.Timing; tm != nil {
		over := func(dst *time.Duration, v time.Duration) {
			if v != 0 {
				*dst = v
			}
		}
		over(&cfg.Timing.InitialReplication, tm.InitialReplication)
		over(&cfg.Timing.InitialReplicationNetwork, tm.InitialReplicationNetwork)
		over(&cfg.Timing.Resync, tm.Resync)
		over(&cfg.Timing.Cycle, tm.Cycle)
		over(&cfg.Timing.ErrorAfter, tm.ErrorAfter)
		over(&cfg.Timing.ResyncRequiredAfter, tm.ResyncRequiredAfter)
		over(&cfg.Timing.Shutdown, tm.Shutdown)
		over(&cfg.Timing.DiskSettle, tm.DiskSettle)
	}
	l.World = hyperv.NewWorld(cfg)
	l.World.SetProgressNoise(t.HyperV.ProgressNoise)
	if err := l.buildHyperV(); err != nil {
		return nil, err
	}
	if err := l.buildECX(); err != nil {
		return nil, err
	}
	if err := l.placeDisks(ctx); err != nil {
		return nil, err
	}
	if err := l.addVMs(); err != nil {
		return nil, err
	}
	if err := l.startHosts(); err != nil {
		return nil, err
	}
	if err := l.startControl(); err != nil {
		return nil, err
	}
	l.wg.Add(1)
	go l.ticker()
	return l, nil
}

func (l *Lab) buildHyperV() error {
	t := l.topo
	for _, h := range t.HyperV.Hosts {
		var rs *hyperv.ReplicationServer
		if o := h.ReplicationServer; o != nil {
			def := hyperv.ReplicationServer{Enabled: true, AllowedAuth: "Kerberos", AllowAnyServer: true, KerberosPort: 80, CertificatePort: 443, DefaultStorage: `C:\ReplicaStorage`}
			if o.Enabled != nil {
				def.Enabled = *o.Enabled
			}
			if o.Auth != "" {
				def.AllowedAuth = o.Auth
			}
			if o.KerberosPort != 0 {
				def.KerberosPort = o.KerberosPort
			}
			if o.CertificatePort != 0 {
				def.CertificatePort = o.CertificatePort
			}
			def.Thumbprint = o.Thumbprint
			rs = &def
		}
		if _, err := l.World.AddHost(h.Name, rs); err != nil {
			return err
		}
	}
	// Names last: an alias must not name any host, including later ones.
	for _, h := range t.HyperV.Hosts {
		if h.ComputerName != "" || len(h.DNSNames) > 0 {
			if err := l.World.SetHostNames(h.Name, h.ComputerName, h.DNSNames); err != nil {
				return err
			}
		}
	}
	for _, d := range t.HyperV.Disks {
		letter := d.Letter
		if letter == "" {
			letter = firstDrive(t, d.Name)
		}
		if letter == "" {
			return fmt.Errorf("disk %s: no letter and no VM copy on it to take one from", d.Name)
		}
		if err := l.World.AddDisk(d.Name, letter); err != nil {
			return err
		}
		if d.Group.Cluster != "" {
			l.disks[d.Group.Cluster+"/"+d.Group.Group] = d.Name
		}
	}
	return nil
}

func firstDrive(t *Topology, disk string) string {
	for _, vm := range t.HyperV.VMs {
		for _, c := range vm.Copies {
			if c.Disk == disk && len(c.ConfigPath) > 2 {
				return strings.ToUpper(c.ConfigPath[:1])
			}
		}
	}
	return ""
}

func (l *Lab) buildECX() error {
	for _, c := range l.topo.ECX {
		cfg := ecx.Config{Name: c.Name, Username: c.Username, Password: c.Password, Servers: c.Servers,
			Timing: ecx.Timing{Pending: c.Timing.Pending, DiskSwitch: c.Timing.DiskSwitch}}
		for _, g := range c.Groups {
			dir := g.Scripts.Dir
			if dir == "" {
				dir = l.topo.Dir
			}
			cfg.Groups = append(cfg.Groups, ecx.GroupConfig{Name: g.Name, Owner: g.Owner, Disk: g.Disk,
				Scripts: ecx.Scripts{Start: g.Scripts.Start, Stop: g.Scripts.Stop, Timeout: g.Scripts.Timeout, Dir: dir, Env: g.Scripts.Env}})
		}
		cl, err := ecx.New(cfg, observer{l}, l.log.With("sim", "ecx", "cluster", c.Name))
		if err != nil {
			return fmt.Errorf("ecx cluster %s: %w", c.Name, err)
		}
		l.Clusters[c.Name] = cl
		addrs := map[string]string{}
		a, err := cl.Listen("fip", c.Listen)
		if err != nil {
			return fmt.Errorf("ecx cluster %s: listen on %s: %w", c.Name, c.Listen, err)
		}
		addrs["fip"] = "http://" + a.String()
		nodes := make([]string, 0, len(c.NodeListen))
		for n := range c.NodeListen {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
		for _, n := range nodes {
			a, err := cl.Listen(n, c.NodeListen[n])
			if err != nil {
				return fmt.Errorf("ecx cluster %s: listen for node %s on %s: %w", c.Name, n, c.NodeListen[n], err)
			}
			addrs[n] = "http://" + a.String()
		}
		l.ecxAddrs[c.Name] = addrs
	}
	return nil
}

// placeDisks brings each disk online on its group's current owner.
func (l *Lab) placeDisks(ctx context.Context) error {
	for _, d := range l.topo.HyperV.Disks {
		g := d.Group
		if g.Cluster != "" {
			if on := l.Clusters[g.Cluster].State().Group(g.Group).DiskOnline; on != "" {
				if err := l.World.PlaceDisk(d.Name, on); err != nil {
					return err
				}
			}
			continue
		}
		w := &watcher{lab: l, disk: d.Name, group: g}
		if err := w.poll(ctx, true); err != nil {
			return fmt.Errorf("disk %s follows %s: %w", d.Name, g.URL, err)
		}
		l.wg.Add(1)
		go w.run()
	}
	return nil
}

func (l *Lab) addVMs() error {
	for _, vm := range l.topo.HyperV.VMs {
		for _, c := range vm.Copies {
			err := l.World.AddVMCopy(hyperv.VMCopy{ID: vm.ID, Name: vm.Name, Disk: c.Disk, ConfigPath: c.ConfigPath,
				RegisteredOn: c.RegisteredOn, Running: strings.EqualFold(c.State, "running")})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *Lab) startHosts() error {
	t := l.topo
	for _, hc := range t.HyperV.Hosts {
		h, _ := l.World.Host(hc.Name)
		cfg := wsman.HostConfig{
			Server: wsman.Config{
				Host:       strings.ToUpper(hc.Name),
				Users:      map[string]string{t.HyperV.Username: t.HyperV.Password},
				PowerShell: powerShell(h),
				Log:        l.record,
				Logger:     l.log.With("sim", "wsman", "host", hc.Name),
				// Zero keeps Windows' 60s.
				MinShellIdleTimeout: t.HyperV.MinShellIdleTimeout,
			},
			HTTPAddr: hc.Listen,
		}
		if hc.HTTPS {
			if l.ca == nil {
				dir := t.HyperV.CADir
				if dir == "" {
					tmp, err := os.MkdirTemp("", "hvlab-ca-")
					if err != nil {
						return fmt.Errorf("lab CA: %w", err)
					}
					dir, l.caTemp = tmp, tmp
				}
				ca, err := wsman.NewLabCA(dir)
				if err != nil {
					return fmt.Errorf("lab CA in %s: %w", dir, err)
				}
				l.ca = ca
			}
			tlsCfg, err := l.ca.ServerTLS(hc.Name, h.FQDN, "localhost")
			if err != nil {
				return fmt.Errorf("host %s TLS: %w", hc.Name, err)
			}
			cfg.HTTPSAddr, cfg.TLS = hc.HTTPSListen, tlsCfg
			if cfg.HTTPSAddr == "" {
				cfg.HTTPSAddr = "127.0.0.1:0"
			}
		}
		wh, err := wsman.NewHost(cfg)
		if err != nil {
			return fmt.Errorf("host %s: %w", hc.Name, err)
		}
		if err := wh.Start(); err != nil {
			return fmt.Errorf("host %s: %w", hc.Name, err)
		}
		l.hosts[strings.ToLower(hc.Name)] = wh
	}
	return nil
}

// powerShell connects a WS-Management listener to a host's interpreter.
func powerShell(h *hyperv.Host) wsman.PowerShellFunc {
	return func(ctx context.Context, script string, encoded bool) wsman.Result {
		r := h.RunPowerShell(ctx, script, encoded)
		return wsman.Result{Stdout: []byte(r.Stdout), Stderr: []byte(r.Stderr), ExitCode: r.ExitCode}
	}
}

func (l *Lab) record(r wsman.CommandRecord) {
	l.World.Record(hyperv.CommandRecord{
		Time: r.Start, Host: strings.ToLower(r.Host), User: r.User, CommandLine: r.CommandLine, Script: r.Script,
		ExitCode: r.ExitCode, Stdout: string(r.Stdout), Stderr: string(r.Stderr), DurationMS: r.Duration.Milliseconds(),
	})
}

func (l *Lab) ticker() {
	defer l.wg.Done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.World.Tick()
		}
	}
}

// Addrs returns where the lab listens.
func (l *Lab) Addrs() Addrs {
	a := Addrs{ECX: l.ecxAddrs, WinRM: map[string]string{}, WinRMS: map[string]string{}}
	if l.ctlAddr != nil {
		a.Control = "http://" + l.ctlAddr.String()
	}
	for name, h := range l.hosts {
		a.WinRM[name] = h.HTTPURL()
		if h.HTTPSAddr() != "" {
			a.WinRMS[name] = h.HTTPSURL()
		}
	}
	if l.ca != nil {
		a.CAFile = l.ca.CertFile()
	}
	return a
}

// Shells is how many WinRM shells a host has open: a test waits on it to
// know a command has reached the host.
func (l *Lab) Shells(host string) int {
	h, ok := l.hosts[strings.ToLower(host)]
	if !ok || h.Server() == nil {
		return 0
	}
	return h.Server().Shells()
}

// CrashHost takes a Hyper-V host down: its VMs stop uncleanly and its
// WinRM listener refuses connections. ECX does not notice by itself.
func (l *Lab) CrashHost(name string) error {
	wh, ok := l.hosts[strings.ToLower(name)]
	if !ok {
		return fmt.Errorf("no host %q: %w", name, errNotFound)
	}
	if err := l.World.Crash(name); err != nil {
		return fmt.Errorf("%w: %w", err, errConflict)
	}
	return wh.Stop()
}

// BootHost brings a crashed host back.
func (l *Lab) BootHost(name string) error {
	wh, ok := l.hosts[strings.ToLower(name)]
	if !ok {
		return fmt.Errorf("no host %q: %w", name, errNotFound)
	}
	if err := l.World.Boot(name); err != nil {
		return fmt.Errorf("%w: %w", err, errConflict)
	}
	return wh.Start()
}

var (
	errNotFound = errors.New("not found")
	errConflict = errors.New("conflict")
)

func (l *Lab) asyncError(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("lab", "error", msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, time.Now().UTC().Format(time.RFC3339Nano)+" "+msg)
	if len(l.errs) > 100 {
		l.errs = l.errs[len(l.errs)-100:]
	}
}

// Errors returns problems the lab met while following ECX (a disk event it
// could not apply); a healthy lab has none.
func (l *Lab) Errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// Close stops everything.
func (l *Lab) Close() error {
	select {
	case <-l.stop:
		return nil
	default:
		close(l.stop)
	}
	var errs []error
	if l.control != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		errs = append(errs, l.control.Shutdown(ctx))
		cancel()
	}
	for _, c := range l.Clusters {
		errs = append(errs, c.Close())
	}
	for _, h := range l.hosts {
		if h.Running() {
			errs = append(errs, h.Stop())
		}
	}
	l.wg.Wait()
	if l.caTemp != "" {
		os.RemoveAll(l.caTemp)
	}
	return errors.Join(errs...)
}

// observer makes the Hyper-V side follow ECX: disks move with their group,
// a crashed server is a crashed host.
type observer struct{ l *Lab }

func (o observer) DiskOnline(cluster, group, disk, server string) {
	if d, ok := o.l.disks[cluster+"/"+group]; ok {
		if err := o.l.World.DiskOnline(d, server); err != nil {
			o.l.asyncError("ecx %s/%s: disk %s online on %s: %v", cluster, group, d, server, err)
		}
	}
}

func (o observer) DiskOffline(cluster, group, disk, server string) {
	if d, ok := o.l.disks[cluster+"/"+group]; ok {
		if err := o.l.World.DiskOffline(d, server); err != nil {
			o.l.asyncError("ecx %s/%s: disk %s offline from %s: %v", cluster, group, d, server, err)
		}
	}
}

func (o observer) ServerDown(cluster, server string) {
	if err := o.l.CrashHost(server); err != nil {
		o.l.asyncError("ecx %s: server %s down: %v", cluster, server, err)
	}
}

func (o observer) ServerUp(cluster, server string) {
	if err := o.l.BootHost(server); err != nil {
		o.l.asyncError("ecx %s: server %s up: %v", cluster, server, err)
	}
}

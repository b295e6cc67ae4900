// Package lab runs the emulated outside world of hvro from a topology file:
// EXPRESSCLUSTER X clusters (test/sim/ecx), Hyper-V hosts behind real
// WS-Management listeners (test/sim/hyperv), shared disks that follow their
// ECX group, and the loopback control API of CONTRACTS.md section 5.
// Like the emulators it wires, it imports nothing from hvro.
package lab

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Topology is the lab.yaml file (CONTRACTS.md section 4). Lab secrets may
// be inline: they protect nothing but emulators on loopback.
type Topology struct {
	Domain string       `yaml:"domain"`
	ECX    []ECXCluster `yaml:"ecx"`
	HyperV HyperV       `yaml:"hyperv"`

	// Dir is the folder of the topology file; relative paths and script
	// working directories resolve against it.
	Dir string `yaml:"-"`
}

// ECXCluster is one emulated ECX cluster.
type ECXCluster struct {
	Name     string   `yaml:"name"`
	Listen   string   `yaml:"listen"` // the floating IP endpoint
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	Servers  []string `yaml:"servers"`
	// NodeListen adds one endpoint per node (server name -> address); a
	// crashed node's endpoint refuses connections.
	NodeListen map[string]string `yaml:"node_listen"`
	Groups     []ECXGroup        `yaml:"groups"`
	Timing     ECXTiming         `yaml:"timing"`
}

// ECXGroup is one failover group of an emulated cluster.
type ECXGroup struct {
	Name    string     `yaml:"name"`
	Owner   string     `yaml:"owner"`
	Disk    string     `yaml:"disk"`
	Scripts ECXScripts `yaml:"scripts"`
}

// ECXScripts are the group's start.bat/stop.bat as argv.
type ECXScripts struct {
	Start   []string      `yaml:"start"`
	Stop    []string      `yaml:"stop"`
	Timeout time.Duration `yaml:"timeout"`
	Dir     string        `yaml:"dir"` // CLP_SCRIPT_PATH; default the topology file's folder
	Env     []string      `yaml:"env"`
}

// ECXTiming overrides the cluster's transition times.
type ECXTiming struct {
	Pending    time.Duration `yaml:"pending"`
	DiskSwitch time.Duration `yaml:"disk_switch"`
}

// HyperV describes the emulated hosts, disks and VMs.
type HyperV struct {
	Control  string `yaml:"control"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// CADir is where the lab CA for HTTPS listeners is written (default: a
	// temporary folder).
	CADir  string        `yaml:"ca_dir"`
	Hosts  []HyperVHost  `yaml:"hosts"`
	Disks  []HyperVDisk  `yaml:"disks"`
	VMs    []HyperVVM    `yaml:"vms"`
	Timing *HyperVTiming `yaml:"timing"`
	// ProgressNoise makes hosts write the "Preparing modules for first
	// use." progress record to stderr on every encoded command.
	ProgressNoise bool `yaml:"progress_noise"`
	// MinShellIdleTimeout is the least shell idle timeout the hosts'
	// WinRM services grant a client that asks for one (default 60s, as
	// Windows): a lab lowers it so that a client's short idle timeout,
	// and a test waiting for an orphaned shell to die, take seconds.
	MinShellIdleTimeout time.Duration `yaml:"min_shell_idle_timeout"`
}

// HyperVHost is one emulated host.
type HyperVHost struct {
	Name              string             `yaml:"name"`
	Listen            string             `yaml:"listen"`
	HTTPS             bool               `yaml:"https"`
	HTTPSListen       string             `yaml:"https_listen"` // default 127.0.0.1:0 when https is on
	ReplicationServer *ReplicationServer `yaml:"replication_server"`
	// ComputerName is the Windows computer name when it is not the server
	// name (upper case) ECX knows: the host reports itself to Hyper-V
	// Replica as ComputerName.domain.
	ComputerName string `yaml:"computer_name"`
	// DNSNames are further names that resolve to the host (a management
	// alias), for -ReplicaServerName.
	DNSNames []string `yaml:"dns_names"`
}

// ReplicationServer overrides the default Replica server settings
// (enabled, Kerberos on port 80, any primary).
type ReplicationServer struct {
	Enabled         *bool  `yaml:"enabled"`
	Auth            string `yaml:"auth"` // Kerberos | Certificate | CertificateAndKerberos
	KerberosPort    int    `yaml:"kerberos_port"`
	CertificatePort int    `yaml:"certificate_port"`
	Thumbprint      string `yaml:"thumbprint"`
}

// HyperVDisk is a shared disk bound to an ECX group.
type HyperVDisk struct {
	Name   string    `yaml:"name"`
	Letter string    `yaml:"letter"` // default: the drive of the first VM copy on it
	Group  DiskGroup `yaml:"group"`
}

// DiskGroup binds a disk to a group of an emulated cluster (Cluster) or of
// any ECX RESTful API (URL).
type DiskGroup struct {
	Cluster  string        `yaml:"cluster"`
	Group    string        `yaml:"group"`
	URL      string        `yaml:"url"`
	Username string        `yaml:"username"`
	Password string        `yaml:"password"`
	Poll     time.Duration `yaml:"poll"`
}

// HyperVVM is a VM with its primary and replica copies.
type HyperVVM struct {
	Name   string   `yaml:"name"`
	ID     string   `yaml:"id"`
	Copies []VMCopy `yaml:"copies"`
}

// VMCopy is one VM configuration file on a disk.
type VMCopy struct {
	Disk         string `yaml:"disk"`
	ConfigPath   string `yaml:"config_path"`
	RegisteredOn string `yaml:"registered_on"`
	State        string `yaml:"state"` // Running | Off
}

// HyperVTiming overrides the model's timing (see hyperv.Timing).
type HyperVTiming struct {
	InitialReplication        time.Duration `yaml:"initial_replication"`
	InitialReplicationNetwork time.Duration `yaml:"initial_replication_network"`
	Resync                    time.Duration `yaml:"resync"`
	Cycle                     time.Duration `yaml:"cycle"`
	ErrorAfter                time.Duration `yaml:"error_after"`
	ResyncRequiredAfter       time.Duration `yaml:"resync_required_after"`
	Shutdown                  time.Duration `yaml:"shutdown"`
	DiskSettle                time.Duration `yaml:"disk_settle"`
}

// Load reads and validates a topology file. Unknown keys are errors.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var t Topology
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("topology %s: %w", path, err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", path, err)
	}
	t.Dir = abs
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("topology %s:\n%w", path, err)
	}
	return &t, nil
}

// Validate checks the whole topology and reports every problem with its path.
func (t *Topology) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	loopback := func(path, addr string, required bool) {
		if addr == "" {
			if required {
				bad(path, "missing (want 127.0.0.1:PORT)")
			}
			return
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			bad(path, "%q is not host:port", addr)
			return
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			bad(path, "%q is not a loopback address: the lab listens on loopback only", addr)
		}
	}
	clusters := map[string]*ECXCluster{}
	groups := map[string]bool{}
	hostNames := map[string]bool{}
	for i := range t.HyperV.Hosts {
		hostNames[strings.ToLower(t.HyperV.Hosts[i].Name)] = true
	}
	for i := range t.ECX {
		c := &t.ECX[i]
		p := fmt.Sprintf("ecx[%d]", i)
		if c.Name == "" {
			bad(p+".name", "missing")
		} else if clusters[c.Name] != nil {
			bad(p+".name", "%q is defined twice", c.Name)
		}
		clusters[c.Name] = c
		loopback(p+".listen", c.Listen, true)
		for node, addr := range c.NodeListen {
			loopback(p+".node_listen."+node, addr, true)
			if !contains(c.Servers, node) {
				bad(p+".node_listen."+node, "not one of the cluster's servers %v", c.Servers)
			}
		}
		if len(c.Servers) == 0 {
			bad(p+".servers", "missing")
		}
		for j, s := range c.Servers {
			if !hostNames[strings.ToLower(s)] {
				bad(fmt.Sprintf("%s.servers[%d]", p, j), "%q is not a hyperv host", s)
			}
		}
		for j, g := range c.Groups {
			gp := fmt.Sprintf("%s.groups[%d]", p, j)
			if g.Name == "" {
				bad(gp+".name", "missing")
			}
			if groups[c.Name+"/"+g.Name] {
				bad(gp+".name", "%q is defined twice", g.Name)
			}
			groups[c.Name+"/"+g.Name] = true
			if g.Owner != "" && !contains(c.Servers, g.Owner) {
				bad(gp+".owner", "%q is not one of the cluster's servers %v", g.Owner, c.Servers)
			}
			if g.Disk == "" {
				bad(gp+".disk", "missing")
			}
			if g.Scripts.Timeout < 0 {
				bad(gp+".scripts.timeout", "negative")
			}
		}
	}
	h := &t.HyperV
	loopback("hyperv.control", h.Control, true)
	if h.Username == "" {
		bad("hyperv.username", "missing")
	}
	if h.Password == "" {
		bad("hyperv.password", "missing")
	}
	if h.MinShellIdleTimeout < 0 {
		bad("hyperv.min_shell_idle_timeout", "negative")
	}
	seenHost := map[string]bool{}
	for i, host := range h.Hosts {
		p := fmt.Sprintf("hyperv.hosts[%d]", i)
		if host.Name == "" || strings.ContainsAny(host.Name, `. \/`) {
			bad(p+".name", "%q is not a short host name", host.Name)
		}
		if seenHost[strings.ToLower(host.Name)] {
			bad(p+".name", "%q is defined twice", host.Name)
		}
		seenHost[strings.ToLower(host.Name)] = true
		loopback(p+".listen", host.Listen, true)
		if host.HTTPSListen != "" && !host.HTTPS {
			bad(p+".https_listen", "set but https is false")
		}
		loopback(p+".https_listen", host.HTTPSListen, false)
		if rs := host.ReplicationServer; rs != nil && rs.Auth != "" {
			switch strings.ToLower(rs.Auth) {
			case "kerberos", "certificate", "certificateandkerberos":
			default:
				bad(p+".replication_server.auth", "%q is not Kerberos, Certificate or CertificateAndKerberos", rs.Auth)
			}
		}
	}
	disks := map[string]*HyperVDisk{}
	bound := map[string]string{}   // cluster|url|group -> the disk it moves
	letters := map[string]string{} // cluster/letter -> the disk on it
	for i := range h.Disks {
		d := &h.Disks[i]
		p := fmt.Sprintf("hyperv.disks[%d]", i)
		if d.Name == "" {
			bad(p+".name", "missing")
		} else if disks[d.Name] != nil {
			bad(p+".name", "%q is defined twice", d.Name)
		}
		disks[d.Name] = d
		g := d.Group
		if key := g.Cluster + "|" + g.URL + "|" + g.Group; g.Group != "" && bound[key] != "" {
			bad(p+".group", "group %s is already bound to disk %s; a group moves one disk", g.Group, bound[key])
		} else if g.Group != "" {
			bound[key] = d.Name
		}
		switch {
		case g.Cluster != "" && g.URL != "":
			bad(p+".group", "set either cluster or url, not both")
		case g.Cluster != "":
			c := clusters[g.Cluster]
			if c == nil {
				bad(p+".group.cluster", "%q is not an ecx cluster of this topology", g.Cluster)
			} else if !groups[g.Cluster+"/"+g.Group] {
				bad(p+".group.group", "%q is not a group of cluster %s", g.Group, g.Cluster)
			}
		case g.URL != "":
			if !strings.HasPrefix(g.URL, "http://") && !strings.HasPrefix(g.URL, "https://") {
				bad(p+".group.url", "%q is not an http(s) URL", g.URL)
			}
			if g.Group == "" {
				bad(p+".group.group", "missing")
			}
			if g.Poll < 0 {
				bad(p+".group.poll", "negative")
			}
		default:
			bad(p+".group", "missing: bind the disk to {cluster, group} or {url, group}")
		}
		if d.Letter != "" && (len(d.Letter) != 1 || !isLetter(d.Letter[0])) {
			bad(p+".letter", "%q is not a drive letter", d.Letter)
		}
		// Windows mounts one volume per drive letter: two disks of one
		// cluster on one letter could not both be online on a node.
		if letter := strings.ToUpper(cmp.Or(d.Letter, firstDrive(t, d.Name))); g.Cluster != "" && letter != "" {
			k := g.Cluster + "/" + letter
			if other, dup := letters[k]; dup {
				bad(p+".letter", "%s: disk %s of cluster %s already uses drive %s:; two disks a node of one cluster may hold at once need two letters", d.Name, other, g.Cluster, letter)
			} else {
				letters[k] = d.Name
			}
		}
	}
	for i, vm := range h.VMs {
		p := fmt.Sprintf("hyperv.vms[%d]", i)
		if vm.Name == "" {
			bad(p+".name", "missing")
		}
		if len(vm.ID) != 36 {
			bad(p+".id", "%q is not a GUID", vm.ID)
		}
		for j, c := range vm.Copies {
			cp := fmt.Sprintf("%s.copies[%d]", p, j)
			if disks[c.Disk] == nil {
				bad(cp+".disk", "%q is not a hyperv disk", c.Disk)
			}
			if len(c.ConfigPath) < 4 || c.ConfigPath[1] != ':' || c.ConfigPath[2] != '\\' {
				bad(cp+".config_path", "%q is not a Windows path like T:\\VMs\\...", c.ConfigPath)
			}
			if c.RegisteredOn != "" && !seenHost[strings.ToLower(c.RegisteredOn)] {
				bad(cp+".registered_on", "%q is not a hyperv host", c.RegisteredOn)
			}
			switch strings.ToLower(c.State) {
			case "", "off", "running":
			default:
				bad(cp+".state", "%q is not Running or Off", c.State)
			}
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

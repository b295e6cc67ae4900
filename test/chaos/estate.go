package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hvro/hvro/test/sim/lab"
)

// Clusters and their servers, in ECX's failover order.
var servers = map[string][]string{"cluster1": {"node1", "node2"}, "cluster2": {"node3", "node4"}}

// clusterNames is the clusters in a fixed order (map order is random and
// the action list must not be).
var clusterNames = []string{"cluster1", "cluster2"}

// pairsPerGroup: VMs share failover groups, so one move or hook concerns
// several pairs at once.
const pairsPerGroup = 2

// maxGroups is how many groups (and disks, one drive letter each, E: to
// Z:) a cluster has at most; beyond it groups hold more pairs.
const maxGroups = 22

// vm is one protected VM of the estate.
type vm struct {
	name, id string
	groups   map[string]string // cluster -> group holding its copy
	paths    map[string]string // cluster -> its copy's configuration file
}

// estate is what one seed runs against: pairs in groups on two clusters.
type estate struct {
	vms    []vm
	groups map[string][]string // cluster -> groups, sorted
}

func newEstate(pairs int) estate {
	e := estate{groups: map[string][]string{}}
	ngroups := min((pairs+pairsPerGroup-1)/pairsPerGroup, maxGroups)
	for _, c := range clusterNames {
		for g := 1; g <= ngroups; g++ {
			e.groups[c] = append(e.groups[c], groupName(c, g))
		}
	}
	for i := 1; i <= pairs; i++ {
		id := fmt.Sprintf("C0DE%04X-0000-4000-8000-%012X", i, i)
		g := (i-1)/pairsPerGroup%ngroups + 1
		// Each group's disk has a drive of its own: a node that holds two
		// groups mounts two volumes.
		drive := string(rune('E' + g - 1))
		e.vms = append(e.vms, vm{
			name:   fmt.Sprintf("vm%d", i),
			id:     id,
			groups: map[string]string{"cluster1": groupName("cluster1", g), "cluster2": groupName("cluster2", g)},
			paths: map[string]string{
				"cluster1": drive + `:\VMs\Virtual Machines\` + id + ".vmcx",
				"cluster2": drive + `:\VMs\Hyper-V Replica\Virtual Machines\` + id + ".vmcx",
			},
		})
	}
	return e
}

func groupName(cluster string, n int) string {
	return fmt.Sprintf("%s-g%d", map[string]string{"cluster1": "p", "cluster2": "r"}[cluster], n)
}

// otherCluster is the cluster that is not c.
func otherCluster(c string) string {
	if c == "cluster1" {
		return "cluster2"
	}
	return "cluster1"
}

// clusterOfPath says which copy a configuration path is.
func (e estate) clusterOfPath(id, path string) string {
	for _, v := range e.vms {
		if v.id == id {
			for c, p := range v.paths {
				if strings.EqualFold(p, path) {
					return c
				}
			}
		}
	}
	return ""
}

func (e estate) vmByID(id string) (vm, bool) {
	for _, v := range e.vms {
		if v.id == id {
			return v, true
		}
	}
	return vm{}, false
}

// topology is the lab for the estate. Group n starts on the cluster's
// first or second server, alternately, so both servers hold VMs. hook is
// the command prefix ECX's scripts run (hvlab hook ...).
func (e estate) topology(dir, ip string, hook func(cluster, group, phase string) []string) *lab.Topology {
	anyPort := ip + ":0"
	fast := lab.ECXTiming{Pending: 20 * time.Millisecond, DiskSwitch: 20 * time.Millisecond}
	t := &lab.Topology{Domain: "lab.local", Dir: dir}
	for i, c := range clusterNames {
		ec := lab.ECXCluster{Name: c, Listen: anyPort, Username: "Administrator", Password: fmt.Sprintf("lab-pass-%d", i+1),
			Servers: servers[c], Timing: fast, NodeListen: map[string]string{}}
		for _, s := range servers[c] {
			ec.NodeListen[s] = anyPort
		}
		for n, g := range e.groups[c] {
			ec.Groups = append(ec.Groups, lab.ECXGroup{Name: g, Owner: servers[c][n%2], Disk: diskOf(g), Scripts: lab.ECXScripts{
				Start: hook(c, g, "start"), Stop: hook(c, g, "stop"), Timeout: 2 * time.Minute}})
		}
		t.ECX = append(t.ECX, ec)
	}
	// The hosts grant the short shell idle timeout hvro asks for (Windows
	// would raise it to a minute), so a kill -9 costs seconds, not a minute.
	t.HyperV = lab.HyperV{Control: anyPort, Username: `LAB\admin`, Password: "lab-pass", MinShellIdleTimeout: shellIdleTimeout,
		Timing: &lab.HyperVTiming{InitialReplication: 150 * time.Millisecond, Resync: 150 * time.Millisecond,
			Cycle: 100 * time.Millisecond, ErrorAfter: 400 * time.Millisecond, DiskSettle: 50 * time.Millisecond}}
	for _, c := range clusterNames {
		for _, s := range servers[c] {
			t.HyperV.Hosts = append(t.HyperV.Hosts, lab.HyperVHost{Name: s, Listen: anyPort})
		}
		for _, g := range e.groups[c] {
			t.HyperV.Disks = append(t.HyperV.Disks, lab.HyperVDisk{Name: strings.ToUpper(diskOf(g)), Group: lab.DiskGroup{Cluster: c, Group: g}})
		}
	}
	owner := func(c, g string) string {
		for n, x := range e.groups[c] {
			if x == g {
				return servers[c][n%2]
			}
		}
		return ""
	}
	for _, v := range e.vms {
		hv := lab.HyperVVM{Name: v.name, ID: v.id}
		for _, c := range clusterNames {
			state := "Off"
			if c == "cluster1" {
				state = "Running"
			}
			g := v.groups[c]
			hv.Copies = append(hv.Copies, lab.VMCopy{Disk: strings.ToUpper(diskOf(g)), ConfigPath: v.paths[c], RegisteredOn: owner(c, g), State: state})
		}
		t.HyperV.VMs = append(t.HyperV.VMs, hv)
	}
	return t
}

// diskOf is the ECX disk resource of a group (the Hyper-V disk is the same
// name in capitals).
func diskOf(group string) string { return "sd-" + group }

// loopbackFor is the loopback address a seed's lab and hvro listen on.
// Every seed has its own (all of 127.0.0.0/8 is loopback on Linux), so
// seeds run side by side cannot take each other's ports when a crashed
// host, an ECX endpoint or a killed hvro listens again on its old one.
func loopbackFor(seed uint64) string {
	return fmt.Sprintf("127.%d.%d.%d", 10+seed>>16%200, seed>>8&255, seed&255)
}

// secrets writes hvro's secret files and returns their paths by name.
func writeSecrets(dir string, values map[string]string) (map[string]string, error) {
	sdir := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(sdir, 0o700); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, v := range values {
		p := filepath.Join(sdir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			return nil, err
		}
		out[name] = p
	}
	return out, nil
}

// hvroConfig is hvro.yaml for the estate on a running lab.
func (e estate) hvroConfig(a lab.Addrs, listen, dataDir string, secret map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `listen: %s
data_dir: %s
log_level: info
log_format: text
resync_interval: 3s
workers: 8
retry: {max_attempts: 4, initial_backoff: 100ms, max_backoff: 1s}
auth: {admin_token_file: %s, metrics_public: true}
winrm: {username: 'LAB\admin', password_file: %s, auth: basic, timeout: %s, shell_idle_timeout: %s}
clusters:
`, listen, dataDir, secret["admin.token"], secret["winrm.pass"], commandTimeout, shellIdleTimeout)
	for i, c := range clusterNames {
		fmt.Fprintf(&b, "  - name: %s\n    api: {endpoints: [%s, %s], username: Administrator, password_file: %s, timeout: 1s, retries: 1}\n",
			c, a.ECX[c]["fip"], a.ECX[c][servers[c][1]], secret[fmt.Sprintf("ecx%d.pass", i+1)])
		fmt.Fprintf(&b, "    poll_interval: 1s\n    hook_token_file: %s\n    servers:\n", secret[c+".token"])
		for _, s := range servers[c] {
			fmt.Fprintf(&b, "      %s: {winrm: %q}\n", s, a.WinRM[s])
		}
	}
	b.WriteString("pairs:\n")
	for _, v := range e.vms {
		fmt.Fprintf(&b, "  - name: %s\n    primary: {cluster: cluster1, group: %s, vm_config_path: '%s'}\n    replica: {cluster: cluster2, group: %s, vm_config_path: '%s'}\n    replication: {frequency: 30s}\n",
			v.name, v.groups["cluster1"], v.paths["cluster1"], v.groups["cluster2"], v.paths["cluster2"])
	}
	return b.String()
}

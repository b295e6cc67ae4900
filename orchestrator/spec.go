package orchestrator

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hvro/hvro/hostname"
)

// PairSpec is one protected VM as the configuration describes it.
type PairSpec struct {
	Name   string
	VMName string
	// Sides are the two failover groups holding the VM's copies, keyed by
	// cluster name. Which one is primary is state (I6), not configuration.
	Sides       map[string]Side
	Replication Settings
	// InitialPrimary is the cluster that holds the primary role the first
	// time hvro sees the pair; afterwards the store decides.
	InitialPrimary string
}

// Side is a VM copy: the failover group that holds it and its config file.
type Side struct {
	Cluster    string
	Group      string
	ConfigPath string
}

// Settings are the replication settings of a pair.
type Settings struct {
	Port         int
	Auth         string // Kerberos | Certificate
	Thumbprint   string
	FrequencySec int
	Compression  bool
	UseBackup    bool // initial replication from the existing copy (-UseBackup)
}

// Other returns the cluster that is not c.
func (p PairSpec) Other(cluster string) string {
	for c := range p.Sides {
		if c != cluster {
			return c
		}
	}
	return ""
}

// Clusters maps each cluster's ECX server names to Hyper-V host keys.
type Clusters map[string]ClusterSpec

// ClusterSpec lists a cluster's servers.
type ClusterSpec struct {
	// Servers maps lower-case ECX server names to the host key the drivers
	// know them by (the server name as configured).
	Servers map[string]string
}

// host returns the host key of an ECX server of a cluster: by its name as
// configured, else by its short name (a hook or Hyper-V may report the
// FQDN of a server configured as node1).
func (c Clusters) host(cluster, server string) (string, bool) {
	servers := c[cluster].Servers
	if h, ok := servers[strings.ToLower(strings.TrimSpace(server))]; ok {
		return h, true
	}
	h, ok := servers[hostname.Short(server)]
	return h, ok
}

// hostsOf returns the host keys of a cluster, sorted.
func (c Clusters) hostsOf(cluster string) []string {
	var out []string
	for _, h := range c[cluster].Servers {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// GroupKey names a failover group.
type GroupKey struct{ Cluster, Group string }

func (k GroupKey) String() string { return k.Cluster + "/" + k.Group }

// Observation is what hvro knows of a group: from the ECX API poller or a
// start/stop script's hook.
type Observation struct {
	Status   string // ECX group status ("Online", "Online Pending", ...)
	Owner    string // ECX server name, "" when none
	Err      string // the API could not be read (Status/Owner are stale)
	Source   string // store.SourcePoll or store.SourceHook
	Phase    string // hook phase: start | stop
	Factor   string // hook CLP_FACTOR
	Event    string // hook CLP_EVENT
	Disk     string // hook CLP_DISK
	Endpoint string // poll: the endpoint that answered
	At       time.Time
}

// GroupState is the poller's and the hooks' latest word on a group.
type GroupState struct {
	Poll Observation
	Hook Observation // zero when no hook was received
}

// Effective merges poll and hook. A hook is newer news than the poll it
// follows; a start hook also outlives the "Online Pending" the API reports
// while that very start script runs (ECX brings the script resource up
// last), or a waiting start hook would wait for itself.
func (g GroupState) Effective() Observation {
	h, p := g.Hook, g.Poll
	if h.At.IsZero() {
		return p
	}
	if p.At.IsZero() || h.At.After(p.At) {
		return h
	}
	if h.Phase == "start" && p.Err == "" && hostname.Same(p.Owner, h.Owner) &&
		(p.Status == "Online Pending" || p.Status == "Online") {
		return h
	}
	return p
}

func (o Observation) String() string {
	if o.Err != "" {
		return "unreachable: " + o.Err
	}
	owner := o.Owner
	if owner == "" {
		owner = "no owner"
	}
	return fmt.Sprintf("%s on %s", o.Status, owner)
}

package service

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/hostname"
	"github.com/hvro/hvro/orchestrator/metrics"
	"github.com/hvro/hvro/replica"
)

// HostNames is what a host driver knows about the names of every host.
// Hyper-V names hosts in its own ways: a primary by its identity (computer
// name and domain, "WIN-HV1.corp.example"), a Replica server by the name
// it was given. The orchestrator compares host keys (ECX server names,
// lower case), so every reported name is translated here.
type HostNames interface {
	// Peer is the name Hyper-V is told to replicate to for a host key.
	Peer(key string) string
	// Key is the host key a name Hyper-V reported stands for, or the name
	// as reported when no host has it (the orchestrator then sees a
	// mismatch and repairs it, as it should).
	Key(ctx context.Context, reported string) string
	// Learned records the identity a host's driver learned.
	Learned(key string, id replica.Identity)
}

// learnTimeout bounds reading the identities of the hosts not yet learned.
const learnTimeout = 10 * time.Second

// hostNames is the service's HostNames: the configured names of every host
// (ECX server name, replica_name, WinRM URL host) and the identities the
// drivers learned. A reload replaces the configured part and forgets the
// learned one; drivers kept across it report theirs again at once (their
// identity is cached).
type hostNames struct {
	mu      sync.Mutex
	peers   map[string]string      // host key -> the name Hyper-V replicates to
	byName  map[string]string      // lower-case configured name -> host key
	hosts   map[string]config.Host // host key -> configuration
	learned map[string]string      // lower-case learned name -> host key
	known   map[string]bool        // host keys whose identity is learned
	// learning: a background read of the missing identities is under way.
	learning bool
	// learners read a host's identity (its driver); set by the service.
	learners func() map[string]func(context.Context) (replica.Identity, error)
	metrics  *metrics.Metrics
	log      *slog.Logger
}

func newHostNames(cfg *config.Config, m *metrics.Metrics, log *slog.Logger) *hostNames {
	n := &hostNames{metrics: m, log: log}
	n.configure(cfg)
	return n
}

// configure takes the names of cfgs (the first one that names a host or a
// name wins: a reload stages the old configuration before the new one)
// and forgets what was learned: drivers report their cached identity again
// when asked.
func (n *hostNames) configure(cfgs ...*config.Config) {
	peers, byName, hosts := map[string]string{}, map[string]string{}, map[string]config.Host{}
	for _, cfg := range cfgs {
		for _, c := range cfg.Clusters {
			for _, h := range cfg.Hosts(c.Name) {
				k := hostKey(h.Server)
				if _, done := hosts[k]; done {
					continue
				}
				peers[k], hosts[k] = replicaServerName(h), h
				for _, name := range configuredNames(h) {
					if _, taken := byName[name]; !taken {
						byName[name] = k
					}
				}
			}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.metrics != nil {
		for k := range n.hosts {
			if _, still := hosts[k]; !still {
				n.metrics.ForgetHostIdentity(k)
			}
		}
	}
	n.peers, n.byName, n.hosts = peers, byName, hosts
	n.learned, n.known = map[string]string{}, map[string]bool{}
}

// configuredNames are the names the configuration gives a host, lower
// case: its server name, replica_name and WinRM URL host (not an IP
// address or localhost, which name no host to Hyper-V).
func configuredNames(h config.Host) []string {
	out := []string{strings.ToLower(h.Server)}
	for _, n := range []string{h.ReplicaName, h.Host} {
		n = normName(n)
		if n != "" && net.ParseIP(strings.Trim(n, "[]")) == nil && n != "localhost" {
			out = append(out, n)
		}
	}
	return out
}

func normName(n string) string { return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), ".")) }

// replicaServerName is what Hyper-V is told to replicate to: the server's
// replica_name; else the WinRM URL's DNS name (an FQDN Kerberos can use);
// else, for a URL with an IP address (which Enable-VMReplication refuses),
// the ECX server name.
func replicaServerName(h config.Host) string {
	if h.ReplicaName != "" {
		return h.ReplicaName
	}
	if net.ParseIP(strings.Trim(h.Host, "[]")) != nil || h.Host == "" || strings.EqualFold(h.Host, "localhost") {
		return h.Server
	}
	return h.Host
}

func (n *hostNames) Peer(key string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.peers[key]; ok {
		return p
	}
	return key
}

// lookup finds the host a name stands for: a configured or learned name,
// else a server by the short name (as hvro compares hosts everywhere:
// node1.corp.example is server node1).
func (n *hostNames) lookup(name string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if k, ok := n.byName[name]; ok {
		return k, true
	}
	if k, ok := n.learned[name]; ok {
		return k, true
	}
	if k := hostname.Short(name); n.hosts[k].Server != "" {
		return k, true
	}
	return "", false
}

// Key never waits for a host: a name no host is known by yet starts a
// background read of the identities still missing (a host not inspected
// yet), and the next pass finds it.
func (n *hostNames) Key(_ context.Context, reported string) string {
	name := normName(reported)
	if name == "" {
		return ""
	}
	if k, ok := n.lookup(name); ok {
		return k
	}
	n.mu.Lock()
	start := !n.learning && n.learners != nil
	n.learning = n.learning || start
	n.mu.Unlock()
	if start {
		go n.learnMissing()
	}
	return reported
}

// learnMissing reads the identity of every host not learned yet, at once,
// bounded by learnTimeout. The drivers keep a failure for a while, so a
// host that is down is not asked on every unknown name.
func (n *hostNames) learnMissing() {
	defer func() {
		n.mu.Lock()
		n.learning = false
		n.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), learnTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for k, learn := range n.learners() {
		n.mu.Lock()
		known := n.known[k]
		n.mu.Unlock()
		if known {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := learn(ctx)
			if err != nil {
				n.log.Debug("read a host's identity", "host", k, "error", err)
				return
			}
			n.Learned(k, id)
		}()
	}
	wg.Wait()
}

// Learned records a host's identity, and warns once when it matches
// neither its ECX server name nor a configured name: hvro then translates
// what Hyper-V reports, but Hyper-V itself may not reach the host by the
// name hvro gives it (set replica_name).
func (n *hostNames) Learned(key string, id replica.Identity) {
	n.mu.Lock()
	if n.known[key] {
		n.mu.Unlock()
		return
	}
	h, configured := n.hosts[key]
	if !configured {
		n.mu.Unlock()
		return
	}
	n.known[key] = true
	for _, name := range []string{normName(id.FQDN), normName(id.ComputerName)} {
		if other, taken := n.byName[name]; taken && other != key {
			// Another host is configured under this name: the
			// configuration wins, the clash is worth a warning.
			n.log.Warn("a host's identity is configured as another server's name", "host", key, "identity", id.FQDN, "other", other)
			continue
		}
		if name != "" {
			n.learned[name] = key
		}
	}
	n.mu.Unlock()
	mismatch := !identityMatches(h, id)
	if mismatch {
		n.log.Warn("Hyper-V host identity differs from the ECX server name and from every name configured for it; set replica_name (or check the winrm URL)",
			"server", h.Server, "identity", id.FQDN, "replica_name", h.ReplicaName, "winrm_host", h.Host)
	} else {
		n.log.Debug("host identity", "server", h.Server, "identity", id.FQDN)
	}
	if n.metrics != nil {
		n.metrics.HostIdentity(key, mismatch)
	}
}

// identityMatches: the identity's short name is the ECX server name's, or
// the identity (or its short name) is the replica_name or the URL host.
func identityMatches(h config.Host, id replica.Identity) bool {
	if hostname.Same(id.FQDN, h.Server) {
		return true
	}
	for _, n := range []string{h.ReplicaName, h.Host} {
		if n != "" && (strings.EqualFold(normName(n), normName(id.FQDN)) || hostname.Same(n, id.FQDN) && !strings.Contains(normName(n), ".")) {
			return true
		}
	}
	return false
}

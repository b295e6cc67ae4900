package config

import (
	"net/url"
	"strings"
)

// Cluster returns the cluster named name (exact match).
func (c *Config) Cluster(name string) (*Cluster, bool) {
	for i := range c.Clusters {
		if c.Clusters[i].Name == name {
			return &c.Clusters[i], true
		}
	}
	return nil, false
}

// Pair returns the pair named name (exact match).
func (c *Config) Pair(name string) (*Pair, bool) {
	for i := range c.Pairs {
		if c.Pairs[i].Name == name {
			return &c.Pairs[i], true
		}
	}
	return nil, false
}

// PairsForGroup returns the pairs, in config order, with a side on that
// group of that cluster (exact names). Several pairs may share a group.
func (c *Config) PairsForGroup(cluster, group string) []*Pair {
	var out []*Pair
	for i := range c.Pairs {
		p := &c.Pairs[i]
		if p.Primary.Cluster == cluster && p.Primary.Group == group ||
			p.Replica.Cluster == cluster && p.Replica.Group == group {
			out = append(out, p)
		}
	}
	return out
}

// HookToken is the token the scripts of cluster authenticate with; unset
// (equal to nothing) for an unknown cluster.
func (c *Config) HookToken(cluster string) Secret {
	if cl, ok := c.Cluster(cluster); ok {
		return cl.HookToken
	}
	return Secret{}
}

// Host is how to reach one Hyper-V host over WinRM.
type Host struct {
	Cluster string
	Server  string // the ECX server name as written in the config
	URL     string // e.g. http://node1.corp.example:5985/wsman
	Host    string // host name or IP address of URL
	Port    int    // port of URL, or 5985 (http) / 5986 (https)
	HTTPS   bool
	WinRM   WinRM // the shared settings: username, password, auth, timeout, TLS, Kerberos
}

// ServerHost returns the Hyper-V host of an ECX server of cluster. Names
// compare case-insensitively; when none matches whole, the first labels
// are compared ("node1" matches "NODE1.corp.example", as ECX, Hyper-V and
// Windows spell one machine differently), if exactly one server matches.
func (c *Config) ServerHost(cluster, server string) (Host, bool) {
	cl, ok := c.Cluster(cluster)
	if !ok || server == "" {
		return Host{}, false
	}
	for name := range cl.Servers {
		if strings.EqualFold(name, server) {
			return c.host(cl, name)
		}
	}
	short := func(s string) string { s, _, _ = strings.Cut(s, "."); return s }
	match := ""
	for name := range cl.Servers {
		if strings.EqualFold(short(name), short(server)) {
			if match != "" {
				return Host{}, false // ambiguous: guessing could pick the wrong host
			}
			match = name
		}
	}
	if match == "" {
		return Host{}, false
	}
	return c.host(cl, match)
}

// Hosts returns every Hyper-V host of cluster, ordered by server name.
func (c *Config) Hosts(cluster string) []Host {
	cl, ok := c.Cluster(cluster)
	if !ok {
		return nil
	}
	var out []Host
	for _, name := range sortedKeys(cl.Servers) {
		if h, ok := c.host(cl, name); ok {
			out = append(out, h)
		}
	}
	return out
}

func (c *Config) host(cl *Cluster, name string) (Host, bool) {
	raw := cl.Servers[name].WinRM
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Hostname() == "" {
		return Host{}, false
	}
	return Host{
		Cluster: cl.Name,
		Server:  name,
		URL:     u.String(),
		Host:    u.Hostname(),
		Port:    urlPort(u),
		HTTPS:   u.Scheme == "https",
		WinRM:   c.WinRM,
	}, true
}

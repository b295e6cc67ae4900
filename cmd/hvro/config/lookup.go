package config

import (
	"maps"
	"net/url"
	"slices"
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

// Host is how to reach one Hyper-V host over WinRM.
type Host struct {
	Cluster string
	Server  string // the ECX server name as written in the config
	URL     string // e.g. http://node1.corp.example:5985/wsman
	Host    string // host name or IP address of URL
	Port    int    // port of URL, or 5985 (http) / 5986 (https)
	HTTPS   bool
	// ReplicaName is clusters[].servers.NAME.replica_name ("" when not set).
	ReplicaName string
	WinRM       WinRM // the shared settings: username, password, auth, timeout, TLS
}

// Hosts returns every Hyper-V host of cluster, ordered by server name.
func (c *Config) Hosts(cluster string) []Host {
	cl, ok := c.Cluster(cluster)
	if !ok {
		return nil
	}
	var out []Host
	for _, name := range slices.Sorted(maps.Keys(cl.Servers)) {
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
		Cluster:     cl.Name,
		Server:      name,
		URL:         u.String(),
		Host:        u.Hostname(),
		Port:        urlPort(u),
		HTTPS:       u.Scheme == "https",
		ReplicaName: cl.Servers[name].ReplicaName,
		WinRM:       c.WinRM,
	}, true
}

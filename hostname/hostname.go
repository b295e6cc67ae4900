// Package hostname compares host names the way they must be compared
// across ECX, Hyper-V and Windows: ECX reports short server names, Hyper-V
// Replica reports FQDNs, and Windows ignores case.
package hostname

import (
	"net"
	"strings"
)

// Short is the lower-case first label of a host name ("node1" for
// "NODE1.corp.example."); IP addresses stay whole.
func Short(name string) string {
	s := strings.ToLower(strings.TrimSpace(name))
	if s == "" || net.ParseIP(strings.Trim(s, "[]")) != nil {
		return s
	}
	s = strings.TrimSuffix(s, ".")
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i]
	}
	return s
}

// Same reports whether a and b name the same host: "node1" = "NODE1" =
// "node1.lab.local". An empty name matches nothing.
func Same(a, b string) bool {
	a = Short(a)
	return a != "" && a == Short(b)
}

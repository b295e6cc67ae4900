package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hvro/hvro/hostname"
	"github.com/hvro/hvro/replica"
)

// Validate checks every rule that needs no I/O and returns Problems, or
// nil. Load and Parse also read every file and variable the config names;
// a Secret already set (NewSecret, for configs built in code) stands in
// for its *_file or *_env.
func (c *Config) Validate() error {
	k := &checker{problems: &problems{lines: c.lines}, c: c}
	k.run()
	if err := k.err(); err != nil {
		return err
	}
	c.Warnings = k.sortedWarnings()
	return nil
}

// checker applies the rules; with io set it also reads files and secrets.
type checker struct {
	*problems
	c  *Config
	io *loader
	// servers maps lower-case server names to the first cluster using them:
	// Hyper-V replicates between servers by name, so a name may not stand
	// for two machines.
	servers map[string]string
}

// minTokenLen keeps bearer tokens out of guessing range.
const minTokenLen = 16

// labelSafe names are also Prometheus label values and log keys.
var labelSafe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,63}$`)

func (k *checker) run() {
	c := k.c
	k.listen()
	k.tls()
	if c.DataDir == "" {
		k.add("data_dir", "required: the folder of the store (hvro.db)")
	} else if k.io != nil {
		k.io.dir(k, "data_dir", c.DataDir)
	}
	k.oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error")
	k.oneOf("log_format", c.LogFormat, "json", "text")
	k.durationIn("resync_interval", c.ResyncInterval, time.Second, 24*time.Hour)
	k.intIn("workers", c.Workers, 1, 256)
	k.durationIn("shutdown_timeout", c.ShutdownTimeout, time.Second, time.Hour)
	// The API caps every wait at 30m too (CONTRACTS: "at most 30m").
	if c.Hooks.MaxWait < 0 || c.Hooks.MaxWait > 30*time.Minute {
		k.add("hooks.max_wait", "%s is out of range; use 0 (answer at once) up to 30m", fmtDuration(c.Hooks.MaxWait))
	}
	k.intIn("retry.max_attempts", c.Retry.MaxAttempts, 1, 100)
	k.durationIn("retry.initial_backoff", c.Retry.InitialBackoff, time.Millisecond, time.Hour)
	if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		k.add("retry.max_backoff", "%s is below retry.initial_backoff (%s)", fmtDuration(c.Retry.MaxBackoff), fmtDuration(c.Retry.InitialBackoff))
	} else {
		k.durationIn("retry.max_backoff", c.Retry.MaxBackoff, time.Millisecond, time.Hour)
	}

	k.secret("auth", "admin_token", c.Auth.AdminTokenFile, c.Auth.AdminTokenEnv, &c.Auth.AdminToken, true,
		"the admin bearer token of /v1; a service without one would let anyone fail VMs over")
	k.winrm()
	hosts := map[string]string{} // host:port -> path of the server that has it
	names := map[string]int{}
	if len(c.Clusters) == 0 {
		k.add("clusters", "required: the ECX clusters hvro bridges (usually two)")
	}
	for i := range c.Clusters {
		k.cluster(i, names, hosts)
	}
	k.uniqueReplicaNames()
	k.pairs()
	k.distinctTokens()
	k.cleartext()
}

// sortedWarnings returns the warnings in file order.
func (k *checker) sortedWarnings() []Warning {
	ws := slices.Clone(k.warnings)
	slices.SortStableFunc(ws, func(a, b Warning) int { return a.Line - b.Line })
	return ws
}

// cleartext warns where a secret would cross the network unencrypted:
// winrm.auth basic over an http URL sends the WinRM password base64
// encoded with every request, and the API without tls carries the admin
// and hook tokens in the clear to anyone on the path. Neither is refused:
// a lab, or a network hvro's operators trust, may want them.
func (k *checker) cleartext() {
	c := k.c
	if c.WinRM.Auth == WinRMBasic {
		for i, cl := range c.Clusters {
			for _, name := range slices.Sorted(maps.Keys(cl.Servers)) {
				u, msg := checkURL(cl.Servers[name].WinRM)
				if msg == "" && u.Scheme == "http" {
					k.warn("winrm.auth", "basic over http://%s (%s) sends the password in cleartext; use ntlm, or https URLs",
						u.Host, fieldPath(indexPath("clusters", i)+".servers", name))
				}
			}
		}
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err == nil && !c.TLS.Enabled() && !loopback(host) {
		where := quote(c.Listen)
		if host == "" || host == "0.0.0.0" || host == "::" {
			where += " (every interface)"
		}
		k.warn("listen", "%s is not a loopback address and tls is not set: the admin token and hook tokens cross the network in cleartext; set tls.cert_file and tls.key_file", where)
	}
}

// loopback reports a listen host that only this machine can reach.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (k *checker) listen() {
	host, port, err := net.SplitHostPort(k.c.Listen)
	if err != nil {
		k.add("listen", "%s is not host:port (e.g. \"127.0.0.1:8080\", \":8080\")", quote(k.c.Listen))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		k.add("listen", "port %s is not a number from 0 to 65535", quote(port))
	}
	if strings.ContainsAny(host, " /") {
		k.add("listen", "%s is not a host name or IP address", quote(host))
	}
}

func (k *checker) tls() {
	t := k.c.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		k.add("tls.key_file", "required when tls.cert_file is set (both or neither)")
	case t.CertFile == "" && t.KeyFile != "":
		k.add("tls.cert_file", "required when tls.key_file is set (both or neither)")
	case t.CertFile != "" && k.io != nil:
		k.io.keyPair(k, t.CertFile, t.KeyFile)
	}
}

func (k *checker) winrm() {
	w := &k.c.WinRM
	if w.Username == "" {
		k.add("winrm.username", `required: the account hvro uses on every Hyper-V host (e.g. CORP\svc-hvro)`)
	}
	k.secret("winrm", "password", w.PasswordFile, w.PasswordEnv, &w.Password, false, "the password of winrm.username")
	if w.Auth == "kerberos" {
		// The driver refuses it too (replica.New): say why here, before
		// serve does.
		k.add("winrm.auth", `"kerberos" is not supported: hvro does not use the WinRM library's Kerberos transport (it needs a krb5.conf, realm and SPN per host and has no message encryption); use "ntlm", or "basic" over https`)
	} else {
		k.oneOf("winrm.auth", w.Auth, WinRMBasic, WinRMNTLM)
	}
	k.durationIn("winrm.timeout", w.Timeout, time.Second, 10*time.Minute)
	// Each command holds one shell; Windows allows replica.MaxShells per user.
	k.intIn("winrm.max_concurrent_per_host", w.MaxConcurrentPerHost, 1, replica.MaxShells)
	// The driver's bounds (replica.New checks the same).
	k.durationIn("winrm.shell_idle_timeout", w.ShellIdleTimeout, replica.MinShellIdleTimeout, replica.MaxShellIdleTimeout)
	if floor := replica.WindowsMinShellIdleTimeout; w.ShellIdleTimeout >= replica.MinShellIdleTimeout && w.ShellIdleTimeout < floor {
		k.warn("winrm.shell_idle_timeout", "%s is below the %s Windows hosts grant at least: they keep an idle shell %s, longer than a restart of hvro waits for an orphaned command, and hvro refuses to run commands on a host that reports it; use at least %s (shorter values are for emulated labs)",
			fmtDuration(w.ShellIdleTimeout), fmtDuration(floor), fmtDuration(floor), fmtDuration(floor))
	}
	k.caFile("winrm", w.CAFile, w.InsecureSkipVerify)
}

// labelName checks the name of coll[i]: required, usable as a metric label,
// and unique among the names seen so far (name -> index).
func (k *checker) labelName(p, coll string, i int, name string, names map[string]int) {
	switch {
	case name == "":
		k.add(p+".name", "required")
	case !labelSafe.MatchString(name):
		k.add(p+".name", "%s: use 1 to 63 of A-Z a-z 0-9 _ . - (it is a metric label)", quote(name))
	default:
		if j, dup := names[name]; dup {
			k.add(p+".name", "%s is also the name of %s[%d]", quote(name), coll, j)
		} else {
			names[name] = i
		}
	}
}

func (k *checker) cluster(i int, names map[string]int, hosts map[string]string) {
	cl := &k.c.Clusters[i]
	p := indexPath("clusters", i)
	k.labelName(p, "clusters", i, cl.Name, names)

	api := &cl.API
	if len(api.Endpoints) == 0 {
		k.add(p+".api.endpoints", "required: at least one URL of the ECX API (FIP and/or nodes), e.g. http://192.0.2.10:29009")
	}
	seen := map[string]int{}
	for j, raw := range api.Endpoints {
		ep := indexPath(p+".api.endpoints", j)
		u, msg := checkURL(raw)
		switch {
		case msg != "":
			k.add(ep, "%s", msg)
			continue
		case u.Port() == "":
			k.add(ep, "%s has no port; the ECX API listens on 29009 unless changed, write it out", quote(raw))
		case u.Path != "" && u.Path != "/" && strings.TrimSuffix(u.Path, "/") != "/api/v1":
			k.add(ep, "%s: the path must be empty (hvro adds /api/v1/)", quote(raw))
		}
		key := strings.ToLower(u.Scheme + "://" + u.Host)
		if first, dup := seen[key]; dup {
			k.add(ep, "%s repeats endpoints[%d]", quote(raw), first)
		} else {
			seen[key] = j
		}
	}
	if api.Username == "" {
		k.add(p+".api.username", "required: the OS account the ECX API accepts (e.g. Administrator)")
	}
	k.secret(p+".api", "password", api.PasswordFile, api.PasswordEnv, &api.Password, false, "the password of api.username")
	k.caFile(p+".api", api.CAFile, api.InsecureSkipVerify)
	k.durationIn(p+".api.timeout", api.Timeout, 100*time.Millisecond, 5*time.Minute)
	k.intIn(p+".api.retries", api.Retries, 0, 10)
	k.durationIn(p+".poll_interval", cl.PollInterval, time.Second, time.Hour)
	k.secret(p, "hook_token", cl.HookTokenFile, cl.HookTokenEnv, &cl.HookToken, true,
		"the token this cluster's start/stop scripts send with hvro hook")

	if len(cl.Servers) == 0 {
		k.add(p+".servers", "required: every ECX server of the cluster and its WinRM URL, e.g. node1: {winrm: \"http://node1:5985/wsman\"}")
	}
	folded := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(cl.Servers)) {
		sp := fieldPath(p+".servers", name)
		if !labelSafe.MatchString(name) {
			k.add(sp, "server name %s: use the ECX server name (1 to 63 of A-Z a-z 0-9 _ . -)", quote(name))
		} else if other, dup := folded[strings.ToLower(name)]; dup {
			k.add(sp, "%s and %s name the same server (server names ignore case)", quote(other), quote(name))
		} else if first, dup := k.servers[strings.ToLower(name)]; dup && cl.Name != "" {
			k.add(sp, "server %s is also a server of cluster %s: each server is one Hyper-V host, and Hyper-V replicates between hosts by name", quote(name), quote(first))
		} else {
			folded[strings.ToLower(name)] = name
			if k.servers == nil {
				k.servers = map[string]string{}
			}
			if cl.Name != "" {
				k.servers[strings.ToLower(name)] = cl.Name
			}
		}
		k.server(sp+".winrm", cl.Servers[name].WinRM, hosts)
		k.replicaName(sp+".replica_name", cl.Servers[name].ReplicaName)
	}
}

// replicaName checks the form of clusters[].servers.NAME.replica_name: a
// host name (Hyper-V refuses IP addresses). uniqueReplicaNames checks it
// names no other server.
func (k *checker) replicaName(path, name string) {
	if name == "" {
		return
	}
	trimmed := strings.TrimSuffix(name, ".")
	if net.ParseIP(strings.Trim(trimmed, "[]")) != nil {
		k.add(path, "%s is an IP address: Hyper-V Replica needs a host name", quote(name))
		return
	}
	if len(trimmed) > 253 || !hostNamePattern.MatchString(trimmed) {
		k.add(path, "%s is not a host name (letters, digits and '-' in dot-separated labels)", quote(name))
	}
}

// uniqueReplicaNames: a replica_name must not be another server's name,
// WinRM URL host or replica_name, so that every name Hyper-V reports
// stands for one host. Names compare as hvro compares hosts everywhere:
// by their short name (hostname.Short), so node2.corp.example is server
// node2 even when node2's URL holds an IP address.
func (k *checker) uniqueReplicaNames() {
	owner := map[string]string{} // short name -> server
	for _, cl := range k.c.Clusters {
		for _, h := range k.c.Hosts(cl.Name) {
			for _, n := range []string{h.Server, h.Host} {
				if n == "" || net.ParseIP(strings.Trim(n, "[]")) != nil || strings.EqualFold(n, "localhost") {
					continue
				}
				if _, taken := owner[hostname.Short(n)]; !taken {
					owner[hostname.Short(n)] = h.Server
				}
			}
		}
	}
	for i, cl := range k.c.Clusters {
		for _, name := range slices.Sorted(maps.Keys(cl.Servers)) {
			rn := hostname.Short(cl.Servers[name].ReplicaName)
			if rn == "" {
				continue
			}
			if other, taken := owner[rn]; taken && !strings.EqualFold(other, name) {
				k.add(fieldPath(fmt.Sprintf("clusters[%d].servers", i), name)+".replica_name",
					"%s already names server %s: each name must stand for one host", quote(cl.Servers[name].ReplicaName), other)
				continue
			}
			owner[rn] = name
		}
	}
}

var hostNamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func (k *checker) server(path, raw string, hosts map[string]string) {
	if raw == "" {
		k.add(path, "required: the host's WS-Management URL, e.g. http://node1.corp.example:5985/wsman")
		return
	}
	u, msg := checkURL(raw)
	if msg != "" {
		k.add(path, "%s", msg)
		return
	}
	if u.Path != "/wsman" {
		k.add(path, "%s: the path must be /wsman", quote(raw))
	}
	if k.c.WinRM.HTTPS && u.Scheme != "https" {
		k.add(path, "%s is http but winrm.https is true", quote(raw))
	}
	key := strings.ToLower(u.Hostname()) + ":" + strconv.Itoa(urlPort(u))
	if first, dup := hosts[key]; dup {
		k.add(path, "%s is the same host as %s", quote(raw), first)
	} else {
		hosts[key] = path
	}
}

// urlPort is the URL's port, or the WinRM default of its scheme.
func urlPort(u *url.URL) int {
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	if u.Scheme == "https" {
		return 5986
	}
	return 5985
}

// checkURL accepts an http(s) URL with a host and no credentials; msg says
// what is wrong otherwise, without echoing credentials.
func checkURL(raw string) (*url.URL, string) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		if strings.Contains(raw, "@") {
			return nil, "not a valid URL (value not shown: it may hold credentials)"
		}
		return nil, quote(raw) + " is not a valid URL"
	}
	if u.User != nil {
		return nil, fmt.Sprintf("the URL for host %s holds credentials (user:password@); put them in username and password_file instead", quote(u.Host))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, quote(raw) + " is not an http(s) URL"
	}
	if u.Hostname() == "" {
		return nil, quote(raw) + " has no host"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Sprintf("%s: port %s is not from 1 to 65535", quote(raw), quote(p))
		}
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, quote(raw) + " must not have a query or fragment"
	}
	return u, ""
}

var thumbprint = regexp.MustCompile(`^[0-9A-F]{40}$`)

func (k *checker) pairs() {
	clusters := map[string]bool{}
	for _, cl := range k.c.Clusters {
		clusters[cl.Name] = true
	}
	names := map[string]int{}
	vms := map[string]int{}
	configs := map[string]string{} // cluster + lower(path) -> path of its side
	for i := range k.c.Pairs {
		pr := &k.c.Pairs[i]
		p := indexPath("pairs", i)
		k.labelName(p, "pairs", i, pr.Name, names)
		vm := pr.VMName
		if vm == "" {
			vm = pr.Name
		}
		if msg := checkVMName(vm); msg != "" {
			k.add(p+".vm_name", "%s", msg)
		} else if j, dup := vms[strings.ToLower(vm)]; dup {
			k.add(p+".vm_name", "VM %s is also managed by pairs[%d]; two pairs would fight over it", quote(vm), j)
		} else {
			vms[strings.ToLower(vm)] = i
		}
		k.side(p+".primary", pr.Primary, clusters, configs)
		k.side(p+".replica", pr.Replica, clusters, configs)
		if pr.Primary.Cluster != "" && pr.Primary.Cluster == pr.Replica.Cluster {
			k.add(p+".replica.cluster", "%s is also the primary cluster; a pair replicates between two clusters", quote(pr.Replica.Cluster))
		}
		k.replication(p+".replication", &pr.Replication)
	}
}

func (k *checker) side(p string, s Side, clusters map[string]bool, configs map[string]string) {
	switch {
	case s.Cluster == "":
		k.add(p+".cluster", "required")
	case !clusters[s.Cluster]:
		k.add(p+".cluster", "%s is not in clusters", quote(s.Cluster))
	}
	if s.Group == "" {
		k.add(p+".group", "required: the ECX failover group that holds the VM's disk")
	} else if hasControl(s.Group) {
		k.add(p+".group", "%s holds a control character", quote(s.Group))
	}
	if msg := checkVMConfigPath(s.VMConfigPath); msg != "" {
		k.add(p+".vm_config_path", "%s", msg)
		return
	}
	key := s.Cluster + "\x00" + strings.ToLower(s.VMConfigPath)
	if first, dup := configs[key]; dup {
		k.add(p+".vm_config_path", "%s is also %s: two pairs cannot share one VM", quote(s.VMConfigPath), first)
	} else {
		configs[key] = p + ".vm_config_path"
	}
}

func (k *checker) replication(p string, r *Replication) {
	if r.Port < 1 || r.Port > 65535 {
		k.add(p+".port", "%d is not a port from 1 to 65535 (Hyper-V Replica listens on 80 for Kerberos, 443 for Certificate)", r.Port)
	}
	k.oneOf(p+".authentication", r.Authentication, AuthKerberos, AuthCertificate)
	switch {
	case r.Authentication == AuthCertificate && r.CertificateThumbprint == "":
		k.add(p+".certificate_thumbprint", "required with authentication: Certificate")
	case r.Authentication == AuthCertificate && !thumbprint.MatchString(r.CertificateThumbprint):
		k.add(p+".certificate_thumbprint", "%s is not 40 hex digits (copying from the certificate dialog can add invisible characters)", quote(r.CertificateThumbprint))
	case r.Authentication == AuthKerberos && r.CertificateThumbprint != "":
		k.add(p+".certificate_thumbprint", "set, but authentication is Kerberos; Hyper-V refuses a thumbprint with Kerberos")
	}
	switch r.Frequency {
	case 30 * time.Second, 300 * time.Second, 900 * time.Second:
	default:
		f := fmtDuration(r.Frequency)
		if r.Frequency%time.Second == 0 {
			f = strconv.FormatInt(int64(r.Frequency/time.Second), 10) + "s" // as Hyper-V counts
		}
		k.add(p+".frequency", "%s is not allowed; Hyper-V replicates every 30s, 300s or 900s", f)
	}
	k.oneOf(p+".initial", r.Initial, InitialUseExisting, InitialNetwork)
}

// checkVMName follows Hyper-V: up to 100 characters, no control characters.
func checkVMName(vm string) string {
	switch {
	case strings.TrimSpace(vm) == "":
		return "required (empty means the pair's name, which is empty too)"
	case len([]rune(vm)) > 100:
		return fmt.Sprintf("%s is longer than Hyper-V's 100 characters", quote(vm))
	case hasControl(vm):
		return fmt.Sprintf("%s holds a control character", quote(vm))
	case vm != strings.TrimSpace(vm):
		return fmt.Sprintf("%s starts or ends with a space", quote(vm))
	}
	return ""
}

var (
	drivePath = regexp.MustCompile(`^[A-Za-z]:\\[^\\]`)
	uncPath   = regexp.MustCompile(`^\\\\[^\\]+\\[^\\]+\\[^\\]`)
)

// checkVMConfigPath wants an absolute Windows path (drive or UNC) to a .vmcx.
func checkVMConfigPath(p string) string {
	const eg = `such as 'T:\VMs\Virtual Machines\<VM id>.vmcx'`
	switch {
	case p == "":
		return "required: the VM's configuration file on this side's disk, " + eg
	case hasControl(p) || strings.ContainsAny(p, `<>"|?*`):
		return fmt.Sprintf("%s holds a character Windows does not allow in a path", quote(p))
	case strings.Contains(p, "/"):
		return fmt.Sprintf("%s: use backslashes (\\) as Windows does", quote(p))
	case !drivePath.MatchString(p) && !uncPath.MatchString(p):
		return fmt.Sprintf("%s is not an absolute Windows path %s", quote(p), eg)
	case strings.Contains(p[2:], ":"):
		return fmt.Sprintf("%s has a colon after the drive", quote(p))
	case !strings.HasSuffix(strings.ToLower(p), ".vmcx"):
		return fmt.Sprintf("%s does not end in .vmcx (the VM's configuration file)", quote(p))
	}
	for _, seg := range strings.Split(p, `\`)[1:] {
		if seg == "." || seg == ".." {
			return fmt.Sprintf("%s holds a . or .. segment; write the path out", quote(p))
		}
	}
	return ""
}

func hasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

// secret checks one *_file / *_env pair under parent and, with io, reads it
// into dst. A token (admin, hook) must be long enough to resist guessing.
func (k *checker) secret(parent, base, file, env string, dst *Secret, token bool, what string) {
	fp, ep := fieldPath(parent, base+"_file"), fieldPath(parent, base+"_env")
	switch {
	case file != "" && env != "":
		k.add(ep, "set %s_file or %s_env, not both", base, base)
		return
	case file == "" && env == "" && dst.IsZero():
		k.add(fp, "required (or %s_env): %s", base, what)
		return
	}
	where := fp
	if k.io != nil && (file != "" || env != "") {
		var v string
		var ok bool
		if file != "" {
			v, ok = k.io.secretFile(k, fp, file)
		} else {
			where = ep
			v, ok = k.io.secretEnv(k, ep, env)
		}
		if !ok {
			return
		}
		*dst = NewSecret(v)
	} else if env != "" {
		where = ep
	}
	if token && !dst.IsZero() && len(dst.Value()) < minTokenLen {
		k.add(where, "the token has %d characters; use at least %d (e.g. openssl rand -hex 32)", len(dst.Value()), minTokenLen)
	}
}

// distinctTokens keeps every bearer token to one role: a hook token that
// equals another cluster's (or the admin token) would let one cluster's
// scripts act on the other's groups (or on the whole API).
func (k *checker) distinctTokens() {
	c := k.c
	tokenPath := func(i int) string {
		p := indexPath("clusters", i)
		if c.Clusters[i].HookTokenEnv != "" {
			return p + ".hook_token_env"
		}
		return p + ".hook_token_file"
	}
	for i := range c.Clusters {
		t := c.Clusters[i].HookToken
		if t.IsZero() {
			continue
		}
		if c.Auth.AdminToken.Equal(t.Value()) {
			k.add(tokenPath(i), "the same token as auth.admin_token; a hook token must not open the admin API")
		}
		for j := range i {
			if c.Clusters[j].HookToken.Equal(t.Value()) {
				k.add(tokenPath(i), "the same token as clusters[%d]; each cluster needs its own, or its scripts could act on the other's groups", j)
			}
		}
	}
}

func (k *checker) caFile(parent, caFile string, insecure bool) {
	if caFile != "" && insecure {
		k.add(parent+".insecure_skip_verify", "set ca_file or insecure_skip_verify, not both")
		return
	}
	if caFile != "" && k.io != nil {
		k.io.caFile(k, parent+".ca_file", caFile)
	}
}

func (k *checker) oneOf(path, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	k.add(path, "%s is not one of %s", quote(v), strings.Join(allowed, ", "))
}

func (k *checker) intIn(path string, v, lo, hi int) {
	if v < lo || v > hi {
		k.add(path, "%d is out of range; use %d to %d", v, lo, hi)
	}
}

func (k *checker) durationIn(path string, v, lo, hi time.Duration) {
	if v < lo || v > hi {
		k.add(path, "%s is out of range; use %s to %s", fmtDuration(v), fmtDuration(lo), fmtDuration(hi))
	}
}

// fmtDuration writes d in the largest whole unit ("5m", not "5m0s").
func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

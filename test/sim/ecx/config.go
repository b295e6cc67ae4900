package ecx

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Config describes one emulated cluster.
type Config struct {
	Name               string // cluster name
	Username, Password string // HTTP Basic auth of the API (an OS account on a real cluster)
	Servers            []string
	Groups             []GroupConfig
	Timing             Timing // zero values get small defaults so tests are fast
}

// GroupConfig describes one failover group. Each group holds three resources
// that start in dependency order: the shared disk (type "sd", named Disk),
// a floating IP "fip-<group>" and the script resource "script-<group>".
type GroupConfig struct {
	Name    string
	Owner   string // initial owner; "" = offline at start. New runs no start script for it.
	Disk    string // name of the sd resource; the lab maps it to a Hyper-V disk
	Scripts Scripts
}

// Scripts are the start.bat/stop.bat of the group's script resource, as argv.
type Scripts struct {
	Start, Stop []string      // empty = no script (the resource starts and stops at once)
	Timeout     time.Duration // per run; default 5m; a timeout is a failure
	Dir         string        // CLP_SCRIPT_PATH and working directory; default a temporary directory per group
	Env         []string      // appended to os.Environ(); CLP_* and COMPUTERNAME are set after it
}

// Timing sets how long the emulated cluster takes for its transitions.
type Timing struct {
	Pending    time.Duration // least time a group shows Offline Pending / Online Pending
	DiskSwitch time.Duration // time a shared disk takes to come online on a server
}

const (
	defaultPending       = 20 * time.Millisecond
	defaultDiskSwitch    = 10 * time.Millisecond
	defaultScriptTimeout = 5 * time.Minute
)

// ECX object names end up in URL paths and in Windows host names; the
// emulator keeps them to the characters both accept.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// validate reports every problem of the configuration, not just the first.
func (cfg *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	checkName := func(field, v string) {
		if !namePattern.MatchString(v) {
			bad("%s: %q is not a valid name (letters, digits, '_', '.', '-'; up to 63)", field, v)
		}
	}
	checkName("name", cfg.Name)
	if cfg.Username == "" {
		bad("username: empty; the API needs Basic auth")
	}
	if len(cfg.Servers) == 0 {
		bad("servers: empty; a cluster needs at least one server")
	}
	servers := map[string]bool{}
	for i, s := range cfg.Servers {
		checkName(fmt.Sprintf("servers[%d]", i), s)
		key := strings.ToLower(s)
		if servers[key] {
			bad("servers[%d]: %q appears twice (server names are case-insensitive)", i, s)
		}
		servers[key] = true
	}
	groups := map[string]bool{}
	resources := map[string]string{}
	addResource := func(field, name string) {
		if prev, ok := resources[strings.ToLower(name)]; ok {
			bad("%s: resource name %q is also used by %s", field, name, prev)
			return
		}
		resources[strings.ToLower(name)] = field
	}
	for i, g := range cfg.Groups {
		field := fmt.Sprintf("groups[%d]", i)
		checkName(field+".name", g.Name)
		if groups[strings.ToLower(g.Name)] {
			bad("%s.name: %q appears twice", field, g.Name)
		}
		groups[strings.ToLower(g.Name)] = true
		if g.Owner != "" && !servers[strings.ToLower(g.Owner)] {
			bad("%s.owner: %q is not one of servers %v", field, g.Owner, cfg.Servers)
		}
		checkName(field+".disk", g.Disk)
		addResource(field+".disk", g.Disk)
		addResource(field+" (fip)", fipName(g.Name))
		addResource(field+" (script)", scriptName(g.Name))
		for _, sc := range []struct {
			name string
			argv []string
		}{{"start", g.Scripts.Start}, {"stop", g.Scripts.Stop}} {
			if len(sc.argv) > 0 && sc.argv[0] == "" {
				bad("%s.scripts.%s: argv[0] is empty", field, sc.name)
			}
		}
		if g.Scripts.Timeout < 0 {
			bad("%s.scripts.timeout: %s is negative", field, g.Scripts.Timeout)
		}
	}
	if cfg.Timing.Pending < 0 || cfg.Timing.DiskSwitch < 0 {
		bad("timing: durations must not be negative (pending %s, disk_switch %s)", cfg.Timing.Pending, cfg.Timing.DiskSwitch)
	}
	return errors.Join(errs...)
}

func fipName(group string) string    { return "fip-" + group }
func scriptName(group string) string { return "script-" + group }

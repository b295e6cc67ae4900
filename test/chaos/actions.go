package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv"
)

// Kind is a kind of chaos action.
type Kind string

// The actions a seed draws from.
const (
	KindMove        Kind = "move"         // an admin moves a group inside a cluster
	KindMoveBoth    Kind = "move-both"    // a group moves in each cluster at once
	KindCrash       Kind = "crash"        // a node crashes; ECX fails its groups over
	KindCrashBoth   Kind = "crash-both"   // a node of each cluster crashes at once
	KindBoot        Kind = "boot"         // a crashed node comes back
	KindECXDown     Kind = "ecx-down"     // one ECX API endpoint stops answering
	KindECXUp       Kind = "ecx-up"       // the ECX endpoints answer again
	KindECXSlow     Kind = "ecx-slow"     // the next ECX answers hang until the client gives up
	KindECXError    Kind = "ecx-error"    // the next ECX answers are HTTP 500
	KindWinRMFault  Kind = "winrm-fault"  // the next calls of a cmdlet on a host fail with a named Hyper-V error
	KindLatency     Kind = "latency"      // a cmdlet takes long everywhere
	KindKill        Kind = "kill"         // hvro is killed with SIGKILL and started again
	KindPlanned     Kind = "failover"     // a planned failover of a pair
	KindUnplanned   Kind = "unplanned"    // an unplanned failover of a pair (fenced: refused while the primary answers)
	KindWait        Kind = "wait"         // nothing happens for a while
	KindClearFaults Kind = "clear-faults" // Hyper-V faults and latencies end
)

// Action is one step of a seed's run. The list is a pure function of the
// seed and the estate, so a seed replays the same actions.
type Action struct {
	Kind    Kind
	Cluster string
	Group   string
	Target  string // move: the new owner; crash/boot: the server
	Other   *Action
	Host    string // winrm-fault
	Cmdlet  string // winrm-fault, latency
	Error   string // winrm-fault
	Times   int    // winrm-fault, ecx-slow, ecx-error
	MS      int    // latency
	Pair    string // failover, unplanned
	// Gap is how long the runner waits after starting this action before
	// it starts the next one; actions overlap when it is shorter than the
	// action itself.
	Gap time.Duration
}

func (a Action) String() string {
	var s string
	switch a.Kind {
	case KindMove:
		s = fmt.Sprintf("move %s/%s to %s", a.Cluster, a.Group, a.Target)
	case KindCrash:
		s = fmt.Sprintf("crash %s/%s", a.Cluster, a.Target)
	case KindBoot:
		s = fmt.Sprintf("boot %s/%s", a.Cluster, a.Target)
	case KindMoveBoth, KindCrashBoth:
		x, y := *a.Other, *a.Other.Other
		x.Gap, y.Gap = 0, 0
		s = fmt.Sprintf("at once: %s and %s", strings.TrimSuffix(x.String(), " (then 0s)"), strings.TrimSuffix(y.String(), " (then 0s)"))
	case KindECXDown:
		s = fmt.Sprintf("ECX endpoint %s of %s down", a.Target, a.Cluster)
	case KindECXUp:
		s = fmt.Sprintf("ECX endpoints of %s up", a.Cluster)
	case KindECXSlow, KindECXError:
		s = fmt.Sprintf("%s: the next %d ECX answers of %s", a.Kind, a.Times, a.Cluster)
	case KindWinRMFault:
		s = fmt.Sprintf("%s on %s fails %d time(s) with %s", a.Cmdlet, a.Host, a.Times, a.Error)
	case KindLatency:
		s = fmt.Sprintf("%s takes %dms", a.Cmdlet, a.MS)
	case KindKill:
		s = "kill -9 hvro and start it again"
	case KindPlanned:
		s = "planned failover of " + a.Pair
	case KindUnplanned:
		s = "unplanned failover of " + a.Pair
	default:
		s = string(a.Kind)
	}
	return fmt.Sprintf("%s (then %s)", s, a.Gap)
}

// The cmdlets hvro's steps use, and the named errors the emulator can
// make them fail with: its whole catalogue (test/sim/hyperv/errors.go).
var (
	faultCmdlets = []string{"Start-VM", "Stop-VM", "Import-VM", "Enable-VMReplication", "Start-VMInitialReplication",
		"Remove-VMReplication", "Resume-VMReplication", "Get-VM", "Get-VMReplication", "Set-VMReplication", "Start-VMFailover",
		"Complete-VMFailover", "Compare-VM", "Remove-VMSavedState"}
	faultErrors = hyperv.FaultNames()
	slowCmdlets = []string{"Start-VM", "Stop-VM", "Enable-VMReplication", "Remove-VMReplication", "Get-VM", "Import-VM"}
)

// commandTimeout is hvro's winrm.timeout in the chaos lab; a latency
// beyond it makes hvro abandon the command (its shell is deleted, which
// cancels the command on the host).
const commandTimeout = 4 * time.Second

// shellIdleTimeout is hvro's winrm.shell_idle_timeout in the chaos lab
// (the lab's hosts grant it): a command orphaned by kill -9 is cancelled
// this long after the dead hvro's last request, and the restarted hvro
// holds the pair at least as long.
const shellIdleTimeout = 2 * time.Second

// weights says how often each kind is drawn.
var weights = []struct {
	kind Kind
	w    int
}{
	{KindMove, 14}, {KindMoveBoth, 6}, {KindCrash, 8}, {KindCrashBoth, 3}, {KindBoot, 8},
	{KindECXDown, 4}, {KindECXUp, 3}, {KindECXSlow, 3}, {KindECXError, 3},
	{KindWinRMFault, 10}, {KindLatency, 4}, {KindClearFaults, 2}, {KindKill, 6},
	{KindPlanned, 6}, {KindUnplanned, 2}, {KindWait, 3},
}

// generate draws steps actions for a seed. It keeps a small model of the
// estate (which nodes are down, who owns a group) only so that the actions
// make sense (a crash leaves its cluster a node to fail over to); the
// emulators may still refuse one, which the run records, not as a failure.
func generate(seed uint64, steps int, e estate) []Action {
	rng := rand.New(rand.NewPCG(seed, 0x68766f726f))
	down := map[string]bool{}
	owner := map[string]string{}
	for _, c := range clusterNames {
		for n, g := range e.groups[c] {
			owner[c+"/"+g] = servers[c][n%2]
		}
	}
	total := 0
	for _, w := range weights {
		total += w.w
	}
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	upIn := func(c string) []string {
		var out []string
		for _, s := range servers[c] {
			if !down[s] {
				out = append(out, s)
			}
		}
		return out
	}
	move := func(c string) *Action {
		g := pick(e.groups[c])
		var targets []string
		for _, s := range upIn(c) {
			if s != owner[c+"/"+g] {
				targets = append(targets, s)
			}
		}
		if len(targets) == 0 {
			return nil
		}
		t := pick(targets)
		owner[c+"/"+g] = t
		return &Action{Kind: KindMove, Cluster: c, Group: g, Target: t}
	}
	crash := func(c string) *Action {
		up := upIn(c)
		if len(up) < 2 {
			return nil // keep a node to fail over to
		}
		s := pick(up)
		down[s] = true
		for k, o := range owner {
			if o == s && strings.HasPrefix(k, c+"/") {
				owner[k] = upIn(c)[0]
			}
		}
		return &Action{Kind: KindCrash, Cluster: c, Target: s}
	}
	var out []Action
	for len(out) < steps {
		n := rng.IntN(total)
		var kind Kind
		for _, w := range weights {
			if n < w.w {
				kind = w.kind
				break
			}
			n -= w.w
		}
		c := pick(clusterNames)
		var a *Action
		switch kind {
		case KindMove:
			a = move(c)
		case KindMoveBoth:
			if x, y := move("cluster1"), move("cluster2"); x != nil && y != nil {
				x.Other = y
				a = &Action{Kind: kind, Other: x}
			}
		case KindCrash:
			a = crash(c)
		case KindCrashBoth:
			if x, y := crash("cluster1"), crash("cluster2"); x != nil && y != nil {
				x.Other = y
				a = &Action{Kind: kind, Other: x}
			}
		case KindBoot:
			var ds []string
			for _, s := range servers[c] {
				if down[s] {
					ds = append(ds, s)
				}
			}
			if len(ds) > 0 {
				s := pick(ds)
				down[s] = false
				a = &Action{Kind: kind, Cluster: c, Target: s}
			}
		case KindECXDown:
			a = &Action{Kind: kind, Cluster: c, Target: pick([]string{"fip", servers[c][1]})}
		case KindECXUp:
			a = &Action{Kind: kind, Cluster: c}
		case KindECXSlow, KindECXError:
			a = &Action{Kind: kind, Cluster: c, Times: 1 + rng.IntN(3)}
		case KindWinRMFault:
			a = &Action{Kind: kind, Host: pick(servers[c]), Cmdlet: pick(faultCmdlets), Error: pick(faultErrors), Times: 1 + rng.IntN(3)}
		case KindLatency:
			a = &Action{Kind: kind, Cmdlet: pick(slowCmdlets), MS: 100 + rng.IntN(900)}
			if rng.IntN(4) == 0 {
				// Longer than hvro waits for a command: a timeout.
				a.MS = int(commandTimeout/time.Millisecond) + 500 + rng.IntN(1000)
			}
		case KindPlanned, KindUnplanned:
			a = &Action{Kind: kind, Pair: e.vms[rng.IntN(len(e.vms))].name}
		case KindKill, KindWait, KindClearFaults:
			a = &Action{Kind: kind}
		}
		if a == nil {
			continue
		}
		// Short gaps interleave actions; now and then a longer one lets
		// hvro get somewhere first.
		a.Gap = time.Duration(rng.IntN(400)) * time.Millisecond
		if rng.IntN(4) == 0 {
			a.Gap = time.Duration(500+rng.IntN(1500)) * time.Millisecond
		}
		out = append(out, *a)
	}
	return out
}

// faultKinds are the kinds counted as faults in a report.
var faultKinds = []Kind{KindCrash, KindCrashBoth, KindECXDown, KindECXSlow, KindECXError, KindWinRMFault, KindLatency, KindKill}

func isFault(k Kind) bool { return slices.Contains(faultKinds, k) }

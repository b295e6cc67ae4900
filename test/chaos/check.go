package chaos

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hvro/hvro/store"
	"github.com/hvro/hvro/test/invariant"
	"github.com/hvro/hvro/test/sim/ecx"
	"github.com/hvro/hvro/test/sim/hyperv"
)

// checker watches a run and records every broken invariant, from the
// emulators' own records (the lab's state and command log) and hvro's
// journal:
//   - I1: no two hosts run a VM at once (the lab's dual_runs, and a count
//     of running copies in every sample);
//   - I2: a VM runs only where ECX has its group's disk online;
//   - I6: only the primary side's copy runs, and the primary role moves
//     only by a failover whose role switch the journal records;
//   - I3: no two operations of a pair act at once (journal), no two
//     commands that change a VM overlap (command log);
//   - I5: every operation ends; none is left running;
//   - evacuation: no disk leaves a VM running on a live host after the
//     stop hook answered ok (the lab's lost_running, ECX's script runs);
//   - hvro's log holds no panic and no race report.
type checker struct {
	r        *run
	quit     chan struct{}
	done     chan struct{}
	watching atomic.Bool

	mu   sync.Mutex
	errs []Violation
	seen map[string]bool
	// primary is each pair's primary cluster as hvro last said; flux
	// holds, per pair, until when either copy may run (a failover was
	// asked for or is running, plus a grace for sampling skew).
	primary map[string]string
	flux    map[string]time.Time
	// cmds is the command log, collected as the run goes (the lab keeps
	// only the latest records); scripts likewise ECX's script runs.
	cmds    map[string]hyperv.CommandRecord
	scripts map[string]ecx.ScriptRun
}

// fluxGrace covers the time between a failover's end and the checker
// learning of it.
const fluxGrace = 2 * time.Second

func newChecker(r *run) *checker {
	c := &checker{r: r, quit: make(chan struct{}), done: make(chan struct{}), seen: map[string]bool{},
		primary: map[string]string{}, flux: map[string]time.Time{}, cmds: map[string]hyperv.CommandRecord{},
		scripts: map[string]ecx.ScriptRun{}}
	for _, v := range r.est.vms {
		c.primary[v.name] = "cluster1"
	}
	return c
}

func (c *checker) violate(inv, evidence string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := inv + evidence
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	c.errs = append(c.errs, Violation{At: time.Now(), Invariant: inv, Evidence: evidence})
}

func (c *checker) violations() []Violation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.errs)
}

// failoverRequested lets either copy of pair run until the failover has
// ended (the checker sees its operation end) and a grace after.
func (c *checker) failoverRequested(pair string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flux[pair] = time.Now().Add(time.Hour)
}

func (c *checker) watch() {
	c.watching.Store(true)
	defer close(c.done)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-c.quit:
			return
		case <-tick.C:
		}
		if n%8 == 0 {
			c.readHvro()
			c.collectLog()
		}
		n++
		c.sample()
	}
}

func (c *checker) stop() {
	select {
	case <-c.quit:
		return
	default:
		close(c.quit)
	}
	if !c.watching.Load() {
		return // watch never ran (the estate never converged)
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
	}
}

// readHvro updates the primary roles and failovers in flight from hvro's
// API; while hvro is down the last word stands.
func (c *checker) readHvro() {
	// Operations first: a failover that ends between the two reads is
	// then still seen running, never with its old primary and no flux.
	var ops struct{ Operations []store.Operation }
	if status, err := c.r.api("GET", "/v1/operations?limit=200", nil, &ops); err != nil || status != http.StatusOK {
		return
	}
	pairs, err := c.r.pairs()
	if err != nil {
		return
	}
	running := map[string]bool{}
	for _, op := range ops.Operations {
		if (op.Kind == store.OpFailoverPlanned || op.Kind == store.OpFailoverUnplanned) && op.State == store.OpRunning {
			running[op.Pair] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, p := range pairs {
		c.primary[name] = p.Primary.Cluster
		if running[name] {
			c.flux[name] = time.Now().Add(time.Hour)
		} else if until, ok := c.flux[name]; ok && until.After(time.Now().Add(fluxGrace)) {
			c.flux[name] = time.Now().Add(fluxGrace)
		}
	}
}

// sample checks I1, I2 and the running side (I6) on one lab snapshot.
func (c *checker) sample() {
	st := c.r.lab.State()
	for _, d := range st.DualRuns {
		c.violate("I1", fmt.Sprintf("the lab saw two hosts run one VM: %+v", d))
	}
	for _, e := range st.Errors {
		c.violate("lab", "the lab could not apply an event: "+e)
	}
	c.mu.Lock()
	primary, flux := c.primary, c.flux
	c.mu.Unlock()
	runs := map[string][]string{}
	for _, h := range st.Hosts {
		for _, x := range h.VMs {
			if !x.Running {
				continue
			}
			v, ok := c.r.est.vmByID(x.ID)
			if !ok {
				continue
			}
			runs[v.name] = append(runs[v.name], h.Name)
			cl := c.r.est.clusterOfPath(x.ID, x.ConfigPath)
			if g := st.Group(cl, v.groups[cl]); g.DiskOnline != h.Name {
				c.violate("I2", fmt.Sprintf("%s runs on %s but ECX has the disk of %s/%s online on %q (group %s on %q)", v.name, h.Name, cl, v.groups[cl], g.DiskOnline, g.Status, g.Owner))
			}
			c.mu.Lock()
			want, until := primary[v.name], flux[v.name]
			c.mu.Unlock()
			if cl != want && time.Now().After(until) {
				c.violate("I6", fmt.Sprintf("the %s copy of %s runs on %s, but hvro holds %s as its primary cluster and no failover is under way", cl, v.name, h.Name, want))
			}
		}
	}
	for name, hosts := range runs {
		if len(hosts) > 1 {
			c.violate("I1", fmt.Sprintf("%s runs on %s at once", name, strings.Join(hosts, " and ")))
		}
	}
}

// collectLog adds the lab's latest commands and script runs to the
// checker's copies.
func (c *checker) collectLog() {
	recs := c.r.lab.World.Log()
	var runs []ecx.ScriptRun
	for _, name := range clusterNames {
		runs = append(runs, c.r.lab.Clusters[name].State().Scripts...)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rec := range recs {
		c.cmds[fmt.Sprintf("%d|%s|%s", rec.Time.UnixNano(), rec.Host, rec.CommandLine)] = rec
	}
	for _, run := range runs {
		c.scripts[fmt.Sprintf("%d|%s|%s|%s", run.Started.UnixNano(), run.Group, run.Server, run.Phase)] = run
	}
}

// hookOutcome is the outcome word "hvro hook" printed for ECX's log.
var hookOutcome = regexp.MustCompile(`\): (ok|pending|degraded|failed)\b`)

// auditEvacuations: a stop hook that answered ok has shut the VM down on
// the leaving host, so ECX never takes the disk from under it (the reason
// the stop hook exists; issue 8, item 22). The lab lists every VM whose
// disk went offline while it ran on a live host; each one's last stop
// script there before that must not have said ok. A hook that failed open
// (hvro killed) or said degraded (every stop refused) is not hvro
// breaking its word.
func (c *checker) auditEvacuations(lost []hyperv.LostRun) {
	c.mu.Lock()
	runs := make([]ecx.ScriptRun, 0, len(c.scripts))
	for _, r := range c.scripts {
		runs = append(runs, r)
	}
	c.mu.Unlock()
	for _, l := range lost {
		v, ok := c.r.est.vmByID(l.VMID)
		if !ok {
			continue
		}
		// The script that ran on that host for that group last before the
		// disk left: a stop script means a move or a stop the hook was told
		// of; a start script (or none) means the disk left without one
		// (the node crashed, a failover), which no hook can prevent.
		var last *ecx.ScriptRun
		for i, r := range runs {
			if strings.EqualFold(r.Server, l.Host) && strings.EqualFold(diskOf(r.Group), l.Disk) &&
				!r.Started.After(l.At) && (last == nil || r.Started.After(last.Started)) {
				last = &runs[i]
			}
		}
		if last == nil || last.Phase != "stop" {
			continue
		}
		if m := hookOutcome.FindStringSubmatch(last.Output); m != nil && m[1] == "ok" {
			c.violate("evacuation", fmt.Sprintf("at %s the disk %s left %s while %s ran there, after the stop hook (started %s) answered ok: %s",
				l.At.Format("15:04:05.000"), l.Disk, l.Host, v.name, last.Started.Format("15:04:05.000"), strings.TrimSpace(last.Output)))
		}
	}
}

// audit checks what only the whole run shows: I3 (journal and command
// log), I5 (no operation left running), I6 (each pair's primary role is
// what its recorded role switches make it) and hvro's log.
func (c *checker) audit() {
	c.collectLog()
	st, err := store.Open(filepath.Join(c.r.dir, "data", "hvro.db"), store.Options{ReadOnly: true})
	if err != nil {
		c.violate("I5", "the store cannot be opened after hvro stopped: "+err.Error())
		return
	}
	defer st.Close()
	var ops []store.Operation
	var pairs []store.Pair
	events := map[string][]store.Event{}
	err = st.View(func(tx store.Tx) error {
		var err error
		if ops, err = tx.Operations(store.OpFilter{}); err != nil {
			return err
		}
		if pairs, err = tx.Pairs(); err != nil {
			return err
		}
		for _, p := range pairs {
			if events[p.Name], err = tx.Events(store.EventFilter{Pair: p.Name}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		c.violate("I5", "the store cannot be read after hvro stopped: "+err.Error())
		return
	}
	byPair := map[string][]store.Operation{}
	byID := map[string]store.Operation{}
	for _, op := range ops {
		byPair[op.Pair] = append(byPair[op.Pair], op)
		byID[fmt.Sprint(op.ID)] = op
		if op.State == store.OpRunning {
			c.violate("I5", fmt.Sprintf("operation %d (%s of %s) was still running when hvro stopped after the run converged", op.ID, op.Kind, op.Pair))
		}
	}
	for _, v := range c.r.est.vms {
		list := byPair[v.name]
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		c.auditOps(v.name, list)
	}
	// I6: the role moves only by a failover, recorded: every role change
	// is a "primary-role" event committed with it, naming its operation,
	// which must be a failover of that pair; the stored role is the last
	// one they name.
	for _, p := range pairs {
		want := "cluster1"
		for _, e := range events[p.Name] {
			if e.Kind != "primary-role" {
				continue
			}
			op, ok := byID[e.Op]
			if !ok || op.Pair != p.Name || (op.Kind != store.OpFailoverPlanned && op.Kind != store.OpFailoverUnplanned) {
				c.violate("I6", fmt.Sprintf("%s's primary role moved (%q) without a failover operation of it (event op %q)", p.Name, e.Message, e.Op))
			}
			want = strings.TrimPrefix(e.Message, "the primary role moved to ")
		}
		if p.PrimaryCluster != want {
			c.violate("I6", fmt.Sprintf("%s's primary cluster is %s, but its recorded role switches make it %s", p.Name, p.PrimaryCluster, want))
		}
	}
	c.auditCommands()
	c.auditEvacuations(c.r.lab.State().LostRunning)
	// hvro serve's log, and the output of every hook it answered (the
	// same binary, race detector included).
	logs := map[string]string{}
	if b, err := os.ReadFile(c.r.logPath); err == nil {
		logs["hvro's log"] = string(b)
	}
	c.mu.Lock()
	for _, run := range c.scripts {
		logs[fmt.Sprintf("the %s script of %s on %s at %s", run.Phase, run.Group, run.Server, run.Started.Format("15:04:05.000"))] = run.Output
	}
	c.mu.Unlock()
	for where, text := range logs {
		for _, marker := range []string{"panic:", "fatal error:", "WARNING: DATA RACE"} {
			if i := strings.Index(text, marker); i >= 0 {
				c.violate("panic", fmt.Sprintf("%s holds %q: %s", where, marker, text[i:min(len(text), i+600)]))
			}
		}
	}
}

// auditOps: no two operations of a pair act at once (I3).
func (c *checker) auditOps(pair string, ops []store.Operation) {
	for _, msg := range invariant.OverlappingOperations(ops, time.Now()) {
		c.violate("I3", msg+" ("+pair+")")
	}
}

// auditCommands: no two commands that change one VM overlap on the hosts
// (I3), whatever hvro's journal says.
func (c *checker) auditCommands() {
	c.mu.Lock()
	recs := make([]hyperv.CommandRecord, 0, len(c.cmds))
	for _, r := range c.cmds {
		recs = append(recs, r)
	}
	c.mu.Unlock()
	for _, v := range c.r.est.vms {
		for _, msg := range invariant.OverlappingCommands(recs, v.name) {
			c.violate("I3", msg)
		}
	}
}

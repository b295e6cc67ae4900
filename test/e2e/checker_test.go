package e2e

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hvro/hvro/store"
	"github.com/hvro/hvro/test/invariant"
)

// checker watches the lab while a test runs and records every violation of
// the invariants of ARCHITECTURE.md that a sample or the command log can
// show: I1 (one runner), I2 (the VM runs only on the host that holds the
// primary group's disk, and only the primary copy runs), I3 (no two
// operations or mutating commands of the pair overlap), I6 (the primary
// role does not change without a failover operation).
type checker struct {
	e    *env
	mu   sync.Mutex
	errs []string
	seen map[string]bool
	quit chan struct{}
	done chan struct{}
	// primary holds the clusters the pair's primary role may be on: one,
	// or both while a failover runs.
	primary map[string]bool
}

// copies maps a cluster to the VM copy it holds and its group.
var copies = map[string]struct{ path, group string }{
	"cluster1": {primaryPath, "failover1"},
	"cluster2": {replicaPath, "failover2"},
}

// allowPrimary sets the clusters the primary role may be on.
func (c *checker) allowPrimary(clusters ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.primary = map[string]bool{}
	for _, cl := range clusters {
		c.primary[cl] = true
	}
}

func (c *checker) allowed() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for k, v := range c.primary {
		out[k] = v
	}
	return out
}

func startChecker(e *env) *checker {
	c := &checker{e: e, seen: map[string]bool{}, quit: make(chan struct{}), done: make(chan struct{}), primary: map[string]bool{"cluster1": true}}
	go c.run()
	return c
}

func (c *checker) violation(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.seen[msg] {
		c.seen[msg] = true
		c.errs = append(c.errs, time.Now().Format("15:04:05.000")+" "+msg)
	}
}

func (c *checker) run() {
	defer close(c.done)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
			c.sample()
		}
	}
}

func (c *checker) stop() {
	select {
	case <-c.quit:
	default:
		close(c.quit)
		<-c.done
	}
}

func (c *checker) sample() {
	st := c.e.state()
	if len(st.DualRuns) > 0 {
		c.violation("I1: two hosts ran vm1 at once: %+v", st.DualRuns)
	}
	for _, msg := range st.Errors {
		c.violation("lab could not apply an event: %s", msg)
	}
	allowed := c.allowed()
	for _, h := range st.Hosts {
		for _, v := range h.VMs {
			if v.ID != vmID || !v.Running {
				continue
			}
			cluster := "cluster1"
			if v.ConfigPath == replicaPath {
				cluster = "cluster2"
			}
			if !allowed[cluster] {
				c.violation("I2: the copy of %s (not the primary side) runs on %s", cluster, h.Name)
				continue
			}
			if g := st.Group(cluster, copies[cluster].group); g.DiskOnline != h.Name {
				c.violation("I2: vm1 runs on %s but the %s group's disk is online on %q (group %s on %q)", h.Name, cluster, g.DiskOnline, g.Status, g.Owner)
			}
		}
	}
}

// audit checks the journal and the command log (I3, I6).
func (c *checker) audit() {
	e := c.e
	var ops struct{ Operations []store.Operation }
	e.api("GET", "/v1/operations?pair=vm1&limit=1000", nil, &ops)
	for _, msg := range invariant.OverlappingOperations(ops.Operations, time.Now()) {
		c.violation("I3: %s (vm1)", msg)
	}
	for _, msg := range invariant.OverlappingCommands(e.lab.World.Log(), "vm1") {
		c.violation("I3: %s", msg)
	}
	if p := e.pair(); !c.allowed()[p.Primary.Cluster] {
		c.violation("I6: the primary role moved to %s without a failover operation", p.Primary.Cluster)
	}
}

// assertClean fails the test if any invariant was violated so far.
func (c *checker) assertClean() {
	c.e.t.Helper()
	c.audit()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		c.e.t.Fatalf("invariant violations:\n%s", strings.Join(c.errs, "\n"))
	}
}

package e2e

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hvro/hvro/test/invariant"
	"github.com/hvro/hvro/test/sim/hyperv"
)

func (e *env) move(cluster, group, target string) {
	e.t.Helper()
	e.control("POST", fmt.Sprintf("/sim/ecx/%s/groups/%s/move", cluster, group), map[string]string{"target": target})
}

func (e *env) serverDown(cluster, server string) {
	e.t.Helper()
	if err := e.serverDownErr(cluster, server); err != nil {
		e.t.Fatal(err)
	}
}

// serverDownErr is serverDown for other goroutines, where t.Fatal is not
// allowed: the caller fails the test.
func (e *env) serverDownErr(cluster, server string) error {
	return e.controlErr("POST", fmt.Sprintf("/sim/ecx/%s/servers/%s/down", cluster, server), nil)
}

func (e *env) serverUp(cluster, server string) {
	e.t.Helper()
	e.control("POST", fmt.Sprintf("/sim/ecx/%s/servers/%s/up", cluster, server), nil)
}

// commandsSince returns the mutating commands for vm1 since t.
func (e *env) commandsSince(t time.Time) []hyperv.CommandRecord {
	var out []hyperv.CommandRecord
	for _, r := range e.lab.World.Log() {
		if !r.Time.Before(t) && invariant.Mutating(r.Script) && strings.Contains(r.Script, "'vm1'") {
			out = append(out, r)
		}
	}
	return out
}

func describeCmds(cmds []hyperv.CommandRecord) string {
	var parts []string
	for _, c := range cmds {
		first := ""
		for _, l := range strings.Split(c.Script, "\n") {
			l = strings.TrimSpace(l)
			if invariant.Mutating(l + " ") {
				first = l
				break
			}
		}
		parts = append(parts, c.Host+": "+first)
	}
	return strings.Join(parts, "; ")
}

// TestScenarios runs the public Cluster-Set test plan, made precise, once
// with the ECX scripts calling hvro hook and once with hooks lost (hvro
// learns only by polling). The invariants are checked all along.
func TestScenarios(t *testing.T) {
	for _, hooks := range []bool{true, false} {
		name := "hooks delivered"
		if !hooks {
			name = "hooks lost"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOptions{hooks: hooks})
			e.waitConverged("node1", "node3")
			run := func(name string, fn func()) {
				t.Logf("--- %s", name)
				fn()
				e.checker.assertClean()
			}

			run("stop the replica cluster's group", func() {
				start := time.Now()
				e.control("POST", "/sim/ecx/cluster2/groups/failover2/stop", nil)
				e.waitFor("the pair reported degraded", 20*time.Second, func() error {
					p := e.pair()
					if p.Phase != "Degraded" || p.Degraded == nil || !strings.Contains(p.Degraded.Error, "replica side") {
						return fmt.Errorf("pair %s %+v", p.Phase, p.Degraded)
					}
					return nil
				})
				if v, _ := vmOn(e.state(), "node1"); !v.Running {
					t.Fatalf("the VM stopped on the primary: %+v", v)
				}
				if cmds := e.commandsSince(start); len(cmds) > 0 {
					t.Fatalf("something was touched while the replica side is offline: %s", describeCmds(cmds))
				}
			})
			run("start it again", func() {
				start := time.Now()
				e.control("POST", "/sim/ecx/cluster2/groups/failover2/start", map[string]string{"target": "node3"})
				e.waitConverged("node1", "node3")
				for _, c := range e.commandsSince(start) {
					if strings.Contains(c.Script, "Start-VM ") && c.Host == "node1" || strings.Contains(c.Script, "Stop-VM ") {
						t.Fatalf("the VM was touched while replication resumed: %s", describeCmds([]hyperv.CommandRecord{c}))
					}
				}
			})
			run("stop the primary cluster's group", func() {
				e.control("POST", "/sim/ecx/cluster1/groups/failover1/stop", nil)
				e.waitFor("the pair to wait", 20*time.Second, func() error {
					if p := e.pair(); p.Phase != "Waiting" {
						return fmt.Errorf("pair phase %s", p.Phase)
					}
					return nil
				})
				st := e.state()
				v, _ := vmOn(st, "node1")
				if v.Running {
					t.Fatalf("vm1 still runs on node1: %+v", v)
				}
				if hooks {
					// The stop hook ran before the disk left: a clean
					// shutdown and no replication on either end.
					r, _ := vmOn(st, "node3")
					if v.State != "OffCritical" || v.SavedState != "none" || v.Replication != nil || r.Replication != nil {
						t.Fatalf("after a stop with hooks: node1 %+v, node3 replication %+v", v, r.Replication)
					}
				}
			})
			run("start it again", func() {
				e.control("POST", "/sim/ecx/cluster1/groups/failover1/start", map[string]string{"target": "node1"})
				e.waitConverged("node1", "node3")
			})
			run("move the primary group node1 -> node2", func() {
				e.move("cluster1", "failover1", "node2")
				e.waitConverged("node2", "node3")
			})
			run("and back", func() {
				e.move("cluster1", "failover1", "node1")
				e.waitConverged("node1", "node3")
			})
			run("move the replica group node3 -> node4", func() {
				start := time.Now()
				e.move("cluster2", "failover2", "node4")
				e.waitConverged("node1", "node4")
				for _, c := range e.commandsSince(start) {
					if c.Host == "node1" && (strings.Contains(c.Script, "Stop-VM ") || strings.Contains(c.Script, "Start-VM ")) {
						t.Fatalf("the VM was stopped or restarted on the primary during a replica move: %s", describeCmds([]hyperv.CommandRecord{c}))
					}
				}
			})
			run("and back", func() {
				e.move("cluster2", "failover2", "node3")
				e.waitConverged("node1", "node3")
			})
			run("crash the primary owner", func() {
				e.serverDown("cluster1", "node1")
				e.waitConverged("node2", "node3")
				e.serverUp("cluster1", "node1")
				e.waitConverged("node2", "node3")
			})
			run("crash the replica owner", func() {
				start := time.Now()
				e.serverDown("cluster2", "node3")
				e.waitConverged("node2", "node4")
				for _, c := range e.commandsSince(start) {
					if c.Host == "node2" && strings.Contains(c.Script, "Stop-VM ") {
						t.Fatalf("the VM stopped on the primary after a replica crash: %s", describeCmds([]hyperv.CommandRecord{c}))
					}
				}
				e.serverUp("cluster2", "node3")
				e.waitConverged("node2", "node4")
			})
			run("both clusters fail over at the same time", func() {
				var wg sync.WaitGroup
				errs := make([]error, 2)
				wg.Add(2)
				go func() { defer wg.Done(); errs[0] = e.serverDownErr("cluster1", "node2") }()
				go func() { defer wg.Done(); errs[1] = e.serverDownErr("cluster2", "node4") }()
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					t.Fatal(err)
				}
				e.waitConverged("node1", "node3")
				st := e.state()
				for _, h := range st.Hosts {
					for _, v := range h.VMs {
						if v.ID == vmID && v.Replication != nil && v.Replication.State == "Error" && v.Storage == "live" {
							t.Fatalf("Error left on %s: %+v", h.Name, v.Replication)
						}
					}
				}
				e.serverUp("cluster1", "node2")
				e.serverUp("cluster2", "node4")
				e.waitConverged("node1", "node3")
			})
		})
	}
}

package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hvro/hvro/store"
	"github.com/hvro/hvro/test/sim/hyperv"
	"github.com/hvro/hvro/test/sim/lab"
)

// runningOp returns the operation of vm1 that is running, if any.
func (e *env) runningOp() (store.Operation, bool) {
	var ops struct{ Operations []store.Operation }
	e.api("GET", "/v1/operations?pair=vm1&limit=50", nil, &ops)
	for _, op := range ops.Operations {
		if op.State == store.OpRunning {
			return op, true
		}
	}
	return store.Operation{}, false
}

// TestKill9MidPlan kills hvro while a step's command runs on a host,
// restarts it on the same data, and checks I5: the store opens, the
// interrupted operation is journaled as interrupted, and the pair
// converges with no manual step. The killed command's cmdlet is slower
// than winrm.timeout, so only the host deleting its idle shell ends it;
// the restarted hvro must not send its next command for the VM before
// then (I3, checked on the hosts' command log).
func TestKill9MidPlan(t *testing.T) {
	// A short WinRM timeout and shell idle timeout (which the lab's hosts
	// grant) bound how long the restarted hvro must wait for the command
	// the killed one left running.
	e := newEnv(t, envOptions{hooks: false, configure: func(c string) string {
		return strings.Replace(c, "timeout: 30s}", "timeout: 4s, shell_idle_timeout: 2s}", 1)
	}, topology: func(topo *lab.Topology) { topo.HyperV.MinShellIdleTimeout = 2 * time.Second }})
	e.waitConverged("node1", "node3")
	// Enable-VMReplication outlasts winrm.timeout: a command of it that
	// hvro leaves behind runs on until its shell idles out.
	const latency = 8 * time.Second
	e.control("POST", "/sim/latency", map[string]any{"cmdlet": "Enable-VMReplication", "ms": latency.Milliseconds()})
	e.move("cluster2", "failover2", "node4")
	var op store.Operation
	var stepStarted time.Time
	var stepHost string
	e.waitFor("a running Enable-VMReplication step", 20*time.Second, func() error {
		o, ok := e.runningOp()
		for _, s := range o.Plan {
			if ok && s.Outcome == store.OutcomeRunning && (s.Kind == "enable_replica" || s.Kind == "enable_primary") {
				op, stepStarted, stepHost = o, s.Started, s.Host
				return nil
			}
		}
		return fmt.Errorf("no enable step running yet")
	})
	// The step's command reaches the host just after its journal record;
	// the driver would give it up only at winrm.timeout.
	e.waitFor("the step's command to reach "+stepHost, 10*time.Second, func() error {
		if e.lab.Shells(stepHost) == 0 {
			return fmt.Errorf("no shell open on %s", stepHost)
		}
		return nil
	})
	killed := time.Now()
	e.stopHvro(syscall.SIGKILL)
	if ws, ok := e.proc.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("hvro was not killed mid-plan: it ended %v", e.proc.ProcessState)
	}
	e.control("POST", "/sim/latency", map[string]any{"cmdlet": "Enable-VMReplication", "ms": 0})
	e.startHvro()
	e.waitConverged("node1", "node4")
	// The host logs a command when it ends: wait for the orphaned one, then
	// check again that nothing for vm1 overlapped it.
	var orphan hyperv.CommandRecord
	e.waitFor("the killed hvro's Enable-VMReplication to end on its host", latency+10*time.Second, func() error {
		for _, r := range e.lab.World.Log() {
			if strings.Contains(r.Script, "Enable-VMReplication") && !r.Time.Before(stepStarted) && r.Time.Before(killed) {
				orphan = r
				return nil
			}
		}
		return fmt.Errorf("still running")
	})
	e.checker.assertClean()
	// Its shell idled out 2s after the dead hvro's last request.
	if ran := time.Duration(orphan.DurationMS) * time.Millisecond; ran >= latency {
		t.Fatalf("the orphaned command ran %v, its cmdlet's full %v: the host never deleted its idle shell", ran, latency)
	}
	var got store.Operation
	if status := e.api("GET", fmt.Sprintf("/v1/operations/%d", op.ID), nil, &got); status != 200 {
		t.Fatalf("operation %d after restart: %d", op.ID, status)
	}
	if got.State != store.OpInterrupted {
		t.Fatalf("operation %d is %s after kill -9, want interrupted: %+v", op.ID, got.State, got)
	}
	for _, s := range got.Plan {
		if s.Outcome == store.OutcomeRunning || s.Outcome == store.OutcomePending {
			t.Fatalf("step %d of the interrupted operation is still %s", s.Index, s.Outcome)
		}
	}
}

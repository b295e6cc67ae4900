package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hvro/hvro/store"
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

// TestKill9MidPlan kills hvro while a plan is between steps, restarts it
// on the same data, and checks I5: the store opens, the interrupted
// operation is journaled as interrupted, and the pair converges with no
// manual step.
func TestKill9MidPlan(t *testing.T) {
	// A short WinRM timeout bounds how long the restarted hvro must wait
	// for the command the killed one left running.
	e := newEnv(t, envOptions{hooks: false, configure: func(c string) string {
		return strings.Replace(c, "timeout: 30s}", "timeout: 4s}", 1)
	}})
	e.waitConverged("node1", "node3")
	// Slow the replica's Enable-VMReplication so the retarget plan is
	// certainly running when hvro dies.
	e.control("POST", "/sim/latency", map[string]any{"cmdlet": "Enable-VMReplication", "ms": 1500})
	e.move("cluster2", "failover2", "node4")
	var op store.Operation
	e.waitFor("a running plan", 20*time.Second, func() error {
		var ok bool
		if op, ok = e.runningOp(); !ok {
			return fmt.Errorf("no running operation yet")
		}
		return nil
	})
	e.stopHvro(syscall.SIGKILL)
	if ws, ok := e.proc.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("hvro was not killed mid-plan: it ended %v", e.proc.ProcessState)
	}
	e.control("POST", "/sim/latency", map[string]any{"cmdlet": "Enable-VMReplication", "ms": 0})
	e.startHvro()
	e.waitConverged("node1", "node4")
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

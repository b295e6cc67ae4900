package invariant

import (
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/store"
	"github.com/hvro/hvro/test/sim/hyperv"
)

func TestOverlappingOperations(t *testing.T) {
	t0 := time.Now()
	step := func(from, to time.Duration) store.Step {
		return store.Step{Started: t0.Add(from), Ended: t0.Add(to), Outcome: store.OutcomeOK}
	}
	for _, tc := range []struct {
		name string
		ops  []store.Operation
		want string
	}{
		{"one after the other", []store.Operation{{ID: 1, Plan: []store.Step{step(0, time.Second)}}, {ID: 2, Plan: []store.Step{step(2*time.Second, 3*time.Second)}}}, ""},
		{"overlapping", []store.Operation{{ID: 1, Plan: []store.Step{step(0, 2*time.Second)}}, {ID: 2, Plan: []store.Step{step(time.Second, 3*time.Second)}}}, "operations 1 and 2 act at once"},
		{"still running", []store.Operation{{ID: 1, Plan: []store.Step{{Started: t0, Outcome: store.OutcomeRunning}}}, {ID: 2, Plan: []store.Step{step(time.Second, 2*time.Second)}}}, "operations 1 and 2 act at once"},
		{"queued, never acted", []store.Operation{{ID: 1}, {ID: 2, Plan: []store.Step{step(0, time.Second)}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(OverlappingOperations(tc.ops, t0.Add(time.Hour)), "; ")
			if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOverlappingCommands(t *testing.T) {
	t0 := time.Now()
	rec := func(host, script string, at, ms int) hyperv.CommandRecord {
		return hyperv.CommandRecord{Host: host, Script: script, Time: t0.Add(time.Duration(at) * time.Millisecond), DurationMS: int64(ms)}
	}
	for _, tc := range []struct {
		name string
		recs []hyperv.CommandRecord
		want string
	}{
		{"sequential", []hyperv.CommandRecord{rec("node1", "Start-VM -Name 'vm1'", 0, 100), rec("node3", "Enable-VMReplication -VMName 'vm1'", 100, 50)}, ""},
		{"overlap across hosts, logged out of order", []hyperv.CommandRecord{rec("node3", "Enable-VMReplication -VMName 'vm1'", 50, 50), rec("node1", "Start-VM -Name 'vm1'", 0, 100)},
			"commands changing vm1 overlap: on node1"},
		{"reads do not count", []hyperv.CommandRecord{rec("node1", "Get-VM -Name 'vm1'", 0, 100), rec("node1", "Start-VM -Name 'vm1'", 50, 10)}, ""},
		{"another VM does not count", []hyperv.CommandRecord{rec("node1", "Start-VM -Name 'vm10'", 0, 100), rec("node1", "Start-VM -Name 'vm1'", 50, 10)}, ""},
		{"cancelling a failover changes the VM", []hyperv.CommandRecord{rec("node1", "Stop-VMFailover -VM $v 'vm1'", 0, 100), rec("node1", "Start-VM -Name 'vm1'", 50, 10)}, "commands changing vm1 overlap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(OverlappingCommands(tc.recs, "vm1"), "; ")
			if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

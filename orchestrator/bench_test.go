package orchestrator

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hvro/hvro/store"
)

// BenchmarkPlanReconcileConverged is the planner's cost on the steady path
// every resync of every pair takes.
func BenchmarkPlanReconcileConverged(b *testing.B) {
	d, views := settled("node1", "node3"), healthy()
	b.ReportAllocs()
	for b.Loop() {
		if pl := PlanReconcile(testSpec, d, testClusters, views); !pl.Converged {
			b.Fatalf("not converged: %s", stepsOf(pl))
		}
	}
}

// BenchmarkPassConverged is one whole pass over a converged pair: inspect
// (a fake host, no I/O), decide, plan, record the status in the store. It
// bounds how many pairs one hvro can resync per interval.
func BenchmarkPassConverged(b *testing.B) {
	h := newHarness(b, newFakeWorld(), nil)
	h.waitPhase("Converged")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// The queue is idle (no observations, resync an hour away), so
		// calling pass directly keeps one pass at a time.
		h.c.pass("vm1")
	}
	b.StopTimer()
	if p := h.pair(); p.Phase != "Converged" {
		b.Fatalf("phase %s after the passes", p.Phase)
	}
}

// BenchmarkObserve is the intake of a poll result with many pairs
// configured: unchanged (the common case, every poll interval for every
// group) and changed (an owner moved: stored, generation bumped, queued).
func BenchmarkObserve(b *testing.B) {
	for _, pairs := range []int{10, 1000} {
		for _, changed := range []bool{false, true} {
			b.Run(fmt.Sprintf("pairs=%d/changed=%v", pairs, changed), func(b *testing.B) {
				st, err := store.Open(filepath.Join(b.TempDir(), "hvro.db"), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				specs := make([]PairSpec, pairs)
				for i := range specs {
					s := testSpec
					s.Name, s.VMName, s.InitialPrimary = fmt.Sprintf("vm%d", i), fmt.Sprintf("vm%d", i), "cluster1"
					s.Sides = map[string]Side{
						"cluster1": {Cluster: "cluster1", Group: fmt.Sprintf("failover%d", i)},
						"cluster2": {Cluster: "cluster2", Group: fmt.Sprintf("replica%d", i)},
					}
					specs[i] = s
				}
				c, err := New(Config{Store: st, Hosts: func(string) (Host, bool) { return nil, false }, Clusters: testClusters, Pairs: specs})
				if err != nil {
					b.Fatal(err)
				}
				// Not started: the queue only collects keys.
				key := GroupKey{"cluster1", "failover0"}
				owners := []string{"node1", "node2"}
				at := time.Now()
				b.ReportAllocs()
				b.ResetTimer()
				i := 0
				for b.Loop() {
					owner := owners[0]
					if changed {
						owner = owners[i%2]
					}
					i++
					if _, err := c.observe(key, Observation{Status: "Online", Owner: owner, Source: "poll", At: at}, ""); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

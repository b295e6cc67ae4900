package orchestrator

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestQueueSerializes hammers a few keys from many goroutines while several
// workers process them: no key is ever in two workers, and every Add is
// followed by a pass that started after it.
func TestQueueSerializes(t *testing.T) {
	q := NewQueue()
	const keys = 4
	var inFlight [keys]atomic.Int32
	var lastAdd, lastStart [keys]atomic.Int64
	var violations atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k, ok := q.Get()
				if !ok {
					return
				}
				var i int
				fmt.Sscanf(k, "pair%d", &i)
				if inFlight[i].Add(1) != 1 {
					violations.Add(1)
				}
				lastStart[i].Store(time.Now().UnixNano())
				time.Sleep(50 * time.Microsecond)
				inFlight[i].Add(-1)
				q.Done(k)
			}
		}()
	}
	var adders sync.WaitGroup
	for a := 0; a < 16; a++ {
		adders.Add(1)
		go func(a int) {
			defer adders.Done()
			for n := 0; n < 500; n++ {
				i := (a + n) % keys
				lastAdd[i].Store(time.Now().UnixNano())
				q.Add(fmt.Sprintf("pair%d", i))
			}
		}(a)
	}
	adders.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for q.Len() > 0 || anyInFlight(inFlight[:]) {
		if time.Now().After(deadline) {
			t.Fatal("queue did not drain")
		}
		time.Sleep(time.Millisecond)
	}
	q.ShutDown()
	wg.Wait()
	if v := violations.Load(); v > 0 {
		t.Fatalf("a key was processed by two workers at once %d times", v)
	}
	for i := 0; i < keys; i++ {
		if lastStart[i].Load() < lastAdd[i].Load() {
			t.Errorf("pair%d: the last Add was never followed by a pass", i)
		}
	}
}

func anyInFlight(c []atomic.Int32) bool {
	for i := range c {
		if c[i].Load() != 0 {
			return true
		}
	}
	return false
}

// TestQueueCoalesces: many Adds during one pass cause exactly one more pass.
func TestQueueCoalesces(t *testing.T) {
	q := NewQueue()
	q.Add("a")
	k, _ := q.Get()
	for i := 0; i < 10; i++ {
		q.Add("a")
	}
	if q.Len() != 1 {
		t.Fatalf("len %d during processing, want 1", q.Len())
	}
	q.Done(k)
	if k, ok := q.Get(); !ok || k != "a" {
		t.Fatalf("second pass: %q %v", k, ok)
	}
	q.Done("a")
	if q.Len() != 0 {
		t.Fatalf("a third pass is queued: len %d", q.Len())
	}
}

func TestQueueDelays(t *testing.T) {
	q := NewQueue()
	start := time.Now()
	q.AddAfter("x", time.Hour)
	q.AddAfter("x", 20*time.Millisecond) // an earlier due time wins
	q.AddAfter("x", time.Hour)
	if k, _ := q.Get(); k != "x" || time.Since(start) > time.Second || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("delayed add: %q after %v", k, time.Since(start))
	}
	q.Done("x")
	q.AddAfter("y", time.Hour)
	q.ShutDown()
	if _, ok := q.Get(); ok {
		t.Fatal("Get after ShutDown")
	}
}

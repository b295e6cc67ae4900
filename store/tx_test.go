package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s, path := openTemp(t, Options{})
	minimalOp := Operation{ID: 2, Pair: "p", Kind: "reconcile", State: OpSucceeded}

	mustUpdate(t, s, func(tx Tx) error {
		for _, p := range []Pair{samplePair("vm1"), {Name: "bare"}} {
			if err := tx.PutPair(p); err != nil {
				return err
			}
		}
		for _, o := range []Observation{sampleObservation("cluster1", "failover1"), {Cluster: "cluster2"}} {
			if err := tx.PutObservation(o); err != nil {
				return err
			}
		}
		for range 2 {
			if _, err := tx.NextOperationID(); err != nil {
				return err
			}
		}
		if err := tx.PutOperation(sampleOperation(1, "vm1", OpRunning)); err != nil {
			return err
		}
		if err := tx.PutOperation(minimalOp); err != nil {
			return err
		}
		_, err := tx.AppendEvent(Event{At: at(5), Pair: "vm1", Op: "1", Kind: "step-ok", Message: "removed replication on node1"})
		return err
	})

	check := func(t *testing.T, s *Store) {
		mustView(t, s, func(tx Tx) error {
			got, err := tx.Pair("vm1")
			if err != nil {
				return err
			}
			assertEqual(t, "pair vm1", got, samplePair("vm1"))
			got, err = tx.Pair("bare")
			if err != nil {
				return err
			}
			assertEqual(t, "pair bare", got, Pair{Name: "bare"})

			o, err := tx.Observation("cluster1", "failover1")
			if err != nil {
				return err
			}
			assertEqual(t, "observation", o, sampleObservation("cluster1", "failover1"))
			o, err = tx.Observation("cluster2", "")
			if err != nil {
				return err
			}
			assertEqual(t, "cluster-wide observation", o, Observation{Cluster: "cluster2"})

			op, err := tx.Operation(1)
			if err != nil {
				return err
			}
			assertEqual(t, "operation 1", op, sampleOperation(1, "vm1", OpRunning))
			op, err = tx.Operation(2)
			if err != nil {
				return err
			}
			assertEqual(t, "operation 2", op, minimalOp)

			es, err := tx.Events(EventFilter{})
			if err != nil {
				return err
			}
			assertEqual(t, "events", es, []Event{{Seq: 1, At: at(5), Pair: "vm1", Op: "1", Kind: "step-ok", Message: "removed replication on node1"}})
			return nil
		})
	}
	t.Run("same store", func(t *testing.T) { check(t, s) })
	t.Run("after reopen", func(t *testing.T) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		check(t, s2)
		if err := s2.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
	})
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	mustUpdate(t, s, func(tx Tx) error { return tx.PutPair(Pair{Name: "vm1"}) })
	cases := []struct {
		name string
		fn   func(tx Tx) error
		msg  string
	}{
		{"pair", func(tx Tx) error { _, err := tx.Pair("vm2"); return err }, `pair "vm2"`},
		{"pair by prefix", func(tx Tx) error { _, err := tx.Pair("vm"); return err }, `pair "vm"`},
		{"observation", func(tx Tx) error { _, err := tx.Observation("c", "g"); return err }, "observation of c/g"},
		{"operation", func(tx Tx) error { _, err := tx.Operation(9); return err }, "operation 9"},
		{"delete pair", func(tx Tx) error { return tx.DeletePair("vm2") }, `delete pair "vm2"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(tc.fn)
			wantErrIs(t, err, ErrNotFound)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not name %q", err, tc.msg)
			}
		})
	}
}

func TestPairsSortedAndDeleted(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	mustUpdate(t, s, func(tx Tx) error {
		for _, n := range []string{"vm10", "vm2", "app", "vm1"} {
			if err := tx.PutPair(Pair{Name: n}); err != nil {
				return err
			}
		}
		return nil
	})
	mustUpdate(t, s, func(tx Tx) error { return tx.DeletePair("vm2") })
	mustView(t, s, func(tx Tx) error {
		ps, err := tx.Pairs()
		var names []string
		for _, p := range ps {
			names = append(names, p.Name)
		}
		assertEqual(t, "pair names", names, []string{"app", "vm1", "vm10"})
		return err
	})
}

func TestObservationsSorted(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	keys := [][2]string{{"cluster2", "g"}, {"cluster1", "g2"}, {"cluster1", ""}, {"cluster1", "g1"}, {"cluster10", "a"}}
	mustUpdate(t, s, func(tx Tx) error {
		for _, k := range keys {
			if err := tx.PutObservation(Observation{Cluster: k[0], Group: k[1], Status: "Online"}); err != nil {
				return err
			}
		}
		// A later observation replaces the earlier one.
		return tx.PutObservation(Observation{Cluster: "cluster2", Group: "g", Status: "Offline"})
	})
	mustView(t, s, func(tx Tx) error {
		os, err := tx.Observations()
		var got []string
		for _, o := range os {
			got = append(got, o.Cluster+"/"+o.Group+"="+o.Status)
		}
		assertEqual(t, "observations", got, []string{"cluster1/=Online", "cluster1/g1=Online", "cluster1/g2=Online",
			"cluster10/a=Online", "cluster2/g=Offline"})
		return err
	})
}

// TestBadInputChangesNothing: every rejected write leaves the store exactly
// as it was, including the writes the same callback made before it.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	putOps(t, s, 1, []string{"vm1"}, func(int) OpState { return OpSucceeded })
	mustUpdate(t, s, func(tx Tx) error { return tx.PutPair(samplePair("vm1")) })
	before := dumpStore(t, s)

	long := strings.Repeat("x", maxNameLen+1)
	cases := []struct {
		name string
		fn   func(tx Tx) error
		want string
	}{
		{"empty pair name", func(tx Tx) error { return tx.PutPair(Pair{}) }, "pair name is empty"},
		{"NUL in pair name", func(tx Tx) error { return tx.PutPair(Pair{Name: "a\x00b"}) }, "NUL"},
		{"long pair name", func(tx Tx) error { return tx.PutPair(Pair{Name: long}) }, "more than 1024"},
		{"bad UTF-8", func(tx Tx) error { return tx.PutPair(Pair{Name: "\xff"}) }, "UTF-8"},
		{"empty cluster", func(tx Tx) error { return tx.PutObservation(Observation{Group: "g"}) }, "observation cluster is empty"},
		{"NUL in group", func(tx Tx) error { return tx.PutObservation(Observation{Cluster: "c", Group: "\x00"}) }, "NUL"},
		{"operation id 0", func(tx Tx) error { return tx.PutOperation(sampleOperation(0, "vm1", OpRunning)) }, "id is 0"},
		{"operation id not issued", func(tx Tx) error { return tx.PutOperation(sampleOperation(5, "vm1", OpRunning)) }, "never handed out"},
		{"operation without pair", func(tx Tx) error { return tx.PutOperation(sampleOperation(1, "", OpRunning)) }, "pair is empty"},
		{"operation moves pair", func(tx Tx) error { return tx.PutOperation(sampleOperation(1, "vm2", OpRunning)) }, `belongs to pair "vm1"`},
		{"unknown state", func(tx Tx) error { return tx.PutOperation(sampleOperation(1, "vm1", "done")) }, `state "done"`},
		{"unknown outcome", func(tx Tx) error {
			op := sampleOperation(1, "vm1", OpRunning)
			op.Plan[2].Outcome = ""
			return tx.PutOperation(op)
		}, `plan[2] outcome ""`},
		{"event without kind", func(tx Tx) error { _, err := tx.AppendEvent(Event{Message: "x"}); return err }, "kind is empty"},
		{"negative limit", func(tx Tx) error { _, err := tx.Operations(OpFilter{Limit: -1}); return err }, "negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(func(tx Tx) error {
				// Writes before the bad one must be rolled back with it.
				p := samplePair("vm1")
				p.Generation = 99
				if err := tx.PutPair(p); err != nil {
					return err
				}
				if _, err := tx.AppendEvent(Event{Kind: "noise"}); err != nil {
					return err
				}
				if _, err := tx.NextOperationID(); err != nil {
					return err
				}
				return tc.fn(tx)
			})
			wantErrIs(t, err, ErrInvalid)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			assertEqual(t, "store after rejected write", dumpStore(t, s), before)
		})
	}
}

func TestCallbackErrorRollsBack(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	boom := errors.New("boom")
	err := s.Update(func(tx Tx) error {
		if err := tx.PutPair(Pair{Name: "vm1"}); err != nil {
			return err
		}
		if _, err := tx.NextOperationID(); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update returned %v, want the callback's error unchanged", err)
	}
	mustUpdate(t, s, func(tx Tx) error {
		if _, err := tx.Pair("vm1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("pair written by a failed Update is visible: %v", err)
		}
		id, err := tx.NextOperationID()
		if id != 1 {
			t.Errorf("NextOperationID after rollback = %d, want 1", id)
		}
		return err
	})
}

func TestCallbackPanicRollsBackAndPropagates(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	func() {
		defer func() {
			if r := recover(); r != "bug" {
				t.Errorf("recovered %v, want the callback's panic", r)
			}
		}()
		_ = s.Update(func(tx Tx) error {
			_ = tx.PutPair(Pair{Name: "vm1"})
			panic("bug")
		})
	}()
	// The write lock was released and nothing was committed.
	mustView(t, s, func(tx Tx) error {
		if _, err := tx.Pair("vm1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("pair from a panicking Update is visible: %v", err)
		}
		return nil
	})
	mustUpdate(t, s, func(tx Tx) error { return tx.PutPair(Pair{Name: "vm2"}) })
}

func TestWritesInViewFail(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	writes := map[string]func(tx Tx) error{
		"PutPair":         func(tx Tx) error { return tx.PutPair(Pair{Name: "x"}) },
		"DeletePair":      func(tx Tx) error { return tx.DeletePair("x") },
		"PutObservation":  func(tx Tx) error { return tx.PutObservation(Observation{Cluster: "c"}) },
		"NextOperationID": func(tx Tx) error { _, err := tx.NextOperationID(); return err },
		"PutOperation":    func(tx Tx) error { return tx.PutOperation(sampleOperation(1, "x", OpRunning)) },
		"AppendEvent":     func(tx Tx) error { _, err := tx.AppendEvent(Event{Kind: "k"}); return err },
	}
	for name, fn := range writes {
		t.Run(name, func(t *testing.T) {
			wantErrIs(t, s.View(fn), ErrReadOnly)
		})
	}
}

func TestOperationsFilter(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	// Pair names that share prefixes: the index must not mix them up.
	pairs := []string{"vm1", "vm10", "vm1x", "a"}
	states := []OpState{OpSucceeded, OpFailed, OpRunning, OpAbandoned, OpInterrupted}
	ids := putOps(t, s, 40, pairs, func(i int) OpState { return states[i%len(states)] })

	// expected: newest first, filtered the slow way.
	expected := func(f OpFilter) []uint64 {
		var out []uint64
		for i := len(ids) - 1; i >= 0; i-- {
			if f.Pair != "" && pairs[i%len(pairs)] != f.Pair {
				continue
			}
			if len(f.States) > 0 && !slices.Contains(f.States, states[i%len(states)]) {
				continue
			}
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
			out = append(out, ids[i])
		}
		return out
	}
	cases := []OpFilter{
		{},
		{Limit: 5},
		{Pair: "vm1"},
		{Pair: "vm10", Limit: 3},
		{Pair: "vm1x"},
		{Pair: "a", Limit: 100},
		{Pair: "vm"},  // a prefix of real pairs: no match
		{Pair: "zzz"}, // sorts after every pair
		{Pair: "0"},   // sorts before every pair
		{States: []OpState{OpRunning}},
		{States: []OpState{OpFailed, OpInterrupted}, Limit: 4},
		{Pair: "vm1", States: []OpState{OpRunning}, Limit: 1},
		{Limit: 1000},
	}
	for _, f := range cases {
		t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
			mustView(t, s, func(tx Tx) error {
				ops, err := tx.Operations(f)
				var got []uint64
				for _, op := range ops {
					got = append(got, op.ID)
				}
				assertEqual(t, "operation ids", got, expected(f))
				return err
			})
		})
	}
}

func TestOperationUpdateKeepsIndex(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	ids := putOps(t, s, 3, []string{"vm1"}, func(int) OpState { return OpRunning })
	mustUpdate(t, s, func(tx Tx) error {
		op, err := tx.Operation(ids[1])
		if err != nil {
			return err
		}
		op.State = OpSucceeded
		op.Plan[1].Outcome = OutcomeOK
		op.Ended = at(10)
		return tx.PutOperation(op)
	})
	mustView(t, s, func(tx Tx) error {
		ops, err := tx.Operations(OpFilter{Pair: "vm1"})
		if len(ops) != 3 {
			t.Errorf("got %d operations of vm1 after an update, want 3", len(ops))
		}
		ops, _ = tx.Operations(OpFilter{Pair: "vm1", States: []OpState{OpSucceeded}})
		if len(ops) != 1 || ops[0].ID != ids[1] || !ops[0].Ended.Equal(at(10)) {
			t.Errorf("succeeded operations = %+v, want only %d", ops, ids[1])
		}
		return err
	})
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestNextOperationIDMonotonicAcrossReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hvro.db")
	var last uint64
	for round := range 3 {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		// A rolled-back reservation may be handed out again (it never
		// existed); committed ones never are.
		_ = s.Update(func(tx Tx) error {
			_, _ = tx.NextOperationID()
			return errors.New("roll back")
		})
		mustUpdate(t, s, func(tx Tx) error {
			for range 3 {
				id, err := tx.NextOperationID()
				if err != nil {
					return err
				}
				if id <= last {
					t.Errorf("round %d: id %d after %d", round, id, last)
				}
				last = id
			}
			return nil
		})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if last != 9 {
		t.Errorf("last id = %d, want 9", last)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{EventRetention: 10})
	// 25 events, pair vm1 on even seqs, vm2 on odd ones, in several Updates.
	for batch := range 5 {
		mustUpdate(t, s, func(tx Tx) error {
			for i := range 5 {
				n := batch*5 + i + 1
				pair := "vm2"
				if n%2 == 0 {
					pair = "vm1"
				}
				seq, err := tx.AppendEvent(Event{Seq: 999, At: at(n), Pair: pair, Kind: "k", Message: fmt.Sprint(n)})
				if err != nil {
					return err
				}
				if seq != uint64(n) {
					t.Errorf("event %d got seq %d", n, seq)
				}
			}
			return nil
		})
	}
	seqs := func(f EventFilter) []uint64 {
		var out []uint64
		mustView(t, s, func(tx Tx) error {
			es, err := tx.Events(f)
			for _, e := range es {
				if e.Message != fmt.Sprint(e.Seq) {
					t.Errorf("event %d has message %q", e.Seq, e.Message)
				}
				out = append(out, e.Seq)
			}
			return err
		})
		return out
	}
	cases := []struct {
		f    EventFilter
		want []uint64
	}{
		{EventFilter{}, []uint64{16, 17, 18, 19, 20, 21, 22, 23, 24, 25}}, // retention kept the newest 10
		{EventFilter{Limit: 3}, []uint64{23, 24, 25}},
		{EventFilter{AfterSeq: 20}, []uint64{21, 22, 23, 24, 25}},
		{EventFilter{AfterSeq: 2}, []uint64{16, 17, 18, 19, 20, 21, 22, 23, 24, 25}},
		{EventFilter{AfterSeq: 18, Limit: 2}, []uint64{19, 20}},
		{EventFilter{AfterSeq: 25}, nil},
		{EventFilter{AfterSeq: ^uint64(0)}, nil},
		{EventFilter{Pair: "vm1"}, []uint64{16, 18, 20, 22, 24}},
		{EventFilter{Pair: "vm1", Limit: 2}, []uint64{22, 24}},
		{EventFilter{Pair: "vm2", AfterSeq: 17, Limit: 2}, []uint64{19, 21}},
		{EventFilter{Pair: "nope"}, nil},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%+v", tc.f), func(t *testing.T) {
			assertEqual(t, "seqs", seqs(tc.f), tc.want)
		})
	}
}

func TestEventRetentionShrinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "hvro.db")
	s, err := Open(path, Options{EventRetention: 100})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, func(tx Tx) error {
		for range 100 {
			if _, err := tx.AppendEvent(Event{Kind: "k"}); err != nil {
				return err
			}
		}
		return nil
	})
	_ = s.Close()
	// Reopened with a smaller retention, the next append trims to it.
	s, err = Open(path, Options{EventRetention: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustUpdate(t, s, func(tx Tx) error { _, err := tx.AppendEvent(Event{Kind: "k"}); return err })
	mustView(t, s, func(tx Tx) error {
		es, err := tx.Events(EventFilter{})
		if len(es) != 5 || es[0].Seq != 97 || es[4].Seq != 101 {
			t.Errorf("events after shrinking retention: %+v", es)
		}
		return err
	})
}

func TestMarkInterrupted(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	states := []OpState{OpSucceeded, OpRunning, OpFailed, OpRunning}
	pairs := []string{"vm1", "vm2", "vm3", "vm4"}
	ids := putOps(t, s, 4, pairs, func(i int) OpState { return states[i] })
	now := at(100)

	got, err := s.MarkInterrupted(now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != ids[1] || got[1].ID != ids[3] {
		t.Fatalf("MarkInterrupted returned %+v, want operations %d and %d", got, ids[1], ids[3])
	}
	want := sampleOperation(ids[1], "vm2", OpInterrupted)
	want.Ended = now
	want.Error = "hvro stopped while the operation ran"
	want.Plan[1].Outcome, want.Plan[1].Ended = OutcomeInterrupted, now // was running
	want.Plan[2].Outcome = OutcomeInterrupted                          // was pending, never started
	mustView(t, s, func(tx Tx) error {
		op, err := tx.Operation(ids[1])
		assertEqual(t, "interrupted operation", op, want)
		assertEqual(t, "returned operation", got[0], want)
		op, _ = tx.Operation(ids[0])
		assertEqual(t, "finished operation", op, sampleOperation(ids[0], "vm1", OpSucceeded))
		es, _ := tx.Events(EventFilter{})
		if len(es) != 2 || es[0].Pair != "vm2" || es[0].Op != fmt.Sprint(ids[1]) || es[0].Kind != "op-interrupted" {
			t.Errorf("events = %+v, want one op-interrupted per operation", es)
		}
		return err
	})
	// A second call finds nothing left to do.
	again, err := s.MarkInterrupted(now)
	if err != nil || len(again) != 0 {
		t.Errorf("second MarkInterrupted = %v, %v; want nothing", again, err)
	}
}

// TestConcurrentViewUpdate runs readers and writers together; under -race
// it checks the Store is safe for concurrent use, and every reader sees a
// consistent state (the pair's generation always equals its op count).
func TestConcurrentViewUpdate(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{EventRetention: 50})
	mustUpdate(t, s, func(tx Tx) error { return tx.PutPair(Pair{Name: "vm1"}) })
	const writers, readers, rounds = 3, 3, 30
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				err := s.Update(func(tx Tx) error {
					p, err := tx.Pair("vm1")
					if err != nil {
						return err
					}
					id, err := tx.NextOperationID()
					if err != nil {
						return err
					}
					p.Generation++
					if err := tx.PutOperation(Operation{ID: id, Pair: "vm1", Kind: "reconcile", State: OpSucceeded}); err != nil {
						return err
					}
					if err := tx.PutObservation(Observation{Cluster: "c", Group: fmt.Sprint(w), Status: fmt.Sprint(i)}); err != nil {
						return err
					}
					if _, err := tx.AppendEvent(Event{Kind: "k"}); err != nil {
						return err
					}
					return tx.PutPair(p)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for range rounds {
				err := s.View(func(tx Tx) error {
					p, err := tx.Pair("vm1")
					if err != nil {
						return err
					}
					ops, err := tx.Operations(OpFilter{Pair: "vm1"})
					if err != nil {
						return err
					}
					if uint64(len(ops)) != p.Generation {
						return fmt.Errorf("inconsistent read: generation %d, %d operations", p.Generation, len(ops))
					}
					_, err = tx.Events(EventFilter{Limit: 10})
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mustView(t, s, func(tx Tx) error {
		p, err := tx.Pair("vm1")
		if p.Generation != writers*rounds {
			t.Errorf("generation %d, want %d", p.Generation, writers*rounds)
		}
		return err
	})
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	wantErrIs(t, s.View(func(Tx) error { return nil }), ErrClosed)
	wantErrIs(t, s.Update(func(Tx) error { return nil }), ErrClosed)
	_, err := s.Backup(new(strings.Builder))
	wantErrIs(t, err, ErrClosed)
}

func TestUpdateCommitsDurablyEnoughToReopen(t *testing.T) {
	t.Parallel()
	// Times survive as instants: a non-UTC zone comes back as the same instant.
	s, path := openTemp(t, Options{})
	zone := time.FixedZone("CET", 3600)
	mustUpdate(t, s, func(tx Tx) error { return tx.PutPair(Pair{Name: "vm1", UpdatedAt: t0.In(zone)}) })
	_ = s.Close()
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	mustView(t, s2, func(tx Tx) error {
		p, err := tx.Pair("vm1")
		if !p.UpdatedAt.Equal(t0) {
			t.Errorf("UpdatedAt %v, want %v", p.UpdatedAt, t0)
		}
		return err
	})
}

func TestTxUsedAfterCallback(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	var leaked Tx
	mustUpdate(t, s, func(tx Tx) error { leaked = tx; return nil })
	if _, err := leaked.Pairs(); err == nil || !strings.Contains(err.Error(), "used after its View or Update callback returned") {
		t.Errorf("Pairs on a finished Tx: %v", err)
	}
	if err := leaked.PutPair(Pair{Name: "vm1"}); err == nil {
		t.Error("PutPair on a finished Tx succeeded")
	}
}

package store

import (
	"fmt"
	"os"
	"testing"
)

// BenchmarkUpdatePairAndObservation is the hot write path: one observation
// and the generation bump of its pair in one fsynced transaction.
func BenchmarkUpdatePairAndObservation(b *testing.B) {
	s, _ := openTemp(b, Options{})
	p := samplePair("vm1")
	o := sampleObservation("cluster1", "failover1")
	mustUpdate(b, s, func(tx Tx) error { return tx.PutPair(p) })
	for b.Loop() {
		mustUpdate(b, s, func(tx Tx) error {
			if err := tx.PutObservation(o); err != nil {
				return err
			}
			p, err := tx.Pair("vm1")
			if err != nil {
				return err
			}
			p.Generation++
			return tx.PutPair(p)
		})
	}
}

// BenchmarkAppendEvent appends one event per transaction to a store at its
// retention limit, so every append also trims one.
func BenchmarkAppendEvent(b *testing.B) {
	s, _ := openTemp(b, Options{EventRetention: 10000})
	mustUpdate(b, s, func(tx Tx) error {
		for range 10000 {
			if _, err := tx.AppendEvent(Event{Pair: "vm1", Kind: "step-ok", Message: "removed replication on node1"}); err != nil {
				return err
			}
		}
		return nil
	})
	e := Event{Pair: "vm1", Op: "42", Kind: "step-ok", Message: "removed replication on node1", At: t0}
	for b.Loop() {
		mustUpdate(b, s, func(tx Tx) error { _, err := tx.AppendEvent(e); return err })
	}
}

// storeWith10kOps builds (once per benchmark) a store holding 10,000
// three-step operations spread over 20 pairs.
func storeWith10kOps(b *testing.B) *Store {
	s, _ := openTemp(b, Options{})
	pairs := make([]string, 20)
	for i := range pairs {
		pairs[i] = fmt.Sprintf("vm%d", i)
	}
	for range 10 {
		putOps(b, s, 1000, pairs, func(int) OpState { return OpSucceeded })
	}
	return s
}

func BenchmarkOperations(b *testing.B) {
	s := storeWith10kOps(b)
	for _, f := range []OpFilter{{Limit: 50}, {Pair: "vm7", Limit: 50}, {Limit: 50, States: []OpState{OpRunning}}} {
		b.Run(fmt.Sprintf("pair=%q,states=%v", f.Pair, f.States), func(b *testing.B) {
			for b.Loop() {
				mustView(b, s, func(tx Tx) error {
					_, err := tx.Operations(f)
					return err
				})
			}
		})
	}
}

// startupStore writes a closed store with 10k operations and 10k events
// and returns its path.
func startupStore(b *testing.B) string {
	s := storeWith10kOps(b)
	mustUpdate(b, s, func(tx Tx) error {
		for range 10000 {
			if _, err := tx.AppendEvent(Event{Pair: "vm1", Kind: "step-ok", Message: "removed replication on node1"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return s.Path()
}

func reportFileSize(b *testing.B, path string) {
	if fi, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
	}
}

// BenchmarkOpen is start-up on that store: page-graph validation, bbolt's
// check, meta and schema.
func BenchmarkOpen(b *testing.B) {
	path := startupStore(b)
	for b.Loop() {
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
	reportFileSize(b, path)
}

// BenchmarkCheck decodes every record besides what Open checks.
func BenchmarkCheck(b *testing.B) {
	s, err := Open(startupStore(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for b.Loop() {
		if err := s.Check(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarkInterrupted is the start-up scan for running operations.
func BenchmarkMarkInterrupted(b *testing.B) {
	s, err := Open(startupStore(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for b.Loop() {
		if _, err := s.MarkInterrupted(t0); err != nil {
			b.Fatal(err)
		}
	}
}

package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzOpen feeds Open arbitrary files, mutated from a real store: it must
// return a store that works or an error that says foreign, damaged, newer
// or older - never panic, never crash, never change a file it refuses.
func FuzzOpen(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "schema1.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte{})
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "hvro.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{LockTimeout: 2 * time.Second})
		if err != nil {
			if !errors.Is(err, ErrForeign) && !errors.Is(err, ErrDamaged) &&
				!errors.Is(err, ErrNewerSchema) && !errors.Is(err, ErrOlderSchema) {
				// A mutated migration input may fail its migration; that is
				// an error too, but it must leave the file as it was.
				t.Logf("other error: %v", err)
			}
			assertUntouched(t, path, data)
			return
		}
		defer s.Close()
		// An opened store answers every read with records or ErrDamaged.
		_ = s.Check()
		_ = s.View(func(tx Tx) error {
			_, _ = tx.Pairs()
			_, _ = tx.Observations()
			_, _ = tx.Operations(OpFilter{Pair: "vm1"})
			_, _ = tx.Operations(OpFilter{})
			_, _ = tx.Events(EventFilter{Limit: 3})
			return nil
		})
		_ = s.Update(func(tx Tx) error {
			if _, err := tx.AppendEvent(Event{Kind: "k"}); err != nil {
				return err
			}
			return tx.PutPair(Pair{Name: "fuzz"})
		})
	})
}

// FuzzDecodeRecord: any bytes decode to a record or an error, and whatever
// decodes re-encodes to something that decodes to the same record.
func FuzzDecodeRecord(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"name":"vm1","generation":3}`,
		`{"v":1,"id":1,"pair":"vm1","state":"running","plan":[{"index":0,"outcome":"pending"}]}`,
		`{"v":1,"cluster":"c","group":"g","hook":{"phase":"start"}}`,
		`{"v":1,"seq":4,"kind":"k","at":"2025-03-14T09:26:53Z"}`,
		`{"v":"1"}`, `[]`, `{"v":1e400}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, pairVersion, func() any { return new(Pair) })
		roundTrip(t, data, operationVersion, func() any { return new(Operation) })
		roundTrip(t, data, observationVersion, func() any { return new(Observation) })
		roundTrip(t, data, eventVersion, func() any { return new(Event) })
	})
}

func roundTrip(t *testing.T, data []byte, version int, newRec func() any) {
	rec := newRec()
	if err := decodeRecord(data, version, rec); err != nil {
		return
	}
	enc, err := encodeRecord(version, rec)
	if err != nil {
		t.Fatalf("decoded %s but cannot encode it: %v", data, err)
	}
	again := newRec()
	if err := decodeRecord(enc, version, again); err != nil {
		t.Fatalf("re-encoded %s does not decode: %v", enc, err)
	}
	enc2, _ := encodeRecord(version, again)
	if string(enc) != string(enc2) {
		t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
	}
}

// TestOpenMutatedStores is a deterministic sweep beside FuzzOpen, aimed at
// what makes bbolt itself crash or loop: page headers and element tables.
// Without validatePages it crashes the test binary within its first cases
// (a fault inside bbolt's check goroutine; other inputs loop forever).
func TestOpenMutatedStores(t *testing.T) {
	if testing.Short() {
		t.Skip("sweep")
	}
	t.Parallel()
	golden, err := os.ReadFile(filepath.Join("testdata", "schema1.db"))
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	rng := rand.New(rand.NewPCG(5, 6))
	opened, refused := 0, 0
	for i := range 400 {
		data := bytes.Clone(golden)
		var edits []string
		for range 1 + rng.IntN(4) {
			off := rng.IntN(len(data)/page)*page + rng.IntN(96)
			switch rng.IntN(3) {
			case 0:
				data[off] = byte(rng.Uint32())
			case 1:
				data[off] ^= 1 << rng.IntN(8)
			default:
				data[off] = byte(rng.IntN(16))
			}
			edits = append(edits, fmt.Sprintf("[%d]=%#x", off, data[off]))
		}
		path := filepath.Join(t.TempDir(), "hvro.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			s, err := Open(path, Options{LockTimeout: 2 * time.Second})
			if err != nil {
				done <- err
				return
			}
			defer s.Close()
			_ = s.Check()
			_ = s.View(func(tx Tx) error {
				_, _ = tx.Pairs()
				_, _ = tx.Operations(OpFilter{Pair: "vm1"})
				_, _ = tx.Events(EventFilter{Limit: 3})
				return nil
			})
			_ = s.Update(func(tx Tx) error { return tx.PutPair(Pair{Name: "sweep"}) })
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				refused++
				if !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrForeign) {
					t.Errorf("case %d %v: unexpected error kind: %v", i, edits, err)
				}
			} else {
				opened++
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("case %d %v: Open or a transaction did not return", i, edits)
		}
	}
	t.Logf("%d mutated stores opened, %d refused", opened, refused)
}

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
// return a store or an error that says foreign, damaged or newer - never
// panic, never crash, never change a file it refuses. On a store it
// returns, every read answers records or ErrDamaged, and a store that
// passes Check takes a write (see useOpened).
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
			if bad := unexpectedOpenError(err, true); bad != nil {
				t.Error(bad)
			}
			assertUntouched(t, path, data)
			return
		}
		defer s.Close()
		if _, bad := useOpened(s); bad != nil {
			t.Error(bad)
		}
	})
}

// unexpectedOpenError returns nil when err is a kind Open may return for a
// file that is not a usable store: foreign, damaged or (when newer is set)
// written by a newer hvro. ErrOlderSchema is not among them: only a
// read-only Open returns it, and these tests open read-write, which
// migrates instead. A failing migration is not among them either: hvro's
// only migration creates the data buckets, and a data bucket whose name a
// corrupt file gives to a plain value is reported as damage.
func unexpectedOpenError(err error, newer bool) error {
	if err == nil || errors.Is(err, ErrForeign) || errors.Is(err, ErrDamaged) || newer && errors.Is(err, ErrNewerSchema) {
		return nil
	}
	return fmt.Errorf("Open: unexpected error kind: %w", err)
}

// unexpectedUseError returns nil when err is what a call on an opened but
// possibly damaged store may return: nil or ErrDamaged, and only nil when
// mustSucceed (Check found nothing wrong).
func unexpectedUseError(what string, err error, mustSucceed bool) error {
	switch {
	case err == nil:
		return nil
	case mustSucceed:
		return fmt.Errorf("%s failed although Check passed: %w", what, err)
	case errors.Is(err, ErrDamaged):
		return nil
	}
	return fmt.Errorf("%s: unexpected error kind (want nil or ErrDamaged): %w", what, err)
}

// useOpened runs Check, every read and a write on a store Open accepted:
// each returns nil or ErrDamaged, and when Check passes (healthy), every
// read and the write succeed. It returns the first broken promise.
func useOpened(s *Store) (healthy bool, _ error) {
	checkErr := s.Check()
	if bad := unexpectedUseError("Check", checkErr, false); bad != nil {
		return false, bad
	}
	healthy = checkErr == nil
	var bad error
	reads := []struct {
		name string
		read func(Tx) error
	}{
		{"Pairs", func(tx Tx) error { _, err := tx.Pairs(); return err }},
		{"Observations", func(tx Tx) error { _, err := tx.Observations(); return err }},
		{"Operations of vm1", func(tx Tx) error { _, err := tx.Operations(OpFilter{Pair: "vm1"}); return err }},
		{"Operations", func(tx Tx) error { _, err := tx.Operations(OpFilter{}); return err }},
		{"running Operations", func(tx Tx) error { _, err := tx.Operations(OpFilter{States: []OpState{OpRunning}}); return err }},
		{"Events", func(tx Tx) error { _, err := tx.Events(EventFilter{Limit: 3}); return err }},
	}
	viewErr := s.View(func(tx Tx) error {
		for _, r := range reads {
			if bad = unexpectedUseError(r.name, r.read(tx), healthy); bad != nil {
				return nil
			}
		}
		return nil
	})
	if bad != nil {
		return healthy, bad
	}
	if bad := unexpectedUseError("View", viewErr, healthy); bad != nil {
		return healthy, bad
	}
	updateErr := s.Update(func(tx Tx) error {
		if _, err := tx.AppendEvent(Event{Kind: "k"}); err != nil {
			return err
		}
		return tx.PutPair(Pair{Name: "fuzz"})
	})
	return healthy, unexpectedUseError("Update", updateErr, healthy)
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
	opened, damaged, refused := 0, 0, 0
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
		type result struct {
			openErr, useErr error
			healthy         bool
		}
		done := make(chan result, 1)
		go func() {
			s, err := Open(path, Options{LockTimeout: 2 * time.Second})
			if err != nil {
				done <- result{openErr: err}
				return
			}
			defer s.Close()
			healthy, err := useOpened(s)
			done <- result{useErr: err, healthy: healthy}
		}()
		select {
		case r := <-done:
			switch {
			case r.openErr != nil:
				refused++
				if bad := unexpectedOpenError(r.openErr, false); bad != nil {
					t.Errorf("case %d %v: %v", i, edits, bad)
				}
			case r.useErr != nil:
				t.Errorf("case %d %v: opened: %v", i, edits, r.useErr)
			case r.healthy:
				opened++
			default:
				damaged++
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("case %d %v: Open or a transaction did not return", i, edits)
		}
	}
	t.Logf("%d mutated stores opened and passed Check, %d opened but failed Check, %d refused", opened, damaged, refused)
	// Each path of the oracle must have been walked, or the sweep proves
	// less than it claims.
	if opened == 0 || damaged == 0 || refused == 0 {
		t.Errorf("the sweep no longer covers every outcome: %d healthy, %d damaged after Open, %d refused", opened, damaged, refused)
	}
}

// TestFuzzOracles keeps the checks FuzzOpen and TestOpenMutatedStores rely
// on honest: an error of any other kind, or a failure on a store that
// passed Check, must be reported.
func TestFuzzOracles(t *testing.T) {
	t.Parallel()
	other := errors.New("disk on fire")
	damaged := &DamagedError{Path: "p", Err: other}
	for _, tc := range []struct {
		name  string
		err   error
		newer bool
		ok    bool
	}{
		{"foreign", &ForeignError{Path: "p", Reason: "r"}, false, true},
		{"damaged", damaged, false, true},
		{"newer schema", &SchemaError{File: 3, Supported: 1}, true, true},
		{"newer schema where none can be", &SchemaError{File: 3, Supported: 1}, false, false},
		{"older schema", &SchemaError{File: 0, Supported: 1}, true, false},
		{"locked", &LockedError{Path: "p"}, true, false},
		{"other", other, true, false},
		{"wrapped other", fmt.Errorf("open store p: %w", other), true, false},
	} {
		if got := unexpectedOpenError(tc.err, tc.newer) == nil; got != tc.ok {
			t.Errorf("unexpectedOpenError(%s) accepts: %v, want %v", tc.name, got, tc.ok)
		}
	}
	for _, tc := range []struct {
		name        string
		err         error
		mustSucceed bool
		ok          bool
	}{
		{"nil", nil, false, true},
		{"nil on a healthy store", nil, true, true},
		{"damaged", damaged, false, true},
		{"damaged on a healthy store", damaged, true, false},
		{"other", other, false, false},
		{"invalid", fmt.Errorf("x: %w", ErrInvalid), false, false},
	} {
		if got := unexpectedUseError("op", tc.err, tc.mustSucceed) == nil; got != tc.ok {
			t.Errorf("unexpectedUseError(%s) accepts: %v, want %v", tc.name, got, tc.ok)
		}
	}
}

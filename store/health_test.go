package store

import (
	"errors"
	"strings"
	"testing"

	berrors "go.etcd.io/bbolt/errors"
)

// TestHealthReportsFailedCommits: a commit that fails (disk full, file
// read-only, here bbolt's size limit) makes Health say so until the next
// commit succeeds; a caller's own error (a record it refused) does not.
func TestHealthReportsFailedCommits(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{maxSize: 1 << 20})
	if err := s.Health(); err != nil {
		t.Fatalf("a fresh store: %v", err)
	}
	err := s.Update(func(tx Tx) error { return tx.PutPair(Pair{}) })
	if !errors.Is(err, ErrInvalid) || s.Health() != nil {
		t.Fatalf("a refused record: Update %v, Health %v; want ErrInvalid and healthy", err, s.Health())
	}

	err = s.Update(func(tx Tx) error {
		_, err := tx.AppendEvent(Event{Kind: "note", Message: strings.Repeat("x", 2<<20)})
		return err
	})
	if !errors.Is(err, berrors.ErrMaxSizeReached) {
		t.Fatalf("a commit past the size limit: %v", err)
	}
	h := s.Health()
	if !errors.Is(h, berrors.ErrMaxSizeReached) || !strings.Contains(h.Error(), "commit") {
		t.Fatalf("Health after a failed commit: %v", h)
	}
	// Reads still work, and do not clear it.
	if err := s.View(func(tx Tx) error { _, err := tx.Pairs(); return err }); err != nil || s.Health() == nil {
		t.Fatalf("a read after the failed commit: %v, Health %v", err, s.Health())
	}

	mustUpdate(t, s, func(tx Tx) error { return tx.PutPair(Pair{Name: "vm1"}) })
	if err := s.Health(); err != nil {
		t.Fatalf("Health after a good commit: %v", err)
	}
}

// TestHealthReportsABrokenWrite: a write whose transaction bbolt broke
// (a panic on a damaged page the callback then ignored) is a failed
// commit too, for readiness.
func TestHealthReportsABrokenWrite(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	err := s.Update(func(tx Tx) error {
		tx.(*boltTx).broken = true // what recovering a bbolt panic leaves
		return nil
	})
	if err == nil || s.Health() == nil {
		t.Fatalf("a broken write: Update %v, Health %v; want both to report it", err, s.Health())
	}
}

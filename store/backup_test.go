package store

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCreateBackup: a backup file appears complete or not at all, and
// never in place of a file that exists.
func TestCreateBackup(t *testing.T) {
	t.Parallel()
	s, _ := openTemp(t, Options{})
	mustUpdate(t, s, func(tx Tx) error { return tx.PutPair(Pair{Name: "vm1"}) })
	dir := t.TempDir()
	entries := func() []string {
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}

	existing := filepath.Join(dir, "existing.db")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateBackup(existing, s.Backup); !errors.Is(err, fs.ErrExist) {
		t.Errorf("onto an existing file: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("the existing file holds %q", b)
	}

	cut := filepath.Join(dir, "cut.db")
	_, err := CreateBackup(cut, func(w io.Writer) (int64, error) {
		n, err := s.Backup(&limitWriter{w: w, left: 8 << 10})
		return n, err
	})
	if err == nil {
		t.Error("a copy cut short was kept")
	}
	failed := filepath.Join(dir, "failed.db")
	if _, err := CreateBackup(failed, func(io.Writer) (int64, error) { return 0, errors.New("the API went away") }); err == nil || !strings.Contains(err.Error(), "went away") {
		t.Errorf("a failed fill: %v", err)
	}
	if got := entries(); len(got) != 1 || got[0] != "existing.db" {
		t.Errorf("after failed backups the folder holds %q", got)
	}

	good := filepath.Join(dir, "good.db")
	n, err := CreateBackup(good, s.Backup)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(good)
	if err != nil || fi.Size() != n {
		t.Fatalf("good.db: %v, %d bytes, CreateBackup said %d", err, fi.Size(), n)
	}
	b, err := Open(good, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	mustView(t, b, func(tx Tx) error { _, err := tx.Pair("vm1"); return err })
	b.Close()
	if got := entries(); len(got) != 2 {
		t.Errorf("the folder holds %q, want existing.db and good.db", got)
	}
}

// limitWriter takes left bytes and then silently drops the rest, like a
// transfer that broke without an error.
type limitWriter struct {
	w    io.Writer
	left int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.left <= 0 {
		return len(p), nil
	}
	k := min(len(p), l.left)
	l.left -= k
	if _, err := l.w.Write(p[:k]); err != nil {
		return 0, err
	}
	return len(p), nil
}

package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestOpenErrorsShowFileBytesSafely: what Open says about a file it
// refuses quotes a short, escaped piece of the file at most: a file made
// to attack an admin's terminal (escape sequences, bidi overrides) or to
// flood a log gets neither through.
func TestOpenErrorsShowFileBytesSafely(t *testing.T) {
	t.Parallel()
	hostile := "\x1b]0;pwned\x07\x1b[2J\u202e" + strings.Repeat("A\x1b[31m", 20000)
	meta := func(kv ...string) func(tx *bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("meta"))
			if err != nil {
				return err
			}
			for i := 0; i+1 < len(kv); i += 2 {
				if err := b.Put([]byte(kv[i]), []byte(kv[i+1])); err != nil {
					return err
				}
			}
			return nil
		}
	}
	buckets := func(tx *bolt.Tx) error {
		for _, n := range []string{hostile[:30000], "\u202euser", "\x1b[31mx"} {
			if _, err := tx.CreateBucket([]byte(n)); err != nil {
				return err
			}
		}
		return nil
	}
	cases := []struct {
		name string
		fill func(tx *bolt.Tx) error
		kind error
	}{
		{"another application's name", meta("app", hostile[:30000]), ErrForeign},
		{"buckets of another program", buckets, ErrForeign},
		{"a schema that is not a number", meta("app", "hvro", "schema", hostile[:30000]), ErrDamaged},
		{"a creation time that is not a time", meta("app", "hvro", "schema", "1", "created", hostile[:30000]), ErrDamaged},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "hvro.db")
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(tc.fill); err != nil {
				t.Fatal(err)
			}
			db.Close()
			_, err = Open(path, Options{ReadOnly: true})
			checkSafe(t, err, tc.kind, path)
		})
	}
	t.Run("a text file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "hvro.db")
		if err := os.WriteFile(path, []byte(hostile), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path, Options{ReadOnly: true})
		checkSafe(t, err, ErrForeign, path)
	})
}

func checkSafe(t *testing.T, err error, kind error, path string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("Open: %v, want %v", err, kind)
	}
	msg := err.Error()
	if len(msg) > len(path)+400 {
		t.Errorf("the error is %d bytes long: %.300q...", len(msg), msg)
	}
	for _, bad := range []string{"\x1b", "\x07", "\u202e"} {
		if strings.Contains(msg, bad) {
			t.Errorf("the error carries %q raw: %.300q", bad, msg)
		}
	}
}

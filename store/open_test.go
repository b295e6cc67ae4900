package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hvro/hvro/test/within"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func TestOpenCreates(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "hvro.db")
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := Open(path, Options{now: func() time.Time { return created }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", di.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only hvro.db (no temporary file left)", len(entries))
	}
	err = s.viewBolt(func(tx *bolt.Tx) error {
		m, err := s.readMeta(tx)
		// err == nil also says the app key is hvro's (readMeta refuses any other).
		if m.schema != SchemaVersion() || !m.created.Equal(created) {
			t.Errorf("meta %+v, want schema %d, created %v", m, SchemaVersion(), created)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s, err := Open("hvro.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Path() != filepath.Join(dir, "hvro.db") {
		t.Errorf("Path() = %q, want it absolute", s.Path())
	}
}

func TestForeignFiles(t *testing.T) {
	t.Parallel()
	bboltWith := func(fn func(tx *bolt.Tx) error) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(fn); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	write := func(b []byte) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	random := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	cases := []struct {
		name string
		make func(t *testing.T, path string)
		want string
	}{
		{"empty file", write(nil), "an empty file"},
		{"random bytes", write(random), "unrecognised binary data"},
		{"one byte", write([]byte{0xED}), "unrecognised binary data"},
		{"JSON file", write([]byte(`{"pairs": [{"name": "vm1"}]}`)), "looks like JSON text"},
		{"YAML config", write([]byte("listen: 127.0.0.1:8080\ndata_dir: ./data\n")), `text file starting "listen: 127.0.0.1:8080\n`},
		{"SQLite database", write(append([]byte("SQLite format 3\x00"), make([]byte, 4080)...)), "SQLite database"},
		{"bbolt without buckets", bboltWith(func(*bolt.Tx) error { return nil }), "without hvro metadata (no buckets)"},
		{"bbolt of another app", bboltWith(func(tx *bolt.Tx) error {
			for _, n := range []string{"users", "sessions", "a", "b", "c", "d"} {
				if _, err := tx.CreateBucket([]byte(n)); err != nil {
					return err
				}
			}
			return nil
		}), `without hvro metadata (buckets ["a" "b" "c" "d" "sessions"] and 1 more)`},
		{"bbolt meta of another app", bboltWith(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("meta"))
			if err != nil {
				return err
			}
			return b.Put([]byte("app"), []byte("vault"))
		}), `application "vault"`},
		{"bbolt meta without app", bboltWith(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("meta"))
			return err
		}), "meta bucket has no app key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "hvro.db")
			tc.make(t, path)
			before := readFile(t, path)
			for _, ro := range []bool{false, true} {
				s, err := Open(path, Options{ReadOnly: ro})
				if err == nil {
					s.Close()
					t.Fatalf("Open(ReadOnly=%v) of a foreign file succeeded", ro)
				}
				wantErrIs(t, err, ErrForeign)
				var fe *ForeignError
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
					t.Errorf("error %q should be a *ForeignError naming %s and saying %q", err, path, tc.want)
				}
			}
			assertUntouched(t, path, before)
		})
	}

	t.Run("directory", func(t *testing.T) {
		t.Parallel()
		path := t.TempDir()
		_, err := Open(path, Options{})
		wantErrIs(t, err, ErrForeign)
	})
}

// corruptRecord overwrites one raw value of a closed store.
func corruptRecord(t *testing.T, path string, bucket, key, value []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, value) }); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedRecord(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		bucket []byte
		key    []byte
		value  string
		read   func(tx Tx) error
		where  string // as the error names it
		why    string
	}{
		{"pair not JSON", bucketPairs, []byte("vm1"), "\x00\x01garbage",
			func(tx Tx) error { _, err := tx.Pair("vm1"); return err }, `record pairs/"vm1"`, "not a JSON object"},
		{"pair without version", bucketPairs, []byte("vm1"), `{"name":"vm1"}`,
			func(tx Tx) error { _, err := tx.Pairs(); return err }, `record pairs/"vm1"`, `no record version "v"`},
		{"pair of a newer record version", bucketPairs, []byte("vm1"), `{"v":2,"name":"vm1"}`,
			func(tx Tx) error { _, err := tx.Pair("vm1"); return err }, `record pairs/"vm1"`, "record version 2, this hvro reads version 1"},
		{"pair under the wrong key", bucketPairs, []byte("vm1"), `{"v":1,"name":"vm2"}`,
			func(tx Tx) error { _, err := tx.Pair("vm1"); return err }, `record pairs/"vm1"`, `names pair "vm2"`},
		{"pair with a wrongly typed field", bucketPairs, []byte("vm1"), `{"v":1,"name":"vm1","generation":"seven"}`,
			func(tx Tx) error { _, err := tx.Pair("vm1"); return err }, `record pairs/"vm1"`, "decode"},
		{"observation truncated", bucketObservations, observationKey("c1", "g1"), `{"v":1,"cluster":"c1","gro`,
			func(tx Tx) error { _, err := tx.Observations(); return err }, `record observations/"c1/g1"`, "decode: unexpected end of JSON input"},
		{"operation with unknown state", bucketOperations, idKey(1), `{"v":1,"id":1,"pair":"vm1","state":"weird"}`,
			func(tx Tx) error { _, err := tx.Operations(OpFilter{}); return err }, "record operations/1", `state "weird"`},
		{"operation under the wrong id", bucketOperations, idKey(1), `{"v":1,"id":2,"pair":"vm1","state":"running"}`,
			func(tx Tx) error { _, err := tx.Operation(1); return err }, "record operations/1", "record has id 2"},
		{"operation by pair", bucketOperations, idKey(1), `[]`,
			func(tx Tx) error { _, err := tx.Operations(OpFilter{Pair: "vm1"}); return err }, "record operations/1", "not a JSON object: starts \"[]\""},
		{"pair with a string version", bucketPairs, []byte("vm1"), `{"v":"1","name":"vm1"}`,
			func(tx Tx) error { _, err := tx.Pair("vm1"); return err }, `record pairs/"vm1"`, `record version "1" is not an integer`},
		{"event with trailing data", bucketEvents, idKey(1), `{"v":1,"seq":1,"kind":"k"} trailing`,
			func(tx Tx) error { _, err := tx.Events(EventFilter{}); return err }, "record events/1", "decode: invalid character 't' after top-level value"},
		{"event reordered with a bad version", bucketEvents, idKey(1), `{"seq":1,"kind":"k","v":0}`,
			func(tx Tx) error { _, err := tx.Events(EventFilter{}); return err }, "record events/1", "record version 0"},
		{"event under the wrong seq", bucketEvents, idKey(1), `{"v":1,"seq":3,"kind":"k"}`,
			func(tx Tx) error { _, err := tx.Events(EventFilter{Limit: 1}); return err }, "record events/1", "record has seq 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, path := openTemp(t, Options{})
			putOps(t, s, 1, []string{"vm1"}, func(int) OpState { return OpRunning })
			mustUpdate(t, s, func(tx Tx) error {
				if _, err := tx.AppendEvent(Event{Kind: "k"}); err != nil {
					return err
				}
				if err := tx.PutObservation(Observation{Cluster: "c1", Group: "g1"}); err != nil {
					return err
				}
				return tx.PutPair(Pair{Name: "vm1"})
			})
			_ = s.Close()
			corruptRecord(t, path, tc.bucket, tc.key, []byte(tc.value))

			// Open succeeds: the file structure is fine, and other records
			// stay readable.
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			for name, err := range map[string]error{"read": s.View(tc.read), "Check": s.Check()} {
				var de *DamagedError
				if !errors.As(err, &de) || !errors.Is(err, ErrDamaged) {
					t.Fatalf("%s: error %v, want a *DamagedError", name, err)
				}
				if msg := err.Error(); !strings.Contains(msg, tc.where) || !strings.Contains(msg, tc.why) {
					t.Errorf("%s: error %q should name %s and say %q", name, msg, tc.where, tc.why)
				}
			}
		})
	}
}

// TestHandEditedRecord: a record whose keys an admin reordered is still a
// valid record.
func TestHandEditedRecord(t *testing.T) {
	t.Parallel()
	s, path := openTemp(t, Options{})
	_ = s.Close()
	corruptRecord(t, path, bucketPairs, []byte("vm1"), []byte(` { "name": "vm1", "generation": 3, "v": 1 }`))
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustView(t, s, func(tx Tx) error {
		p, err := tx.Pair("vm1")
		assertEqual(t, "pair", p, Pair{Name: "vm1", Generation: 3})
		return err
	})
}

func TestDamagedIndex(t *testing.T) {
	t.Parallel()
	s, path := openTemp(t, Options{})
	putOps(t, s, 2, []string{"vm1"}, func(int) OpState { return OpRunning })
	_ = s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOpsByPair)
		_ = b.Delete(opPairKey("vm1", 1))
		_ = tx.Bucket(bucketOpsRunning).Delete(idKey(2))
		_ = tx.Bucket(bucketOpsRunning).Put(idKey(9), []byte("vm1"))
		return b.Put(opPairKey("vm1", 7), nil)
	})
	_ = db.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Check()
	wantErrIs(t, err, ErrDamaged)
	for _, want := range []string{`ops_by_pair/"vm1"#1: index entry missing`, `ops_by_pair/"vm1"#7: index entry without operation`,
		"ops_running/2: operation is running but the index of running operations says false",
		"ops_running/9: index entry without operation"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check error %q does not say %q", err, want)
		}
	}
}

// storeWithData builds a closed store with a few hundred records, big
// enough for several pages per bucket, and returns its path.
func storeWithData(t testing.TB) string {
	t.Helper()
	s, path := openTemp(t, Options{})
	putOps(t, s, 200, []string{"vm1", "vm2", "vm3"}, func(int) OpState { return OpSucceeded })
	mustUpdate(t, s, func(tx Tx) error {
		for i := range 50 {
			if err := tx.PutPair(samplePair(fmt.Sprintf("vm%d", i))); err != nil {
				return err
			}
			if _, err := tx.AppendEvent(Event{Kind: "k", Message: strings.Repeat("m", 100)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDamagedFile(t *testing.T) {
	t.Parallel()
	const page = 4096
	cases := []struct {
		name   string
		damage func(b []byte) []byte
		want   string
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, "truncated"},
		{"cut to the meta pages", func(b []byte) []byte { return b[:2*page] }, "truncated"},
		{"both meta checksums broken", func(b []byte) []byte {
			b[16+40] ^= 0xff
			b[page+16+40] ^= 0xff
			return b
		}, "both bbolt meta pages fail their checksum"},
		{"data pages overwritten with zeros", func(b []byte) []byte {
			clear(b[2*page:])
			return b
		}, "damaged at file structure"},
		{"data pages overwritten with random bytes", func(b []byte) []byte {
			rng := rand.New(rand.NewPCG(3, 4))
			for i := 2 * page; i < len(b); i++ {
				b[i] = byte(rng.Uint32())
			}
			return b
		}, "damaged at file structure"},
		{"page headers scrambled", func(b []byte) []byte {
			for off := 2 * page; off < len(b); off += page {
				b[off+8] ^= 0x55  // page flags
				b[off+10] ^= 0x33 // element count
			}
			return b
		}, "damaged at file structure"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := storeWithData(t)
			damaged := tc.damage(readFile(t, path))
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open of a damaged file succeeded")
			}
			wantErrIs(t, err, ErrDamaged)
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "restore from a backup") {
				t.Errorf("error %q should say %q and what to do", err, tc.want)
			}
			assertUntouched(t, path, damaged)
		})
	}
}

// TestCheckTruncatedWhileOpen: a file cut short under an open store is
// reported by Check (validateFile's high-water-mark check) before bbolt
// touches a missing page.
func TestCheckTruncatedWhileOpen(t *testing.T) {
	t.Parallel()
	s, path := openTemp(t, Options{})
	putOps(t, s, 20, []string{"vm1", "vm2"}, func(int) OpState { return OpSucceeded })
	// bbolt grows the file ahead of use: cut one byte off the pages in use,
	// not just off the preallocated tail.
	if err := os.Truncate(path, s.size()-1); err != nil {
		t.Fatal(err)
	}
	err := s.Check()
	wantErrIs(t, err, ErrDamaged)
	if !strings.Contains(err.Error(), "file is truncated") {
		t.Errorf("Check: %q, want it to say the file is truncated", err)
	}
}

func setSchema(t *testing.T, path string, v string) {
	t.Helper()
	corruptRecord(t, path, bucketMeta, metaSchema, []byte(v))
}

func TestNewerSchemaRefusedUntouched(t *testing.T) {
	t.Parallel()
	s, path := openTemp(t, Options{})
	mustUpdate(t, s, func(tx Tx) error { return tx.PutPair(Pair{Name: "vm1"}) })
	_ = s.Close()
	setSchema(t, path, strconv.Itoa(SchemaVersion()+1))
	before := readFile(t, path)
	for _, ro := range []bool{false, true} {
		_, err := Open(path, Options{ReadOnly: ro})
		wantErrIs(t, err, ErrNewerSchema)
		var se *SchemaError
		if !errors.As(err, &se) || se.File != SchemaVersion()+1 || se.Supported != SchemaVersion() ||
			!strings.Contains(err.Error(), "newer hvro") {
			t.Errorf("error %v should be a *SchemaError saying a newer hvro wrote the file", err)
		}
	}
	assertUntouched(t, path, before)
}

func TestMalformedSchema(t *testing.T) {
	t.Parallel()
	s, path := openTemp(t, Options{})
	_ = s.Close()
	setSchema(t, path, "one")
	_, err := Open(path, Options{})
	wantErrIs(t, err, ErrDamaged)
	if !strings.Contains(err.Error(), `record meta/schema: "one" is not a schema version`) {
		t.Errorf("error %q should name meta/schema", err)
	}
}

// buildSchema0 makes the oldest possible hvro file: meta at schema 0 and
// nothing else, the state before migration 0->1 creates the buckets.
func buildSchema0(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return initMeta(tx, t0) }); err != nil {
		t.Fatal(err)
	}
}

func TestMigrationFromSchema0(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hvro.db")
	buildSchema0(t, path)

	t.Run("read-only refuses", func(t *testing.T) {
		before := readFile(t, path)
		_, err := Open(path, Options{ReadOnly: true})
		wantErrIs(t, err, ErrOlderSchema)
		if !strings.Contains(err.Error(), "schema version 0 and needs migrating to 1") {
			t.Errorf("error %q should say which migration is needed", err)
		}
		assertUntouched(t, path, before)
	})
	t.Run("read-write migrates", func(t *testing.T) {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		mustUpdate(t, s, func(tx Tx) error { return tx.PutPair(Pair{Name: "vm1"}) })
		_ = s.viewBolt(func(tx *bolt.Tx) error {
			m, err := s.readMeta(tx)
			if m.schema != 1 || !m.created.Equal(t0) {
				t.Errorf("meta after migration %+v, %v", m, err)
			}
			return nil
		})
	})
}

// schema2 is a test-only schema history: version 1 stored a pair's primary
// cluster as "primary"; version 2 renamed it to today's "primary_cluster".
// It exercises what a real migration does: rewrite every record of a kind
// inside the one migration transaction.
func schema2(fail bool) []migration {
	return append(migrations[:1:1], migration{name: "rename pair primary", fn: func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPairs)
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var m map[string]any
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("pair %q: %w", k, err)
			}
			m["primary_cluster"] = m["primary"]
			delete(m, "primary")
			nv, err := json.Marshal(m)
			if err != nil {
				return err
			}
			if err := b.Put(k, nv); err != nil {
				return err
			}
		}
		if fail {
			return errors.New("disk on fire")
		}
		return nil
	}})
}

func TestMigrationRewritesRecords(t *testing.T) {
	t.Parallel()
	newV1 := func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "hvro.db")
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		for _, n := range []string{"vm1", "vm2"} {
			corruptRecord(t, path, bucketPairs, []byte(n), fmt.Appendf(nil, `{"v":1,"name":%q,"primary":"cluster2","generation":4}`, n))
		}
		return path
	}

	t.Run("success", func(t *testing.T) {
		path := newV1(t)
		s, err := Open(path, Options{migrations: schema2(false)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		mustView(t, s, func(tx Tx) error {
			ps, err := tx.Pairs()
			assertEqual(t, "migrated pairs", ps, []Pair{
				{Name: "vm1", PrimaryCluster: "cluster2", Generation: 4},
				{Name: "vm2", PrimaryCluster: "cluster2", Generation: 4}})
			return err
		})
		_ = s.viewBolt(func(tx *bolt.Tx) error {
			if m, _ := s.readMeta(tx); m.schema != 2 {
				t.Errorf("schema after migration = %d, want 2", m.schema)
			}
			return nil
		})
		// This hvro (schema 1) now refuses the file.
		_ = s.Close()
		_, err = Open(path, Options{})
		wantErrIs(t, err, ErrNewerSchema)
	})

	t.Run("failure leaves the file at its schema", func(t *testing.T) {
		path := newV1(t)
		before := readFile(t, path)
		_, err := Open(path, Options{migrations: schema2(true)})
		if err == nil || !strings.Contains(err.Error(), "from schema 1 to 2 (rename pair primary): disk on fire") {
			t.Fatalf("Open with a failing migration: %v", err)
		}
		assertUntouched(t, path, before)
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var raw []byte
		_ = s.viewBolt(func(tx *bolt.Tx) error {
			raw = bytes.Clone(tx.Bucket(bucketPairs).Get([]byte("vm1")))
			return nil
		})
		if !bytes.Contains(raw, []byte(`"primary":"cluster2"`)) {
			t.Errorf("failed migration changed a record: %s", raw)
		}
	})
}

// TestGoldenSchema1 keeps a store written by schema 1 in testdata. Every
// future hvro must open it (through its migrations) with the same content.
// Regenerate only when adding a new golden file for a new schema:
// go test ./store -run TestGoldenSchema1 -update
func TestGoldenSchema1(t *testing.T) {
	golden := filepath.Join("testdata", "schema1.db")
	want := dump{
		Pairs:        []Pair{samplePair("vm1"), {Name: "vm2", PrimaryCluster: "cluster2"}},
		Observations: []Observation{sampleObservation("cluster1", "failover1"), {Cluster: "cluster2", Err: "connection refused", At: at(9)}},
		Operations:   []Operation{sampleOperation(2, "vm2", OpFailed), sampleOperation(1, "vm1", OpSucceeded)},
		Events:       []Event{{Seq: 1, At: at(3), Pair: "vm1", Op: "1", Kind: "step-ok", Message: "done"}},
		NextOpID:     3,
	}
	if *update {
		s, err := Open(filepath.Join(t.TempDir(), "hvro.db"), Options{now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		mustUpdate(t, s, func(tx Tx) error {
			for _, p := range want.Pairs {
				if err := tx.PutPair(p); err != nil {
					return err
				}
			}
			for _, o := range want.Observations {
				if err := tx.PutObservation(o); err != nil {
					return err
				}
			}
			for i := len(want.Operations) - 1; i >= 0; i-- {
				if _, err := tx.NextOperationID(); err != nil {
					return err
				}
				if err := tx.PutOperation(want.Operations[i]); err != nil {
					return err
				}
			}
			_, err := tx.AppendEvent(want.Events[0])
			return err
		})
		// A backup holds only the pages in use: the smallest file.
		_ = os.Remove(golden) // a backup never replaces a file
		if _, err := CreateBackup(golden, s.Backup); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Work on a copy: opening may migrate, and the golden file must stay.
	path := filepath.Join(t.TempDir(), "hvro.db")
	if err := os.WriteFile(path, readFile(t, golden), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "golden store", dumpStore(t, s), want)
	mustUpdate(t, s, func(tx Tx) error {
		id, err := tx.NextOperationID()
		if id != 3 {
			t.Errorf("next operation id in the golden store = %d, want 3", id)
		}
		return err
	})
}

func TestBackup(t *testing.T) {
	t.Parallel()
	path := storeWithData(t)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := dumpStore(t, s)

	check := func(t *testing.T, backup string, n int64) {
		fi, err := os.Stat(backup)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != n {
			t.Errorf("backup is %d bytes, Backup reported %d", fi.Size(), n)
		}
		b, err := Open(backup, Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("open backup: %v", err)
		}
		defer b.Close()
		if err := b.Check(); err != nil {
			t.Errorf("backup Check: %v", err)
		}
		assertEqual(t, "backup content", dumpStore(t, b), want)
	}
	t.Run("Backup", func(t *testing.T) {
		var buf bytes.Buffer
		n, err := s.Backup(&buf)
		if err != nil {
			t.Fatal(err)
		}
		backup := filepath.Join(t.TempDir(), "copy.db")
		if err := os.WriteFile(backup, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, backup, n)
	})
	t.Run("CreateBackup", func(t *testing.T) {
		dir := t.TempDir()
		backup := filepath.Join(dir, "copy.db")
		n, err := CreateBackup(backup, s.Backup)
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(backup); fi.Mode().Perm() != 0o600 {
			t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("backup dir holds %d entries, want 1", len(entries))
		}
		check(t, backup, n)
	})
	t.Run("during writes", func(t *testing.T) {
		// Backup holds a read transaction: a write that commits while it
		// runs is not in the copy, and the copy is still consistent.
		done := make(chan error)
		copiedc := make(chan []byte)
		p := newBlockingPipe()
		go func() {
			_, err := s.Backup(p)
			_ = p.Close()
			done <- err
		}()
		go func() { copiedc <- p.readAll() }()
		within.Recv(t, p.started, "first write of Backup") // Backup's transaction is open and writing
		mustUpdate(t, s, func(tx Tx) error { return tx.PutPair(Pair{Name: "written-during-backup"}) })
		if err := within.Recv(t, done, "end of Backup"); err != nil {
			t.Fatal(err)
		}
		copied := within.Recv(t, copiedc, "copy written by Backup")
		backup := filepath.Join(t.TempDir(), "copy.db")
		_ = os.WriteFile(backup, copied, 0o600)
		check(t, backup, int64(len(copied))) // the snapshot, without the later write
	})
}

// blockingPipe hands Backup's writes to a reader goroutine and says when
// the first one arrived.
type blockingPipe struct {
	started chan struct{}
	once    sync.Once
	data    chan []byte
}

func newBlockingPipe() *blockingPipe {
	return &blockingPipe{started: make(chan struct{}), data: make(chan []byte)}
}

func (p *blockingPipe) Write(b []byte) (int, error) {
	p.once.Do(func() { close(p.started) })
	p.data <- bytes.Clone(b)
	return len(b), nil
}

func (p *blockingPipe) Close() error { close(p.data); return nil }

func (p *blockingPipe) readAll() []byte {
	var out []byte
	for b := range p.data {
		out = append(out, b...)
	}
	return out
}

func TestLockSameProcess(t *testing.T) {
	t.Parallel()
	s, path := openTemp(t, Options{})
	for _, ro := range []bool{false, true} {
		_, err := Open(path, Options{LockTimeout: 100 * time.Millisecond, ReadOnly: ro})
		assertLocked(t, err, path)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	_ = s2.Close()

	// Read-only opens share the lock with each other, not with a writer.
	r1, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := Open(path, Options{ReadOnly: true, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("second read-only Open: %v", err)
	}
	defer r2.Close()
	_, err = Open(path, Options{LockTimeout: 100 * time.Millisecond})
	assertLocked(t, err, path)
	wantErrIs(t, r1.Update(func(Tx) error { return nil }), ErrReadOnly)
}

func assertLocked(t *testing.T, err error, path string) {
	t.Helper()
	wantErrIs(t, err, ErrLocked)
	var le *LockedError
	want := fmt.Sprintf("data dir %s is in use by another hvro (lock held on %s", filepath.Dir(path), path)
	if !errors.As(err, &le) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q should be a *LockedError saying %q", err, want)
	}
}

// TestLockOtherProcess: the real case, a second hvro process.
func TestLockOtherProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "hvro.db")
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=hold-lock", "HVRO_STORE_TEST_PATH="+path)
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = child.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("child said %q (%v), want locked", line, err)
	}
	_, err = Open(path, Options{LockTimeout: 200 * time.Millisecond})
	assertLocked(t, err, path)

	// When the other process exits, the lock is free.
	_ = stdin.Close()
	if err := child.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	s, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after the other process exited: %v", err)
	}
	_ = s.Close()
}

// childHoldLock opens the store, says "locked" and holds it until stdin closes.
func childHoldLock(path string) int {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestConcurrentCreate: hvro processes starting together on an empty data
// dir end up sharing one store; none replaces the store another created.
func TestConcurrentCreate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "hvro.db")
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(path, Options{LockTimeout: 10 * time.Second})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- s.Update(func(tx Tx) error { return tx.PutPair(Pair{Name: fmt.Sprint("vm", i)}) })
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d := dumpStore(t, s); len(d.Pairs) != n {
		t.Errorf("%d pairs in the store, want %d: a creator replaced another's store", len(d.Pairs), n)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only hvro.db", len(entries))
	}
}

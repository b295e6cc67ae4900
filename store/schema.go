package store

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// migration moves a file from schema version k to k+1 (k is its index in
// the list). It runs inside the single read-write transaction that also
// records the new version, so a failure or a crash leaves the file at k.
type migration struct {
	name string
	fn   func(tx *bolt.Tx) error
}

// migrations is the schema history; the current schema version is its
// length. Append only: a released migration is never changed or removed,
// because files at every older version must keep opening.
var migrations = []migration{
	// 0 -> 1: a new store. Creating a store is running every migration
	// from 0, so this path runs on every new file.
	{name: "create buckets", fn: func(tx *bolt.Tx) error {
		for _, b := range dataBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return nil
	}},
}

// SchemaVersion is the schema version this hvro writes.
func SchemaVersion() int { return len(migrations) }

// fileMeta is the content of the meta bucket that Open uses. The app key is
// not kept: readMeta refuses every file whose app is not metaAppName.
type fileMeta struct {
	schema  int
	created time.Time
}

// readMeta reads the meta bucket. A missing bucket or app key, or an app
// other than hvro (a bbolt file of another program), is a foreign file; a
// malformed value is damage.
func (s *Store) readMeta(tx *bolt.Tx) (fileMeta, error) {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return fileMeta{}, &ForeignError{Path: s.path, Reason: "a bbolt database without hvro metadata (" + describeBuckets(tx) + ")"}
	}
	app := b.Get(metaApp)
	if app == nil {
		return fileMeta{}, &ForeignError{Path: s.path, Reason: "a bbolt database whose meta bucket has no app key (" + describeBuckets(tx) + ")"}
	}
	if string(app) != metaAppName {
		return fileMeta{}, &ForeignError{Path: s.path, Reason: "a bbolt database of application " + quoteShort(app)}
	}
	var m fileMeta
	raw := b.Get(metaSchema)
	if raw == nil {
		return fileMeta{}, s.damaged(bucketMeta, "schema", errors.New("missing"))
	}
	n, err := strconv.Atoi(string(raw))
	if err != nil || n < 0 {
		return fileMeta{}, s.damaged(bucketMeta, "schema", fmt.Errorf("%s is not a schema version", quoteShort(raw)))
	}
	m.schema = n
	if c := b.Get(metaCreated); c != nil {
		t, err := time.Parse(time.RFC3339Nano, string(c))
		if err != nil {
			return fileMeta{}, s.damaged(bucketMeta, "created", fmt.Errorf("%s is not an RFC 3339 time", quoteShort(c)))
		}
		m.created = t
	}
	return m, nil
}

// describeBuckets names the top-level buckets of a foreign bbolt file, so
// the admin can tell what the file is.
func describeBuckets(tx *bolt.Tx) string {
	var names []string
	n := 0
	_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		n++
		if len(names) < 5 {
			names = append(names, quoteShort(name))
		}
		return nil
	})
	switch {
	case n == 0:
		return "no buckets"
	case n > len(names):
		return fmt.Sprintf("buckets %v and %d more", names, n-len(names))
	}
	return fmt.Sprintf("buckets %v", names)
}

// initMeta writes the meta of a brand-new file at schema 0.
func initMeta(tx *bolt.Tx, now time.Time) error {
	b, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return fmt.Errorf("create meta bucket: %w", err)
	}
	for k, v := range map[string]string{
		string(metaApp):     metaAppName,
		string(metaSchema):  "0",
		string(metaCreated): now.UTC().Format(time.RFC3339Nano),
	} {
		if err := b.Put([]byte(k), []byte(v)); err != nil {
			return fmt.Errorf("write meta %s: %w", k, err)
		}
	}
	return nil
}

// migrate runs migrations[from:] and records the final version, in tx.
func (s *Store) migrate(tx *bolt.Tx, list []migration, from int) error {
	for v := from; v < len(list); v++ {
		start := time.Now()
		if err := list[v].fn(tx); err != nil {
			return fmt.Errorf("migrate store %s from schema %d to %d (%s): %w", s.path, v, v+1, list[v].name, err)
		}
		s.log.Info("store schema migrated", "path", s.path, "from", v, "to", v+1, "migration", list[v].name, "took", time.Since(start))
	}
	if err := tx.Bucket(bucketMeta).Put(metaSchema, []byte(strconv.Itoa(len(list)))); err != nil {
		return fmt.Errorf("record schema version: %w", err)
	}
	return nil
}

// checkBuckets makes sure a file at the current schema has every bucket.
func (s *Store) checkBuckets(tx *bolt.Tx) error {
	for _, name := range dataBuckets {
		if tx.Bucket(name) == nil {
			return s.damaged(name, "", errors.New("bucket missing"))
		}
	}
	return nil
}

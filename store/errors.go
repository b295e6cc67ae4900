package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Kinds of failure callers branch on with errors.Is. The typed errors below
// carry the details and match these sentinels.
var (
	// ErrNotFound: the pair, observation or operation asked for is not stored.
	ErrNotFound = errors.New("not found")
	// ErrLocked: another process (or another Open in this one) holds the file.
	ErrLocked = errors.New("store is locked")
	// ErrForeign: the file is not an hvro store (empty, not bbolt, or bbolt
	// without hvro metadata). hvro never overwrites such a file.
	ErrForeign = errors.New("not an hvro store")
	// ErrDamaged: the file is an hvro store but part of it cannot be read.
	ErrDamaged = errors.New("store is damaged")
	// ErrNewerSchema: the file was written by a newer hvro; it is refused
	// untouched because downgrading a schema is never supported.
	ErrNewerSchema = errors.New("store written by a newer hvro")
	// ErrOlderSchema: a read-only Open found a file that needs a migration,
	// which only a read-write Open may run.
	ErrOlderSchema = errors.New("store needs a schema migration")
	// ErrInvalid: a record given to Put* breaks a rule of the store (empty
	// name, unknown state, ...). Nothing is written.
	ErrInvalid = errors.New("invalid record")
	// ErrReadOnly: Update on a store opened with Options.ReadOnly.
	ErrReadOnly = errors.New("store is read-only")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("store is closed")
)

// LockedError says which data directory is in use. It matches ErrLocked.
type LockedError struct {
	Path   string        // the store file whose lock is held
	Waited time.Duration // how long Open waited for the lock
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("data dir %s is in use by another hvro (lock held on %s; waited %s)",
		filepath.Dir(e.Path), e.Path, e.Waited)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// ForeignError says why a file is not an hvro store. It matches ErrForeign.
type ForeignError struct {
	Path   string
	Reason string // e.g. "an empty file", "not a bbolt database: it looks like JSON text"
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("%s is not an hvro store: %s; hvro leaves it untouched (move it away or point data_dir elsewhere)", e.Path, e.Reason)
}

// Is makes errors.Is(err, ErrForeign) true.
func (e *ForeignError) Is(target error) bool { return target == ErrForeign }

// DamagedError names the part of the store that could not be read. It
// matches ErrDamaged.
type DamagedError struct {
	Path   string
	Bucket string // empty when the damage is below the bucket level (pages, meta pages)
	Key    string // human-readable key: a pair name, "cluster/group", an operation id
	Err    error
}

func (e *DamagedError) Error() string {
	where := "file structure"
	switch {
	case e.Bucket != "" && e.Key != "":
		where = fmt.Sprintf("record %s/%s", e.Bucket, e.Key)
	case e.Bucket != "":
		where = "bucket " + e.Bucket
	}
	return fmt.Sprintf("store %s is damaged at %s: %v (restore from a backup)", e.Path, where, e.Err)
}

// Is makes errors.Is(err, ErrDamaged) true.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

func (e *DamagedError) Unwrap() error { return e.Err }

// SchemaError reports a file schema this hvro cannot use as is. It matches
// ErrNewerSchema when the file is newer, ErrOlderSchema when it needs a
// migration that a read-only Open cannot run.
type SchemaError struct {
	Path      string
	File      int // schema version recorded in the file
	Supported int // schema version this hvro writes
}

func (e *SchemaError) Error() string {
	if e.File > e.Supported {
		return fmt.Sprintf("store %s has schema version %d but this hvro supports up to %d: it was written by a newer hvro; run that version (downgrades are not supported)",
			e.Path, e.File, e.Supported)
	}
	return fmt.Sprintf("store %s has schema version %d and needs migrating to %d: open it read-write once (hvro serve does)",
		e.Path, e.File, e.Supported)
}

// Is matches ErrNewerSchema or ErrOlderSchema.
func (e *SchemaError) Is(target error) bool {
	if e.File > e.Supported {
		return target == ErrNewerSchema
	}
	return target == ErrOlderSchema
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

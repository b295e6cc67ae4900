package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options tune Open. The zero value is usable.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the file before failing with a *LockedError. Default 1s. bbolt
	// retries every 50ms, so below that Open tries once; keep it well
	// above: a child process forked at the wrong moment holds the lock
	// until it execs, and Open itself locks twice (see openBolt).
	LockTimeout time.Duration
	// EventRetention is how many events the store keeps; appending one
	// more drops the oldest. Default 10000.
	EventRetention int
	// Logger receives open, migration and damage reports. Default: discard.
	Logger *slog.Logger
	// ReadOnly opens with a shared lock for inspection: several read-only
	// opens may coexist, none alongside a read-write one. Update fails with
	// ErrReadOnly, a missing file is an error, and a file that needs a
	// migration is refused (ErrOlderSchema).
	ReadOnly bool

	// migrations replaces the schema history in tests.
	migrations []migration
	// now replaces time.Now in tests.
	now func() time.Time
	// maxSize is bbolt's file size limit, for tests whose commits must
	// fail as on a full disk.
	maxSize int
}

const (
	defaultLockTimeout    = time.Second
	defaultEventRetention = 10000
)

// Store is an open hvro store: one bbolt file, exclusively locked. It is
// safe for concurrent use: any number of View calls run in parallel with at
// most one Update.
type Store struct {
	path string
	opts Options
	log  *slog.Logger
	db   *bolt.DB

	closeOnce sync.Once
	closeErr  error
	checkTook time.Duration // how long Open's verification took, for the log

	// lastCommit is the outcome of the latest read-write transaction that
	// tried to commit (Health).
	healthMu    sync.Mutex
	commitErr   error
	commitErrAt time.Time
}

// Open opens the store at path, creating it (mode 0600, parent directories
// 0700) when missing, and migrating an older schema in one transaction.
//
// Open refuses, without changing a byte of the file: a file locked by
// another process (*LockedError, ErrLocked), a file that is not an hvro
// store (*ForeignError, ErrForeign), a damaged one (*DamagedError,
// ErrDamaged) and one written by a newer hvro (*SchemaError,
// ErrNewerSchema).
//
// Before bbolt walks the file, Open validates its page graph with plain
// reads under the lock (see validate.go: bbolt itself can panic, fault or
// loop forever on a corrupt page), then runs bbolt's consistency check
// (freelist, reachability, key order). Both read every page in use once:
// the cost is linear in the file size, about a millisecond per MiB
// (BenchmarkOpen). Records are decoded when read; Store.Check decodes them
// all.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = defaultLockTimeout
	}
	if opts.EventRetention < 0 {
		return nil, fmt.Errorf("open store %s: event retention %d is negative", path, opts.EventRetention)
	}
	if opts.EventRetention == 0 {
		opts.EventRetention = defaultEventRetention
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.migrations == nil {
		opts.migrations = migrations
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{path: abs, opts: opts, log: opts.Logger}

	if err := s.ensureFile(); err != nil {
		return nil, err
	}
	if err := s.openBolt(); err != nil {
		return nil, err
	}
	if err := s.prepare(); err != nil {
		_ = s.db.Close()
		return nil, err
	}
	return s, nil
}

// ensureFile creates a new store when path does not exist, and classifies
// an existing file before bbolt touches it.
func (s *Store) ensureFile() error {
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		if s.opts.ReadOnly {
			return fmt.Errorf("open store %s read-only: %w", s.path, err)
		}
		if err := s.create(); err != nil {
			return err
		}
		fi, err = os.Stat(s.path)
	}
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	if !fi.Mode().IsRegular() {
		return &ForeignError{Path: s.path, Reason: fmt.Sprintf("not a regular file (mode %s)", fi.Mode())}
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	defer f.Close()
	_, err = s.inspectFile(f, fi.Size())
	return err
}

// create builds a complete store (meta and every bucket) in a temporary
// file next to path and then links it into place. A crash at any point
// leaves either no store or a complete one, never an empty file, so an
// empty file is always foreign.
func (s *Store) create() error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".new-*")
	if err != nil {
		return fmt.Errorf("create store %s: %w", s.path, err)
	}
	tmp := f.Name()
	_ = f.Close()
	// CreateTemp made an empty file, which bbolt initialises.
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: s.opts.LockTimeout})
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error {
			if err := initMeta(tx, s.opts.now()); err != nil {
				return err
			}
			return s.migrate(tx, s.opts.migrations, 0)
		})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("create store %s: %w", s.path, err)
	}
	created, err := publish(tmp, s.path)
	if err != nil {
		return err
	}
	if created {
		s.log.Info("store created", "path", s.path, "schema", len(s.opts.migrations))
	}
	return nil
}

// openBolt verifies the file under a shared lock, then opens it for good.
// bbolt's read-only open touches only the meta pages, so the page graph is
// validated before bbolt reads anything else, and a foreign, damaged or
// newer file is refused before a read-write open could write to it (bbolt
// may commit while opening read-write). A store that another process
// changes between the two opens was valid when that process locked it.
func (s *Store) openBolt() (err error) {
	start := time.Now()
	if s.db, err = s.boltOpen(true); err != nil {
		return err
	}
	err = s.validateFile()
	if err == nil {
		err = s.viewBolt(func(tx *bolt.Tx) error {
			if _, err := s.checkMeta(tx); err != nil {
				return err
			}
			return s.checkStructure(tx)
		})
	}
	if err != nil || s.opts.ReadOnly {
		if err != nil {
			_ = s.db.Close()
			s.db = nil
		}
		s.checkTook = time.Since(start)
		return err
	}
	s.checkTook = time.Since(start)
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	if s.db, err = s.boltOpen(false); err != nil {
		s.db = nil
		return err
	}
	return nil
}

// validateFile re-reads the meta pages and validates the page graph.
func (s *Store) validateFile() error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	m, err := s.inspectFile(f, fi.Size())
	if err != nil {
		return err
	}
	if err := validatePages(f, m); err != nil {
		return s.damaged(nil, "", err)
	}
	return nil
}

// boltOpen opens the file with bbolt, turning its lock timeout and any
// panic into hvro errors.
func (s *Store) boltOpen(readOnly bool) (db *bolt.DB, err error) {
	var file *os.File
	bopts := &bolt.Options{
		Timeout:  s.opts.LockTimeout,
		ReadOnly: readOnly,
		MaxSize:  s.opts.maxSize,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			// Never create here: ensureFile created or vetted the file,
			// and if it vanished since, bbolt must not make a bare one.
			f, err := os.OpenFile(name, flag&^os.O_CREATE, perm)
			file = f
			return f, err
		},
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			// bbolt did not return the handle; closing the file releases
			// the lock (the mapping stays until the process exits).
			if file != nil {
				_ = file.Close()
			}
			db, err = nil, s.damaged(nil, "", fmt.Errorf("bbolt panicked while opening: %v", r))
		}
	}()
	start := time.Now()
	db, err = bolt.Open(s.path, 0o600, bopts)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, &LockedError{Path: s.path, Waited: time.Since(start).Round(time.Millisecond)}
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		// inspectFile passed, so the file changed under us or bbolt
		// disagrees with it: damage, not foreignness.
		return nil, s.damaged(nil, "", err)
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", s.path, err)
	}
	return db, nil
}

// checkMeta reads meta and refuses a schema this Open cannot use.
func (s *Store) checkMeta(tx *bolt.Tx) (fileMeta, error) {
	meta, err := s.readMeta(tx)
	if err != nil {
		return meta, err
	}
	cur := len(s.opts.migrations)
	if meta.schema > cur || (meta.schema < cur && s.opts.ReadOnly) {
		return meta, &SchemaError{Path: s.path, File: meta.schema, Supported: cur}
	}
	return meta, nil
}

// prepare runs under the final lock: meta again, then migrations.
func (s *Store) prepare() error {
	var meta fileMeta
	err := s.viewBolt(func(tx *bolt.Tx) (err error) {
		meta, err = s.checkMeta(tx)
		return err
	})
	if err != nil {
		return err
	}
	if cur := len(s.opts.migrations); meta.schema < cur {
		err = s.updateBolt(func(tx *bolt.Tx) error { return s.migrate(tx, s.opts.migrations, meta.schema) })
		if err != nil {
			return err
		}
	}
	if err := s.viewBolt(s.checkBuckets); err != nil {
		return err
	}
	s.log.Info("store opened", "path", s.path, "schema", len(s.opts.migrations), "created", meta.created,
		"read_only", s.opts.ReadOnly, "size", s.size(), "check_took", s.checkTook)
	return nil
}

func (s *Store) size() int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// checkStructure runs bbolt's consistency check (freelist, reachability,
// key order) after validateFile made sure the page graph is safe to walk;
// validateFile, under the same lock, also refused a file shorter than its
// meta page's high water mark (tx.Size()). At most maxProblems problems
// are reported.
func (s *Store) checkStructure(tx *bolt.Tx) error {
	const maxProblems = 10
	var problems []error
	for err := range tx.Check() {
		// Drain the channel: the checker goroutine holds the transaction.
		if len(problems) < maxProblems {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		return s.damaged(nil, "", fmt.Errorf("bbolt consistency check: %w", errors.Join(problems...)))
	}
	return nil
}

// damaged builds a DamagedError for this store and logs it: damage needs an
// admin, so it is reported where it is found.
func (s *Store) damaged(bucket []byte, key string, err error) error {
	e := &DamagedError{Path: s.path, Bucket: string(bucket), Key: key, Err: err}
	s.log.Error("store damaged", "path", s.path, "bucket", e.Bucket, "key", key, "error", err.Error())
	return e
}

// Path is the absolute path of the store file.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock. Later calls return the same result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close store %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// View runs fn in a read-only transaction that sees one consistent state.
func (s *Store) View(fn func(Tx) error) error {
	return s.run(false, fn)
}

// Update runs fn in one read-write transaction and commits it, with an
// fsync, when fn returns nil. An error from fn rolls every change back.
// Updates are serialised; keep fn short and free of network calls.
func (s *Store) Update(fn func(Tx) error) error {
	if s.opts.ReadOnly {
		return fmt.Errorf("update store %s: %w", s.path, ErrReadOnly)
	}
	return s.run(true, fn)
}

// run is View and Update. A panic raised by bbolt (corrupt page, fault on
// the mapped file) becomes a DamagedError; a panic raised by fn itself
// rolls back and propagates like any bug.
func (s *Store) run(writable bool, fn func(Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	btx, err := s.begin(writable)
	if err != nil {
		if writable {
			s.noteCommit(err)
		}
		return err
	}
	t := &boltTx{s: s, tx: btx}
	done := false
	defer func() {
		t.done = true
		if !done {
			s.rollback(btx)
		}
	}()
	if err := fn(t); err != nil {
		done = true
		s.rollback(btx)
		return err
	}
	done = true
	if t.broken {
		s.rollback(btx)
		err := s.damaged(nil, "", errors.New("transaction rolled back after bbolt panicked; the callback ignored the error"))
		if writable {
			s.noteCommit(err)
		}
		return err
	}
	if !writable {
		s.rollback(btx)
		return nil
	}
	err = s.commit(btx)
	s.noteCommit(err)
	return err
}

// noteCommit records whether a write reached the file. A caller's own
// error (a record refused, a callback that gave up) is not the store's
// health and never gets here.
func (s *Store) noteCommit(err error) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if err == nil {
		s.commitErr = nil
		return
	}
	s.commitErr, s.commitErrAt = err, s.opts.now()
}

// Health is nil unless the latest write failed to commit (a full or
// read-only disk, a damaged file): then it says when and why. The next
// commit that succeeds clears it. hvro's readiness reports it, since a
// service whose journal cannot be written must not look healthy.
func (s *Store) Health() error {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if s.commitErr == nil {
		return nil
	}
	return fmt.Errorf("the last write to the store failed to commit at %s: %w", s.commitErrAt.UTC().Format(time.RFC3339), s.commitErr)
}

func (s *Store) begin(writable bool) (btx *bolt.Tx, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.damaged(nil, "", fmt.Errorf("bbolt panicked beginning a transaction: %v", r))
		}
	}()
	btx, err = s.db.Begin(writable)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return nil, fmt.Errorf("store %s: %w", s.path, ErrClosed)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: begin transaction: %w", s.path, err)
	}
	return btx, nil
}

func (s *Store) commit(btx *bolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.rollback(btx)
			err = s.damaged(nil, "", fmt.Errorf("bbolt panicked committing: %v", r))
		}
	}()
	if err := btx.Commit(); err != nil {
		return fmt.Errorf("store %s: commit: %w", s.path, err)
	}
	return nil
}

func (s *Store) rollback(btx *bolt.Tx) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("store rollback panicked", "path", s.path, "panic", fmt.Sprint(r))
		}
	}()
	_ = btx.Rollback()
}

// viewBolt and updateBolt run raw bbolt transactions for Open and
// migrations, with the same panic protection as View and Update.
func (s *Store) viewBolt(fn func(*bolt.Tx) error) error {
	return s.rawRun(false, false, fn)
}

func (s *Store) updateBolt(fn func(*bolt.Tx) error) error {
	return s.rawRun(true, true, fn)
}

// exclusiveBolt runs fn in a read-write transaction that is always rolled
// back: bbolt's consistency check is only safe on a read transaction when
// no writer runs at the same time, and this is how to exclude writers.
func (s *Store) exclusiveBolt(fn func(*bolt.Tx) error) error {
	if s.opts.ReadOnly {
		return s.viewBolt(fn) // no writer can exist: the lock is shared with readers only
	}
	return s.rawRun(true, false, fn)
}

func (s *Store) rawRun(writable, commit bool, fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	btx, err := s.begin(writable)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if r := recover(); r != nil {
			err = s.damaged(nil, "", fmt.Errorf("bbolt panicked: %v", r))
		}
		if !committed {
			s.rollback(btx)
		}
	}()
	if err := fn(btx); err != nil {
		return err
	}
	if !commit {
		return nil
	}
	committed = true
	return s.commit(btx)
}

// Backup writes a consistent copy of the store to w through a read
// transaction, so it runs alongside writers. The copy is a complete store
// that Open reads as is.
func (s *Store) Backup(w io.Writer) (n int64, err error) {
	err = s.viewBolt(func(tx *bolt.Tx) error {
		var werr error
		n, werr = tx.WriteTo(w)
		return werr
	})
	if err != nil {
		return n, fmt.Errorf("back up store %s: %w", s.path, err)
	}
	return n, nil
}

// CreateBackup writes a copy of a store to path, which must not exist, and
// returns its size. fill writes the copy (Store.Backup, or what a running
// hvro's GET /v1/backup sends) to a temporary file in path's folder; the
// file is synced and must open as a store before it appears at path, by a
// hard link that fails rather than replace a file. A file at path, however
// it got there, is never replaced or removed: the error matches
// fs.ErrExist. On any error only the temporary file is removed. A file
// system without hard links cannot promise that, and gets no backup.
func CreateBackup(path string, fill func(io.Writer) (int64, error)) (n int64, err error) {
	wrap := func(err error) error { return fmt.Errorf("back up store to %s: %w", path, err) }
	if _, err := os.Lstat(path); err == nil {
		return 0, wrap(fmt.Errorf("%w: hvro never replaces a file with a backup; choose a new name", fs.ErrExist))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, wrap(err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, wrap(err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the link, path is the copy's other name
	n, err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, wrap(err)
	}
	// A cut transfer never passes for a backup.
	check, err := Open(tmp, Options{ReadOnly: true})
	if err != nil {
		return n, wrap(fmt.Errorf("the copy does not open as a store: %w", err))
	}
	if err := check.Close(); err != nil {
		return n, wrap(err)
	}
	created, err := publish(tmp, path)
	if err != nil {
		return n, wrap(err)
	}
	if !created {
		return n, wrap(fmt.Errorf("%w: %s appeared while the copy was written; it was left alone and the copy dropped", fs.ErrExist, path))
	}
	return n, nil
}

// Check verifies the whole store: the page structure (as Open does), every
// record decodes, keys match records, and the operations index matches the
// operations. It returns nil or an error matching ErrDamaged that lists up
// to ten problems. Writers wait while it runs (linear in the file size).
func (s *Store) Check() error {
	return s.exclusiveBolt(func(btx *bolt.Tx) error {
		// With writers excluded the file holds exactly what btx sees.
		if err := s.validateFile(); err != nil {
			return err
		}
		if _, err := s.readMeta(btx); err != nil {
			return err
		}
		if err := s.checkStructure(btx); err != nil {
			return err
		}
		if err := s.checkBuckets(btx); err != nil {
			return err
		}
		return s.checkRecords(&boltTx{s: s, tx: btx})
	})
}

func (s *Store) checkRecords(t *boltTx) error {
	const maxProblems = 10
	var problems []error
	report := func(err error) bool {
		problems = append(problems, err)
		return len(problems) < maxProblems
	}
	type decoder func(k, v []byte) error
	decoders := []struct {
		bucket []byte
		decode decoder
	}{
		{bucketPairs, func(k, v []byte) error { _, err := t.decodePair(k, v); return err }},
		{bucketObservations, func(k, v []byte) error { _, err := t.decodeObservation(k, v); return err }},
		{bucketEvents, func(k, v []byte) error { _, err := t.decodeEvent(k, v); return err }},
		{bucketOperations, func(k, v []byte) error {
			op, err := t.decodeOperation(k, v)
			if err != nil {
				return err
			}
			if t.tx.Bucket(bucketOpsByPair).Get(opPairKey(op.Pair, op.ID)) == nil {
				return s.damaged(bucketOpsByPair, keyString(bucketOpsByPair, opPairKey(op.Pair, op.ID)), errors.New("index entry missing"))
			}
			if indexed := t.tx.Bucket(bucketOpsRunning).Get(k) != nil; indexed != (op.State == OpRunning) {
				return s.damaged(bucketOpsRunning, keyString(bucketOpsRunning, k),
					fmt.Errorf("operation is %s but the index of running operations says %v", op.State, indexed))
			}
			return nil
		}},
		{bucketOpsRunning, func(k, _ []byte) error {
			if t.tx.Bucket(bucketOperations).Get(k) == nil {
				return s.damaged(bucketOpsRunning, keyString(bucketOpsRunning, k), errors.New("index entry without operation"))
			}
			return nil // the state is compared from the operations side
		}},
		{bucketOpsByPair, func(k, _ []byte) error {
			if len(k) < 10 || k[len(k)-9] != 0 {
				return s.damaged(bucketOpsByPair, keyString(bucketOpsByPair, k), errors.New("malformed index key"))
			}
			v := t.tx.Bucket(bucketOperations).Get(k[len(k)-8:])
			if v == nil {
				return s.damaged(bucketOpsByPair, keyString(bucketOpsByPair, k), errors.New("index entry without operation"))
			}
			op, err := t.decodeOperation(k[len(k)-8:], v)
			if err != nil {
				return nil // reported with the operations bucket
			}
			if op.Pair != string(k[:len(k)-9]) {
				return s.damaged(bucketOpsByPair, keyString(bucketOpsByPair, k), fmt.Errorf("operation belongs to pair %q", op.Pair))
			}
			return nil
		}},
	}
	for _, d := range decoders {
		c := t.tx.Bucket(d.bucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := d.decode(k, v); err != nil && !report(err) {
				return errors.Join(problems...)
			}
		}
	}
	return errors.Join(problems...)
}

// MarkInterrupted closes the journal entries a crash left open: every
// operation still running becomes interrupted, with its running and pending
// steps, and an "op-interrupted" event is appended for each, all in one
// transaction. Call it once at start-up, before any worker runs; it returns
// the operations it changed so their pairs can be queued again.
func (s *Store) MarkInterrupted(now time.Time) ([]Operation, error) {
	var changed []Operation
	err := s.Update(func(tx Tx) error {
		changed = nil
		ops, err := tx.Operations(OpFilter{States: []OpState{OpRunning}})
		if err != nil {
			return err
		}
		for i := len(ops) - 1; i >= 0; i-- { // oldest first
			op := ops[i]
			op.State = OpInterrupted
			op.Ended = now
			if op.Error == "" {
				op.Error = "hvro stopped while the operation ran"
			}
			for j := range op.Plan {
				st := &op.Plan[j]
				if st.Outcome != OutcomeRunning && st.Outcome != OutcomePending {
					continue
				}
				if st.Outcome == OutcomeRunning || !st.Started.IsZero() {
					st.Ended = now
				}
				st.Outcome = OutcomeInterrupted
			}
			if err := tx.PutOperation(op); err != nil {
				return err
			}
			_, err := tx.AppendEvent(Event{At: now, Pair: op.Pair, Op: fmt.Sprint(op.ID), Kind: "op-interrupted",
				Message: fmt.Sprintf("operation %d (%s) was interrupted: hvro stopped while it ran", op.ID, op.Kind)})
			if err != nil {
				return err
			}
			changed = append(changed, op)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mark interrupted operations: %w", err)
	}
	for _, op := range changed {
		s.log.Warn("operation interrupted by a restart", "pair", op.Pair, "op", op.ID, "kind", op.Kind)
	}
	return changed, nil
}

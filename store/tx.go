package store

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Tx is what a View or Update callback sees: typed access to every record
// kind inside one transaction. It is the narrow interface a second backend
// (etcd) would implement. A Tx is only valid during its callback; Put* and
// the other writes fail with ErrReadOnly inside View.
type Tx interface {
	Pair(name string) (Pair, error) // ErrNotFound
	Pairs() ([]Pair, error)         // sorted by name
	PutPair(p Pair) error
	// DeletePair removes the pair record only; its operations and events
	// stay. Removing a pair from the config does not call this (hvro stops
	// managing it and keeps its history); it is for tests and admin tools.
	DeletePair(name string) error // ErrNotFound

	Observation(cluster, group string) (Observation, error) // ErrNotFound
	Observations() ([]Observation, error)                   // sorted by cluster, then group
	PutObservation(o Observation) error

	// NextOperationID reserves an id: monotonic, never reused, also across
	// restarts. A reserved id that is never put leaves a harmless gap.
	NextOperationID() (uint64, error)
	Operation(id uint64) (Operation, error) // ErrNotFound
	PutOperation(op Operation) error        // op.ID must come from NextOperationID
	Operations(filter OpFilter) ([]Operation, error)

	// AppendEvent assigns e.Seq (ignoring the given one), stores the event
	// and drops the oldest events beyond the retention, in this transaction.
	AppendEvent(e Event) (uint64, error)
	Events(filter EventFilter) ([]Event, error)
}

// OpFilter selects operations. Results are newest first.
type OpFilter struct {
	Pair   string    // only this pair; empty: all pairs
	Limit  int       // at most this many; 0: no limit
	States []OpState // only these states; empty: any
}

// EventFilter selects events. Results are always in Seq order (oldest first).
type EventFilter struct {
	Pair string // only events of this pair; empty: all events
	// Limit caps the result at this many events (0: no limit). Without
	// AfterSeq the newest Limit events are returned; with AfterSeq the
	// Limit events right after it, so a reader that follows the log with
	// AfterSeq = last Seq seen never skips one.
	Limit    int
	AfterSeq uint64 // only events with Seq > AfterSeq
}

// boltTx implements Tx on a bbolt transaction.
type boltTx struct {
	s  *Store
	tx *bolt.Tx
	// broken is set when bbolt panicked during this transaction; Update then
	// rolls back even if the callback returns nil.
	broken bool
	// done is set when the callback returned: the bbolt transaction is gone.
	done bool
}

var _ Tx = (*boltTx)(nil)

// guard turns a bbolt panic (corrupt page, fault on the mapped file) into a
// DamagedError. Deferred at the top of every method that touches bbolt.
func (t *boltTx) guard(err *error, bucket []byte, key func() string) {
	r := recover()
	if r == nil {
		return
	}
	t.broken = true
	k := ""
	if key != nil {
		k = key()
	}
	*err = t.s.damaged(bucket, k, fmt.Errorf("bbolt panicked: %v", r))
}

func (t *boltTx) bucket(name []byte) (*bolt.Bucket, error) {
	if t.done {
		return nil, fmt.Errorf("store %s: Tx used after its View or Update callback returned", t.s.path)
	}
	b := t.tx.Bucket(name)
	if b == nil {
		return nil, t.s.damaged(name, "", errors.New("bucket missing"))
	}
	return b, nil
}

func (t *boltTx) writable() error {
	if !t.tx.Writable() {
		return fmt.Errorf("store %s: write inside View: %w", t.s.path, ErrReadOnly)
	}
	return nil
}

func (t *boltTx) put(bucket *bolt.Bucket, name, key, value []byte) error {
	if err := bucket.Put(key, value); err != nil {
		return fmt.Errorf("store %s: put %s/%s: %w", t.s.path, name, keyString(name, key), err)
	}
	return nil
}

// --- pairs

func (t *boltTx) Pair(name string) (p Pair, err error) {
	defer t.guard(&err, bucketPairs, func() string { return keyString(bucketPairs, []byte(name)) })
	b, err := t.bucket(bucketPairs)
	if err != nil {
		return Pair{}, err
	}
	v := b.Get([]byte(name))
	if v == nil {
		return Pair{}, fmt.Errorf("pair %q: %w", name, ErrNotFound)
	}
	return t.decodePair([]byte(name), v)
}

func (t *boltTx) decodePair(k, v []byte) (Pair, error) {
	var p Pair
	if err := decodeRecord(v, pairVersion, &p); err != nil {
		return Pair{}, t.s.damaged(bucketPairs, keyString(bucketPairs, k), err)
	}
	if p.Name != string(k) {
		return Pair{}, t.s.damaged(bucketPairs, keyString(bucketPairs, k), fmt.Errorf("record names pair %q", p.Name))
	}
	return p, nil
}

func (t *boltTx) Pairs() (ps []Pair, err error) {
	defer t.guard(&err, bucketPairs, nil)
	b, err := t.bucket(bucketPairs)
	if err != nil {
		return nil, err
	}
	err = b.ForEach(func(k, v []byte) error {
		p, err := t.decodePair(k, v)
		if err != nil {
			return err
		}
		ps = append(ps, p)
		return nil
	})
	return ps, err
}

func (t *boltTx) PutPair(p Pair) (err error) {
	defer t.guard(&err, bucketPairs, func() string { return keyString(bucketPairs, []byte(p.Name)) })
	if err := t.writable(); err != nil {
		return err
	}
	if err := p.validate(); err != nil {
		return invalidf("put pair: %v", err)
	}
	v, err := encodeRecord(pairVersion, &p)
	if err != nil {
		return fmt.Errorf("encode pair %q: %w", p.Name, err)
	}
	b, err := t.bucket(bucketPairs)
	if err != nil {
		return err
	}
	return t.put(b, bucketPairs, []byte(p.Name), v)
}

func (t *boltTx) DeletePair(name string) (err error) {
	defer t.guard(&err, bucketPairs, func() string { return keyString(bucketPairs, []byte(name)) })
	if err := t.writable(); err != nil {
		return err
	}
	b, err := t.bucket(bucketPairs)
	if err != nil {
		return err
	}
	if b.Get([]byte(name)) == nil {
		return fmt.Errorf("delete pair %q: %w", name, ErrNotFound)
	}
	return b.Delete([]byte(name))
}

// --- observations

func (t *boltTx) Observation(cluster, group string) (o Observation, err error) {
	k := observationKey(cluster, group)
	defer t.guard(&err, bucketObservations, func() string { return keyString(bucketObservations, k) })
	b, err := t.bucket(bucketObservations)
	if err != nil {
		return Observation{}, err
	}
	v := b.Get(k)
	if v == nil {
		return Observation{}, fmt.Errorf("observation of %s/%s: %w", cluster, group, ErrNotFound)
	}
	return t.decodeObservation(k, v)
}

func (t *boltTx) decodeObservation(k, v []byte) (Observation, error) {
	var o Observation
	if err := decodeRecord(v, observationVersion, &o); err != nil {
		return Observation{}, t.s.damaged(bucketObservations, keyString(bucketObservations, k), err)
	}
	if !bytes.Equal(observationKey(o.Cluster, o.Group), k) {
		return Observation{}, t.s.damaged(bucketObservations, keyString(bucketObservations, k),
			fmt.Errorf("record is about %s/%s", o.Cluster, o.Group))
	}
	return o, nil
}

func (t *boltTx) Observations() (os []Observation, err error) {
	defer t.guard(&err, bucketObservations, nil)
	b, err := t.bucket(bucketObservations)
	if err != nil {
		return nil, err
	}
	err = b.ForEach(func(k, v []byte) error {
		o, err := t.decodeObservation(k, v)
		if err != nil {
			return err
		}
		os = append(os, o)
		return nil
	})
	return os, err
}

func (t *boltTx) PutObservation(o Observation) (err error) {
	k := observationKey(o.Cluster, o.Group)
	defer t.guard(&err, bucketObservations, func() string { return keyString(bucketObservations, k) })
	if err := t.writable(); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return invalidf("put observation: %v", err)
	}
	v, err := encodeRecord(observationVersion, &o)
	if err != nil {
		return fmt.Errorf("encode observation of %s/%s: %w", o.Cluster, o.Group, err)
	}
	b, err := t.bucket(bucketObservations)
	if err != nil {
		return err
	}
	return t.put(b, bucketObservations, k, v)
}

// --- operations

func (t *boltTx) NextOperationID() (id uint64, err error) {
	defer t.guard(&err, bucketOperations, nil)
	if err := t.writable(); err != nil {
		return 0, err
	}
	b, err := t.bucket(bucketOperations)
	if err != nil {
		return 0, err
	}
	id, err = b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("store %s: next operation id: %w", t.s.path, err)
	}
	return id, nil
}

func (t *boltTx) Operation(id uint64) (op Operation, err error) {
	defer t.guard(&err, bucketOperations, func() string { return keyString(bucketOperations, idKey(id)) })
	b, err := t.bucket(bucketOperations)
	if err != nil {
		return Operation{}, err
	}
	k := idKey(id)
	v := b.Get(k)
	if v == nil {
		return Operation{}, fmt.Errorf("operation %d: %w", id, ErrNotFound)
	}
	return t.decodeOperation(k, v)
}

func (t *boltTx) decodeOperation(k, v []byte) (Operation, error) {
	var op Operation
	if err := decodeRecord(v, operationVersion, &op); err != nil {
		return Operation{}, t.s.damaged(bucketOperations, keyString(bucketOperations, k), err)
	}
	if id, ok := parseIDKey(k); !ok || id != op.ID {
		return Operation{}, t.s.damaged(bucketOperations, keyString(bucketOperations, k), fmt.Errorf("record has id %d", op.ID))
	}
	if err := op.validate(); err != nil {
		return Operation{}, t.s.damaged(bucketOperations, keyString(bucketOperations, k), err)
	}
	return op, nil
}

func (t *boltTx) PutOperation(op Operation) (err error) {
	defer t.guard(&err, bucketOperations, func() string { return keyString(bucketOperations, idKey(op.ID)) })
	if err := t.writable(); err != nil {
		return err
	}
	if err := op.validate(); err != nil {
		return invalidf("put operation: %v", err)
	}
	b, err := t.bucket(bucketOperations)
	if err != nil {
		return err
	}
	if op.ID > b.Sequence() {
		return invalidf("put operation: id %d was never handed out by NextOperationID (last is %d)", op.ID, b.Sequence())
	}
	idx, err := t.bucket(bucketOpsByPair)
	if err != nil {
		return err
	}
	k := idKey(op.ID)
	if old := b.Get(k); old != nil {
		prev, err := t.decodeOperation(k, old)
		if err != nil {
			return err
		}
		if prev.Pair != op.Pair {
			// An operation belongs to one pair for life; moving it would
			// rewrite history.
			return invalidf("put operation: operation %d belongs to pair %q, not %q", op.ID, prev.Pair, op.Pair)
		}
	}
	v, err := encodeRecord(operationVersion, &op)
	if err != nil {
		return fmt.Errorf("encode operation %d: %w", op.ID, err)
	}
	if err := t.put(b, bucketOperations, k, v); err != nil {
		return err
	}
	if err := t.put(idx, bucketOpsByPair, opPairKey(op.Pair, op.ID), nil); err != nil {
		return err
	}
	running, err := t.bucket(bucketOpsRunning)
	if err != nil {
		return err
	}
	if op.State == OpRunning {
		return t.put(running, bucketOpsRunning, k, []byte(op.Pair))
	}
	return running.Delete(k)
}

func (t *boltTx) Operations(f OpFilter) (ops []Operation, err error) {
	defer t.guard(&err, bucketOperations, nil)
	if f.Limit < 0 {
		return nil, invalidf("operations: limit %d is negative", f.Limit)
	}
	b, err := t.bucket(bucketOperations)
	if err != nil {
		return nil, err
	}
	keep := func(k, v []byte) (bool, error) {
		op, err := t.decodeOperation(k, v)
		if err != nil {
			return false, err
		}
		if f.Pair != "" && op.Pair != f.Pair {
			return false, t.s.damaged(bucketOpsByPair, keyString(bucketOpsByPair, opPairKey(f.Pair, op.ID)),
				fmt.Errorf("index entry points at operation %d of pair %q", op.ID, op.Pair))
		}
		if len(f.States) > 0 && !slices.Contains(f.States, op.State) {
			return true, nil
		}
		ops = append(ops, op)
		return f.Limit == 0 || len(ops) < f.Limit, nil
	}

	if f.Pair == "" && len(f.States) == 1 && f.States[0] == OpRunning {
		// Start-up and "is anything running" look here: the index keeps
		// this independent of the journal's length.
		running, err := t.bucket(bucketOpsRunning)
		if err != nil {
			return nil, err
		}
		c := running.Cursor()
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			v := b.Get(k)
			if v == nil {
				return ops, t.s.damaged(bucketOpsRunning, keyString(bucketOpsRunning, k), errors.New("index entry without operation"))
			}
			more, err := keep(k, v)
			if err != nil || !more {
				return ops, err
			}
		}
		return ops, nil
	}

	if f.Pair == "" {
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			more, err := keep(k, v)
			if err != nil || !more {
				return ops, err
			}
		}
		return ops, nil
	}

	idx, err := t.bucket(bucketOpsByPair)
	if err != nil {
		return nil, err
	}
	prefix := append([]byte(f.Pair), 0)
	// Position after the last key of the prefix: pair+0x01 sorts right
	// after every pair+0x00+id key.
	end := append([]byte(f.Pair), 1)
	c := idx.Cursor()
	k, _ := c.Seek(end)
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
		if len(k) != len(prefix)+8 {
			return ops, t.s.damaged(bucketOpsByPair, keyString(bucketOpsByPair, k), errors.New("malformed index key"))
		}
		ok := k[len(prefix):]
		v := b.Get(ok)
		if v == nil {
			return ops, t.s.damaged(bucketOpsByPair, keyString(bucketOpsByPair, k), errors.New("index entry without operation"))
		}
		more, err := keep(ok, v)
		if err != nil || !more {
			return ops, err
		}
	}
	return ops, nil
}

// --- events

func (t *boltTx) AppendEvent(e Event) (seq uint64, err error) {
	defer t.guard(&err, bucketEvents, nil)
	if err := t.writable(); err != nil {
		return 0, err
	}
	if err := e.validate(); err != nil {
		return 0, invalidf("append event: %v", err)
	}
	b, err := t.bucket(bucketEvents)
	if err != nil {
		return 0, err
	}
	seq, err = b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("store %s: next event seq: %w", t.s.path, err)
	}
	e.Seq = seq
	v, err := encodeRecord(eventVersion, &e)
	if err != nil {
		return 0, fmt.Errorf("encode event: %w", err)
	}
	if err := t.put(b, bucketEvents, idKey(seq), v); err != nil {
		return 0, err
	}
	return seq, t.trimEvents(b, seq)
}

// trimEvents deletes the oldest events until at most retention remain. Keys
// are consecutive sequence numbers with deletions only at the front, so the
// count is last - first + 1 without a scan.
func (t *boltTx) trimEvents(b *bolt.Bucket, last uint64) error {
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.First() {
		first, ok := parseIDKey(k)
		if !ok {
			return t.s.damaged(bucketEvents, keyString(bucketEvents, k), errors.New("malformed key"))
		}
		if last-first+1 <= uint64(t.s.opts.EventRetention) {
			return nil
		}
		if err := c.Delete(); err != nil {
			return fmt.Errorf("store %s: trim events: %w", t.s.path, err)
		}
	}
	return nil
}

func (t *boltTx) decodeEvent(k, v []byte) (Event, error) {
	var e Event
	if err := decodeRecord(v, eventVersion, &e); err != nil {
		return Event{}, t.s.damaged(bucketEvents, keyString(bucketEvents, k), err)
	}
	if seq, ok := parseIDKey(k); !ok || seq != e.Seq {
		return Event{}, t.s.damaged(bucketEvents, keyString(bucketEvents, k), fmt.Errorf("record has seq %d", e.Seq))
	}
	return e, nil
}

func (t *boltTx) Events(f EventFilter) (es []Event, err error) {
	defer t.guard(&err, bucketEvents, nil)
	if f.Limit < 0 {
		return nil, invalidf("events: limit %d is negative", f.Limit)
	}
	b, err := t.bucket(bucketEvents)
	if err != nil {
		return nil, err
	}
	match := func(k, v []byte) (bool, error) {
		e, err := t.decodeEvent(k, v)
		if err != nil {
			return false, err
		}
		if f.Pair != "" && e.Pair != f.Pair {
			return true, nil
		}
		es = append(es, e)
		return f.Limit == 0 || len(es) < f.Limit, nil
	}
	if f.AfterSeq == ^uint64(0) {
		return nil, nil
	}
	c := b.Cursor()
	if f.AfterSeq > 0 || f.Limit == 0 {
		for k, v := c.Seek(idKey(f.AfterSeq + 1)); k != nil; k, v = c.Next() {
			if more, err := match(k, v); err != nil || !more {
				return es, err
			}
		}
		return es, nil
	}
	// Newest Limit events: walk backwards, then restore Seq order.
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		more, err := match(k, v)
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	slices.Reverse(es)
	return es, nil
}

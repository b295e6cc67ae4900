// Package store persists hvro's topology, observations, operation journal
// and events in one bbolt file (<data_dir>/hvro.db).
//
// Everything goes through View and Update, which hand the callback a Tx:
// typed reads and writes of every record kind in one transaction, so the
// orchestrator can, for example, store an observation and bump the
// generation of every pair of that group atomically. Tx is the narrow
// interface a later etcd backend would implement.
//
// The invariant it keeps: what is on disk is always a complete, readable
// store. Commits are fsynced (kill -9 or power loss at any instant leaves
// the last committed state), a new file appears only complete, every value
// is versioned JSON, and a file that is foreign, damaged or newer than this
// hvro is refused with an error naming what is wrong - never a panic, never
// a silent reset. The file layout and migration rules are in SCHEMA.md.
package store

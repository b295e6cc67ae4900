// Package store persists hvro's topology, observations, operation journal
// and events in one bbolt file. Every value is versioned JSON; a damaged or
// foreign file is an error, never a silent reset.
package store

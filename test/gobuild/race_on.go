//go:build race

package gobuild

// RaceEnabled says whether the race detector is on.
const RaceEnabled = true

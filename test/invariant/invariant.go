// Package invariant holds the checks of ARCHITECTURE.md's invariants that
// the e2e scenarios and the chaos runner both make on what they collected:
// hvro's journal and the Hyper-V hosts' command logs. The one thing to
// know: the checks judge the hosts' own records, not what hvro says it did.
package invariant

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hvro/hvro/store"
	"github.com/hvro/hvro/test/sim/hyperv"
)

// mutatingCmdlets change a VM; the others only read.
var mutatingCmdlets = []string{"Start-VM ", "Stop-VM ", "Import-VM ", "Remove-VMSavedState", "Enable-VMReplication",
	"Start-VMInitialReplication", "Remove-VMReplication", "Set-VMReplication", "Resume-VMReplication", "Start-VMFailover",
	"Complete-VMFailover", "Stop-VMFailover"}

// Mutating reports whether a script changes a VM (inspections do not).
func Mutating(script string) bool {
	for _, c := range mutatingCmdlets {
		if strings.Contains(script, c) {
			return true
		}
	}
	return false
}

// OverlappingOperations checks I3 on one pair's journal: no two of its
// operations act at once. An operation acts from its first step's start to
// its last step's end (a failover is journaled when queued, before it may
// act); a step still running acts until now. It returns one line per
// overlapping pair of operations.
func OverlappingOperations(ops []store.Operation, now time.Time) []string {
	type window struct {
		id         uint64
		start, end time.Time
	}
	var ws []window
	for _, op := range ops {
		w := window{id: op.ID}
		for _, s := range op.Plan {
			if s.Started.IsZero() {
				continue
			}
			if w.start.IsZero() || s.Started.Before(w.start) {
				w.start = s.Started
			}
			end := s.Ended
			if s.Outcome == store.OutcomeRunning || end.IsZero() {
				end = now
			}
			if end.After(w.end) {
				w.end = end
			}
		}
		if !w.start.IsZero() {
			ws = append(ws, w)
		}
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].start.Before(ws[j].start) })
	var out []string
	for i := 1; i < len(ws); i++ {
		for _, prev := range ws[:i] {
			if prev.end.After(ws[i].start) {
				out = append(out, fmt.Sprintf("operations %d and %d act at once (%s-%s and %s-)", prev.id, ws[i].id,
					prev.start.Format("15:04:05.000"), prev.end.Format("15:04:05.000"), ws[i].start.Format("15:04:05.000")))
			}
		}
	}
	return out
}

// OverlappingCommands checks I3 on the hosts' command logs: no two
// commands that change vm (its name, as the scripts quote it) overlap in
// time, on one host or on two. It returns one line per overlap.
func OverlappingCommands(recs []hyperv.CommandRecord, vm string) []string {
	quoted := "'" + vm + "'"
	var mine []hyperv.CommandRecord
	for _, r := range recs {
		if Mutating(r.Script) && strings.Contains(r.Script, quoted) {
			mine = append(mine, r)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].Time.Before(mine[j].Time) })
	var out []string
	for i := 1; i < len(mine); i++ {
		prev := mine[i-1]
		// A millisecond of slack: the log's times are taken on both sides
		// of the same world lock.
		if end := prev.Time.Add(time.Duration(prev.DurationMS) * time.Millisecond); end.After(mine[i].Time.Add(time.Millisecond)) {
			out = append(out, fmt.Sprintf("commands changing %s overlap: on %s from %s for %dms, and on %s from %s",
				vm, prev.Host, prev.Time.Format("15:04:05.000"), prev.DurationMS, mine[i].Host, mine[i].Time.Format("15:04:05.000")))
		}
	}
	return out
}

package orchestrator

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hvro/hvro/hostname"
)

// HostView is what one host reports about the pair's VM.
type HostView struct {
	Err error // the host could not be inspected
	// Reason names an Err that retrying will not cure (Config.Permanent):
	// the pair is Degraded for it rather than waiting.
	Reason string
	VM     *VMInfo // nil: not registered
	Rep    *RepInfo
}

// VMInfo is a registered VM.
type VMInfo struct {
	State    string // as Get-VM shows it
	Running  bool
	Critical bool // the host cannot reach the VM's storage
}

// RepInfo is the host's half of a replication relationship.
type RepInfo struct {
	Mode, State, Health string
	Primary, Replica    string // short host names
	LastReplication     time.Time
}

// StepKind is an action on one host.
type StepKind string

const (
	StepStopVM           StepKind = "stop_vm"
	StepRemove           StepKind = "remove_replication"
	StepRegister         StepKind = "register"
	StepStartVM          StepKind = "start_vm"
	StepEnableReplica    StepKind = "enable_replica"
	StepEnablePrimary    StepKind = "enable_primary"
	StepInitial          StepKind = "start_initial_replication"
	StepResume           StepKind = "resume_replication"
	StepPrepareFailover  StepKind = "prepare_failover"
	StepFailover         StepKind = "failover"
	StepCompleteFailover StepKind = "complete_failover"
	StepCancelFailover   StepKind = "cancel_failover"
	StepReverse          StepKind = "reverse"
	StepSwitchRole       StepKind = "switch_primary_role" // bookkeeping: the store records the new primary cluster
)

// StopMode is how stop_vm stops a VM. The zero mode is StopForce: a
// guest shutdown that does not wait for unsaved application data, which
// is how hvro always stopped VMs (a planned failover, a VM running off its
// owner); an evacuation escalates from StopShutdown.
type StopMode string

// Stop modes, in the order an evacuation escalates through them.
const (
	StopShutdown StopMode = "shutdown" // Stop-VM: a clean guest shutdown, refused by a guest with unsaved work
	StopForce    StopMode = "force"    // Stop-VM -Force: shut down without waiting for the guest's applications
	StopTurnOff  StopMode = "turnoff"  // Stop-VM -TurnOff: power off at once
)

// Describe says in words what the mode does.
func (m StopMode) Describe() string {
	switch m {
	case StopShutdown:
		return "clean shutdown"
	case StopTurnOff:
		return "turned off (Stop-VM -TurnOff)"
	}
	return "forced shutdown (Stop-VM -Force)"
}

// Step is one idempotent action of a plan.
type Step struct {
	Kind       StepKind
	Host       string
	Mode       StopMode // stop_vm
	Escalate   bool     // stop_vm: on failure, force, then turn off (the disk is about to leave)
	ConfigPath string   // register
	Peer       string   // enable_primary, reverse: the replica host
	Resync     bool     // resume_replication
	UseBackup  bool     // start_initial_replication
	Cluster    string   // switch_primary_role: the new primary cluster
	Why        string
}

// Summary is the one-line description journaled for the step.
func (s Step) Summary() string {
	switch s.Kind {
	case StepRegister:
		return fmt.Sprintf("register %s in place (repairing stale saved state if needed)", s.ConfigPath)
	case StepEnablePrimary:
		return "enable replication to " + s.Peer
	case StepReverse:
		return "reverse replication towards " + s.Peer
	case StepInitial:
		if s.UseBackup {
			return "start initial replication from the existing copy (-UseBackup)"
		}
		return "start initial replication over the network"
	case StepResume:
		if s.Resync {
			return "resume replication with resynchronization"
		}
		return "resume replication"
	case StepStopVM:
		switch {
		case s.Escalate:
			return "shut the VM down (then Stop-VM -Force, then -TurnOff, if it does not stop)"
		case s.Mode != "":
			return s.Mode.Describe()
		}
		return "shut the VM down"
	case StepSwitchRole:
		return "record " + s.Cluster + " as the primary cluster"
	}
	return strings.ReplaceAll(string(s.Kind), "_", " ")
}

// Plan is the outcome of planning one pass.
type Plan struct {
	Steps []Step
	// Converged: the pair is exactly as desired; nothing to do.
	Converged bool
	// Progressing: nothing to do now, but an asynchronous transition (an
	// initial replication, a resynchronization) is under way.
	Progressing string
	// Waiting: nothing can be done until an observation changes (a side is
	// unsettled) or a host answers; not an error.
	Waiting string
	// Degraded: the pair cannot be fully protected now (the replica side
	// is offline, a host refuses hvro's credentials); DegradedReason names
	// the cause in a short stable word ("" for side_unavailable).
	Degraded       string
	DegradedReason string
	// Notes are facts worth an event, e.g. a stale relationship that cannot
	// be removed while its storage is elsewhere.
	Notes []string
}

// PlanReconcile plans the steps from the hosts' actual state to the desired
// one. views holds every host of both clusters; hosts missing from it or
// with Err set could not be inspected.
func PlanReconcile(spec PairSpec, d Desired, clusters Clusters, views map[string]HostView) Plan {
	var pl Plan
	add := func(s Step) { pl.Steps = append(pl.Steps, s) }
	if !d.Primary.Settled {
		pl.Waiting = "primary side not settled: " + d.Primary.Why
		return pl
	}
	p := d.Primary.Host
	pv, ok := views[p]
	if !ok || pv.Err != nil {
		if pv.Reason != "" {
			pl.Degraded, pl.DegradedReason = fmt.Sprintf("primary host %s cannot be inspected: %v", p, pv.Err), pv.Reason
			return pl
		}
		pl.Waiting = fmt.Sprintf("primary host %s cannot be inspected: %v", p, errOf(pv, ok))
		return pl
	}
	r := ""
	if d.Replica.Settled {
		r = d.Replica.Host
	}

	// I1: the VM runs nowhere but on the primary's Online owner.
	for _, h := range slices.Sorted(maps.Keys(views)) {
		v := views[h]
		if h != p && v.VM != nil && v.VM.Running && !v.VM.Critical {
			add(Step{Kind: StepStopVM, Host: h, Why: fmt.Sprintf("%s runs on %s, which is not the Online owner of the primary group", spec.VMName, h)})
		}
	}
	// Stale relationships: on the primary cluster's other hosts always; on
	// the replica cluster's only once that side is settled (until then
	// nothing there is touched).
	stale := append([]string{}, clusters.hostsOf(d.Primary.Side.Cluster)...)
	if r != "" {
		stale = append(stale, clusters.hostsOf(d.Replica.Side.Cluster)...)
	}
	for _, h := range stale {
		v := views[h]
		if h == p || h == r || v.Rep == nil {
			continue
		}
		if v.VM != nil && v.VM.Critical {
			pl.Notes = append(pl.Notes, fmt.Sprintf("%s keeps a %s relationship for %s but cannot reach its storage; it clears when the disk returns there", h, v.Rep.Mode, spec.VMName))
			continue
		}
		add(Step{Kind: StepRemove, Host: h, Why: fmt.Sprintf("%s is neither the primary (%s) nor the replica (%s)", h, p, orNone(r))})
	}

	// The primary copy: registered and running on p. A copy registered in
	// place brings the relationship stored in its config file along, which
	// this inspect could not see: plan again after registering.
	switch {
	case pv.VM == nil:
		add(Step{Kind: StepRegister, Host: p, ConfigPath: d.Primary.Side.ConfigPath, Why: spec.VMName + " is not registered on the primary owner"})
		pl.Progressing = "re-inspect " + p + " after registering"
		return pl
	case pv.VM.Critical:
		pl.Waiting = fmt.Sprintf("%s cannot reach the storage of %s yet (%s)", p, spec.VMName, pv.VM.State)
		return pl
	}
	// The primary's relationship: keep it if it is this host's primary
	// half (towards the current replica owner once that is known).
	primaryOK := false
	if rep := pv.Rep; rep != nil {
		primaryOK = rep.Mode == "Primary" && hostname.Same(rep.Primary, p) && (r == "" || hostname.Same(rep.Replica, r))
		if !primaryOK {
			add(Step{Kind: StepRemove, Host: p, Why: fmt.Sprintf("the relationship on %s (%s from %s to %s) is not %s -> %s", p, rep.Mode, orNone(rep.Primary), orNone(rep.Replica), p, orNone(r))})
		}
	}
	prepared := primaryOK && pv.Rep.State == "PreparedForFailover"
	if prepared {
		// A planned failover stopped after preparing the primary (hvro
		// was killed, or the replica side failed it): the role never
		// moved, and a prepared VM cannot start until it is undone.
		add(Step{Kind: StepCancelFailover, Host: p, Why: "a planned failover prepared " + p + " but did not finish; the primary role stayed here"})
	}
	if !pv.VM.Running {
		add(Step{Kind: StepStartVM, Host: p, Why: spec.VMName + " must run on the primary owner"})
	}
	if prepared {
		pl.Progressing = "re-inspect " + p + " after cancelling the failover"
		return pl
	}

	if r == "" {
		pl.Degraded = "replica side not available: " + d.Replica.Why
		return pl
	}
	rv, ok := views[r]
	if !ok || rv.Err != nil {
		pl.Degraded, pl.DegradedReason = fmt.Sprintf("replica host %s cannot be inspected: %v", r, errOf(rv, ok)), rv.Reason
		return pl
	}
	switch {
	case rv.VM == nil:
		add(Step{Kind: StepRegister, Host: r, ConfigPath: d.Replica.Side.ConfigPath, Why: spec.VMName + " is not registered on the replica owner"})
		pl.Progressing = "re-inspect " + r + " after registering"
		return pl
	case rv.VM.Critical:
		pl.Waiting = fmt.Sprintf("%s cannot reach the storage of the replica copy yet (%s)", r, rv.VM.State)
		return pl
	}
	rrep := rv.Rep
	// A replica half that failed over is no longer a replica, whatever its
	// mode says.
	replicaOK := rrep != nil && rrep.Mode == "Replica" && hostname.Same(rrep.Primary, p) && !failedOver[rrep.State]
	waitingReplica := rrep != nil && rrep.Mode == "Replica" && rrep.State == "WaitingForInitialReplication" && (rrep.Primary == "" || hostname.Same(rrep.Primary, p))

	rebuild := func(why string) {
		if primaryOK {
			add(Step{Kind: StepRemove, Host: p, Why: why})
		}
		if rrep != nil && !waitingReplica {
			add(Step{Kind: StepRemove, Host: r, Why: why})
		}
		if !waitingReplica {
			add(Step{Kind: StepEnableReplica, Host: r, Why: "make the copy on " + r + " the replica"})
		}
		add(Step{Kind: StepEnablePrimary, Host: p, Peer: r, Why: why})
		add(Step{Kind: StepInitial, Host: p, UseBackup: spec.Replication.UseBackup, Why: "replicate " + p + " -> " + r})
	}
	if !primaryOK {
		rebuild(fmt.Sprintf("replication %s -> %s is not set up", p, r))
		return pl
	}
	if rrep != nil && rrep.Mode == "Replica" && rrep.State == "FailedOverWaitingCompletion" && hostname.Same(rrep.Primary, p) {
		// The same half-way failover, one step further: undo it on the
		// replica too instead of rebuilding replication from scratch.
		add(Step{Kind: StepCancelFailover, Host: r, Why: "a failover to " + r + " did not finish; the primary role stayed on " + p})
		pl.Progressing = "re-inspect " + r + " after cancelling the failover"
		return pl
	}
	if !replicaOK {
		rebuild(fmt.Sprintf("the replica half on %s does not follow %s", r, p))
		return pl
	}
	switch rep := pv.Rep; rep.State {
	case "Replicating":
		if rrep.State != "Replicating" {
			pl.Progressing = fmt.Sprintf("replica half on %s is %s", r, rrep.State)
		} else if rep.Health != "Normal" {
			pl.Progressing = "replication health is " + rep.Health
		}
	case "ReadyForInitialReplication":
		add(Step{Kind: StepInitial, Host: p, UseBackup: spec.Replication.UseBackup, Why: "initial replication not started"})
	case "InitialReplicationInProgress", "Resynchronizing":
		pl.Progressing = rep.State
	case "Error", "Suspended":
		add(Step{Kind: StepResume, Host: p, Why: "replication is " + rep.State})
	case "WaitingForStartResynchronize", "ResynchronizeSuspended":
		add(Step{Kind: StepResume, Host: p, Resync: true, Why: "replication is " + rep.State})
	default:
		rebuild(fmt.Sprintf("replication on %s is %s, which hvro does not resume", p, rep.State))
		return pl
	}
	pl.Converged = len(pl.Steps) == 0 && pl.Progressing == ""
	return pl
}

// PlanEvacuate plans what must happen on a host whose group is about to
// stop there (a stop-phase hook), before the disk leaves: removing
// replication later fails with "configuration was not accessible".
// leaving is the host the group stops on; primarySide says whether it is the
// pair's primary side. A replica group that only stops (GROUPSTOP) keeps its
// relationship so replication can resume when it returns.
func PlanEvacuate(spec PairSpec, leaving string, primarySide bool, factor string, views map[string]HostView) Plan {
	var pl Plan
	v, ok := views[leaving]
	if !ok || v.Err != nil {
		pl.Waiting = fmt.Sprintf("%s cannot be inspected: %v", leaving, errOf(v, ok))
		return pl
	}
	if !primarySide && (factor == "GROUPSTOP" || factor == "") {
		pl.Converged = true
		return pl
	}
	if v.VM != nil && v.VM.Running {
		add := Step{Kind: StepStopVM, Host: leaving, Escalate: true, Why: "shut " + spec.VMName + " down before its disk leaves " + leaving}
		pl.Steps = append(pl.Steps, add)
	}
	if v.Rep != nil && v.VM != nil && !v.VM.Critical {
		pl.Steps = append(pl.Steps, Step{Kind: StepRemove, Host: leaving, Why: "remove replication on " + leaving + " before its disk leaves"})
		if primarySide && v.Rep.Mode == "Primary" {
			for h, pv := range views {
				if hostname.Same(h, v.Rep.Replica) && pv.Err == nil && pv.Rep != nil && pv.VM != nil && !pv.VM.Critical {
					pl.Steps = append(pl.Steps, Step{Kind: StepRemove, Host: h, Why: "remove the replica half on " + h + " with its primary"})
				}
			}
		}
	}
	pl.Converged = len(pl.Steps) == 0
	return pl
}

// PlanFailover plans a move of the primary role to the other cluster.
// Planned: the primary is shut down and prepared, the replica fails over
// and reverses. Unplanned: the primary side is lost; the replica fails over,
// completes and starts, but only with evidence that the VM runs nowhere on
// the primary cluster (fenceUnplanned).
func PlanFailover(spec PairSpec, d Desired, req FailoverRequest, clusters Clusters, groups map[GroupKey]GroupState, views map[string]HostView) (Plan, error) {
	var pl Plan
	r := d.Replica
	if !r.Settled {
		return pl, fmt.Errorf("the replica side cannot take the primary role: %s", r.Why)
	}
	rv := views[r.Host]
	if rv.Err != nil {
		return pl, fmt.Errorf("replica host %s cannot be inspected: %w", r.Host, rv.Err)
	}
	if rv.VM == nil || rv.Rep == nil || rv.Rep.Mode != "Replica" {
		return pl, fmt.Errorf("%s on %s is not a replica (registered %v), so it cannot fail over", spec.VMName, r.Host, rv.VM != nil)
	}
	newPrimary := r.Side.Cluster
	if req.Planned {
		p := d.Primary
		if !p.Settled {
			return pl, fmt.Errorf("a planned failover needs the primary side: %s (use --mode unplanned if it is lost)", p.Why)
		}
		pv := views[p.Host]
		if pv.Err != nil {
			return pl, fmt.Errorf("primary host %s cannot be inspected: %w", p.Host, pv.Err)
		}
		if pv.Rep == nil || pv.Rep.Mode != "Primary" || pv.Rep.State != "Replicating" || rv.Rep.State != "Replicating" {
			return pl, fmt.Errorf("a planned failover needs replication %s -> %s Replicating (now %s / %s)", p.Host, r.Host, repState(pv.Rep), repState(rv.Rep))
		}
		if pv.VM != nil && pv.VM.Running {
			pl.Steps = append(pl.Steps, Step{Kind: StepStopVM, Host: p.Host, Why: "planned failover: shut the primary down"})
		}
		pl.Steps = append(pl.Steps,
			Step{Kind: StepPrepareFailover, Host: p.Host, Why: "send the last changes and lock the primary"},
			Step{Kind: StepFailover, Host: r.Host, Why: "fail over to the replica"},
			Step{Kind: StepReverse, Host: r.Host, Peer: p.Host, Why: "the old primary becomes the replica"},
			Step{Kind: StepSwitchRole, Cluster: newPrimary, Why: "planned failover"},
			Step{Kind: StepStartVM, Host: r.Host, Why: "run on the new primary"},
		)
		return pl, nil
	}
	note, err := fenceUnplanned(spec, d.Primary.Side, req, clusters, groups, views)
	if err != nil {
		return pl, err
	}
	if note != "" {
		pl.Notes = append(pl.Notes, note)
	}
	pl.Steps = append(pl.Steps,
		Step{Kind: StepFailover, Host: r.Host, Why: "unplanned failover: the primary side is lost"},
		Step{Kind: StepCompleteFailover, Host: r.Host, Why: "commit the failover"},
		Step{Kind: StepSwitchRole, Cluster: newPrimary, Why: "unplanned failover"},
		Step{Kind: StepStartVM, Host: r.Host, Why: "run on the new primary"},
	)
	return pl, nil
}

// fenceUnplanned is the fencing rule of an unplanned failover: starting the
// replica is allowed only with positive evidence that the VM runs on no
// host of the primary cluster, or it would be a second copy (I1). Evidence
// is every primary-cluster host answering WinRM without running the VM,
// and ECX, when its API answers, not reporting the primary group Online or
// in transition. A sighting (a host runs it, ECX says Online) refuses even
// with Force; missing evidence (a host does not answer) refuses unless
// Force says the site is gone, and the note returned says so for the
// journal.
func fenceUnplanned(spec PairSpec, primary Side, req FailoverRequest, clusters Clusters, groups map[GroupKey]GroupState, views map[string]HostView) (note string, err error) {
	var running, silent []string
	for _, h := range clusters.hostsOf(primary.Cluster) {
		v, ok := views[h]
		switch {
		case !ok || v.Err != nil:
			silent = append(silent, fmt.Sprintf("%s (%v)", h, errOf(v, ok)))
		case v.VM != nil && v.VM.Running && !v.VM.Critical:
			running = append(running, h)
		}
	}
	if len(running) > 0 {
		return "", fmt.Errorf("refused: %s still runs on %s in the primary cluster %s; failing over now would start a second copy. Shut it down there, or use --mode planned",
			spec.VMName, strings.Join(running, ", "), primary.Cluster)
	}
	if g, seen := groups[GroupKey{primary.Cluster, primary.Group}]; seen {
		if o := g.Effective(); o.Err == "" && o.Status != "Offline" {
			return "", fmt.Errorf("refused: ECX reports the primary group %s/%s as %s, so the primary side is not lost; use --mode planned, or wait until ECX reports it Offline",
				primary.Cluster, primary.Group, o)
		}
	}
	if len(silent) == 0 {
		return "", nil
	}
	if !req.Force {
		return "", fmt.Errorf("refused: no evidence that %s is not running on %s; if the primary site is really lost, repeat with --force --reason \"...\"",
			spec.VMName, strings.Join(silent, ", "))
	}
	return fmt.Sprintf("forced by the operator without evidence from %s: %s", strings.Join(silent, ", "), req.Reason), nil
}

var failedOver = map[string]bool{"FailedOverWaitingCompletion": true, "FailedOver": true, "RecoveryInProgress": true}

func repState(r *RepInfo) string {
	if r == nil {
		return "no replication"
	}
	return r.Mode + "/" + r.State
}

func errOf(v HostView, present bool) error {
	if !present {
		return fmt.Errorf("not inspected")
	}
	return v.Err
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

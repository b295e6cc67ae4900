package store

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The JSON tags below are the file format: renaming a Go field is free,
// changing a tag is a schema change (see SCHEMA.md).

// Observation is the latest thing hvro learned about one failover group of
// one cluster, from polling the cluster's API or from a hook. Group is empty
// for a cluster-wide observation (for example "API unreachable").
type Observation struct {
	Cluster  string    `json:"cluster"`
	Group    string    `json:"group"`
	Status   string    `json:"status,omitempty"`   // ECX group status: Online, Offline, Pending, Failed, ...
	Owner    string    `json:"owner,omitempty"`    // ECX server currently holding the group
	Source   string    `json:"source,omitempty"`   // SourcePoll or SourceHook
	Endpoint string    `json:"endpoint,omitempty"` // API endpoint that answered (poll)
	Hook     *HookInfo `json:"hook,omitempty"`     // set when Source is SourceHook
	Err      string    `json:"error,omitempty"`    // why the observation is incomplete (API unreachable, ...)
	At       time.Time `json:"at,omitzero"`
}

// Sources of an observation.
const (
	SourcePoll = "poll"
	SourceHook = "hook"
)

// HookInfo is what an ECX start/stop script reported through `hvro hook`.
type HookInfo struct {
	Phase  string `json:"phase,omitempty"`  // start | stop
	Event  string `json:"event,omitempty"`  // CLP_EVENT
	Factor string `json:"factor,omitempty"` // CLP_FACTOR
	Server string `json:"server,omitempty"` // the ECX server running the script
	Disk   string `json:"disk,omitempty"`   // CLP_DISK
}

// Pair is one protected VM: the configuration it was last managed with and
// everything hvro has decided about it since.
type Pair struct {
	Name   string     `json:"name"`
	Config PairConfig `json:"config"`
	// PrimaryCluster holds the primary role now. It is the authority after
	// the first start and changes only through a failover operation (I6).
	PrimaryCluster string `json:"primary_cluster"`
	// Generation grows with every observation that concerns the pair; an
	// operation stops when it no longer matches the one it was planned for.
	Generation        uint64            `json:"generation"`
	ActivePrimaryHost string            `json:"active_primary_host,omitempty"`
	ActiveReplicaHost string            `json:"active_replica_host,omitempty"`
	Replication       ReplicationStatus `json:"replication,omitzero"`
	Phase             Phase             `json:"phase,omitempty"`
	Paused            bool              `json:"paused,omitempty"`
	Degraded          *Degraded         `json:"degraded,omitempty"`
	LastOpID          uint64            `json:"last_op_id,omitempty"`
	LastConvergedAt   time.Time         `json:"last_converged_at,omitzero"`
	UpdatedAt         time.Time         `json:"updated_at,omitzero"`
}

// PairConfig is the snapshot of a pair's configuration.
type PairConfig struct {
	VMName      string            `json:"vm_name"`
	Primary     Side              `json:"primary"` // primary side at first start (see Pair.PrimaryCluster)
	Replica     Side              `json:"replica"`
	Replication ReplicationConfig `json:"replication,omitzero"`
}

// Side is one cluster's half of a pair.
type Side struct {
	Cluster      string `json:"cluster"`
	Group        string `json:"group"`
	VMConfigPath string `json:"vm_config_path,omitempty"`
}

// ReplicationConfig mirrors the `replication:` block of a pair in hvro.yaml.
type ReplicationConfig struct {
	Port                  int           `json:"port,omitempty"`
	Authentication        string        `json:"authentication,omitempty"` // Kerberos | Certificate
	CertificateThumbprint string        `json:"certificate_thumbprint,omitempty"`
	Frequency             time.Duration `json:"frequency_ns,omitempty"` // nanoseconds
	Compression           bool          `json:"compression,omitempty"`
	Initial               string        `json:"initial,omitempty"` // use_existing | network
}

// ReplicationStatus is what Hyper-V last said about the pair's replication.
type ReplicationStatus struct {
	State           string    `json:"state,omitempty"`  // Replicating, Suspended, ...
	Health          string    `json:"health,omitempty"` // Normal, Warning, Critical
	PrimaryServer   string    `json:"primary_server,omitempty"`
	ReplicaServer   string    `json:"replica_server,omitempty"`
	LastReplication time.Time `json:"last_replication,omitzero"`
	ObservedAt      time.Time `json:"observed_at,omitzero"`
}

// Degraded says why hvro stopped acting on a pair until something changes.
type Degraded struct {
	Since  time.Time `json:"since,omitzero"`
	Reason string    `json:"reason,omitempty"` // short, stable: a metric label or error class
	Error  string    `json:"error,omitempty"`  // the full message
}

// Phase is where a pair stands: the API's phase and the state label of
// hvro_pair_state.
type Phase string

// Pair phases.
const (
	PhasePending    Phase = "Pending"    // not reconciled yet
	PhaseWaiting    Phase = "Waiting"    // a side is unsettled; nothing safe to do
	PhaseConverging Phase = "Converging" // steps run or an asynchronous transition is under way
	PhaseConverged  Phase = "Converged"
	PhaseDegraded   Phase = "Degraded" // parked with a reason until something changes
	PhasePaused     Phase = "Paused"   // an operator said hands off
)

// Phases lists every phase.
var Phases = []Phase{PhasePending, PhaseWaiting, PhaseConverging, PhaseConverged, PhaseDegraded, PhasePaused}

// OpKind says what started an operation.
type OpKind string

// Operation kinds.
const (
	OpReconcile         OpKind = "reconcile"
	OpStopHook          OpKind = "stop-hook"
	OpFailoverPlanned   OpKind = "failover-planned"
	OpFailoverUnplanned OpKind = "failover-unplanned"
)

// OpState is the state of an operation in the journal.
type OpState string

// Operation states. Every state but OpRunning is final.
const (
	OpRunning     OpState = "running"
	OpSucceeded   OpState = "succeeded"
	OpFailed      OpState = "failed"
	OpAbandoned   OpState = "abandoned"   // stopped on purpose: the generation changed, the pair was paused
	OpInterrupted OpState = "interrupted" // hvro stopped while it ran (see MarkInterrupted)
)

func (s OpState) valid() bool {
	switch s {
	case OpRunning, OpSucceeded, OpFailed, OpAbandoned, OpInterrupted:
		return true
	}
	return false
}

// Operation is one journaled pass over a pair: the plan and what each step did.
type Operation struct {
	ID         uint64    `json:"id"` // from Tx.NextOperationID
	Pair       string    `json:"pair"`
	Kind       OpKind    `json:"kind"`
	Trigger    string    `json:"trigger,omitempty"`
	Generation uint64    `json:"generation"` // the pair generation the plan was made for
	State      OpState   `json:"state"`
	Plan       []Step    `json:"plan,omitempty"`
	Started    time.Time `json:"started,omitzero"`
	Ended      time.Time `json:"ended,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// StepOutcome is how one planned step ended (or that it has not yet).
type StepOutcome string

// Step outcomes.
const (
	OutcomePending     StepOutcome = "pending"
	OutcomeRunning     StepOutcome = "running"
	OutcomeOK          StepOutcome = "ok"
	OutcomeFailed      StepOutcome = "failed"
	OutcomeSkipped     StepOutcome = "skipped"
	OutcomeAbandoned   StepOutcome = "abandoned"
	OutcomeInterrupted StepOutcome = "interrupted"
)

func validOutcome(o StepOutcome) bool {
	switch o {
	case OutcomePending, OutcomeRunning, OutcomeOK, OutcomeFailed, OutcomeSkipped, OutcomeAbandoned, OutcomeInterrupted:
		return true
	}
	return false
}

// Step is one planned action on one host.
type Step struct {
	Index    int         `json:"index"`
	Kind     string      `json:"kind"`
	Host     string      `json:"host,omitempty"`
	Summary  string      `json:"summary,omitempty"` // the command in one line, no secrets
	Started  time.Time   `json:"started,omitzero"`
	Ended    time.Time   `json:"ended,omitzero"`
	Outcome  StepOutcome `json:"outcome"`
	Error    string      `json:"error,omitempty"`
	Attempts int         `json:"attempts,omitempty"`
	// MayRun: the step ended while its command may still run on the host
	// (hvro stopped waiting for it, and the host deletes its shell later).
	MayRun bool `json:"may_run,omitempty"`
}

// Event is one line of the append-only, bounded event log.
type Event struct {
	Seq     uint64    `json:"seq"` // assigned by AppendEvent
	At      time.Time `json:"at,omitzero"`
	Pair    string    `json:"pair,omitempty"`
	Op      string    `json:"op,omitempty"`
	Kind    string    `json:"kind"`
	Message string    `json:"message,omitempty"`
}

// maxNameLen bounds names used in keys, far below bbolt's 32 KiB key limit.
const maxNameLen = 1024

// checkName enforces what every name used in a key must be: non-empty
// printable UTF-8 without NUL (NUL separates key parts).
func checkName(field, v string, allowEmpty bool) error {
	switch {
	case v == "" && !allowEmpty:
		return fmt.Errorf("%s is empty", field)
	case len(v) > maxNameLen:
		return fmt.Errorf("%s is %d bytes long, more than %d", field, len(v), maxNameLen)
	case !utf8.ValidString(v):
		return fmt.Errorf("%s %q is not valid UTF-8", field, v)
	case strings.ContainsRune(v, 0):
		return fmt.Errorf("%s %q contains a NUL byte", field, v)
	}
	return nil
}

func (p *Pair) validate() error {
	if err := checkName("pair name", p.Name, false); err != nil {
		return err
	}
	return nil
}

func (o *Observation) validate() error {
	if err := checkName("observation cluster", o.Cluster, false); err != nil {
		return err
	}
	return checkName(fmt.Sprintf("observation group of cluster %q", o.Cluster), o.Group, true)
}

func (op *Operation) validate() error {
	if op.ID == 0 {
		return fmt.Errorf("operation id is 0 (take one from NextOperationID)")
	}
	if err := checkName(fmt.Sprintf("operation %d pair", op.ID), op.Pair, false); err != nil {
		return err
	}
	if !op.State.valid() {
		return fmt.Errorf("operation %d state %q is not one of running|succeeded|failed|abandoned|interrupted", op.ID, op.State)
	}
	for i, st := range op.Plan {
		if !validOutcome(st.Outcome) {
			return fmt.Errorf("operation %d plan[%d] outcome %q is not one of pending|running|ok|failed|skipped|abandoned|interrupted",
				op.ID, i, st.Outcome)
		}
	}
	return nil
}

func (e *Event) validate() error {
	if e.Kind == "" {
		return fmt.Errorf("event kind is empty")
	}
	return nil
}

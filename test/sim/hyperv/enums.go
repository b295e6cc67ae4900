package hyperv

import "github.com/hvro/hvro/test/sim/hyperv/ps"

// Enum values are those of the Hyper-V PowerShell module 2.0 (Windows
// Server 2016-2022); ConvertTo-Json in Windows PowerShell 5.1 emits the
// integers.

// VMState is Microsoft.HyperV.PowerShell.VMState.
type VMState int

const (
	Running          VMState = 2
	Off              VMState = 3
	Stopping         VMState = 4
	Saved            VMState = 6
	Paused           VMState = 9
	Starting         VMState = 10
	RunningCritical  VMState = 32785
	OffCritical      VMState = 32786
	StoppingCritical VMState = 32787
	SavedCritical    VMState = 32788
	PausedCritical   VMState = 32789
)

// Mode is Microsoft.HyperV.PowerShell.VMReplicationMode.
type Mode int

const (
	ModeNone    Mode = 0
	Primary     Mode = 1
	Replica     Mode = 2
	TestReplica Mode = 3
)

// RepState is Microsoft.HyperV.PowerShell.VMReplicationState.
type RepState int

const (
	Disabled                     RepState = 0
	ReadyForInitialReplication   RepState = 1
	InitialReplicationInProgress RepState = 2
	WaitingForInitialReplication RepState = 3
	Replicating                  RepState = 4
	PreparedForFailover          RepState = 5
	FailedOverWaitingCompletion  RepState = 6
	FailedOver                   RepState = 7
	Suspended                    RepState = 8
	Error                        RepState = 9
	WaitingForStartResynchronize RepState = 10
	Resynchronizing              RepState = 11
	ResynchronizeSuspended       RepState = 12
)

// Health is Microsoft.HyperV.PowerShell.VMReplicationHealthState.
type Health int

const (
	NotApplicable Health = 0
	Normal        Health = 1
	Warning       Health = 2
	Critical      Health = 3
)

const hvns = "Microsoft.HyperV.PowerShell."

var (
	vmStateEnum = ps.NewEnumType(hvns+"VMState",
		"Other", 1, "Running", 2, "Off", 3, "Stopping", 4, "Saved", 6, "Paused", 9, "Starting", 10,
		"Reset", 11, "Saving", 32773, "Pausing", 32776, "Resuming", 32777, "FastSaved", 32779,
		"FastSaving", 32780, "ForceShutdown", 32781, "ForceReboot", 32782, "Hibernated", 32783,
		"ComponentServicing", 32784, "RunningCritical", 32785, "OffCritical", 32786,
		"StoppingCritical", 32787, "SavedCritical", 32788, "PausedCritical", 32789,
		"StartingCritical", 32790, "ResetCritical", 32791, "SavingCritical", 32792,
		"PausingCritical", 32793, "ResumingCritical", 32794, "FastSavedCritical", 32795,
		"FastSavingCritical", 32796)
	modeEnum = ps.NewEnumType(hvns+"VMReplicationMode",
		"None", 0, "Primary", 1, "Replica", 2, "TestReplica", 3, "ExtendedReplica", 4)
	repStateEnum = ps.NewEnumType(hvns+"VMReplicationState",
		"Disabled", 0, "ReadyForInitialReplication", 1, "InitialReplicationInProgress", 2,
		"WaitingForInitialReplication", 3, "Replicating", 4, "PreparedForFailover", 5,
		"FailedOverWaitingCompletion", 6, "FailedOver", 7, "Suspended", 8, "Error", 9,
		"WaitingForStartResynchronize", 10, "Resynchronizing", 11, "ResynchronizeSuspended", 12,
		"RecoveryInProgress", 13, "FailbackInProgress", 14, "FailbackComplete", 15,
		"WaitingForUpdateCompletion", 16, "UpdateError", 17, "WaitingForRepurposeCompletion", 18,
		"PreparedForSyncReplication", 19, "PreparedForGroupReverseReplication", 20,
		"FiredrillInProgress", 21)
	healthEnum = ps.NewEnumType(hvns+"VMReplicationHealthState",
		"NotApplicable", 0, "Normal", 1, "Warning", 2, "Critical", 3)
	repAuthEnum = ps.NewEnumType(hvns+"ReplicationAuthenticationType",
		"Kerberos", 1, "Certificate", 2)
	recoveryAuthEnum = ps.NewEnumType(hvns+"RecoveryAuthenticationType",
		"Kerberos", 1, "Certificate", 2, "CertificateAndKerberos", 3)
	relationshipEnum = ps.NewEnumType(hvns+"VMReplicationRelationshipType",
		"Simple", 0, "Extended", 1)
	vmTypeEnum = ps.NewEnumType(hvns+"VirtualMachineType",
		"RealizedVirtualMachine", 3, "PlannedVirtualMachine", 4)
	operationTypeEnum = ps.NewEnumType(hvns+"OperationType",
		"MoveVirtualMachine", 0, "ImportVirtualMachine", 1, "MoveVirtualMachineAndStorage", 2)
)

func enumOf(t *ps.EnumType, v int) ps.Enum {
	for _, e := range t.Values {
		if e.Value == int64(v) {
			return e
		}
	}
	e, _ := t.Parse(int64(v))
	return e
}

func (s VMState) String() string  { return enumOf(vmStateEnum, int(s)).Name }
func (m Mode) String() string     { return enumOf(modeEnum, int(m)).Name }
func (s RepState) String() string { return enumOf(repStateEnum, int(s)).Name }
func (h Health) String() string   { return enumOf(healthEnum, int(h)).Name }

func registerEnums(t *ps.CommandTable) {
	for _, e := range []*ps.EnumType{vmStateEnum, modeEnum, repStateEnum, healthEnum, repAuthEnum, recoveryAuthEnum, relationshipEnum, vmTypeEnum, operationTypeEnum} {
		t.AddEnum(e)
	}
	t.AddException(excVirtualization, "System.Exception")
	t.AddException(excOperation, excVirtualization)
	for _, n := range []string{"VirtualMachine", "VMReplication", "VMReplicationServer", "VMReplicationHealth", "VMCompatibilityReport", "VMCompatibilityError"} {
		t.AddType(hvns + n)
	}
}

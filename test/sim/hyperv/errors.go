package hyperv

import (
	"fmt"
	"sort"

	"github.com/hvro/hvro/test/sim/hyperv/ps"
)

const (
	excVirtualization = "Microsoft.HyperV.PowerShell.VirtualizationException"
	excOperation      = "Microsoft.HyperV.PowerShell.VirtualizationOperationFailedException"
)

// hvErrorKind is one entry of the emulator's catalogue of Hyper-V errors.
// The catalogue names are also the fault names of POST /sim/faults.
type hvErrorKind struct {
	exception string
	errorID   string // the part of FullyQualifiedErrorId before the command
	category  string
	hresult   uint32
	// format receives the VM name (or host/other subject) first.
	format string
	// source says where the text comes from: "real" (quoted in public
	// material) or "synthetic" (the emulator's wording; see STATES.md).
	source string
}

var hvErrors = map[string]hvErrorKind{
	"config_not_accessible": {excOperation, "OperationFailed", "ResourceUnavailable", 0x80004004,
		"Operation not allowed for virtual machine '%s' because the configuration was not accessible. Try again later.", "real"},
	"operation_aborted": {excOperation, "OperationFailed", "NotSpecified", 0x80004004,
		"Hyper-V failed to remove replication for '%s': Operation aborted (0x80004004).", "real"},
	"vm_not_found": {excVirtualization, "InvalidParameter", "InvalidArgument", 0x80070057,
		"Hyper-V was unable to find a virtual machine with name \"%s\".", "real"},
	"invalid_state": {excVirtualization, "InvalidState", "InvalidOperation", 0x8007139F,
		"The operation cannot be performed while the object is in its current state.", "real"},
	"invalid_replication_state": {excVirtualization, "InvalidState", "InvalidOperation", 0x8007139F,
		"Hyper-V could not perform the operation for virtual machine '%s' because replication is not in a valid state for this operation (current state: %s).", "synthetic"},
	"replication_not_enabled": {excVirtualization, "InvalidState", "InvalidOperation", 0x8007139F,
		"Replication is not enabled for virtual machine '%s'.", "synthetic"},
	"replication_already_enabled": {excVirtualization, "InvalidState", "InvalidOperation", 0x8007139F,
		"Replication is already enabled for virtual machine '%s'.", "synthetic"},
	"replica_cannot_modify": {excVirtualization, "InvalidOperation", "InvalidOperation", 0x8007139F,
		"Replication settings cannot be modified on the Replica virtual machine '%s'. Modify them on the primary virtual machine.", "synthetic"},
	"replica_unreachable": {excOperation, "OperationFailed", "ConnectionError", 0x80072EFD,
		"Hyper-V cannot connect to the specified Replica server '%s'. Error: A connection with the server could not be established (0x00002EFD). Verify that the specified server is enabled as a Replica server, allows inbound connections on port '%d', and supports the same authentication scheme.", "real"},
	"replica_unresolved": {excOperation, "OperationFailed", "ConnectionError", 0x80072EE7,
		"Hyper-V cannot connect to the specified Replica server '%s'. Error: The server name or address could not be resolved (0x00002EE7).", "real"},
	"replica_not_accepting": {excOperation, "OperationFailed", "SecurityError", 0x80070005,
		"The Replica server '%s' is not configured to accept replication from this primary server using %s authentication on port %d.", "synthetic"},
	"replica_vm_conflict": {excOperation, "OperationFailed", "ResourceExists", 0x800700B7,
		"The Replica server '%s' already has virtual machine '%s' (ID %s) that is not waiting for initial replication from this server. Remove replication on the Replica server first.", "synthetic"},
	"not_replica_server": {excVirtualization, "InvalidState", "InvalidOperation", 0x8007139F,
		"Hyper-V is not configured as a Replica server on '%s'. Enable it with Set-VMReplicationServer.", "synthetic"},
	"invalid_frequency": {excVirtualization, "InvalidParameter", "InvalidArgument", 0x80070057,
		"The replication frequency %d is not valid. Valid values are 30, 300 and 900 seconds.", "synthetic"},
	"invalid_replica_name": {excVirtualization, "InvalidParameter", "InvalidArgument", 0x80070057,
		"The Replica server name '%s' is not valid. Specify a fully qualified domain name or a NetBIOS name, not an IP address.", "synthetic"},
	"thumbprint_required": {excVirtualization, "InvalidParameter", "InvalidArgument", 0x80070057,
		"A certificate thumbprint must be specified when the authentication type is Certificate.", "synthetic"},
	"thumbprint_not_allowed": {excVirtualization, "InvalidParameter", "InvalidArgument", 0x80070057,
		"A certificate thumbprint cannot be specified when the authentication type is Kerberos.", "synthetic"},
	"saved_state_missing": {excOperation, "OperationFailed", "NotSpecified", 0x80070002,
		"'%s' failed to start. (Virtual machine ID %s)\r\n'%s' failed to restore its saved state: The system cannot find the file specified. (0x80070002)", "synthetic"},
	"import_config_errors": {excOperation, "OperationFailed", "NotSpecified", 0x80070057,
		"Unable to import virtual machine due to configuration errors.  Please use Compare-VM to repair the virtual machine.", "real"},
	"import_path_not_found": {excOperation, "OperationFailed", "ObjectNotFound", 0x80070003,
		"Failed to import a virtual machine. The system cannot find the path specified. (0x80070003) Path: '%s'", "synthetic"},
	"vm_exists": {excOperation, "OperationFailed", "ResourceExists", 0x800700B7,
		"The operation failed because a virtual machine with the same identifier already exists. Select a new identifier and try the operation again. (Virtual machine ID %s)", "real"},
	"replica_start_refused": {excVirtualization, "InvalidState", "InvalidOperation", 0x8007139F,
		"'%s' cannot be started because it is a Replica virtual machine. Fail it over to start it.", "synthetic"},
	"prepared_locked": {excVirtualization, "InvalidState", "InvalidOperation", 0x8007139F,
		"'%s' cannot be started because it is prepared for a planned failover. Cancel the failover with Stop-VMFailover or reverse replication.", "synthetic"},
	"vm_must_be_off": {excVirtualization, "InvalidState", "InvalidOperation", 0x8007139F,
		"The operation cannot be performed on virtual machine '%s' while it is running. Turn it off first.", "synthetic"},
	"prepare_required": {excVirtualization, "InvalidParameter", "InvalidArgument", 0x80070057,
		"'%s' is a primary virtual machine: Start-VMFailover on a primary virtual machine requires -Prepare.", "synthetic"},
	"not_saved": {excVirtualization, "InvalidState", "InvalidOperation", 0x8007139F,
		"The virtual machine '%s' does not have a saved state.", "synthetic"},
	"shutdown_unavailable": {excOperation, "OperationFailed", "NotSpecified", 0x80070015,
		"Failed to shut down the virtual machine '%s': the Shutdown integration service of the guest did not respond. Turn the virtual machine off (Stop-VM -TurnOff) or save it (Stop-VM -Save).", "synthetic"},
	"guest_locked": {excOperation, "OperationFailed", "NotSpecified", 0x800704F7,
		"Failed to shut down the virtual machine '%s': The machine is locked and cannot be shut down without the force option. (32781)", "synthetic"},
	"access_denied": {excVirtualization, "AccessDenied", "PermissionDenied", 0x80070005,
		"You do not have the required permission to complete this task. Contact the administrator of the authorization policy for the computer '%s'.", "real"},
	"vmms_busy": {excOperation, "OperationFailed", "ResourceBusy", 0x800700AA,
		"The Hyper-V Virtual Machine Management service is busy. Try again later. (Virtual machine '%s')", "synthetic"},
	"not_supported": {excVirtualization, "NotSupported", "NotImplemented", 0x80004001,
		"%s", "synthetic"},
}

// FaultNames lists the error names POST /sim/faults accepts.
func FaultNames() []string {
	out := make([]string, 0, len(hvErrors))
	for k := range hvErrors {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// hvError builds an error record of the catalogue for a VM (or subject).
func hvError(kind string, args ...any) *ps.ErrorRecord {
	k, ok := hvErrors[kind]
	if !ok {
		panic("hyperv: unknown error kind " + kind)
	}
	msg := k.format
	if n := countVerbs(msg); n > 0 {
		msg = fmt.Sprintf(msg, args[:min(n, len(args))]...)
	}
	var target ps.Value
	if len(args) > 0 {
		target = fmt.Sprint(args[0])
	}
	r := ps.NewError(k.exception, msg, k.errorID, k.category, target)
	r.Exception.HResult = ps.HRESULT(k.hresult)
	return r
}

func countVerbs(s string) int {
	n := 0
	for i := 0; i < len(s)-1; i++ {
		if s[i] == '%' {
			if s[i+1] == '%' {
				i++
				continue
			}
			n++
		}
	}
	return n
}

// notAccessible is what Hyper-V reports for an operation on a VM whose
// storage is not online on this host; removing replication adds the
// "Operation aborted" line the Cluster-Set documentation quotes.
func notAccessible(vm string, removingReplication bool) *ps.ErrorRecord {
	r := hvError("config_not_accessible", vm)
	if removingReplication {
		r.Exception.Message = fmt.Sprintf("Hyper-V failed to remove replication for '%s': Operation aborted (0x80004004).\r\n%s", vm, r.Exception.Message)
	}
	return r
}

package replica

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Error kinds: every *Error is exactly one of them (errors.Is works).
var (
	// ErrTransient: retrying later may succeed (host or service busy or
	// unreachable, storage moving, command timed out or was cancelled).
	ErrTransient = errors.New("transient")
	// ErrPermanent: retrying the same call cannot succeed until someone
	// changes the configuration or the estate (credentials, a missing VM,
	// an invalid replication state, bad settings).
	ErrPermanent = errors.New("permanent")
	// ErrUnknown: the driver could not tell (unexpected output or errors).
	ErrUnknown = errors.New("unknown")
)

// Error is every failure of a driver call.
type Error struct {
	Host string // the host the command ran on ("node1")
	Op   string // the operation ("start VM")
	VM   string // the VM's name, when the operation had one
	Kind error  // ErrTransient, ErrPermanent or ErrUnknown
	// Reason is a short stable word for logs, journals and callers that
	// branch finer than Kind: vm_not_found, config_not_accessible, auth,
	// connection, timeout, canceled, bad_output, ...
	Reason string
	// From the PowerShell error record, when the script reported one.
	Type, FQID, Category string
	Message              string
	HResult              int64 // the exception's HResult as a signed 32-bit value; 0 when none
	// Excerpt is a short piece of output that could not be understood.
	Excerpt string
	// Err is the underlying error (a context error, a network error).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.VM != "" {
		fmt.Fprintf(&b, " %q", e.VM)
	}
	if e.Host != "" {
		b.WriteString(" on ")
		b.WriteString(e.Host)
	}
	b.WriteString(": ")
	b.WriteString(kindName(e.Kind))
	if e.Reason != "" {
		b.WriteString(" (")
		b.WriteString(e.Reason)
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	var details []string
	if e.Type != "" {
		details = append(details, e.Type)
	}
	if e.HResult != 0 {
		details = append(details, fmt.Sprintf("HRESULT 0x%08X", uint32(e.HResult)))
	}
	if e.FQID != "" && e.FQID != e.Message {
		details = append(details, e.FQID)
	}
	if len(details) > 0 {
		b.WriteString(" [")
		b.WriteString(strings.Join(details, ", "))
		b.WriteString("]")
	}
	if e.Excerpt != "" {
		fmt.Fprintf(&b, "; output: %q", e.Excerpt)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrTransient) (or the other kinds) work.
func (e *Error) Is(target error) bool { return target != nil && target == e.Kind }

// Unwrap returns the underlying error (for example context.Canceled).
func (e *Error) Unwrap() error { return e.Err }

func kindName(k error) string {
	if k == nil {
		return "unknown"
	}
	return k.Error()
}

// IsTransient reports whether retrying later may succeed.
func IsTransient(err error) bool { return errors.Is(err, ErrTransient) }

// IsPermanent reports whether retrying cannot succeed without a change.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// IsUnknown reports whether the driver could not classify the failure.
func IsUnknown(err error) bool { return errors.Is(err, ErrUnknown) }

// Reason returns the stable reason word of a driver error anywhere in
// err's chain ("auth_refused", "not_winrm", "vm_not_found", ...), or ""
// when err is nil or not the driver's. Callers that park a pair, label a
// journal entry or pick a message branch on it.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// IsNotFound reports whether the VM the call named is not registered on
// the host.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Reason == ReasonVMNotFound
}

// Outcome is the metric label for err: ok, transient, permanent or unknown.
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case IsTransient(err):
		return "transient"
	case IsPermanent(err):
		return "permanent"
	}
	return "unknown"
}

// Reasons the driver sets itself (others come from the classification of
// Hyper-V's errors below).
const (
	ReasonVMNotFound         = "vm_not_found"
	ReasonAmbiguousName      = "ambiguous_name"
	ReasonIncompatible       = "incompatible"
	ReasonInvalidArgument    = "invalid_argument"
	ReasonCommandLineTooLong = "command_line_too_long"
	ReasonBadOutput          = "bad_output"
	ReasonCanceled           = "canceled"
	ReasonTimeout            = "timeout"
	ReasonConnection         = "connection"
	ReasonTLS                = "tls"
	ReasonAuth               = "auth" // a WS-Management AccessDenied fault
	// ReasonAuthRefused: HTTP 401, the host refused the WinRM credentials
	// (or the auth method).
	ReasonAuthRefused = "auth_refused"
	// ReasonNotWinRM: the URL answers HTTP, but not WS-Management (an HTML
	// page, a JSON API, ...): a wrong URL or port.
	ReasonNotWinRM            = "not_winrm"
	ReasonHTTPStatus          = "http_status"
	ReasonWSManFault          = "wsman_fault"
	ReasonShellQuota          = "shell_quota"
	ReasonConfigNotAccessible = "config_not_accessible"
	ReasonBusy                = "busy"
	ReasonReplicaUnreachable  = "replica_unreachable"
	ReasonInvalidParameter    = "invalid_parameter"
	ReasonInvalidState        = "invalid_state"
	ReasonAccessDenied        = "access_denied"
	ReasonConflict            = "conflict"
	ReasonNotFound            = "not_found"
	ReasonNotSupported        = "not_supported"
	ReasonScript              = "script"
	// ReasonShutdownRefused: the guest did not shut down (locked, or its
	// Shutdown integration service does not answer); a harder StopMode
	// may work.
	ReasonShutdownRefused = "shutdown_refused"
	// ReasonMalformedReply: the WinRM endpoint's reply was refused before
	// parsing (too big, too deep, too many elements, not XML).
	ReasonMalformedReply = "malformed_reply"
	// ReasonShellIdleTimeout: the host keeps idle shells longer than the
	// driver asked (Windows raises a request below its minimum), so a
	// command orphaned by a crash could outlive hvro's restart hold.
	ReasonShellIdleTimeout = "shell_idle_timeout"
)

// HRESULTs the classification relies on (signed, as .NET reports them).
const (
	hrAbort          = -2147467260 // 0x80004004 E_ABORT: "Operation aborted" while storage moves
	hrAccessDenied   = -2147024891 // 0x80070005
	hrBusy           = -2147024726 // 0x800700AA ERROR_BUSY
	hrCannotConnect  = -2147012867 // 0x80072EFD WinHTTP cannot connect (Replica server)
	hrNameNotResolve = -2147012889 // 0x80072EE7 WinHTTP name not resolved (Replica server)
	hrMachineLocked  = -2147023625 // 0x800704F7 ERROR_MACHINE_LOCKED: a locked guest refuses a shutdown without -Force
)

// scriptError is the JSON error object a script writes in its catch block.
type scriptError struct {
	Type, Message, FQID, Category string
	HResult                       int64
}

// classify sorts a PowerShell error into a kind and a reason. Transient
// signals are checked first: Hyper-V reports storage that is moving as an
// OperationFailed error like any other.
func classify(se scriptError) (kind error, reason string) {
	msg := strings.ToLower(se.Message)
	if r, ok := ownReason(se.Message); ok {
		return ErrPermanent, r
	}
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	fqid := strings.ToLower(se.FQID)
	cat := strings.ToLower(se.Category)
	typ := se.Type
	switch {
	case has("configuration was not accessible", "try again later", "operation aborted", "0x80004004") || se.HResult == hrAbort:
		if has("busy") {
			return ErrTransient, ReasonBusy
		}
		return ErrTransient, ReasonConfigNotAccessible
	case has("failed to shut down the virtual machine", "cannot be shut down without the force option", "shutdown integration service") || se.HResult == hrMachineLocked:
		// The guest refused; retrying the same stop cannot help, a harder
		// StopMode can.
		return ErrPermanent, ReasonShutdownRefused
	case has("service is busy") || se.HResult == hrBusy || cat == "resourcebusy":
		return ErrTransient, ReasonBusy
	case has("cannot connect to the specified replica server") || se.HResult == hrCannotConnect || se.HResult == hrNameNotResolve:
		return ErrTransient, ReasonReplicaUnreachable
	case cat == "resourceunavailable" || cat == "connectionerror" || cat == "operationtimeout":
		return ErrTransient, ReasonBusy
	case strings.HasPrefix(fqid, "accessdenied") || cat == "permissiondenied" || cat == "securityerror" || se.HResult == hrAccessDenied:
		return ErrPermanent, ReasonAccessDenied
	case has("unable to find a virtual machine"):
		return ErrPermanent, ReasonVMNotFound
	case strings.HasSuffix(typ, "CommandNotFoundException"):
		// The Hyper-V PowerShell module is missing on the host.
		return ErrPermanent, ReasonNotSupported
	case strings.HasPrefix(fqid, "invalidparameter") || cat == "invalidargument" ||
		strings.HasSuffix(typ, "ParameterBindingException") || strings.HasSuffix(typ, "ParseException") || cat == "parsererror":
		return ErrPermanent, ReasonInvalidParameter
	case strings.HasPrefix(fqid, "invalidstate") || strings.HasPrefix(fqid, "invalidoperation") || cat == "invalidoperation":
		return ErrPermanent, ReasonInvalidState
	case cat == "resourceexists":
		return ErrPermanent, ReasonConflict
	case cat == "objectnotfound":
		return ErrPermanent, ReasonNotFound
	case strings.HasPrefix(fqid, "notsupported") || cat == "notimplemented" || cat == "notinstalled":
		return ErrPermanent, ReasonNotSupported
	case has("noninteractive mode"):
		return ErrPermanent, ReasonInvalidParameter
	}
	return ErrUnknown, ReasonScript
}

// scriptReasons are the reasons the driver's scripts throw themselves.
var scriptReasons = map[string]bool{ReasonAmbiguousName: true, ReasonIncompatible: true, ReasonVMNotFound: true}

// ownReason recognises the errors the driver's scripts throw themselves:
// "[hvro:<reason>] message". Only the scripts' own reasons count: the
// text comes from the host, and a reason ends up in metric labels.
func ownReason(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "[hvro:")
	if !ok {
		return "", false
	}
	r, _, ok := strings.Cut(rest, "]")
	if !ok || !scriptReasons[r] {
		return "", false
	}
	return r, true
}

// stripOwnReason drops the "[hvro:x] " marker from a message.
func stripOwnReason(msg string) string {
	if _, ok := ownReason(msg); ok {
		_, after, _ := strings.Cut(msg, "]")
		return strings.TrimSpace(after)
	}
	return msg
}

// ctxError is the error for a command stopped by its context: the caller's
// cancellation or deadline, or the driver's own timeout.
func ctxError(callerCtx context.Context, cmdErr error, timeout string) (reason, msg string, err error) {
	if callerCtx.Err() != nil {
		err = context.Cause(callerCtx)
		if errors.Is(err, context.DeadlineExceeded) {
			return ReasonTimeout, "the caller's deadline passed before the command finished", err
		}
		return ReasonCanceled, "cancelled before the command finished", err
	}
	return ReasonTimeout, "no result within the command timeout " + timeout, cmdErr
}

package wsman

import (
	"fmt"
	"net/http"
)

// fault is a WS-Management SOAP fault as Windows sends it: HTTP 500, a
// SOAP 1.2 s:Fault with code and subcode, a reason, and an f:WSManFault
// detail carrying the numeric Windows error code. Texts end with one space
// because Windows formats them with FormatMessage; the captured TimedOut text
// ends with two. Each constructor names its source in PROTOCOL.md.
type fault struct {
	Code       string // "s:Sender" or "s:Receiver"
	Subcode    string // e.g. "w:InvalidSelectors", "a:ActionNotSupported"
	Reason     string // s:Reason/s:Text
	Detail     string // optional w:FaultDetail URI
	WSManCode  uint32 // f:WSManFault/@Code
	Message    string // f:Message text
	Provider   bool   // wrap Message in f:ProviderFault of the Shell cmd plugin
	HTTPStatus int
}

func (f *fault) Error() string {
	return fmt.Sprintf("wsman fault %d (%s): %s", f.WSManCode, f.Subcode, f.Message)
}

// action is the WS-Addressing action of the fault message: faults with a
// WS-Addressing subcode use the addressing fault action, all others the
// WS-Management one (both seen in captures of Windows responses).
func (f *fault) action() string {
	if len(f.Subcode) > 2 && f.Subcode[:2] == "a:" {
		return "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
	}
	return "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
}

// Windows error codes used in faults (wsmerror.h values, decimal as sent).
const (
	codeResourceNotFound        = 2150858752 // 0x80338000 ERROR_WSMAN_RESOURCE_NOT_FOUND
	codeInvalidMessageHeader    = 2150858767 // 0x8033800F ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER
	codeMustUnderstand          = 2150858768 // 0x80338010 ERROR_WSMAN_SOAP_FAULT_MUST_UNDERSTAND
	codeMessageHeaderRequired   = 2150858769 // 0x80338011 ERROR_WSMAN_MESSAGE_INFORMATION_HEADER_REQUIRED
	codeActionNotSupported      = 2150858771 // 0x80338013 ERROR_WSMAN_ACTION_NOT_SUPPORTED
	codeInvalidRepresentation   = 2150858773 // 0x80338015 ERROR_WSMAN_INVALID_REPRESENTATION
	codeInvalidSOAPBody         = 2150858791 // 0x80338027 ERROR_WSMAN_INVALID_SOAP_BODY
	codeOperationTimedOut       = 2150858793 // 0x80338029 ERROR_WSMAN_OPERATION_TIMEDOUT
	codeInvalidResourceURI      = 2150858811 // 0x8033803B ERROR_WSMAN_INVALID_RESOURCE_URI
	codeSchemaValidation        = 2150858817 // 0x80338041 ERROR_WSMAN_SCHEMA_VALIDATION_ERROR
	codeInvalidXML              = 2150858819 // 0x80338043 ERROR_WSMAN_INVALID_XML
	codeUnexpectedSelectors     = 2150858843 // 0x8033805B ERROR_WSMAN_UNEXPECTED_SELECTORS
	codeMinEnvelopeSize         = 2150858878 // 0x8033807E ERROR_WSMAN_MIN_ENVELOPE_SIZE
	codeQuotaMaxShells          = 2150859173 // 0x803381A5 ERROR_WSMAN_QUOTA_MAX_SHELLS
	codeInvalidParameter        = 87         // ERROR_INVALID_PARAMETER
	codeFileNotFound            = 2147942402 // 0x80070002 HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)
	faultDetailUnexpectedSel    = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors"
	faultDetailInvalidValue     = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue"
	faultDetailMinEnvelopeLimit = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MinimumEnvelopeLimit"
)

const (
	textTimedOut         = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "
	textInvalidSelectors = "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. "
	textInvalidHeader    = "The WS-Management service cannot process the request. The request contains one or more invalid SOAP headers. "
	textHeaderRequired   = "The WS-Management service cannot process the request. The request does not have all the expected SOAP headers. "
	textParameter        = "The parameter is incorrect. "
	textSchemaValidation = "The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML and retry. "
)

func senderFault(subcode, reason string, code uint32, message string) *fault {
	return &fault{Code: "s:Sender", Subcode: subcode, Reason: reason, WSManCode: code, Message: message, HTTPStatus: http.StatusInternalServerError}
}

// faultSchemaValidation: a body element whose value its schema does not
// allow, such as a Create's rsp:IdleTimeOut that is not an xs:duration
// (captured from Windows for an unknown CommandLine element: pypsrp
// tests/test_adhoc.py; the reason as pywinrm issue #377 shows it for an
// IdleTimeOut of bare milliseconds). No FaultDetail in the capture.
func faultSchemaValidation(element string) *fault {
	return senderFault("w:SchemaValidationError", textSchemaValidation, codeSchemaValidation,
		"The Windows Remote Shell cannot process the request. The SOAP packet contains an element "+element+
			" that is invalid. Retry the request with the correct XML element. ")
}

// faultTimedOut: Receive found no output within OperationTimeout; clients
// retry on it (captured from Windows in masterzen and pypsrp fixtures).
func faultTimedOut() *fault {
	return &fault{Code: "s:Receiver", Subcode: "w:TimedOut", Reason: textTimedOut,
		WSManCode: codeOperationTimedOut, Message: textTimedOut, HTTPStatus: http.StatusInternalServerError}
}

// faultShellNotFound: a ShellId that does not exist (never created, deleted,
// idle-expired or lost in a host crash).
func faultShellNotFound(shellID string) *fault {
	f := senderFault("w:InvalidSelectors", textInvalidSelectors, codeUnexpectedSelectors,
		"The request for the Windows Remote Shell with ShellId "+shellID+" failed because the shell was not found on the server. "+
			"Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. "+
			"Provide the correct ShellId or create a new shell and retry the operation. ")
	f.Detail = faultDetailUnexpectedSel
	return f
}

// faultNoShellSelector: a shell operation without a ShellId selector.
func faultNoShellSelector() *fault {
	f := senderFault("w:InvalidSelectors", textInvalidSelectors, codeUnexpectedSelectors,
		"The Windows Remote Shell cannot process the request because it requires the following selector: ShellId. Retry with the correct selector. ")
	f.Detail = faultDetailUnexpectedSel
	return f
}

// faultUnexpectedSelectors: selectors the shell resource does not define, or
// a selector given twice.
func faultUnexpectedSelectors() *fault {
	f := senderFault("w:InvalidSelectors", textInvalidSelectors, codeUnexpectedSelectors, textInvalidSelectors)
	f.Detail = faultDetailUnexpectedSel
	return f
}

// faultCommandNotFound: a CommandId that is not (or no longer) in the shell.
func faultCommandNotFound() *fault {
	f := senderFault("w:InvalidSelectors", textInvalidSelectors, codeUnexpectedSelectors,
		"The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. "+
			"Either the command has completed execution or the client specified an invalid command identifier. ")
	f.Detail = faultDetailUnexpectedSel
	return f
}

// faultInvalidParameter: the shell plugin rejected a parameter (Receive
// without CommandId, empty command line, bad stream or signal).
func faultInvalidParameter() *fault {
	f := senderFault("w:InvalidParameter", textParameter, codeInvalidParameter, textParameter)
	f.Detail = faultDetailInvalidValue
	f.Provider = true
	return f
}

// faultQuotaShells: MaxShellsPerUser reached on Create.
func faultQuotaShells(max int) *fault {
	msg := fmt.Sprintf("The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. ", max)
	return senderFault("w:QuotaLimit", msg, codeQuotaMaxShells, msg)
}

// faultActionNotSupported: an Action the shell resource does not implement.
func faultActionNotSupported() *fault {
	const msg = "The WS-Management service does not support the action specified in the request. "
	return senderFault("a:ActionNotSupported", msg, codeActionNotSupported, msg)
}

// faultHeaderRequired: a required header (Action, ResourceURI) is missing.
func faultHeaderRequired(name string) *fault {
	return senderFault("a:MessageInformationHeaderRequired", textHeaderRequired, codeMessageHeaderRequired,
		textHeaderRequired[:len(textHeaderRequired)-1]+" Missing header: "+name+". ")
}

// faultInvalidHeader: a header is present but unusable (empty MessageID,
// unparsable MaxEnvelopeSize).
func faultInvalidHeader(message string) *fault {
	return senderFault("a:InvalidMessageInformationHeader", textInvalidHeader, codeInvalidMessageHeader, message)
}

// faultInvalidTimeout: an OperationTimeout that is not a positive
// xs:duration (message captured from Windows for "PT-1S").
func faultInvalidTimeout(value string) *fault {
	return faultInvalidHeader("The WS-Management service cannot process the request. The XML contains an invalid timeout field in the SOAP header: " + value + ". ")
}

// faultMustUnderstand: a header flagged mustUnderstand that is not understood.
func faultMustUnderstand(name string) *fault {
	const msg = "The WS-Management service cannot process a SOAP header in the request that is marked as mustUnderstand by the client. " +
		"This could be caused by the use of a version of the protocol which is not supported, or may be an incompatibility between the client and server implementations. "
	f := senderFault("", msg, codeMustUnderstand, msg+"Header: "+name+". ")
	f.Code = "s:MustUnderstand" // SOAP 1.2 part 1, 5.4.8: no subcode
	return f
}

// faultResourceNotFound: a ResourceURI that names no resource on this host.
func faultResourceNotFound() *fault {
	const msg = "The WS-Management service cannot process the request. The service cannot find the resource identified by the resource URI and selectors. "
	return senderFault("a:DestinationUnreachable", msg, codeResourceNotFound, msg)
}

// faultInvalidResourceURI: an empty ResourceURI.
func faultInvalidResourceURI() *fault {
	const msg = "The WS-Management service cannot process the request. The resource URI is missing or it has an incorrect format. " +
		"Check the documentation or use the following command for information on how to construct a resource URI: \"winrm help uris\". "
	return senderFault("w:InvalidResourceURI", msg, codeInvalidResourceURI, msg)
}

// faultInvalidXML: the body is not well-formed XML.
func faultInvalidXML() *fault {
	const msg = "The WS-Management service cannot process the request because the XML is invalid. "
	return senderFault("w:SchemaValidationError", msg, codeInvalidXML, msg)
}

// faultInvalidBody: well-formed XML that is not a usable SOAP envelope, or a
// body that does not match the action.
func faultInvalidBody() *fault {
	const msg = "The WS-Management service cannot process the request because the request packet does not have a valid SOAP body. "
	return senderFault("w:SchemaValidationError", msg, codeInvalidSOAPBody, msg)
}

// faultInvalidRepresentation: a Create body that is not an rsp:Shell.
func faultInvalidRepresentation() *fault {
	const msg = "The WS-Management service cannot identify the format of the object passed to a Put or Create method. " +
		"The input XML may not be appropriate for the resource or uses the wrong schema for the resource. Change the input XML in the request. "
	return senderFault("x:InvalidRepresentation", msg, codeInvalidRepresentation, msg)
}

// faultMinEnvelope: MaxEnvelopeSize below 8192 octets (MS-WSMV 3.1.4.1.7).
func faultMinEnvelope() *fault {
	const msg = "The WS-Management service cannot process the request because the envelope size in the request is too small. "
	f := senderFault("w:EncodingLimit", msg, codeMinEnvelopeSize, msg)
	f.Detail = faultDetailMinEnvelopeLimit
	return f
}

// faultFileNotFound: WINRS_SKIP_CMD_SHELL=TRUE with a program that is not an
// absolute path to an existing executable (captured from Windows).
func faultFileNotFound() *fault {
	const msg = "The system cannot find the file specified. "
	return &fault{Code: "s:Receiver", Subcode: "w:InternalError", Reason: msg, WSManCode: codeFileNotFound,
		Message: msg, Provider: true, HTTPStatus: http.StatusInternalServerError}
}

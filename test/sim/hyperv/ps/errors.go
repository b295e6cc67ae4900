package ps

import (
	"fmt"
	"strings"
)

// Exception is a .NET exception carried by an ErrorRecord.
type Exception struct {
	Type    string // full type name, e.g. Microsoft.HyperV.PowerShell.VirtualizationException
	Message string
	HResult int64 // signed 32-bit, as .NET reports it
	Inner   *Exception
}

// ShortType is the type name without namespace, as CategoryInfo shows it.
func (e *Exception) ShortType() string {
	if i := strings.LastIndexByte(e.Type, '.'); i >= 0 {
		return e.Type[i+1:]
	}
	return e.Type
}

// HResult helpers: .NET shows HRESULTs as signed 32-bit integers.
func HRESULT(u uint32) int64 { return int64(int32(u)) }

// ErrorRecord mirrors System.Management.Automation.ErrorRecord.
type ErrorRecord struct {
	Exception  *Exception
	ErrorID    string // e.g. InvalidParameter
	Command    string // full command type for the FQID suffix, e.g. Microsoft.HyperV.PowerShell.Commands.GetVM
	Category   string // ErrorCategory name
	Activity   string // the [Get-VM] part of CategoryInfo
	TargetName string
	TargetType string
	Target     Value

	// Invocation position, filled in by the interpreter.
	extent     Extent
	hasExtent  bool
	prefix     string // "Get-VM : " for cmdlet errors
	parseError bool
	standalone bool // FullyQualifiedErrorId carries no command name (Write-Error)
}

// FQID is FullyQualifiedErrorId.
func (r *ErrorRecord) FQID() string {
	if r.Command == "" || r.standalone {
		return r.ErrorID
	}
	return r.ErrorID + "," + r.Command
}

// CategoryInfo renders like ErrorCategoryInfo.ToString().
func (r *ErrorRecord) CategoryInfo() string {
	reason := r.Exception.ShortType()
	if r.parseError {
		reason = "ParentContainsErrorRecordException"
	}
	return fmt.Sprintf("%s: (%s:%s) [%s], %s", r.Category, r.TargetName, r.TargetType, r.Activity, reason)
}

// NewError builds a record; target may be nil.
func NewError(excType, message, errorID, category string, target Value) *ErrorRecord {
	r := &ErrorRecord{
		Exception: &Exception{Type: excType, Message: message, HResult: HRESULT(0x80131500)},
		ErrorID:   errorID,
		Category:  category,
		Target:    target,
	}
	if target != nil {
		r.TargetName = ToString(target)
		r.TargetType = shortTypeName(TypeNameOf(target))
	}
	return r
}

func shortTypeName(t string) string {
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[i+1:]
	}
	return t
}

var errorCategories = NewEnumType("System.Management.Automation.ErrorCategory",
	"NotSpecified", 0, "OpenError", 1, "CloseError", 2, "DeviceError", 3, "DeadlockDetected", 4,
	"InvalidArgument", 5, "InvalidData", 6, "InvalidOperation", 7, "InvalidResult", 8, "InvalidType", 9,
	"MetadataError", 10, "NotImplemented", 11, "NotInstalled", 12, "ObjectNotFound", 13,
	"OperationStopped", 14, "OperationTimeout", 15, "SyntaxError", 16, "ParserError", 17,
	"PermissionDenied", 18, "ResourceBusy", 19, "ResourceExists", 20, "ResourceUnavailable", 21,
	"ReadError", 22, "WriteError", 23, "FromStdErr", 24, "SecurityError", 25, "ProtocolError", 26,
	"ConnectionError", 27, "AuthenticationError", 28, "LimitsExceeded", 29, "QuotaExceeded", 30, "NotEnabled", 31)

func exceptionObject(e *Exception) Value {
	if e == nil {
		return nil
	}
	o := &Object{TypeNames: []string{e.Type, "System.Exception", "System.Object"}, Text: e.Type + ": " + e.Message}
	o.Set("Message", e.Message)
	o.Set("HResult", e.HResult)
	o.Set("InnerException", exceptionObject(e.Inner))
	o.Set("Source", nil)
	return o
}

// member exposes the properties scripts read in catch blocks.
func (r *ErrorRecord) member(name string) (Value, bool) {
	switch strings.ToLower(name) {
	case "exception":
		return exceptionObject(r.Exception), true
	case "fullyqualifiederrorid":
		return r.FQID(), true
	case "targetobject":
		return r.Target, true
	case "categoryinfo":
		cat, _ := errorCategories.Parse(r.Category)
		o := NewObject("System.Management.Automation.ErrorCategoryInfo")
		o.Text = r.CategoryInfo()
		o.Set("Category", cat)
		o.Set("Activity", r.Activity)
		o.Set("Reason", r.Exception.ShortType())
		o.Set("TargetName", r.TargetName)
		o.Set("TargetType", r.TargetType)
		return o, true
	case "errordetails":
		return nil, true
	case "invocationinfo":
		o := NewObject("System.Management.Automation.InvocationInfo")
		o.Set("ScriptLineNumber", int64(0))
		o.Set("OffsetInLine", int64(0))
		return o, true
	case "scriptstacktrace":
		return "at <ScriptBlock>, <No file>: line 1", true
	}
	return nil, false
}

// render produces the NormalView lines PowerShell 5.1 writes for the record.
func (r *ErrorRecord) render(src string) []string {
	var lines []string
	pos := []string{}
	if r.hasExtent {
		line, col, text := lineOf(src, r.extent.Start)
		width := r.extent.End - r.extent.Start
		if maxw := len(text) - (col - 1); width > maxw {
			width = maxw
		}
		if width < 1 {
			width = 1
		}
		pos = append(pos,
			fmt.Sprintf("At line:%d char:%d", line, col),
			"+ "+text,
			"+ "+strings.Repeat(" ", col-1)+strings.Repeat("~", width))
	}
	msgLines := strings.Split(strings.ReplaceAll(r.Exception.Message, "\r\n", "\n"), "\n")
	if r.parseError {
		lines = append(lines, pos...)
		lines = append(lines, msgLines...)
	} else {
		msgLines[0] = r.prefix + msgLines[0]
		lines = append(lines, msgLines...)
		lines = append(lines, pos...)
	}
	lines = append(lines,
		"    + CategoryInfo          : "+r.CategoryInfo(),
		"    + FullyQualifiedErrorId : "+r.FQID(),
		" ")
	return lines
}

func lineOf(src string, off int) (line, col int, text string) {
	if off > len(src) {
		off = len(src)
	}
	line = 1 + strings.Count(src[:off], "\n")
	start := strings.LastIndexByte(src[:off], '\n') + 1
	end := strings.IndexByte(src[start:], '\n')
	if end < 0 {
		end = len(src) - start
	}
	text = strings.TrimRight(src[start:start+end], "\r")
	return line, off - start + 1, text
}

// clixml encodes error-stream lines as PowerShell writes them to a redirected
// stderr: one <S S="Error"> element per line, CR LF as _x000D__x000A_.
func clixml(lines []string, progress bool) string {
	var b strings.Builder
	b.WriteString("#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">")
	if progress {
		b.WriteString(`<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>`)
	}
	for _, l := range lines {
		b.WriteString(`<S S="Error">`)
		b.WriteString(clixmlEscape(l + "\r\n"))
		b.WriteString(`</S>`)
	}
	b.WriteString("</Objs>")
	return b.String()
}

func clixmlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '&':
			b.WriteString("&amp;")
		case c == '<':
			b.WriteString("&lt;")
		case c == '>':
			b.WriteString("&gt;")
		case c == '_' && i+1 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X'):
			b.WriteString("_x005F_")
		case c < 0x20:
			fmt.Fprintf(&b, "_x%04X_", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

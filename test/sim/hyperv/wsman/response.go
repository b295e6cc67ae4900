package wsman

import (
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"strings"
)

// Windows prefixes every response envelope with the same namespace set; the
// clients parse by namespace URI, but matching the real bytes keeps captures
// comparable.
const envelopeOpen = `<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" ` +
	`xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" ` +
	`xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" ` +
	`xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">`

const anonymousTo = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

// esc escapes text for element content and attribute values.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// newGUID returns an upper-case random GUID, the form Windows uses for
// ShellId, CommandId and MessageID.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// envelope renders a response. relatesTo echoes the request MessageID
// verbatim: pywinrm compares it with what it sent and dies without it.
func envelope(action, relatesTo, body string) []byte {
	var b strings.Builder
	b.WriteString(envelopeOpen)
	b.WriteString("<s:Header><a:Action>")
	b.WriteString(esc(action))
	b.WriteString("</a:Action><a:MessageID>uuid:")
	b.WriteString(newGUID())
	b.WriteString("</a:MessageID><a:To>")
	b.WriteString(anonymousTo)
	b.WriteString("</a:To>")
	if relatesTo != "" {
		b.WriteString("<a:RelatesTo>")
		b.WriteString(esc(relatesTo))
		b.WriteString("</a:RelatesTo>")
	}
	b.WriteString("</s:Header><s:Body>")
	b.WriteString(body)
	b.WriteString("</s:Body></s:Envelope>")
	return []byte(b.String())
}

// faultEnvelope renders a fault in the shape captured from Windows.
func faultEnvelope(f *fault, relatesTo, machine string) []byte {
	var b strings.Builder
	b.WriteString("<s:Fault><s:Code><s:Value>")
	b.WriteString(esc(f.Code))
	b.WriteString("</s:Value>")
	if f.Subcode != "" {
		b.WriteString("<s:Subcode><s:Value>")
		b.WriteString(esc(f.Subcode))
		b.WriteString("</s:Value></s:Subcode>")
	}
	b.WriteString(`</s:Code><s:Reason><s:Text xml:lang="en-US">`)
	b.WriteString(esc(f.Reason))
	b.WriteString("</s:Text></s:Reason><s:Detail>")
	if f.Detail != "" {
		b.WriteString("<w:FaultDetail>")
		b.WriteString(esc(f.Detail))
		b.WriteString("</w:FaultDetail>")
	}
	fmt.Fprintf(&b, `<f:WSManFault xmlns:f="%s" Code="%d" Machine="%s"><f:Message>`, nsFault, f.WSManCode, esc(machine))
	if f.Provider {
		b.WriteString(`<f:ProviderFault provider="Shell cmd plugin" path="%systemroot%\system32\winrscmd.dll">`)
		b.WriteString(esc(f.Message))
		b.WriteString("</f:ProviderFault>")
	} else {
		b.WriteString(esc(f.Message))
	}
	b.WriteString("</f:Message></f:WSManFault></s:Detail></s:Fault>")
	// Fault envelopes carry the eventing and enumeration namespaces too.
	out := envelope(f.action(), relatesTo, b.String())
	return []byte(strings.Replace(string(out), `xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" `,
		`xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" `, 1))
}

package wsman

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// XML namespaces, matched by URI: clients choose their own prefixes
// (masterzen uses env/a/w/rsp, pywinrm env/a/w/p/rsp, pypsrp s/wsa/wsman).
const (
	nsSOAP  = "http://www.w3.org/2003/05/soap-envelope"
	nsAddr  = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsWSMan = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	nsWSMV  = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
	nsShell = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	nsFault = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
)

// Action URIs of the Windows Remote Shell protocol (MS-WSMV 3.1.4).
const (
	actionCreate  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
	actionDelete  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
	actionCommand = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
	actionReceive = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
	actionSend    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
	actionSignal  = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"

	resourceCmd = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
)

// Limits that keep a hostile body from costing more than its size: Windows
// rejects oversized packets before parsing, and nothing a real client sends
// nests deeper than a handful of levels.
const (
	maxDepth    = 64
	maxElements = 20000
)

// element is a minimal XML DOM node. A DOM (rather than struct decoding)
// lets the server see exactly what was sent: missing versus empty headers,
// duplicates, unknown mustUnderstand headers and the first body element.
type element struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []*element
	Text     string // character data directly inside this element
}

// attr returns the value of the attribute with the given local name in no
// namespace or, when space is non-empty, in that namespace.
func (e *element) attr(space, local string) (string, bool) {
	for _, a := range e.Attr {
		if a.Name.Local == local && (a.Name.Space == space) {
			return a.Value, true
		}
	}
	return "", false
}

// children returns the direct children with the given namespace and name.
func (e *element) children(space, local string) []*element {
	var out []*element
	for _, c := range e.Children {
		if c.Name.Space == space && c.Name.Local == local {
			out = append(out, c)
		}
	}
	return out
}

func (e *element) child(space, local string) *element {
	for _, c := range e.Children {
		if c.Name.Space == space && c.Name.Local == local {
			return c
		}
	}
	return nil
}

// errMalformed marks input that is not a well-formed XML document.
var errMalformed = errors.New("malformed XML")

// parseXML builds a DOM from a document. It never panics; depth and element
// count are bounded.
func parseXML(data []byte) (*element, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	// Only UTF-8 is decoded; a declared other charset fails here and becomes
	// a fault rather than being misread.
	var root *element
	var stack []*element
	count := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			count++
			if count > maxElements {
				return nil, fmt.Errorf("%w: more than %d elements", errMalformed, maxElements)
			}
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("%w: nesting deeper than %d", errMalformed, maxDepth)
			}
			el := &element{Name: t.Name, Attr: t.Copy().Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("%w: more than one root element", errMalformed)
				}
				root = el
			} else {
				parent := stack[len(stack)-1]
				parent.Children = append(parent.Children, el)
			}
			stack = append(stack, el)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("%w: text outside the root element", errMalformed)
			}
		case xml.Directive:
			// A DTD could declare entities; SOAP forbids DTDs (SOAP 1.2 part 1, 5).
			return nil, fmt.Errorf("%w: document type declarations are not allowed in SOAP", errMalformed)
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: no root element", errMalformed)
	}
	return root, nil
}

// request is a decoded WS-Management request envelope.
type request struct {
	Action           string
	HasAction        bool
	MessageID        string
	HasMessageID     bool
	To               string
	ResourceURI      string
	HasResourceURI   bool
	MaxEnvelopeSize  string
	HasMaxEnvelope   bool
	OperationTimeout string
	HasTimeout       bool
	// Selectors maps lower-cased selector names to values: MS-WSMV 3.1.4.1.2
	// makes selector names case-insensitive.
	Selectors      map[string]string
	DupSelector    string
	HasSelectors   bool
	Options        map[string]string // lower-cased option names
	MustUnderstand string            // first header we do not understand that demands it
	// Body is the first element inside s:Body (nil when the body is empty);
	// BodyCount counts all of them.
	Body      *element
	BodyCount int
	HasBody   bool
}

// envelopeError describes why an envelope could not be used; kind selects
// the Windows fault.
type envelopeError struct {
	kind   envelopeErrorKind
	detail string
}

type envelopeErrorKind int

const (
	errKindXML     envelopeErrorKind = iota + 1 // not well-formed XML
	errKindNotSOAP                              // well-formed but not a SOAP 1.2 envelope
	errKindNoBody                               // envelope without s:Body
)

func (e *envelopeError) Error() string { return e.detail }

// knownHeaders are the header elements this server understands; any other
// header flagged mustUnderstand="true" is refused as SOAP 1.2 requires.
var knownHeaders = map[xml.Name]bool{
	{Space: nsAddr, Local: "To"}:                true,
	{Space: nsAddr, Local: "ReplyTo"}:           true,
	{Space: nsAddr, Local: "Action"}:            true,
	{Space: nsAddr, Local: "MessageID"}:         true,
	{Space: nsAddr, Local: "FaultTo"}:           true,
	{Space: nsWSMan, Local: "ResourceURI"}:      true,
	{Space: nsWSMan, Local: "MaxEnvelopeSize"}:  true,
	{Space: nsWSMan, Local: "OperationTimeout"}: true,
	{Space: nsWSMan, Local: "Locale"}:           true,
	{Space: nsWSMan, Local: "SelectorSet"}:      true,
	{Space: nsWSMan, Local: "OptionSet"}:        true,
	{Space: nsWSMV, Local: "DataLocale"}:        true,
	{Space: nsWSMV, Local: "SessionId"}:         true,
	{Space: nsWSMV, Local: "OperationID"}:       true,
	{Space: nsWSMV, Local: "SequenceId"}:        true,
	{Space: nsWSMV, Local: "CompressionType"}:   true,
}

// decodeEnvelope parses a SOAP 1.2 envelope into a request. Semantic checks
// (which headers an action needs) are the server's job; this only reports
// what was sent.
func decodeEnvelope(data []byte) (*request, error) {
	root, err := parseXML(data)
	if err != nil {
		return nil, &envelopeError{kind: errKindXML, detail: err.Error()}
	}
	if root.Name.Space != nsSOAP || root.Name.Local != "Envelope" {
		return nil, &envelopeError{kind: errKindNotSOAP,
			detail: fmt.Sprintf("root element is {%s}%s, not a SOAP 1.2 Envelope", root.Name.Space, root.Name.Local)}
	}
	req := &request{Selectors: map[string]string{}, Options: map[string]string{}}
	if hdr := root.child(nsSOAP, "Header"); hdr != nil {
		decodeHeader(hdr, req)
	}
	body := root.child(nsSOAP, "Body")
	if body == nil {
		return req, &envelopeError{kind: errKindNoBody, detail: "envelope has no SOAP Body"}
	}
	req.HasBody = true
	req.BodyCount = len(body.Children)
	if len(body.Children) > 0 {
		req.Body = body.Children[0]
	}
	return req, nil
}

func decodeHeader(hdr *element, req *request) {
	for _, h := range hdr.Children {
		text := strings.TrimSpace(h.Text)
		switch h.Name {
		case xml.Name{Space: nsAddr, Local: "Action"}:
			req.Action, req.HasAction = text, true
		case xml.Name{Space: nsAddr, Local: "MessageID"}:
			req.MessageID, req.HasMessageID = text, true
		case xml.Name{Space: nsAddr, Local: "To"}:
			req.To = text
		case xml.Name{Space: nsWSMan, Local: "ResourceURI"}:
			req.ResourceURI, req.HasResourceURI = text, true
		case xml.Name{Space: nsWSMan, Local: "MaxEnvelopeSize"}:
			req.MaxEnvelopeSize, req.HasMaxEnvelope = text, true
		case xml.Name{Space: nsWSMan, Local: "OperationTimeout"}:
			req.OperationTimeout, req.HasTimeout = text, true
		case xml.Name{Space: nsWSMan, Local: "SelectorSet"}:
			req.HasSelectors = true
			for _, s := range h.children(nsWSMan, "Selector") {
				name, _ := s.attr("", "Name")
				key := strings.ToLower(name)
				if _, dup := req.Selectors[key]; dup && req.DupSelector == "" {
					req.DupSelector = name
				}
				req.Selectors[key] = strings.TrimSpace(s.Text)
			}
		case xml.Name{Space: nsWSMan, Local: "OptionSet"}:
			for _, o := range h.children(nsWSMan, "Option") {
				name, _ := o.attr("", "Name")
				req.Options[strings.ToLower(name)] = strings.TrimSpace(o.Text)
			}
		default:
			if !knownHeaders[h.Name] && mustUnderstand(h) && req.MustUnderstand == "" {
				req.MustUnderstand = h.Name.Local
			}
		}
	}
}

// mustUnderstand reports a mustUnderstand="true" (or "1") attribute. Both the
// SOAP-qualified form and the unprefixed form masterzen and pywinrm send are
// honoured, as Windows does.
func mustUnderstand(e *element) bool {
	for _, a := range e.Attr {
		if a.Name.Local == "mustUnderstand" && (a.Name.Space == nsSOAP || a.Name.Space == "") {
			v := strings.TrimSpace(a.Value)
			return v == "true" || v == "1"
		}
	}
	return false
}

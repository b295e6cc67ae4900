package replica

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// maxResponse bounds what is read of one WS-Man response body. Requests
// ask for envelopes of at most envelopeSize bytes; anything far bigger is
// not WinRM.
const (
	envelopeSize = 153600
	maxResponse  = 4 << 20
)

// Limits on the shape of a SOAP reply before the WinRM library parses it.
// The library (simplexml and goxpath) has no limits and evaluates its
// "//" queries in time quadratic in the nesting depth: 10,000 nested
// elements cost 17 s of CPU, 1.5 MB of them never finish, and the command
// holds its host's slot meanwhile. A real reply is at most the
// MaxEnvelopeSize the request asked for, nests about ten levels and has a
// few dozen elements; within these limits the library parses any reply in
// well under 200 ms.
const (
	maxReplyBytes    = 2 * envelopeSize
	maxReplyDepth    = 64
	maxReplyElements = 10000
)

// transport is the masterzen Transporter of one command. masterzen's own
// transport at the pinned version (and at upstream HEAD) returns SOAP
// faults as successful bodies, because clientRequest.Post replaces its
// results in a defer on unnamed return values; a fault then leaves an
// empty shell id or a Receive loop that never ends. This one checks every
// response, turns faults and HTTP errors into *transportError, and sends
// each request with the command's context so a cancel or deadline aborts
// the request in flight (the library has no context support).
type transport struct {
	d  *Driver
	mu sync.Mutex
	// ctx is swapped between phases: shell creation runs detached from
	// the caller (so a shell created just as the caller gives up is still
	// known and deleted), the command runs with the caller's context, and
	// deletion runs with a short clean-up context.
	ctx context.Context
	// granted is the shell idle timeout the host reported in its answer
	// to the Create (grantedOK: it reported one).
	granted   time.Duration
	grantedOK bool
}

// grantedIdle is the idle timeout the host gave the shell, if it said.
func (t *transport) grantedIdle() (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.granted, t.grantedOK
}

func (t *transport) setContext(ctx context.Context) {
	t.mu.Lock()
	t.ctx = ctx
	t.mu.Unlock()
}

func (t *transport) context() context.Context {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ctx
}

// Transport is called by masterzen when the client is made; the HTTP
// transport is the driver's, shared by every command on the host.
func (t *transport) Transport(*winrm.Endpoint) error { return nil }

// Post sends one WS-Man request.
func (t *transport) Post(_ *winrm.Client, m *soap.SoapMessage) (string, error) {
	ctx := t.context()
	if err := ctx.Err(); err != nil {
		return "", &transportError{kind: ErrTransient, reason: ReasonCanceled, msg: "context done", err: err}
	}
	payload, create, err := withIdleTimeout(m.String(), t.d.shellIdle)
	if err != nil {
		return "", &transportError{kind: ErrPermanent, reason: ReasonInvalidArgument, msg: "ask for the shell idle timeout", err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.d.url, strings.NewReader(payload))
	if err != nil {
		return "", &transportError{kind: ErrPermanent, reason: ReasonInvalidArgument, msg: "build request", err: err}
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(t.d.user, t.d.password)
	resp, err := t.d.http.Do(req)
	if err != nil {
		return "", netError(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return "", netError(ctx, err)
	}
	if len(body) > maxResponse {
		return "", &transportError{kind: ErrUnknown, reason: ReasonHTTPStatus, status: resp.StatusCode,
			msg: fmt.Sprintf("HTTP %d response larger than %d bytes", resp.StatusCode, maxResponse)}
	}
	reply, err := checkResponse(req.URL.Host, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	if err == nil && create {
		d, ok, rerr := reportedIdleTimeout(reply)
		if rerr != nil {
			// hvro's restart hold counts on the idle timeout it asked for:
			// a host that says something else, unreadably, is not trusted.
			return "", &transportError{kind: ErrPermanent, reason: ReasonShellIdleTimeout, status: resp.StatusCode,
				msg: fmt.Sprintf("%s reported a shell idle timeout hvro cannot read: %v", req.URL.Host, rerr)}
		}
		t.mu.Lock()
		t.granted, t.grantedOK = d, ok
		t.mu.Unlock()
	}
	return reply, err
}

// withIdleTimeout adds <rsp:IdleTimeOut> with d to a Create request's
// rsp:Shell body, as its first child: its place in the schema's sequence
// (MS-WSMV 2.2.4.37), before InputStreams, which is where masterzen's body
// starts. Every other request, and the rest of the Create, is sent as
// masterzen built it. create says the request was a Create.
func withIdleTimeout(msg string, d time.Duration) (out string, create bool, err error) {
	dec := xml.NewDecoder(strings.NewReader(msg))
	var path []xml.Name
	var action strings.Builder
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", false, fmt.Errorf("request is not XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name)
			if len(path) != 3 || path[1] != (xml.Name{Space: nsSOAP, Local: "Body"}) || t.Name != (xml.Name{Space: nsShell, Local: "Shell"}) {
				continue
			}
			if strings.TrimSpace(action.String()) != actionCreate {
				return msg, false, nil
			}
			// The element takes the prefix of the rsp:Shell tag it goes in.
			tag := msg[start:dec.InputOffset()]
			prefix := ""
			if name, _, _ := strings.Cut(strings.TrimPrefix(tag, "<"), " "); strings.Contains(name, ":") {
				prefix, _, _ = strings.Cut(name, ":")
				prefix += ":"
			}
			at := int(dec.InputOffset())
			el := "<" + prefix + "IdleTimeOut>" + wsDuration(d) + "</" + prefix + "IdleTimeOut>"
			return msg[:at] + el + msg[at:], true, nil
		case xml.EndElement:
			path = path[:len(path)-1]
		case xml.CharData:
			if len(path) == 3 && path[1] == (xml.Name{Space: nsSOAP, Local: "Header"}) && path[2] == (xml.Name{Space: nsAddressing, Local: "Action"}) {
				action.Write(t)
			}
		}
	}
	if strings.TrimSpace(action.String()) == actionCreate {
		return "", true, errors.New("a Create request without an rsp:Shell body")
	}
	return msg, false, nil
}

// Namespaces and the action withIdleTimeout looks for.
const (
	nsSOAP       = "http://www.w3.org/2003/05/soap-envelope"
	nsAddressing = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsShell      = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	actionCreate = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
)

// xsDuration is the form Windows reports durations in (PT7200.000S,
// P0DT0H0M0S).
var xsDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?$`)

// reportedIdleTimeout reads rsp:Shell/rsp:IdleTimeOut from a Create's
// answer; ok is false when the host did not report one, err says that it
// reported one that is not an xs:duration hvro can read. A value too large
// for a Duration is the largest Duration (longer than anything asked).
func reportedIdleTimeout(reply string) (d time.Duration, ok bool, err error) {
	// Local names, as parseFault: they are unambiguous in a CreateResponse.
	var env struct {
		Body struct {
			Shell struct {
				IdleTimeOut *string `xml:"IdleTimeOut"`
			} `xml:"Shell"`
		} `xml:"Body"`
	}
	if xml.Unmarshal([]byte(reply), &env) != nil || env.Body.Shell.IdleTimeOut == nil {
		return 0, false, nil
	}
	v := strings.TrimSpace(*env.Body.Shell.IdleTimeOut)
	m := xsDuration.FindStringSubmatch(v)
	if m == nil || m[0] == "P" || m[0] == "PT" {
		return 0, true, fmt.Errorf("%q is not an xs:duration", excerpt([]byte(v), nil))
	}
	var total float64
	for i, unit := range []float64{86400, 3600, 60, 1} {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, true, fmt.Errorf("%q is not an xs:duration", excerpt([]byte(v), nil))
		}
		total += n * unit
	}
	if total >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64), true, nil
	}
	return time.Duration(total * float64(time.Second)).Round(time.Millisecond), true, nil
}

// checkResponse turns a WS-Man HTTP response into its body or an error.
// hostPort is the endpoint's host:port, for messages. A 401 and an answer
// that is not WS-Management at all (an HTML page, another API) are
// permanent with their own reasons: retrying cannot help, and the admin
// needs to know which of the two to fix. Gateway errors stay transient.
func checkResponse(hostPort string, status int, contentType string, body []byte) (string, error) {
	if status == http.StatusUnauthorized {
		msg := "HTTP 401: the WinRM credentials were refused by " + hostPort +
			" (check winrm.username and the password, and that the auth method is enabled on the host: winrm get winrm/config/service/auth; Basic also needs a local account, and AllowUnencrypted over http)"
		if len(bytes.TrimSpace(body)) > 0 && !strings.Contains(strings.ToLower(contentType), "application/soap+xml") {
			// WinRM's own 401 has no body: this may be another service.
			msg += fmt.Sprintf("; the answer carried a %q body, which a WinRM service does not send: check also the URL/port", contentType)
		}
		return "", &transportError{kind: ErrPermanent, reason: ReasonAuthRefused, status: status, msg: msg}
	}
	gateway := status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
	if looksHTML(contentType, body) && !gateway {
		return "", &transportError{kind: ErrPermanent, reason: ReasonNotWinRM, status: status,
			msg: fmt.Sprintf("%s answered with an HTML page, not WS-Management: check the URL/port (HTTP %d)", hostPort, status)}
	}
	soapBody := strings.Contains(strings.ToLower(contentType), "application/soap+xml")
	if soapBody {
		if err := checkReplyShape(body); err != nil {
			err.status = status
			return "", err
		}
		if f, ok := parseFault(body); ok {
			return "", f.err(status)
		}
	}
	switch {
	case status == http.StatusOK && soapBody:
		return string(body), nil
	case gateway:
		return "", &transportError{kind: ErrTransient, reason: ReasonHTTPStatus, status: status,
			msg: fmt.Sprintf("HTTP %d without a WS-Management fault", status)}
	case !soapBody && (len(bytes.TrimSpace(body)) > 0 || status == http.StatusOK):
		return "", &transportError{kind: ErrPermanent, reason: ReasonNotWinRM, status: status,
			msg: fmt.Sprintf("%s answered HTTP %d with %q, not WS-Management: check the URL/port", hostPort, status, contentType)}
	case status >= 500:
		return "", &transportError{kind: ErrTransient, reason: ReasonHTTPStatus, status: status,
			msg: fmt.Sprintf("HTTP %d without a WS-Management fault", status)}
	default:
		return "", &transportError{kind: ErrPermanent, reason: ReasonHTTPStatus, status: status,
			msg: fmt.Sprintf("HTTP %d from the WinRM endpoint (check the URL: the path is /wsman)", status)}
	}
}

// looksHTML reports whether a response is a web page: by its content type,
// or by how its body starts (some servers label pages as anything).
func looksHTML(contentType string, body []byte) bool {
	ct := strings.ToLower(contentType)
	if strings.HasPrefix(ct, "text/html") || strings.HasPrefix(ct, "application/xhtml+xml") {
		return true
	}
	head := bytes.TrimLeft(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), " \t\r\n")
	head = head[:min(len(head), 14)]
	return bytes.HasPrefix(bytes.ToLower(head), []byte("<!doctype html")) || bytes.HasPrefix(bytes.ToLower(head), []byte("<html"))
}

// checkReplyShape refuses a SOAP reply that is too big, nests too deep,
// has too many elements or carries a DTD, with one streaming pass that
// keeps nothing (see the limits above). A reply over the limits is
// permanent: no WinRM service sends one, so something else answers (or
// attacks) on that port, and asking again will not change it.
func checkReplyShape(body []byte) *transportError {
	if len(body) > maxReplyBytes {
		return &transportError{kind: ErrPermanent, reason: ReasonMalformedReply,
			msg: fmt.Sprintf("WinRM reply of %d bytes refused: larger than %d bytes (twice the MaxEnvelopeSize %d the request asked for)", len(body), maxReplyBytes, envelopeSize)}
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	depth, elements := 0, 0
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &transportError{kind: ErrUnknown, reason: ReasonMalformedReply,
				msg: "WinRM reply is not well-formed XML", err: err}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			elements++
			if depth > maxReplyDepth {
				return &transportError{kind: ErrPermanent, reason: ReasonMalformedReply,
					msg: fmt.Sprintf("WinRM reply refused: elements nest deeper than %d levels", maxReplyDepth)}
			}
			if elements > maxReplyElements {
				return &transportError{kind: ErrPermanent, reason: ReasonMalformedReply,
					msg: fmt.Sprintf("WinRM reply refused: more than %d elements", maxReplyElements)}
			}
		case xml.EndElement:
			depth--
		case xml.Directive:
			if bytes.HasPrefix(bytes.TrimSpace(t), []byte("DOCTYPE")) {
				return &transportError{kind: ErrPermanent, reason: ReasonMalformedReply,
					msg: "WinRM reply refused: it has a DTD (<!DOCTYPE>), which WS-Management never sends"}
			}
		}
	}
}

// transportError is a failed WS-Man exchange. Its text is what masterzen
// inspects: only the TimedOut fault contains "OperationTimeout", which
// makes masterzen's Receive loop poll again.
type transportError struct {
	kind   error
	reason string
	status int
	msg    string
	fault  *wsmanFault
	err    error
}

func (e *transportError) Error() string {
	s := e.msg
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	if e.fault != nil && e.fault.timedOut() {
		return s
	}
	return strings.ReplaceAll(s, "OperationTimeout", "operation timeout")
}

func (e *transportError) Unwrap() error { return e.err }

// netError classifies a failed HTTP round trip.
func netError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return &transportError{kind: ErrTransient, reason: ReasonCanceled, msg: "request aborted", err: context.Cause(ctx)}
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalid):
		return &transportError{kind: ErrPermanent, reason: ReasonTLS, msg: "TLS certificate of the WinRM host not trusted (set ca_file, or check the host name in the URL)", err: err}
	case errors.As(err, &recordErr):
		return &transportError{kind: ErrPermanent, reason: ReasonTLS, msg: "TLS handshake failed (is the endpoint https on an http port?)", err: err}
	}
	var ne net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return &transportError{kind: ErrTransient, reason: ReasonConnection, msg: "host name lookup failed", err: err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &transportError{kind: ErrTransient, reason: ReasonConnection, msg: "connection refused (WinRM service or host down)", err: err}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return &transportError{kind: ErrTransient, reason: ReasonConnection, msg: "connection cut", err: err}
	case errors.As(err, &ne) && ne.Timeout():
		return &transportError{kind: ErrTransient, reason: ReasonTimeout, msg: "network timeout", err: err}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return &transportError{kind: ErrTransient, reason: ReasonConnection, msg: "network error", err: err}
	}
	return &transportError{kind: ErrUnknown, reason: ReasonConnection, msg: "HTTP request failed", err: err}
}

// WS-Management fault codes (WSManFault/@Code) the driver reacts to.
const (
	faultTimedOut      = "2150858793"
	faultShellNotFound = "2150858843"
	faultQuota         = "2150859173"
)

// wsmanFault is the part of a SOAP 1.2 fault that matters.
type wsmanFault struct {
	Code    string // s:Sender or s:Receiver, local part
	Subcode string // w:TimedOut, ... local part
	Reason  string
	WSCode  string // WSManFault/@Code
	Message string // WSManFault/Message, flattened
}

func (f *wsmanFault) timedOut() bool {
	return f.Subcode == "TimedOut" || f.WSCode == faultTimedOut
}

// err is the error for the fault: TimedOut keeps masterzen polling, the
// shell quota and busy receivers are transient, a vanished shell too (the
// next attempt makes a new one), the rest is permanent (the request was
// wrong and will be wrong again).
func (f *wsmanFault) err(status int) *transportError {
	text := f.Message
	if text == "" {
		text = f.Reason
	}
	desc := fmt.Sprintf("WS-Management fault %s", f.Subcode)
	if f.WSCode != "" {
		desc += " (" + f.WSCode + ")"
	}
	e := &transportError{status: status, fault: f, msg: desc + ": " + text}
	low := strings.ToLower(text)
	switch {
	case f.timedOut():
		e.kind, e.reason = ErrTransient, ReasonTimeout
		e.msg = "WS-Management OperationTimeout expired without output"
	case f.WSCode == faultQuota || f.Subcode == "QuotaLimit":
		e.kind, e.reason = ErrTransient, ReasonShellQuota
	case f.WSCode == faultShellNotFound || f.Subcode == "InvalidSelectors":
		e.kind, e.reason = ErrTransient, ReasonWSManFault
	case strings.Contains(low, "busy") || strings.Contains(low, "try again"):
		e.kind, e.reason = ErrTransient, ReasonBusy
	case f.Code == "Receiver" && f.Subcode != "InternalError":
		e.kind, e.reason = ErrTransient, ReasonWSManFault
	case f.Subcode == "AccessDenied":
		e.kind, e.reason = ErrPermanent, ReasonAuth
	case f.Code == "Sender":
		e.kind, e.reason = ErrPermanent, ReasonWSManFault
	default:
		e.kind, e.reason = ErrUnknown, ReasonWSManFault
	}
	return e
}

// parseFault finds a SOAP fault in a response body. Namespaces are not
// checked: the element names are unambiguous in a WS-Man response.
func parseFault(body []byte) (*wsmanFault, bool) {
	var env struct {
		Body struct {
			Fault *struct {
				Code struct {
					Value   string `xml:"Value"`
					Subcode struct {
						Value string `xml:"Value"`
					} `xml:"Subcode"`
				} `xml:"Code"`
				Reason struct {
					Text []string `xml:"Text"`
				} `xml:"Reason"`
				Detail struct {
					WSManFault struct {
						Code    string   `xml:"Code,attr"`
						Message flatText `xml:"Message"`
					} `xml:"WSManFault"`
				} `xml:"Detail"`
			} `xml:"Fault"`
		} `xml:"Body"`
	}
	if xml.Unmarshal(body, &env) != nil || env.Body.Fault == nil {
		return nil, false
	}
	ft := env.Body.Fault
	f := &wsmanFault{
		Code:    localName(ft.Code.Value),
		Subcode: localName(ft.Code.Subcode.Value),
		Reason:  strings.TrimSpace(strings.Join(ft.Reason.Text, " ")),
		WSCode:  strings.TrimSpace(ft.Detail.WSManFault.Code),
		Message: strings.TrimSpace(string(ft.Detail.WSManFault.Message)),
	}
	return f, true
}

func localName(qname string) string {
	qname = strings.TrimSpace(qname)
	if i := strings.LastIndexByte(qname, ':'); i >= 0 {
		return qname[i+1:]
	}
	return qname
}

// flatText collects all character data inside an element (WSManFault
// messages nest a ProviderFault element around the text).
type flatText string

func (t *flatText) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	var b strings.Builder
	depth := 1
	for depth > 0 {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if b.Len() < 4096 {
				b.Write(v)
			}
		}
	}
	*t = flatText(strings.Join(strings.Fields(b.String()), " "))
	return nil
}

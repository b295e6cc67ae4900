package wsman_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv/wsman"
	"github.com/hvro/hvro/test/within"
)

const (
	actCreate  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
	actDelete  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
	actCommand = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
	actReceive = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
	actSend    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
	actSignal  = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
	resCmd     = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
	sigPrefix  = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/"
)

// msg renders a request envelope shaped like pywinrm's. Empty fields get
// defaults; "-" leaves the header out.
type msg struct {
	action, resource, shellID, timeout, maxEnv, messageID string
	options, extraHeader, body                            string
}

func (m msg) String() string {
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	var b strings.Builder
	b.WriteString(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" ` +
		`xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd" ` +
		`xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header>` +
		`<a:To>http://windows-host:5985/wsman</a:To><a:ReplyTo><a:Address mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>`)
	header := func(v, tmpl string) {
		if v != "-" {
			fmt.Fprintf(&b, tmpl, v)
		}
	}
	header(def(m.maxEnv, "153600"), `<w:MaxEnvelopeSize mustUnderstand="true">%s</w:MaxEnvelopeSize>`)
	header(def(m.messageID, "uuid:0d0e2a5c-6f7f-4b8a-9d3e-2a1b0c9d8e7f"), `<a:MessageID>%s</a:MessageID>`)
	header(def(m.timeout, "PT5S"), `<w:OperationTimeout>%s</w:OperationTimeout>`)
	header(def(m.resource, resCmd), `<w:ResourceURI mustUnderstand="true">%s</w:ResourceURI>`)
	header(m.action, `<a:Action mustUnderstand="true">%s</a:Action>`)
	if m.shellID != "" {
		fmt.Fprintf(&b, `<w:SelectorSet><w:Selector Name="ShellId">%s</w:Selector></w:SelectorSet>`, m.shellID)
	}
	if m.options != "" {
		b.WriteString(`<w:OptionSet>` + m.options + `</w:OptionSet>`)
	}
	b.WriteString(m.extraHeader + `</s:Header><s:Body>` + m.body + `</s:Body></s:Envelope>`)
	return b.String()
}

const createBody = `<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>`

func commandBody(command string, args ...string) string {
	s := `<rsp:CommandLine><rsp:Command><![CDATA[` + command + `]]></rsp:Command>`
	for _, a := range args {
		s += `<rsp:Arguments><![CDATA[` + a + `]]></rsp:Arguments>`
	}
	return s + `</rsp:CommandLine>`
}

func receiveBody(commandID string) string {
	return `<rsp:Receive><rsp:DesiredStream CommandId="` + commandID + `">stdout stderr</rsp:DesiredStream></rsp:Receive>`
}

func signalBody(commandID, code string) string {
	return `<rsp:Signal CommandId="` + commandID + `"><rsp:Code>` + sigPrefix + code + `</rsp:Code></rsp:Signal>`
}

// reply is a parsed response.
type reply struct {
	status    int
	header    http.Header
	raw       string
	action    string
	relatesTo string
	// fault fields
	code, subcode, reason, wsmanCode, message string
	// shell results
	shellID, commandID, state, exitCode string
	idleTimeOut                         string // rsp:Shell/rsp:IdleTimeOut of a CreateResponse
	stdout, stderr                      []byte
	endStreams                          int
}

func parseReply(status int, h http.Header, body []byte) (reply, error) {
	r := reply{status: status, header: h, raw: string(body)}
	if !strings.HasPrefix(h.Get("Content-Type"), "application/soap+xml") {
		return r, nil
	}
	var env struct {
		Header struct {
			Action    string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing Action"`
			RelatesTo string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing RelatesTo"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
		Body struct {
			Fault struct {
				Code    string `xml:"http://www.w3.org/2003/05/soap-envelope Code>Value"`
				Subcode string `xml:"http://www.w3.org/2003/05/soap-envelope Code>Subcode>Value"`
				Reason  string `xml:"http://www.w3.org/2003/05/soap-envelope Reason>Text"`
				Detail  struct {
					WSMan struct {
						Code    string `xml:"Code,attr"`
						Message string `xml:",innerxml"`
					} `xml:"http://schemas.microsoft.com/wbem/wsman/1/wsmanfault WSManFault"`
				} `xml:"http://www.w3.org/2003/05/soap-envelope Detail"`
			} `xml:"http://www.w3.org/2003/05/soap-envelope Fault"`
			Created struct {
				Ref struct {
					Set struct {
						Selector string `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd Selector"`
					} `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd SelectorSet"`
				} `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing ReferenceParameters"`
			} `xml:"http://schemas.xmlsoap.org/ws/2004/09/transfer ResourceCreated"`
			Shell struct {
				IdleTimeOut string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell IdleTimeOut"`
			} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Shell"`
			CommandID string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell CommandResponse>CommandId"`
			Receive   struct {
				Streams []struct {
					Name string `xml:"Name,attr"`
					End  string `xml:"End,attr"`
					Data string `xml:",chardata"`
				} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Stream"`
				State struct {
					State    string `xml:"State,attr"`
					ExitCode string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell ExitCode"`
				} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell CommandState"`
			} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell ReceiveResponse"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
	}
	if err := xml.Unmarshal(body, &env); err != nil {
		return r, fmt.Errorf("response is not XML: %v\n%s", err, body)
	}
	r.action, r.relatesTo = env.Header.Action, env.Header.RelatesTo
	f := env.Body.Fault
	r.code, r.subcode, r.reason = f.Code, f.Subcode, f.Reason
	r.wsmanCode, r.message = f.Detail.WSMan.Code, f.Detail.WSMan.Message
	r.shellID, r.commandID = env.Body.Created.Ref.Set.Selector, env.Body.CommandID
	r.idleTimeOut = env.Body.Shell.IdleTimeOut
	rr := env.Body.Receive
	r.state = strings.TrimPrefix(rr.State.State, "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/")
	r.exitCode = rr.State.ExitCode
	for _, s := range rr.Streams {
		data, err := base64.StdEncoding.DecodeString(s.Data)
		if err != nil {
			return r, fmt.Errorf("stream not base64: %v", err)
		}
		if s.End == "true" {
			r.endStreams++
		}
		if s.Name == "stdout" {
			r.stdout = append(r.stdout, data...)
		} else {
			r.stderr = append(r.stderr, data...)
		}
	}
	return r, nil
}

// raw is a bare HTTP client speaking to a host.
type raw struct {
	t          *testing.T
	url        string
	user, pass string
}

func newRaw(t *testing.T, h *wsman.Host) *raw {
	return &raw{t: t, url: h.HTTPURL(), user: testUser, pass: testPassword}
}

func (c *raw) do(method, url, contentType, body string, mod func(*http.Request)) reply {
	c.t.Helper()
	r, err := c.exchange(method, url, contentType, body, mod)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// exchange is do for goroutines other than the test's, which must not
// call t.Fatal.
func (c *raw) exchange(method, url, contentType, body string, mod func(*http.Request)) (reply, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	if mod != nil {
		mod(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return parseReply(resp.StatusCode, resp.Header, data)
}

func (c *raw) post(m msg) reply {
	c.t.Helper()
	return c.do(http.MethodPost, c.url, "application/soap+xml;charset=UTF-8", m.String(), nil)
}

// tryPost is post for other goroutines: it returns the error.
func (c *raw) tryPost(m msg) (reply, error) {
	return c.exchange(http.MethodPost, c.url, "application/soap+xml;charset=UTF-8", m.String(), nil)
}

// ok posts and fails the test unless the answer is 200.
func (c *raw) ok(m msg) reply {
	c.t.Helper()
	r := c.post(m)
	if r.status != http.StatusOK {
		c.t.Fatalf("%s: status %d\n%s", m.action, r.status, r.raw)
	}
	return r
}

func (c *raw) createShell() string {
	c.t.Helper()
	r := c.ok(msg{action: actCreate, body: createBody})
	if r.shellID == "" {
		c.t.Fatalf("no ShellId in %s", r.raw)
	}
	return r.shellID
}

func (c *raw) command(shellID, command string, args ...string) string {
	c.t.Helper()
	r := c.ok(msg{action: actCommand, shellID: shellID, body: commandBody(command, args...)})
	if r.commandID == "" {
		c.t.Fatalf("no CommandId in %s", r.raw)
	}
	return r.commandID
}

// receiveAll polls until Done and returns the collected output and the last
// reply.
func (c *raw) receiveAll(shellID, commandID, timeout string) (stdout, stderr []byte, last reply, polls int) {
	c.t.Helper()
	for i := 0; i < 1000; i++ {
		r := c.post(msg{action: actReceive, shellID: shellID, timeout: timeout, body: receiveBody(commandID)})
		polls++
		if r.wsmanCode == "2150858793" {
			continue
		}
		if r.status != http.StatusOK {
			c.t.Fatalf("receive: %d %s", r.status, r.raw)
		}
		stdout, stderr = append(stdout, r.stdout...), append(stderr, r.stderr...)
		if r.state == "Done" {
			return stdout, stderr, r, polls
		}
	}
	c.t.Fatal("command never finished")
	return nil, nil, reply{}, polls
}

type faultWant struct {
	code, subcode, wsmanCode, messageHas string
}

func checkFault(t *testing.T, r reply, w faultWant) {
	t.Helper()
	if r.status != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500\n%s", r.status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/soap+xml;charset=UTF-8" {
		t.Errorf("content type %q", ct)
	}
	if r.code != w.code || r.subcode != w.subcode || r.wsmanCode != w.wsmanCode {
		t.Errorf("fault %s/%s/%s, want %s/%s/%s", r.code, r.subcode, r.wsmanCode, w.code, w.subcode, w.wsmanCode)
	}
	if !strings.Contains(r.message, w.messageHas) {
		t.Errorf("fault message %q lacks %q", r.message, w.messageHas)
	}
	wantAction := "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
	if strings.HasPrefix(w.subcode, "a:") {
		wantAction = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
	}
	if r.action != wantAction {
		t.Errorf("fault action %q, want %q", r.action, wantAction)
	}
}

func TestHTTPLevelRefusals(t *testing.T) {
	cfg := baseConfig(nil)
	cfg.MaxEnvelopeSize = 16384
	h := startHost(t, wsman.HostConfig{Server: cfg})
	c := newRaw(t, h)
	good := msg{action: actCreate, body: createBody}.String()
	base := strings.TrimSuffix(h.HTTPURL(), "/wsman")
	tests := []struct {
		name        string
		method, url string
		ctype, body string
		mod         func(*http.Request)
		user        string
		wantStatus  int
		wantBody    string
	}{
		{name: "other path", method: "POST", url: base + "/wsman-anon/identify", ctype: "application/soap+xml", body: good, wantStatus: 404, wantBody: "HTTP Error 404. The requested resource is not found."},
		{name: "root path", method: "GET", url: base + "/", wantStatus: 404, wantBody: "HTTP Error 404."},
		{name: "no credentials", method: "POST", url: h.HTTPURL(), ctype: "application/soap+xml", body: good, user: "-", wantStatus: 401},
		{name: "negotiate", method: "POST", url: h.HTTPURL(), ctype: "application/soap+xml", body: good, user: "-",
			mod: func(r *http.Request) {
				r.Header.Set("Authorization", "Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==")
			}, wantStatus: 401},
		{name: "GET", method: "GET", url: h.HTTPURL(), wantStatus: 405},
		{name: "text/xml", method: "POST", url: h.HTTPURL(), ctype: "text/xml", body: good, wantStatus: 415},
		{name: "UTF-16 charset", method: "POST", url: h.HTTPURL(), ctype: "application/soap+xml;charset=UTF-16", body: good, wantStatus: 415},
		{name: "larger than MaxEnvelopeSizekb", method: "POST", url: h.HTTPURL(), ctype: "application/soap+xml;charset=UTF-8",
			body: strings.Replace(good, "<s:Body>", "<s:Body><!--"+strings.Repeat("x", 17000)+"-->", 1), wantStatus: 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc := *c
			cc.t = t
			if tc.user == "-" {
				cc.user = ""
			}
			r := cc.do(tc.method, tc.url, tc.ctype, tc.body, tc.mod)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d\n%s", r.status, tc.wantStatus, r.raw)
			}
			if !strings.Contains(r.raw, tc.wantBody) {
				t.Errorf("body %q lacks %q", r.raw, tc.wantBody)
			}
			if tc.wantStatus == 401 {
				if got := r.header.Values("WWW-Authenticate"); len(got) != 2 || got[0] != "Negotiate" || got[1] != `Basic realm="WSMAN"` || r.raw != "" {
					t.Errorf("401 with %q and body %q", got, r.raw)
				}
			}
			if r.header.Get("Server") != "Microsoft-HTTPAPI/2.0" {
				t.Errorf("Server header %q", r.header.Get("Server"))
			}
		})
	}
}

func TestSOAPFaults(t *testing.T) {
	h := startHost(t, wsman.HostConfig{Server: baseConfig(nil)})
	c := newRaw(t, h)
	shell := c.createShell()
	cmdID := c.command(shell, "hostname")
	const unknownID = "11111111-2222-3333-4444-555555555555"
	invalidSel := faultWant{"s:Sender", "w:InvalidSelectors", "2150858843", ""}
	with := func(w faultWant, has string) faultWant { w.messageHas = has; return w }
	tests := []struct {
		name string
		body string // raw body; empty means m.String()
		m    msg
		want faultWant
	}{
		{name: "not XML", body: "<s:Envelope", want: faultWant{"s:Sender", "w:SchemaValidationError", "2150858819", "XML is invalid"}},
		{name: "DTD", body: `<!DOCTYPE s [<!ENTITY x "y">]>` + msg{action: actCreate, body: createBody}.String(), want: faultWant{"s:Sender", "w:SchemaValidationError", "2150858819", ""}},
		{name: "not an envelope", body: `<foo/>`, want: faultWant{"s:Sender", "w:SchemaValidationError", "2150858791", "valid SOAP body"}},
		{name: "SOAP 1.1", body: `<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>`, want: faultWant{"s:Sender", "w:SchemaValidationError", "2150858791", ""}},
		{name: "no body", body: `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/></s:Envelope>`, want: faultWant{"s:Sender", "w:SchemaValidationError", "2150858791", ""}},
		{name: "no Action", m: msg{body: createBody}, want: faultWant{"s:Sender", "a:MessageInformationHeaderRequired", "2150858769", "Action"}},
		{name: "no MessageID", m: msg{action: actCreate, messageID: "-", body: createBody}, want: faultWant{"s:Sender", "a:InvalidMessageInformationHeader", "2150858767", "MessageID"}},
		{name: "no ResourceURI", m: msg{action: actCreate, resource: "-", body: createBody}, want: faultWant{"s:Sender", "a:MessageInformationHeaderRequired", "2150858769", "ResourceURI"}},
		{name: "unknown ResourceURI", m: msg{action: actCreate, resource: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/custom", body: createBody},
			want: faultWant{"s:Sender", "a:DestinationUnreachable", "2150858752", "cannot find the resource"}},
		{name: "unknown Action", m: msg{action: "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", shellID: shell},
			want: faultWant{"s:Sender", "a:ActionNotSupported", "2150858771", "does not support the action"}},
		{name: "negative OperationTimeout", m: msg{action: actCreate, timeout: "PT-1S", body: createBody},
			want: faultWant{"s:Sender", "a:InvalidMessageInformationHeader", "2150858767", "invalid timeout field in the SOAP header: PT-1S."}},
		{name: "small MaxEnvelopeSize", m: msg{action: actCreate, maxEnv: "4096", body: createBody}, want: faultWant{"s:Sender", "w:EncodingLimit", "2150858878", "too small"}},
		{name: "unknown mustUnderstand header", m: msg{action: actCreate, body: createBody, extraHeader: `<x:Frob xmlns:x="urn:x" xmlns:s="http://www.w3.org/2003/05/soap-envelope" s:mustUnderstand="true"/>`},
			want: faultWant{"s:MustUnderstand", "", "2150858768", "Frob"}},
		{name: "Create without rsp:Shell", m: msg{action: actCreate, body: `<rsp:Frob/>`}, want: faultWant{"s:Sender", "x:InvalidRepresentation", "2150858773", ""}},
		{name: "no ShellId selector", m: msg{action: actCommand, body: commandBody("hostname")}, want: with(invalidSel, "requires the following selector: ShellId")},
		{name: "unknown ShellId", m: msg{action: actCommand, shellID: unknownID, body: commandBody("hostname")},
			want: with(invalidSel, "The request for the Windows Remote Shell with ShellId "+unknownID+" failed because the shell was not found on the server.")},
		{name: "extra selector", m: msg{action: actCommand, shellID: shell + `</w:Selector><w:Selector Name="Frob">1`, body: commandBody("hostname")}, want: with(invalidSel, "invalid selectors")},
		{name: "empty command", m: msg{action: actCommand, shellID: shell, body: commandBody("  ")}, want: faultWant{"s:Sender", "w:InvalidParameter", "87", "The parameter is incorrect."}},
		{name: "Receive without CommandId", m: msg{action: actReceive, shellID: shell, body: `<rsp:Receive><rsp:DesiredStream>stdout stderr</rsp:DesiredStream></rsp:Receive>`},
			want: faultWant{"s:Sender", "w:InvalidParameter", "87", `provider="Shell cmd plugin"`}},
		{name: "Receive unknown CommandId", m: msg{action: actReceive, shellID: shell, body: receiveBody(unknownID)},
			want: with(invalidSel, "operation on a command identifier that does not exist")},
		{name: "Signal unknown code", m: msg{action: actSignal, shellID: shell, body: signalBody(cmdID, "frob")}, want: faultWant{"s:Sender", "w:InvalidParameter", "87", ""}},
		{name: "Send bad base64", m: msg{action: actSend, shellID: shell, body: `<rsp:Send><rsp:Stream Name="stdin" CommandId="` + cmdID + `">%%%</rsp:Stream></rsp:Send>`},
			want: faultWant{"s:Sender", "w:InvalidParameter", "87", ""}},
		{name: "skip cmd shell needs a full path", m: msg{action: actCommand, shellID: shell, options: `<w:Option Name="WINRS_SKIP_CMD_SHELL">TRUE</w:Option>`, body: commandBody("powershell.exe", "Write-Host", "hi")},
			want: faultWant{"s:Receiver", "w:InternalError", "2147942402", "The system cannot find the file specified."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == "" {
				body = tc.m.String()
			}
			cc := *c
			cc.t = t
			r := cc.do(http.MethodPost, h.HTTPURL(), "application/soap+xml;charset=UTF-8", body, nil)
			checkFault(t, r, tc.want)
			if tc.body == "" && tc.m.messageID != "-" && r.relatesTo != "uuid:0d0e2a5c-6f7f-4b8a-9d3e-2a1b0c9d8e7f" {
				t.Errorf("RelatesTo %q does not echo the MessageID", r.relatesTo)
			}
		})
	}
}

func TestChunkedRequestRefused(t *testing.T) {
	h := startHost(t, wsman.HostConfig{Server: baseConfig(nil)})
	c := newRaw(t, h)
	r := c.do(http.MethodPost, h.HTTPURL(), "application/soap+xml;charset=UTF-8", "", func(req *http.Request) {
		req.Body = io.NopCloser(strings.NewReader(msg{action: actCreate, body: createBody}.String()))
		req.ContentLength = -1 // sent chunked
	})
	checkFault(t, r, faultWant{"s:Receiver", "w:InternalError", "50", "The request is not supported."})
}

func TestShellLifecycle(t *testing.T) {
	rec := newRecorder()
	h := startHost(t, wsman.HostConfig{Server: baseConfig(rec)})
	c := newRaw(t, h)
	shell := c.createShell()
	if n := h.Server().Shells(); n != 1 {
		t.Fatalf("%d shells", n)
	}

	id := c.command(shell, "powershell.exe", "-EncodedCommand", wsman.EncodeCommand("out a; err b; exit 3"))
	out, errOut, last, _ := c.receiveAll(shell, id, "PT5S")
	if string(out) != "a\r\n" || string(errOut) != "b\r\n" || last.exitCode != "3" || last.endStreams != 2 {
		t.Fatalf("got %q %q exit %s ends %d", out, errOut, last.exitCode, last.endStreams)
	}
	// Receiving again after Done repeats the final state (no output).
	again := c.ok(msg{action: actReceive, shellID: shell, body: receiveBody(id)})
	if again.state != "Done" || again.exitCode != "3" || len(again.stdout) != 0 {
		t.Errorf("second Receive: %s exit %s out %q", again.state, again.exitCode, again.stdout)
	}
	// ctrl_c after completion is accepted (pypsrp sends it), terminate
	// discards the command.
	c.ok(msg{action: actSignal, shellID: shell, body: signalBody(id, "ctrl_c")})
	c.ok(msg{action: actSignal, shellID: shell, body: signalBody(id, "terminate")})
	checkFault(t, c.post(msg{action: actReceive, shellID: shell, body: receiveBody(id)}),
		faultWant{"s:Sender", "w:InvalidSelectors", "2150858843", "command identifier that does not exist"})

	// The ShellId selector is case-insensitive (MS-WSMV 3.1.4.1.2).
	id = c.command(strings.ToLower(shell), "hostname")
	out, _, _, _ = c.receiveAll(shell, strings.ToLower(id), "PT5S")
	if string(out) != "NODE1\r\n" {
		t.Errorf("hostname: %q", out)
	}

	// Another user cannot see the shell.
	other := *c
	other.user, other.pass = domainUser, domainPass
	checkFault(t, other.post(msg{action: actCommand, shellID: shell, body: commandBody("hostname")}),
		faultWant{"s:Sender", "w:InvalidSelectors", "2150858843", "shell was not found"})

	c.ok(msg{action: actDelete, shellID: shell})
	checkFault(t, c.post(msg{action: actReceive, shellID: shell, body: receiveBody(id)}),
		faultWant{"s:Sender", "w:InvalidSelectors", "2150858843", "shell was not found"})
	if n := h.Server().Shells(); n != 0 {
		t.Errorf("%d shells after Delete", n)
	}
	if recs := rec.wait(t, 2); recs[0].ExitCode != 3 || recs[0].Script != "out a; err b; exit 3" || recs[0].Canceled {
		t.Errorf("record %+v", recs[0])
	}
}

func TestReceiveTimesOutThenCompletes(t *testing.T) {
	h := startHost(t, wsman.HostConfig{Server: baseConfig(nil)})
	c := newRaw(t, h)
	shell := c.createShell()
	id := c.command(shell, "powershell", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand", wsman.EncodeCommand("sleep 1500; out finally"))
	start := time.Now()
	r := c.post(msg{action: actReceive, shellID: shell, timeout: "PT0.5S", body: receiveBody(id)})
	if el := time.Since(start); el < 450*time.Millisecond || el > 5*time.Second {
		t.Errorf("TimedOut after %s, want about 0.5s", el)
	}
	checkFault(t, r, faultWant{"s:Receiver", "w:TimedOut", "2150858793", "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "})
	if r.reason != "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  " {
		t.Errorf("reason %q", r.reason)
	}
	out, _, last, polls := c.receiveAll(shell, id, "PT0.5S")
	if string(out) != "finally\r\n" || last.exitCode != "0" || polls < 2 {
		t.Errorf("out %q exit %s after %d polls", out, last.exitCode, polls)
	}
}

func TestOperationTimeoutIsCapped(t *testing.T) {
	cfg := baseConfig(nil)
	cfg.MaxTimeout = 300 * time.Millisecond
	h := startHost(t, wsman.HostConfig{Server: cfg})
	c := newRaw(t, h)
	shell := c.createShell()
	id := c.command(shell, "powershell", "-Command", "sleep", "5000")
	start := time.Now()
	// P1D is far beyond MaxTimeoutms: the server answers at its cap.
	r := c.post(msg{action: actReceive, shellID: shell, timeout: "P1DT0H0M0S", body: receiveBody(id)})
	if r.wsmanCode != "2150858793" || time.Since(start) > 3*time.Second {
		t.Fatalf("fault %s after %s", r.wsmanCode, time.Since(start))
	}
}

func TestSignalsCancelRunningCommands(t *testing.T) {
	rec := newRecorder()
	h := startHost(t, wsman.HostConfig{Server: baseConfig(rec)})
	c := newRaw(t, h)
	shell := c.createShell()

	// ctrl_c interrupts; the command ends with STATUS_CONTROL_C_EXIT.
	id := c.command(shell, "powershell", "-Command", "sleep 60000")
	c.ok(msg{action: actSignal, shellID: shell, body: signalBody(id, "ctrl_c")})
	_, _, last, _ := c.receiveAll(shell, id, "PT5S")
	if last.exitCode != "3221225786" {
		t.Errorf("exit after ctrl_c %s", last.exitCode)
	}

	// terminate while a Receive waits: the Receive gets a fault at once.
	id = c.command(shell, "powershell", "-Command", "sleep 60000")
	type answer struct {
		reply
		err error
	}
	done := make(chan answer, 1)
	waitingReceive := func(id string) {
		r, err := c.tryPost(msg{action: actReceive, shellID: shell, timeout: "PT30S", body: receiveBody(id)})
		done <- answer{r, err}
	}
	go waitingReceive(id)
	// Give the Receive a head start so it is usually waiting; the assertion
	// holds either way (a late Receive finds the command gone).
	time.Sleep(50 * time.Millisecond)
	c.ok(msg{action: actSignal, shellID: shell, body: signalBody(id, "terminate")})
	select {
	case r := <-done:
		if r.err != nil || r.wsmanCode != "2150858843" {
			t.Errorf("waiting Receive got %s %s (%v)", r.wsmanCode, r.raw, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting Receive not answered after terminate")
	}

	// Deleting the shell while a Receive waits answers it with shell-not-found.
	id = c.command(shell, "powershell", "-Command", "sleep 60000")
	go waitingReceive(id)
	time.Sleep(50 * time.Millisecond) // head start, as above
	c.ok(msg{action: actDelete, shellID: shell})
	select {
	case r := <-done:
		if r.err != nil || r.wsmanCode != "2150858843" || !strings.Contains(r.message, "shell was not found") {
			t.Errorf("waiting Receive got %s %s (%v)", r.wsmanCode, r.message, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting Receive not answered after Delete")
	}
	recs := rec.wait(t, 3)
	signals := map[string]bool{}
	for _, r := range recs {
		if !r.Canceled {
			t.Errorf("record not marked canceled: %+v", r)
		}
		signals[r.Signal] = true
	}
	if !signals["ctrl_c"] || !signals["terminate"] || !signals[""] {
		t.Errorf("signals recorded: %v", signals)
	}
}

func TestStdinFeedsPowerShellCommandDash(t *testing.T) {
	rec := newRecorder()
	h := startHost(t, wsman.HostConfig{Server: baseConfig(rec)})
	c := newRaw(t, h)
	shell := c.createShell()
	// pypsrp's capture (test_winrs_send.yml) runs "powershell.exe -" and
	// sends the script on stdin in two chunks.
	id := c.command(shell, "powershell.exe", "-")
	send := func(data string, end string) {
		c.ok(msg{action: actSend, shellID: shell, body: `<rsp:Send><rsp:Stream Name="stdin" CommandId="` + id + `" End="` + end + `">` +
			base64.StdEncoding.EncodeToString([]byte(data)) + `</rsp:Stream></rsp:Send>`})
	}
	send("out one; ", "False")
	send("out two", "True")
	out, _, last, _ := c.receiveAll(shell, id, "PT5S")
	if string(out) != "one\r\ntwo\r\n" || last.exitCode != "0" {
		t.Errorf("got %q exit %s", out, last.exitCode)
	}
	if recs := rec.wait(t, 1); recs[0].Script != "out one; out two" {
		t.Errorf("script %q", recs[0].Script)
	}
}

func TestLargeOutputIsSplitByMaxEnvelopeSize(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3000) // 48000 bytes
	cfg := baseConfig(nil)
	cfg.PowerShell = func(context.Context, string, bool) wsman.Result {
		return wsman.Result{Stdout: big, Stderr: []byte("warn\r\n")}
	}
	h := startHost(t, wsman.HostConfig{Server: cfg})
	c := newRaw(t, h)
	shell := c.createShell()
	id := c.command(shell, "powershell", "-Command", "big")
	var out, errOut []byte
	var sizes []int
	done := false
	for i := 0; i < 100 && !done; i++ {
		r := c.ok(msg{action: actReceive, shellID: shell, maxEnv: "8192", body: receiveBody(id)})
		sizes = append(sizes, len(r.raw))
		if len(r.raw) > 8192 {
			t.Fatalf("response of %d bytes exceeds MaxEnvelopeSize 8192", len(r.raw))
		}
		out, errOut = append(out, r.stdout...), append(errOut, r.stderr...)
		switch r.state {
		case "Done":
			done = true
		case "Running":
		default:
			t.Fatalf("state %q", r.state)
		}
	}
	if !done || !bytes.Equal(out, big) || string(errOut) != "warn\r\n" || len(sizes) < 8 {
		t.Fatalf("reassembled %d bytes in %d responses (Done %v), stderr %q", len(out), len(sizes), done, errOut)
	}
}

func TestIdleShellsExpire(t *testing.T) {
	cfg := baseConfig(nil)
	// Long enough that a loaded machine does not expire the shell between
	// its creation and the first command.
	cfg.ShellIdleTimeout = time.Second
	h := startHost(t, wsman.HostConfig{Server: cfg})
	c := newRaw(t, h)
	shell := c.createShell()
	// A request in progress keeps the shell alive past the idle timeout.
	id := c.command(shell, "powershell", "-Command", "sleep 1600; out kept")
	out, _, _, _ := c.receiveAll(shell, id, "PT5S")
	if string(out) != "kept\r\n" {
		t.Fatalf("out %q", out)
	}
	within.Eventually(t, "the shell to be dropped", func() bool { return h.Server().Shells() == 0 })
	checkFault(t, c.post(msg{action: actCommand, shellID: shell, body: commandBody("hostname")}),
		faultWant{"s:Sender", "w:InvalidSelectors", "2150858843", "shell was not found"})
}

// TestDeleteWaitsForCommands: Windows answers a shell's Delete once the
// shell is torn down and its processes ended, so a client's next command
// cannot overlap a command of the deleted shell (hvro's chaos runner saw
// a 1 ms overlap when the emulator answered first and ended the command
// after).
func TestDeleteWaitsForCommands(t *testing.T) {
	rec := newRecorder()
	cfg := baseConfig(rec)
	slow := cfg.Log
	cfg.Log = func(r wsman.CommandRecord) {
		time.Sleep(300 * time.Millisecond) // a command slow to wind down
		slow(r)
	}
	h := startHost(t, wsman.HostConfig{Server: cfg})
	c := newRaw(t, h)
	shell := c.createShell()
	c.command(shell, "powershell.exe", "-EncodedCommand", wsman.EncodeCommand("sleep 5000"))
	c.ok(msg{action: actDelete, shellID: shell})
	rec.mu.Lock()
	n := len(rec.records)
	rec.mu.Unlock()
	if n != 1 {
		t.Fatalf("the Delete was answered before its shell's command had ended (%d records)", n)
	}
}

// TestDeleteWaitIsBounded: however many of the shell's commands are slow
// to end, the Delete answers within DeleteWait (one bound for all of them,
// not one per command).
func TestDeleteWaitIsBounded(t *testing.T) {
	rec := newRecorder()
	cfg := baseConfig(rec)
	slow := cfg.Log
	cfg.Log = func(r wsman.CommandRecord) {
		time.Sleep(700 * time.Millisecond) // each command slow to wind down
		slow(r)
	}
	cfg.DeleteWait = 500 * time.Millisecond
	h := startHost(t, wsman.HostConfig{Server: cfg})
	c := newRaw(t, h)
	shell := c.createShell()
	for range 3 {
		c.command(shell, "powershell.exe", "-EncodedCommand", wsman.EncodeCommand("sleep 5000"))
	}
	start := time.Now()
	c.ok(msg{action: actDelete, shellID: shell})
	if took := time.Since(start); took > 650*time.Millisecond {
		t.Fatalf("the Delete took %v with DeleteWait 500ms", took)
	}
}

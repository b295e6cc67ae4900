package replica

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeWSMan is a scripted WinRM endpoint on loopback for the failures the
// emulator does not produce on demand: faults at each step, odd HTTP
// answers, cut connections, unexpected output.
type fakeWSMan struct {
	t        *testing.T
	mu       sync.Mutex
	actions  []string
	receives int
	// answer returns the response for an action ("Create", "Command",
	// "Receive", "Delete", "Signal"); nil uses the default happy answer.
	answer func(action string, n int) *fakeAnswer
	// stdout, stderr and exit of the happy Receive.
	stdout, stderr string
	exit           int
}

type fakeAnswer struct {
	status      int
	contentType string
	body        string
	hangUp      bool
}

const soapNS = `xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer"`

func soapOK(body string) *fakeAnswer {
	return &fakeAnswer{status: 200, contentType: "application/soap+xml;charset=UTF-8",
		body: `<s:Envelope ` + soapNS + `><s:Header/><s:Body>` + body + `</s:Body></s:Envelope>`}
}

func soapFault(code, subcode, wsCode, msg string) *fakeAnswer {
	return &fakeAnswer{status: 500, contentType: "application/soap+xml;charset=UTF-8",
		body: `<s:Envelope ` + soapNS + `><s:Header/><s:Body><s:Fault><s:Code><s:Value>s:` + code + `</s:Value><s:Subcode><s:Value>w:` + subcode +
			`</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">` + msg + `</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="` + wsCode +
			`" Machine="127.0.0.1"><f:Message><f:ProviderFault provider="Shell cmd plugin">` + msg + `</f:ProviderFault></f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>`}
}

var timedOut = soapFault("Receiver", "TimedOut", "2150858793", "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ")

func (f *fakeWSMan) happy(action string) *fakeAnswer {
	switch action {
	case "Create":
		return soapOK(`<x:ResourceCreated><a:Address>http://127.0.0.1/wsman</a:Address><a:ReferenceParameters><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">11111111-2222-3333-4444-555555555555</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>`)
	case "Command":
		return soapOK(`<rsp:CommandResponse><rsp:CommandId>AAAAAAAA-2222-3333-4444-555555555555</rsp:CommandId></rsp:CommandResponse>`)
	case "Receive":
		stream := func(name, data string) string {
			return `<rsp:Stream Name="` + name + `" CommandId="AAAAAAAA-2222-3333-4444-555555555555">` + base64.StdEncoding.EncodeToString([]byte(data)) + `</rsp:Stream>`
		}
		return soapOK(`<rsp:ReceiveResponse>` + stream("stdout", f.stdout) + stream("stderr", f.stderr) +
			`<rsp:CommandState CommandId="AAAAAAAA-2222-3333-4444-555555555555" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>` +
			fmt.Sprint(uint32(f.exit)) + `</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>`)
	}
	return soapOK(``)
}

func (f *fakeWSMan) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	action := "Other"
	for _, a := range []string{"transfer/Create", "shell/Command", "shell/Receive", "transfer/Delete", "shell/Signal"} {
		if strings.Contains(string(body), a+"</") {
			action = a[strings.IndexByte(a, '/')+1:]
		}
	}
	f.mu.Lock()
	f.actions = append(f.actions, action)
	n := 0
	if action == "Receive" {
		f.receives++
		n = f.receives
	}
	f.mu.Unlock()
	var a *fakeAnswer
	if f.answer != nil {
		a = f.answer(action, n)
	}
	if a == nil {
		a = f.happy(action)
	}
	if a.hangUp {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if a.contentType != "" {
		w.Header().Set("Content-Type", a.contentType)
	}
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

func (f *fakeWSMan) seen() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.actions, " ")
}

func startFake(t *testing.T, f *fakeWSMan) *Driver {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	d, err := New("fake", Config{Endpoint: srv.URL + "/wsman", Username: "u", Password: "p", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

const inspectOK = `{"vm":null,"replication":null}`

func TestTransportFailures(t *testing.T) {
	tests := []struct {
		name   string
		fake   *fakeWSMan
		kind   error
		reason string
		msg    string // in err.Error()
		seen   string // the requests the fake saw
	}{
		{name: "ok", fake: &fakeWSMan{stdout: inspectOK + "\r\n"}, seen: "Create Command Receive Delete"},
		{name: "progress on stderr", fake: &fakeWSMan{stdout: inspectOK, stderr: `#< CLIXML` + "\r\n" + `<Objs Version="1.1.0.1"><Obj S="progress" RefId="0"/></Objs>`}, seen: "Create Command Receive Delete"},
		{name: "timed out then done", fake: &fakeWSMan{stdout: inspectOK, answer: func(a string, n int) *fakeAnswer {
			if a == "Receive" && n < 3 {
				return timedOut
			}
			return nil
		}}, seen: "Create Command Receive Receive Receive Delete"},
		{name: "shell quota", fake: &fakeWSMan{answer: func(a string, _ int) *fakeAnswer {
			if a == "Create" {
				return soapFault("Sender", "QuotaLimit", "2150859173", "The WS-Management service cannot process the request. This user is allowed a maximum number of 30 concurrent shells, which has been exceeded.")
			}
			return nil
		}}, kind: ErrTransient, reason: ReasonShellQuota, msg: "maximum number of 30 concurrent shells", seen: "Create"},
		{name: "shell gone during receive", fake: &fakeWSMan{answer: func(a string, _ int) *fakeAnswer {
			if a == "Receive" {
				return soapFault("Sender", "InvalidSelectors", "2150858843", "The request for the Windows Remote Shell with ShellId X failed because the shell was not found on the server.")
			}
			return nil
		}}, kind: ErrTransient, reason: ReasonWSManFault, msg: "shell was not found", seen: "Create Command Receive Delete"},
		{name: "internal error on command", fake: &fakeWSMan{answer: func(a string, _ int) *fakeAnswer {
			if a == "Command" {
				return soapFault("Receiver", "InternalError", "2147942402", "The system cannot find the file specified.")
			}
			return nil
		}}, kind: ErrUnknown, reason: ReasonWSManFault, msg: "cannot find the file specified", seen: "Create Command Delete"},
		{name: "bad request fault", fake: &fakeWSMan{answer: func(a string, _ int) *fakeAnswer {
			if a == "Create" {
				return soapFault("Sender", "SchemaValidationError", "2150858819", "The WS-Management service cannot process the request because the XML is invalid.")
			}
			return nil
		}}, kind: ErrPermanent, reason: ReasonWSManFault, msg: "XML is invalid", seen: "Create"},
		{name: "503 without fault", fake: &fakeWSMan{answer: func(string, int) *fakeAnswer {
			return &fakeAnswer{status: 503, contentType: "text/html", body: "<h1>Service Unavailable</h1>"}
		}}, kind: ErrTransient, reason: ReasonHTTPStatus, msg: "HTTP 503", seen: "Create"},
		{name: "502 from a proxy", fake: &fakeWSMan{answer: func(string, int) *fakeAnswer {
			return &fakeAnswer{status: 502, contentType: "text/html", body: "<html><body>Bad Gateway</body></html>"}
		}}, kind: ErrTransient, reason: ReasonHTTPStatus, msg: "HTTP 502", seen: "Create"},
		{name: "404 HTML page", fake: &fakeWSMan{answer: func(string, int) *fakeAnswer {
			return &fakeAnswer{status: 404, contentType: "text/html", body: `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN"><HTML><HEAD><TITLE>Not Found</TITLE></HEAD><BODY><h2>Not Found</h2><hr><p>HTTP Error 404. The requested resource is not found.</p></BODY></HTML>`}
		}}, kind: ErrPermanent, reason: ReasonNotWinRM, msg: "answered with an HTML page, not WS-Management: check the URL/port", seen: "Create"},
		{name: "404 plain text", fake: &fakeWSMan{answer: func(string, int) *fakeAnswer {
			return &fakeAnswer{status: 404, contentType: "text/plain; charset=utf-8", body: "404 page not found\n"}
		}}, kind: ErrPermanent, reason: ReasonNotWinRM, msg: `answered HTTP 404 with "text/plain; charset=utf-8", not WS-Management: check the URL/port`, seen: "Create"},
		{name: "500 HTML page", fake: &fakeWSMan{answer: func(string, int) *fakeAnswer {
			return &fakeAnswer{status: 500, contentType: "text/html", body: "<html><body>Internal Server Error</body></html>"}
		}}, kind: ErrPermanent, reason: ReasonNotWinRM, msg: "answered with an HTML page", seen: "Create"},
		{name: "HTML without a content type", fake: &fakeWSMan{answer: func(string, int) *fakeAnswer {
			return &fakeAnswer{status: 200, body: "\n  <html><head><title>Router</title></head></html>"}
		}}, kind: ErrPermanent, reason: ReasonNotWinRM, msg: "answered with an HTML page", seen: "Create"},
		{name: "HTML labelled SOAP", fake: &fakeWSMan{answer: func(string, int) *fakeAnswer {
			return &fakeAnswer{status: 200, contentType: "application/soap+xml", body: "<!doctype html><html><body>login</body></html>"}
		}}, kind: ErrPermanent, reason: ReasonNotWinRM, msg: "answered with an HTML page", seen: "Create"},
		{name: "415 without a body", fake: &fakeWSMan{answer: func(string, int) *fakeAnswer {
			return &fakeAnswer{status: 415}
		}}, kind: ErrPermanent, reason: ReasonHTTPStatus, msg: "HTTP 415", seen: "Create"},
		{name: "401", fake: &fakeWSMan{answer: func(string, int) *fakeAnswer { return &fakeAnswer{status: 401} }},
			kind: ErrPermanent, reason: ReasonAuthRefused, msg: "the WinRM credentials were refused by 127.0.0.1:", seen: "Create"},
		{name: "401 with an HTML page", fake: &fakeWSMan{answer: func(string, int) *fakeAnswer {
			return &fakeAnswer{status: 401, contentType: "text/html", body: "<html><body>401 - Unauthorized</body></html>"}
		}}, kind: ErrPermanent, reason: ReasonAuthRefused, msg: "check winrm.username and the password", seen: "Create"},
		{name: "not soap", fake: &fakeWSMan{answer: func(string, int) *fakeAnswer {
			return &fakeAnswer{status: 200, contentType: "text/html", body: "<html>router login</html>"}
		}}, kind: ErrPermanent, reason: ReasonNotWinRM, msg: "answered with an HTML page, not WS-Management", seen: "Create"},
		{name: "connection cut during receive", fake: &fakeWSMan{answer: func(a string, _ int) *fakeAnswer {
			if a == "Receive" {
				return &fakeAnswer{hangUp: true}
			}
			return nil
		}}, kind: ErrTransient, reason: ReasonConnection, msg: "connection cut", seen: "Create Command Receive Delete"},
		{name: "stdout not json", fake: &fakeWSMan{stdout: "hello\r\n"}, kind: ErrUnknown, reason: ReasonBadOutput, msg: `output: "hello"`, seen: "Create Command Receive Delete"},
		{name: "json of the wrong shape", fake: &fakeWSMan{stdout: `{"vm":{"name":"","state":"Off"}}`}, kind: ErrUnknown, reason: ReasonBadOutput, msg: "vm.name is empty", seen: "Create Command Receive Delete"},
		{name: "exit 1 without json", fake: &fakeWSMan{exit: 1, stderr: "#< CLIXML\r\n" + `<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">At line:1 char:1_x000D__x000A_</S><S S="Error">Missing closing '}' in statement block._x000D__x000A_</S></Objs>`},
			kind: ErrUnknown, reason: ReasonBadOutput, msg: "Missing closing '}'", seen: "Create Command Receive Delete"},
		{name: "command line too long", fake: &fakeWSMan{exit: 1, stderr: "The command line is too long.\r\n"}, kind: ErrPermanent, reason: ReasonCommandLineTooLong, msg: "too long", seen: "Create Command Receive Delete"},
		{name: "exit code 0 with an error object", fake: &fakeWSMan{stdout: `{"error":{"type":"X","message":"Try again later.","hresult":2147500036}}`},
			kind: ErrTransient, reason: ReasonConfigNotAccessible, msg: "HRESULT 0x80004004", seen: "Create Command Receive Delete"},
		{name: "unsigned exit code", fake: &fakeWSMan{exit: -1, stdout: inspectOK}, kind: ErrUnknown, reason: ReasonBadOutput, msg: "exit code 4294967295", seen: "Create Command Receive Delete"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fake.t = t
			d := startFake(t, tc.fake)
			start := time.Now()
			_, err := d.Inspect(ctxT(t), vm1)
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			if tc.kind == nil {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, tc.kind) || e.Reason != tc.reason || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("got %v\nwant %v (%s) mentioning %q", err, tc.kind, tc.reason, tc.msg)
				}
				if strings.Contains(err.Error(), "OperationTimeout") {
					t.Errorf("error text contains OperationTimeout (masterzen would poll again): %v", err)
				}
				if Reason(err) != tc.reason || IsPermanent(err) != (tc.kind == ErrPermanent) {
					t.Errorf("Reason(err) = %q, IsPermanent = %v", Reason(err), IsPermanent(err))
				}
			}
			// Delete runs after the response that ends the command; give
			// the fake a moment to log it.
			eventually(t, "requests "+tc.seen, func() (bool, error) { return tc.fake.seen() == tc.seen, nil })
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := Config{Endpoint: "http://node1.corp:5985/wsman", Username: "u", Password: "p"}
	tests := []struct {
		name   string
		host   string
		mutate func(*Config)
		want   string
	}{
		{"no host", "", nil, "host name is empty"},
		{"no endpoint", "node1", func(c *Config) { c.Endpoint = "" }, "endpoint: empty"},
		{"bad scheme", "node1", func(c *Config) { c.Endpoint = "htp://x/wsman" }, `"htp://x/wsman" is not an http(s) URL`},
		{"credentials in url", "node1", func(c *Config) { c.Endpoint = "http://u:secret@x:5985/wsman" }, "credentials belong"},
		{"bad path", "node1", func(c *Config) { c.Endpoint = "http://x:5985/api" }, "path must be /wsman"},
		{"bad port", "node1", func(c *Config) { c.Endpoint = "http://x:99999/wsman" }, "not a TCP port"},
		{"no user", "node1", func(c *Config) { c.Username = "" }, "username is empty"},
		{"kerberos", "node1", func(c *Config) { c.Auth = "kerberos" }, `auth "kerberos" is not supported`},
		{"auth typo", "node1", func(c *Config) { c.Auth = "digest" }, `auth "digest": must be "basic" or "ntlm"`},
		{"timeout", "node1", func(c *Config) { c.Timeout = -time.Second }, "timeout -1s: must be positive"},
		{"concurrency", "node1", func(c *Config) { c.MaxConcurrent = 31 }, "max_concurrent_per_host 31"},
		{"ca file", "node1", func(c *Config) { c.Endpoint, c.CAFile = "https://x:5986/wsman", "/nonexistent/ca.pem" }, "ca_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			_, err := New(tc.host, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error shows a password: %v", err)
			}
		})
	}
	d, err := New("node1", Config{Endpoint: "https://node1.corp/", Username: "u", Auth: "NTLM"})
	if err != nil {
		t.Fatal(err)
	}
	if d.url != "https://node1.corp:5986/wsman" || d.timeout != DefaultTimeout || cap(d.sem) != DefaultMaxConcurrent || d.opTimeout >= d.transport.ResponseHeaderTimeout {
		t.Fatalf("defaults: url %s timeout %s slots %d op %s header %s", d.url, d.timeout, cap(d.sem), d.opTimeout, d.transport.ResponseHeaderTimeout)
	}
}

// FuzzCheckResponse: any HTTP answer yields a body or a classified error,
// and only the TimedOut fault says "OperationTimeout" (which makes
// masterzen poll again instead of failing the command).
func FuzzCheckResponse(f *testing.F) {
	f.Add(500, "application/soap+xml;charset=UTF-8", timedOut.body)
	f.Add(500, "application/soap+xml", soapFault("Sender", "QuotaLimit", "2150859173", "quota").body)
	f.Add(200, "application/soap+xml", soapOK(`<rsp:CommandResponse><rsp:CommandId>X</rsp:CommandId></rsp:CommandResponse>`).body)
	f.Add(401, "", "")
	f.Add(503, "text/html", "<h1>busy</h1>")
	f.Add(500, "application/soap+xml", `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Reason><s:Text>OperationTimeout here</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>`)
	f.Fuzz(func(t *testing.T, status int, contentType, body string) {
		out, err := checkResponse("node1.corp:5985", status, contentType, []byte(body))
		if err == nil {
			if status != 200 || out != body {
				t.Fatalf("status %d accepted", status)
			}
			return
		}
		var te *transportError
		if !errors.As(err, &te) || te.kind == nil || te.reason == "" {
			t.Fatalf("unclassified error %v", err)
		}
		if strings.Contains(err.Error(), "OperationTimeout") != (te.fault != nil && te.fault.timedOut()) {
			t.Fatalf("OperationTimeout in %q but timed out = %v", err.Error(), te.fault != nil && te.fault.timedOut())
		}
	})
}

// TestResponseWithoutCommandID: a host that answers Command without a
// CommandId gets an unknown error, not a hang.
func TestResponseWithoutCommandID(t *testing.T) {
	f := &fakeWSMan{answer: func(a string, _ int) *fakeAnswer {
		if a == "Command" {
			return soapOK(`<rsp:CommandResponse/>`)
		}
		return nil
	}}
	d := startFake(t, f)
	_, err := d.Inspect(ctxT(t), vm1)
	var e *Error
	if !errors.As(err, &e) || !IsUnknown(err) || e.Reason != ReasonWSManFault {
		t.Fatalf("got %v", err)
	}
}

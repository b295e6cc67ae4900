package wsman

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Seed envelopes in the shapes the real clients send (corpus files in
// testdata/fuzz hold more, including captures' shapes from pypsrp).
var fuzzSeeds = []string{
	// masterzen Create
	`<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><env:Header><a:To>http://127.0.0.1:5985/wsman</a:To><a:ReplyTo><a:Address mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><w:MaxEnvelopeSize mustUnderstand="true">153600</w:MaxEnvelopeSize><a:MessageID>uuid:5B5A2C1E-0E32-4D4F-9A5B-2D3B0E1F3A11</a:MessageID><w:Locale mustUnderstand="false" xml:lang="en-US"/><w:OperationTimeout>PT60S</w:OperationTimeout><a:Action mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action><w:ResourceURI mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><w:OptionSet><w:Option Name="WINRS_NOPROFILE">FALSE</w:Option><w:Option Name="WINRS_CODEPAGE">65001</w:Option></w:OptionSet></env:Header><env:Body><rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell></env:Body></env:Envelope>`,
	// pywinrm Command
	`<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><env:Header><a:To>http://windows-host:5985/wsman</a:To><a:MessageID>uuid:1</a:MessageID><w:OperationTimeout>PT20S</w:OperationTimeout><w:ResourceURI mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><a:Action mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command</a:Action><w:SelectorSet><w:Selector Name="ShellId">11111111-2222-3333-4444-555555555555</w:Selector></w:SelectorSet><w:OptionSet><w:Option Name="WINRS_CONSOLEMODE_STDIN">TRUE</w:Option><w:Option Name="WINRS_SKIP_CMD_SHELL">FALSE</w:Option></w:OptionSet></env:Header><env:Body><rsp:CommandLine><rsp:Command>powershell -encodedcommand ZQBjAGgAbwAgAGgAaQA=</rsp:Command></rsp:CommandLine></env:Body></env:Envelope>`,
	// pypsrp Receive
	`<s:Envelope xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><wsa:Action s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive</wsa:Action><wsman:MaxEnvelopeSize s:mustUnderstand="true">153600</wsman:MaxEnvelopeSize><wsa:MessageID>uuid:1E4F574C-3C19-46E9-A544-B71D78C95E7B</wsa:MessageID><wsman:OperationTimeout>PT0.001S</wsman:OperationTimeout><wsman:ResourceURI s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</wsman:ResourceURI><wsman:SelectorSet><wsman:Selector Name="ShellId">CCF84E0D-D0B5-4CFB-95B5-BCF3BFE15F36</wsman:Selector></wsman:SelectorSet></s:Header><s:Body><rsp:Receive><rsp:DesiredStream CommandId="87E77BEB-6761-4C48-9D70-A00266B8459A">stdout stderr</rsp:DesiredStream></rsp:Receive></s:Body></s:Envelope>`,
	`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>`,
	`<?xml version="1.0" encoding="utf-16"?><a/>`,
	`<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>`,
	"",
	"<",
}

// FuzzDecodeEnvelope: the decoder never panics, and what it accepts has a
// body.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeEnvelope(data)
		if err == nil && (req == nil || !req.HasBody) {
			t.Fatalf("accepted an envelope without a body: %q", data)
		}
	})
}

// FuzzServeHTTP: any authenticated body gets a well-formed SOAP answer (or
// 413), never a panic or a hang.
func FuzzServeHTTP(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := NewServer(Config{
			Host:            "NODE1",
			Users:           map[string]string{"admin": "pw"},
			PowerShell:      func(context.Context, string, bool) Result { return Result{Stdout: []byte("ok")} },
			MaxTimeout:      10 * time.Millisecond,
			MaxEnvelopeSize: 64 * 1024,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		}()
		req := httptest.NewRequest(http.MethodPost, "/wsman", bytes.NewReader(data))
		req.SetBasicAuth("admin", "pw")
		req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusInternalServerError:
			if ct := rec.Header().Get("Content-Type"); ct != "application/soap+xml;charset=UTF-8" {
				t.Fatalf("status %d with content type %q", rec.Code, ct)
			}
			dec := xml.NewDecoder(rec.Body)
			for {
				_, err := dec.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("response is not well-formed XML: %v", err)
				}
			}
		case http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}

// FuzzCmdExe: the cmd.exe and powershell.exe layers never panic.
func FuzzCmdExe(f *testing.F) {
	for _, s := range []string{
		"hostname", "echo a & echo b", "nosuch || cmd /c \"exit /b 3\"", "echo x| powershell -Command -",
		"powershell -EncodedCommand ZQBjAGgAbwA=", "powershell -enc ZQB", "echo ^", "\"", "a 2>&1 >nul <nul",
		"cmd /c cmd /c cmd /c hostname", "%COMPUTERNAME%%", "& | && ||",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		env := &cmdEnv{
			host: "NODE1", whoami: `node1\admin`, profile: `C:\Users\admin`,
			powershell: func(context.Context, string, bool) Result { return Result{} },
			stdin:      func(context.Context) ([]byte, error) { return nil, nil },
		}
		_ = runCmdExe(context.Background(), env, line)
	})
}

package replica

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/masterzen/winrm"

	"github.com/hvro/hvro/test/sim/lab"
)

// BenchmarkInspect measures one Inspect over loopback against the emulated
// host: shell create, command, receive, delete, and the JSON parse. The
// speed goal: well under 10 ms per call here, so that a reconcile pass
// over many pairs is bound by the hosts, never by the driver.
func BenchmarkInspect(b *testing.B) {
	for _, bc := range []struct {
		name  string
		https bool
	}{{"http", false}, {"https", true}} {
		b.Run(bc.name, func(b *testing.B) {
			topo := topology(b)
			l, err := lab.Start(context.Background(), topo, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			cfg := Config{Endpoint: l.Addrs().WinRM["node1"], Username: labUser, Password: labPass, MaxConcurrent: 4}
			if bc.https {
				cfg.Endpoint, cfg.CAFile = l.Addrs().WinRMS["node1"], l.Addrs().CAFile
			}
			d, err := New("node1", cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				v, err := d.Inspect(ctx, vm1)
				if err != nil || v.VM == nil {
					b.Fatal(v, err)
				}
			}
		})
	}
}

// BenchmarkInspectParallel measures Inspect with concurrent callers bounded
// by MaxConcurrent 4.
func BenchmarkInspectParallel(b *testing.B) {
	topo := topology(b)
	l, err := lab.Start(context.Background(), topo, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	d, err := New("node1", Config{Endpoint: l.Addrs().WinRM["node1"], Username: labUser, Password: labPass, MaxConcurrent: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := d.Inspect(context.Background(), vm1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkParseInspect is the JSON side alone.
func BenchmarkParseInspect(b *testing.B) {
	out := []byte(`{"vm":{"name":"vm1","id":"c520d71e-ae84-40d6-a2b5-b1f697821703","state":"Off","path":"T:\\VMs"},"replication":{"mode":"Primary","state":"Replicating","health":"Normal","primary":"node1.lab.local","replica":"node3.lab.local","port":80,"auth":"Kerberos","frequency":300,"last":"2026-05-01T10:20:30.1234567Z"}}` + "\r\n")
	b.ReportAllocs()
	for b.Loop() {
		obj, _, err := parseResult(out, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parseInspect(obj); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckReplyShape measures the streaming pre-check every SOAP
// reply passes before the WinRM library parses it, on a typical Receive
// reply and on the largest reply it lets through, next to the library's
// own parse of the same typical reply.
func BenchmarkCheckReplyShape(b *testing.B) {
	f := &fakeWSMan{stdout: strings.Repeat(`{"vm":{"name":"vm1","state":"Running"},"replication":null}`, 8)}
	typical := []byte(f.happy("Receive").body)
	chunk := `<rsp:Stream Name="stdout" CommandId="AAAAAAAA-2222-3333-4444-555555555555">` + strings.Repeat("QUFB", 1000) + `</rsp:Stream>`
	largest := []byte(soapOK(`<rsp:ReceiveResponse>` + strings.Repeat(chunk, maxReplyBytes/len(chunk)-1) + `</rsp:ReceiveResponse>`).body)
	for _, bc := range []struct {
		name string
		body []byte
	}{{"typical", typical}, {"largest", largest}} {
		b.Run(fmt.Sprintf("%s_%dB", bc.name, len(bc.body)), func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := checkReplyShape(bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run(fmt.Sprintf("library_parse_typical_%dB", len(typical)), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := winrm.ParseSlurpOutputErrResponse(string(typical), io.Discard, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}

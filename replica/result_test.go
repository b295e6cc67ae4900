package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/hostname"
)

func TestParseResult(t *testing.T) {
	tests := []struct {
		name    string
		stdout  string
		exit    int
		obj     string       // success object
		se      *scriptError // script error
		problem string       // bad output, in the error
	}{
		{name: "object", stdout: `{"result":"done"}`, obj: `{"result":"done"}`},
		{name: "crlf and blank lines", stdout: "\r\n" + `{"result":"done"}` + "\r\n\r\n", obj: `{"result":"done"}`},
		{name: "bom", stdout: "\xef\xbb\xbf" + `{"result":"done"}`, obj: `{"result":"done"}`},
		{name: "noise before the last line", stdout: "WARNING: something\r\n" + `{"result":"done"}`, obj: `{"result":"done"}`},
		{name: "error object", exit: 1, stdout: `{"error":{"type":"Microsoft.HyperV.PowerShell.VirtualizationException","message":"Hyper-V was unable to find a virtual machine with name \u0022vm1\u0022.","hresult":-2147024809,"fqid":"InvalidParameter,Microsoft.HyperV.PowerShell.Commands.StartVM","category":"InvalidArgument"}}`,
			se: &scriptError{Type: "Microsoft.HyperV.PowerShell.VirtualizationException", Message: `Hyper-V was unable to find a virtual machine with name "vm1".`, HResult: -2147024809,
				FQID: "InvalidParameter,Microsoft.HyperV.PowerShell.Commands.StartVM", Category: "InvalidArgument"}},
		{name: "unsigned hresult and numeric category", exit: 1, stdout: `{"error":{"message":"x","hresult":2147942402,"category":7}}`,
			se: &scriptError{Message: "x", HResult: -2147024894, Category: "7"}},
		{name: "hresult as string", exit: 1, stdout: `{"error":{"message":"x","hresult":"-2147467260"}}`, se: &scriptError{Message: "x", HResult: hrAbort}},
		{name: "empty", problem: "no JSON on stdout"},
		{name: "empty with exit code", exit: 1, problem: "exit code 1 and no JSON"},
		{name: "text", stdout: "Name : vm1", problem: "does not end with a JSON object"},
		{name: "array", stdout: `[{"result":"done"}]`, problem: "does not end with a JSON object"},
		{name: "truncated", stdout: `{"result":"do`, problem: "not valid"},
		{name: "exit code without error", exit: 3, stdout: `{"result":"done"}`, problem: "exit code 3 without an error object"},
		{name: "error of the wrong type", exit: 1, stdout: `{"error":[1,2]}`, problem: "error object is not valid"},
		{name: "error null is success", stdout: `{"error":null,"result":"done"}`, obj: `{"error":null,"result":"done"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj, se, err := parseResult([]byte(tc.stdout), tc.exit)
			switch {
			case tc.problem != "":
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("got %s %+v %v, want a problem %q", obj, se, err, tc.problem)
				}
			case tc.se != nil:
				if err != nil || se == nil || *se != *tc.se {
					t.Fatalf("got %+v %v, want %+v", se, err, tc.se)
				}
			default:
				if err != nil || se != nil || string(obj) != tc.obj {
					t.Fatalf("got %s %+v %v, want %s", obj, se, err, tc.obj)
				}
			}
		})
	}
}

func TestParseInspect(t *testing.T) {
	last := time.Date(2026, 5, 1, 10, 20, 30, 123456700, time.UTC)
	tests := []struct {
		name    string
		in      string
		want    View
		problem string
	}{
		{name: "absent", in: `{"vm":null,"replication":null}`},
		{name: "registered", in: `{"vm":{"name":"vm1","id":"C520D71E-AE84-40D6-A2B5-B1F697821703","state":"Running","path":"T:\\VMs"},"replication":null}`,
			want: View{VM: &VM{Name: "vm1", ID: "c520d71e-ae84-40d6-a2b5-b1f697821703", State: "Running", Running: true, Path: `T:\VMs`}}},
		{name: "critical", in: `{"vm":{"name":"vm1","id":"x","state":"PausedCritical","path":""}}`,
			want: View{VM: &VM{Name: "vm1", ID: "x", State: "PausedCritical", Critical: true}}},
		{name: "running critical", in: `{"vm":{"name":"vm1","state":"RunningCritical"}}`,
			want: View{VM: &VM{Name: "vm1", State: "RunningCritical", Critical: true, Running: true}}},
		{name: "replicating", in: `{"vm":{"name":"vm1","id":"x","state":"Off","path":"p"},"replication":{"mode":"Replica","state":"Replicating","health":"Normal","primary":"NODE1.lab.local","replica":"node3.lab.local","port":80,"auth":"Kerberos","frequency":300,"last":"2026-05-01T10:20:30.1234567Z"}}`,
			want: View{VM: &VM{Name: "vm1", ID: "x", State: "Off", Path: "p"}, Replication: &Replication{Mode: "Replica", State: "Replicating", Health: "Normal",
				PrimaryServer: "node1", ReplicaServer: "node3", PrimaryFQDN: "NODE1.lab.local", ReplicaFQDN: "node3.lab.local", Port: 80, Auth: "Kerberos", FrequencySec: 300, LastReplication: last}}},
		{name: "local time and never", in: `{"vm":{"name":"a","state":"Off"},"replication":{"mode":"Primary","state":"ReadyForInitialReplication","primary":"n1","replica":"192.0.2.7","port":"443","last":"0001-01-01T00:00:00.0000000"}}`,
			want: View{VM: &VM{Name: "a", State: "Off"}, Replication: &Replication{Mode: "Primary", State: "ReadyForInitialReplication",
				PrimaryServer: "n1", PrimaryFQDN: "n1", ReplicaServer: "192.0.2.7", ReplicaFQDN: "192.0.2.7", Port: 443}}},
		{name: "ms date", in: `{"vm":{"name":"a","state":"Off"},"replication":{"mode":"Primary","state":"Replicating","last":"/Date(1777630830123)/"}}`,
			want: View{VM: &VM{Name: "a", State: "Off"}, Replication: &Replication{Mode: "Primary", State: "Replicating", LastReplication: time.UnixMilli(1777630830123).UTC()}}},
		{name: "no name", in: `{"vm":{"state":"Off"}}`, problem: "vm.name is empty"},
		{name: "no state", in: `{"vm":{"name":"vm1"}}`, problem: "vm.state is empty"},
		{name: "replication without vm", in: `{"vm":null,"replication":{"mode":"Primary","state":"Replicating"}}`, problem: "replication without a vm"},
		{name: "no mode", in: `{"vm":{"name":"a","state":"Off"},"replication":{"state":"Replicating"}}`, problem: "replication.mode or replication.state is empty"},
		{name: "bad port", in: `{"vm":{"name":"a","state":"Off"},"replication":{"mode":"Primary","state":"Replicating","port":70000}}`, problem: "port 70000"},
		{name: "fractional port", in: `{"vm":{"name":"a","state":"Off"},"replication":{"mode":"Primary","state":"Replicating","port":80.5}}`, problem: "want an integer"},
		{name: "bad time", in: `{"vm":{"name":"a","state":"Off"},"replication":{"mode":"Primary","state":"Replicating","last":"yesterday"}}`, problem: "replication.last"},
		{name: "name as object", in: `{"vm":{"name":{"x":1},"state":"Off"}}`, problem: "want a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseInspect([]byte(tc.in))
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("got %v, want a problem %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tc.want)
			if string(g) != string(w) {
				t.Fatalf("got  %s\nwant %s", g, w)
			}
		})
	}
}

// TestClassify covers messages as real hosts word them (see the research
// note and STATES.md) besides the emulator's catalogue in
// TestFaultsClassified.
func TestClassify(t *testing.T) {
	tests := []struct {
		se     scriptError
		kind   error
		reason string
	}{
		{scriptError{Message: "Operation not allowed for virtual machine 'vm1' because the configuration was not accessible. Try again later.", Category: "NotSpecified"}, ErrTransient, ReasonConfigNotAccessible},
		{scriptError{Message: "Hyper-V failed to remove replication for 'vm1': Operation aborted (0x80004004).", HResult: hrAbort}, ErrTransient, ReasonConfigNotAccessible},
		{scriptError{Message: "something", HResult: hrBusy}, ErrTransient, ReasonBusy},
		{scriptError{Message: "Hyper-V cannot connect to the specified Replica server 'node3'. Error: A connection with the server could not be established (0x00002EFD)."}, ErrTransient, ReasonReplicaUnreachable},
		{scriptError{Message: "You do not have the required permission to complete this task.", FQID: "AccessDenied,Microsoft.HyperV.PowerShell.Commands.GetVM"}, ErrPermanent, ReasonAccessDenied},
		{scriptError{Message: "A parameter cannot be found that matches parameter name 'Foo'.", Type: "System.Management.Automation.ParameterBindingException", Category: "InvalidArgument"}, ErrPermanent, ReasonInvalidParameter},
		{scriptError{Message: "The term 'Get-VM' is not recognized as the name of a cmdlet", Type: "System.Management.Automation.CommandNotFoundException", Category: "ObjectNotFound"}, ErrPermanent, ReasonNotSupported},
		{scriptError{Message: "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.", Category: "NotSpecified"}, ErrPermanent, ReasonInvalidParameter},
		{scriptError{Message: "[hvro:vm_not_found] no virtual machine is named \"x\""}, ErrPermanent, ReasonVMNotFound},
		{scriptError{Message: "[hvro:incompatible] 12345 The virtual machine uses a feature this host lacks"}, ErrPermanent, ReasonIncompatible},
		{scriptError{Message: "[hvro:] not a marker", Category: "OperationStopped"}, ErrUnknown, ReasonScript},
		// A host cannot name its own reason: it becomes a metric label.
		{scriptError{Message: "[hvro:\x1b[31mowned] a reply that is not hvro's script"}, ErrUnknown, ReasonScript},
		{scriptError{Message: "[hvro:auth_refused] not a reason a script throws"}, ErrUnknown, ReasonScript},
		{scriptError{Message: "Something odd happened."}, ErrUnknown, ReasonScript},
	}
	for _, tc := range tests {
		kind, reason := classify(tc.se)
		if kind != tc.kind || reason != tc.reason {
			t.Errorf("classify(%q) = %v %s, want %v %s", tc.se.Message, kind, reason, tc.kind, tc.reason)
		}
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Host: "node1", Op: "start VM", VM: "vm1", Kind: ErrTransient, Reason: ReasonConfigNotAccessible,
		Type: "Microsoft.HyperV.PowerShell.VirtualizationOperationFailedException", FQID: "OperationFailed,Microsoft.HyperV.PowerShell.Commands.StartVM",
		Message: "Operation not allowed for virtual machine 'vm1' because the configuration was not accessible. Try again later.", HResult: hrAbort}
	want := `start VM "vm1" on node1: transient (config_not_accessible): Operation not allowed for virtual machine 'vm1' because the configuration was not accessible. Try again later. [Microsoft.HyperV.PowerShell.VirtualizationOperationFailedException, HRESULT 0x80004004, OperationFailed,Microsoft.HyperV.PowerShell.Commands.StartVM]`
	if e.Error() != want {
		t.Errorf("got  %s\nwant %s", e.Error(), want)
	}
	if !errors.Is(e, ErrTransient) || errors.Is(e, ErrPermanent) || !IsTransient(e) || Outcome(e) != "transient" || Outcome(nil) != "ok" {
		t.Errorf("kind checks failed for %v", e)
	}
}

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		in      string
		want    Identity
		problem string
	}{
		{in: `{"computer":"NODE1","fqdn":"NODE1.corp.example"}`, want: Identity{"NODE1", "NODE1.corp.example"}},
		{in: `{"computer":"NODE1","fqdn":"node1.corp.example."}`, want: Identity{"NODE1", "node1.corp.example"}},
		{in: `{"computer":"NODE1","fqdn":""}`, problem: "fqdn"},
		{in: `{"computer":"NODE1","fqdn":"192.0.2.1"}`, problem: "fqdn"},
		{in: `{"computer":"NODE1","fqdn":"a b.corp"}`, problem: "fqdn"},
		{in: `{"computer":"NODE1.corp","fqdn":"NODE1.corp"}`, problem: "computer name"},
		{in: `{"computer":"","fqdn":"NODE1.corp"}`, problem: "computer name"},
		{in: `[]`, problem: "identity output"},
	}
	for _, tc := range tests {
		got, err := parseIdentity([]byte(tc.in))
		switch {
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("%s: %+v %v, want a problem with %s", tc.in, got, err, tc.problem)
		case tc.problem == "" && (err != nil || got != tc.want):
			t.Errorf("%s: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

// TestReason: the reason survives wrapping, and errors that are not the
// driver's have none.
func TestReason(t *testing.T) {
	e := &Error{Host: "node1", Op: "inspect", Kind: ErrPermanent, Reason: ReasonAuthRefused, Message: "refused"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"driver error", e, ReasonAuthRefused},
		{"wrapped", fmt.Errorf("inspect host node1: %w", e), ReasonAuthRefused},
		{"joined", errors.Join(errors.New("other"), e), ReasonAuthRefused},
		{"not the driver's", errors.New("boom"), ""},
		{"nil", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Reason(tc.err); got != tc.want {
				t.Errorf("Reason = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzParseResult: no output crashes the parsers, and every input yields
// exactly one of a success object, a script error or a problem.
func FuzzParseResult(f *testing.F) {
	f.Add([]byte(`{"vm":{"name":"vm1","id":"x","state":"Off","path":"T:\\VMs"},"replication":{"mode":"Primary","state":"Replicating","health":"Normal","primary":"node1.lab.local","replica":"node3.lab.local","port":80,"auth":"Kerberos","frequency":300,"last":"2026-05-01T10:20:30.1234567Z"}}`), 0)
	f.Add([]byte(`{"error":{"type":"T","message":"m","hresult":-2147467260,"fqid":"f","category":"c"}}`), 1)
	f.Add([]byte(`{"result":"done","repaired":"40004,40006"}`), 0)
	f.Add([]byte("\xef\xbb\xbf\r\nnoise\r\n{\"result\":\"already\",\"discarded\":true}\r\n"), 0)
	f.Add([]byte(`{"vm":null,"replication":{"last":"/Date(-62135596800000)/"}}`), 0)
	f.Fuzz(func(t *testing.T, stdout []byte, exit int) {
		obj, se, err := parseResult(stdout, exit)
		n := 0
		for _, b := range []bool{obj != nil, se != nil, err != nil} {
			if b {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("parseResult gave %d of (object, script error, problem): %q %+v %v", n, obj, se, err)
		}
		if se != nil {
			classify(*se)
			if se.HResult > 0x7fffffff {
				t.Fatalf("hresult %d not normalised", se.HResult)
			}
		}
		if obj == nil {
			return
		}
		if v, err := parseInspect(obj); err == nil && v.VM != nil {
			if v.VM.Name == "" || v.VM.State == "" {
				t.Fatalf("accepted a VM without name or state: %+v", v.VM)
			}
			if r := v.Replication; r != nil && (r.Port < 0 || r.Port > 65535 || strings.Contains(r.PrimaryServer, ".") && !strings.Contains(r.PrimaryFQDN, ":") && !isIP(r.PrimaryServer)) {
				t.Fatalf("bad replication accepted: %+v", r)
			}
		}
		if a, err := parseAction(obj); err == nil {
			parseIDs(string(a.Repaired))
		}
		excerpt(stdout, stdout)
	})
}

func isIP(s string) bool {
	return hostname.Short(s) == s && strings.Trim(s, "0123456789.:[]abcdef") == ""
}

package replica

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/hvro/hvro/test/sim/lab"
)

// killedAfterCommand stands between a driver and its host like a process
// that is killed once its command has started: the Create and Command
// requests reach the host, and nothing after them does (no Receive, no
// Signal, no Delete).
type killedAfterCommand struct {
	next http.RoundTripper

	mu     sync.Mutex
	killed time.Time // when the Command request was answered
	sent   []string  // bodies that reached the host
}

func (k *killedAfterCommand) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	k.mu.Lock()
	if !k.killed.IsZero() {
		k.mu.Unlock()
		return nil, errors.New("hvro was killed")
	}
	k.sent = append(k.sent, string(body))
	k.mu.Unlock()
	resp, err := k.next.RoundTrip(r)
	if bytes.Contains(body, []byte("/windows/shell/Command</a:Action>")) {
		k.mu.Lock()
		k.killed = time.Now()
		k.mu.Unlock()
	}
	return resp, err
}

func (k *killedAfterCommand) state() (time.Time, []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.killed, append([]string(nil), k.sent...)
}

// TestOrphanedCommandEndsAfterShellIdleTimeout: the driver asks every
// shell's host to delete it after ShellIdleTimeout without a request, so
// the command of a driver that dies mid-command (it never receives,
// signals or deletes) is cancelled on the host about that long after the
// last request, instead of running on as long as its cmdlet takes.
func TestOrphanedCommandEndsAfterShellIdleTimeout(t *testing.T) {
	l := startLab(t, func(topo *lab.Topology) { topo.HyperV.MinShellIdleTimeout = 100 * time.Millisecond })
	const latency = 30 * time.Second
	if err := l.World.SetLatency("Get-VM", latency); err != nil {
		t.Fatal(err)
	}
	const idle = 2 * time.Second
	d := l.driver("node2", func(c *Config) { c.ShellIdleTimeout = idle })
	k := &killedAfterCommand{next: d.http.Transport}
	d.http.Transport = k

	before := len(l.World.Log())
	if _, err := d.Inspect(ctxT(t), vm1); err == nil {
		t.Fatal("a driver killed mid-command got a result")
	}
	eventually(t, "the host to end the orphaned command", func() (bool, error) {
		return len(l.World.Log()) > before, nil
	})
	rec := l.World.Log()[before]
	killed, sent := k.state()
	ended := rec.Time.Add(time.Duration(rec.DurationMS) * time.Millisecond)
	if !strings.Contains(rec.Script, "Get-VM") {
		t.Fatalf("unexpected command %q", rec.Script)
	}
	if lived := ended.Sub(killed); lived > idle+2*time.Second {
		t.Fatalf("the orphaned command ran %v after the driver's last request; its shell's idle timeout is %v", lived, idle)
	}

	// The Create asked for it in schema order (the first child of
	// rsp:Shell), as an xs:duration; masterzen's body is otherwise intact.
	if len(sent) != 2 {
		t.Fatalf("%d requests reached the host before the kill, want Create and Command", len(sent))
	}
	const wantShell = "<rsp:Shell><rsp:IdleTimeOut>PT2.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin</rsp:InputStreams>\n<rsp:OutputStreams>stdout stderr</rsp:OutputStreams>\n</rsp:Shell>"
	if !strings.Contains(sent[0], wantShell) {
		t.Errorf("Create body lacks %q:\n%s", wantShell, sent[0])
	}
	if strings.Contains(sent[1], "IdleTimeOut") {
		t.Errorf("the Command request carries an IdleTimeOut:\n%s", sent[1])
	}
	// A live driver's long-polls stay within half the idle timeout, so its
	// shell never idles out, however the host counts idleness.
	ops := regexp.MustCompile(`<w:OperationTimeout>([^<]*)</w:OperationTimeout>`)
	for _, body := range sent {
		if m := ops.FindStringSubmatch(body); m == nil || m[1] != "PT1.000S" {
			t.Errorf("OperationTimeout %q, want PT1.000S (half the 2s idle timeout)", m)
		}
	}
}

// TestHostKeepingShellsLongerIsRefused: a host that reports a longer idle
// timeout than the driver asked for (Windows raises short ones to its
// minimum) would let an orphaned command outlive hvro's restart hold, so
// the driver refuses to run commands there, naming both values.
func TestHostKeepingShellsLongerIsRefused(t *testing.T) {
	l := startLab(t) // Windows' 60s minimum
	d := l.driver("node2", func(c *Config) { c.ShellIdleTimeout = 5 * time.Second })
	_, err := d.Inspect(ctxT(t), vm1)
	var e *Error
	if !errors.As(err, &e) || !IsPermanent(err) || e.Reason != ReasonShellIdleTimeout {
		t.Fatalf("got %v, want a permanent %s error", err, ReasonShellIdleTimeout)
	}
	for _, want := range []string{"1m0s", "5s", "winrm.shell_idle_timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	// A driver asking for at least the host's minimum runs commands.
	ok := l.driver("node2", func(c *Config) { c.ShellIdleTimeout = time.Minute })
	if _, err := ok.Inspect(ctxT(t), vm1); err != nil {
		t.Fatalf("with a 1m idle timeout: %v", err)
	}
}

func TestShellIdleTimeoutConfig(t *testing.T) {
	tests := []struct {
		name string
		idle time.Duration
		want string // error text; empty: accepted
	}{
		{name: "default", idle: 0},
		{name: "lower bound", idle: MinShellIdleTimeout},
		{name: "upper bound", idle: MaxShellIdleTimeout},
		{name: "too short", idle: MinShellIdleTimeout - time.Millisecond, want: "shell idle timeout 1.999s: must be between 2s and 2h0m0s"},
		{name: "too long", idle: MaxShellIdleTimeout + time.Second, want: "shell idle timeout 2h0m1s: must be between 2s and 2h0m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New("node1", Config{Endpoint: "http://127.0.0.1:5985/wsman", Username: "u", ShellIdleTimeout: tc.idle})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				d.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestWithIdleTimeout(t *testing.T) {
	params := winrm.NewParameters("PT20.000S", "en-US", envelopeSize)
	create := winrm.NewOpenShellRequest("http://h:5985/wsman", params).String()
	command := winrm.NewExecuteCommandRequest("http://h:5985/wsman", "SHELL", "hostname", nil, params).String()
	tests := []struct {
		name       string
		msg        string
		want       string // the message sent; "" for an error
		wantCreate bool
	}{
		{name: "masterzen's Create", msg: create, wantCreate: true,
			want: strings.Replace(create, "<rsp:Shell>", "<rsp:Shell><rsp:IdleTimeOut>PT90.500S</rsp:IdleTimeOut>", 1)},
		{name: "another request", msg: command, want: command},
		{name: "a Create whose Shell has no prefix", wantCreate: true,
			msg:  `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action></s:Header><s:Body><Shell xmlns="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><InputStreams>stdin</InputStreams></Shell></s:Body></s:Envelope>`,
			want: `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action></s:Header><s:Body><Shell xmlns="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><IdleTimeOut>PT90.500S</IdleTimeOut><InputStreams>stdin</InputStreams></Shell></s:Body></s:Envelope>`},
		{name: "a Create without a Shell", wantCreate: true,
			msg: `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action></s:Header><s:Body/></s:Envelope>`},
		{name: "not XML", msg: "<a><b></a>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, isCreate, err := withIdleTimeout(tc.msg, 90500*time.Millisecond)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("no error; sent %s", got)
				}
				return
			}
			if err != nil || got != tc.want || isCreate != tc.wantCreate {
				t.Fatalf("got %v, create %v:\n%s\nwant create %v:\n%s", err, isCreate, got, tc.wantCreate, tc.want)
			}
		})
	}
}

func TestReportedIdleTimeout(t *testing.T) {
	reply := func(v string) string {
		return `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><rsp:Shell xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><rsp:ShellId>X</rsp:ShellId>` + v + `</rsp:Shell></s:Body></s:Envelope>`
	}
	tests := []struct {
		name  string
		reply string
		want  time.Duration
		ok    bool
		err   bool // reported, but hvro cannot read it: not to be trusted
	}{
		{"Windows' default", reply("<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"), 2 * time.Hour, true, false},
		{"as asked", reply("<rsp:IdleTimeOut>PT60.000S</rsp:IdleTimeOut>"), time.Minute, true, false},
		{"days to seconds", reply("<rsp:IdleTimeOut>P0DT1H2M3.5S</rsp:IdleTimeOut>"), time.Hour + 2*time.Minute + 3500*time.Millisecond, true, false},
		{"not reported", reply(""), 0, false, false},
		{"unreadable", reply("<rsp:IdleTimeOut>sixty</rsp:IdleTimeOut>"), 0, true, true},
		{"no component", reply("<rsp:IdleTimeOut>PT</rsp:IdleTimeOut>"), 0, true, true},
		{"longer than a Duration", reply("<rsp:IdleTimeOut>P999999999999D</rsp:IdleTimeOut>"), time.Duration(math.MaxInt64), true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := reportedIdleTimeout(tc.reply)
			if got != tc.want || ok != tc.ok || (err != nil) != tc.err {
				t.Fatalf("got %v %v %v, want %v %v (error %v)", got, ok, err, tc.want, tc.ok, tc.err)
			}
		})
	}
}

package clusterapi

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hvro/hvro/test/sim/ecx"
)

func TestReads(t *testing.T) {
	l := newLab(t)
	c := l.client(t, "fip")
	ctx := testCtx(t)

	info, err := c.Cluster(ctx)
	if err != nil || info != (ClusterInfo{Name: "cluster1", Status: "Normal"}) {
		t.Fatalf("Cluster: %+v %v", info, err)
	}
	servers, err := c.Servers(ctx)
	if err != nil || !slices.Equal(servers, []Server{{"node1", ServerOnline}, {"node2", ServerOnline}}) {
		t.Fatalf("Servers: %+v %v", servers, err)
	}
	srv, err := c.Server(ctx, "node2")
	if err != nil || srv != (Server{"node2", ServerOnline}) {
		t.Fatalf("Server: %+v %v", srv, err)
	}
	groups, err := c.Groups(ctx)
	if err != nil || len(groups) != 2 {
		t.Fatalf("Groups: %+v %v", groups, err)
	}
	wantG1 := Group{Name: "failover1", Status: Online, Owner: "node1", Resources: []string{"T1", "fip-failover1", "script-failover1"}}
	if g := groups[0]; g.Name != wantG1.Name || g.Status != wantG1.Status || g.Owner != wantG1.Owner || !slices.Equal(g.Resources, wantG1.Resources) {
		t.Fatalf("Groups[0] = %+v, want %+v", g, wantG1)
	}
	// The emulator sends "current": "None" for a group that runs nowhere.
	if g := groups[1]; g.Status != Offline || g.Owner != "" {
		t.Fatalf("offline group %+v, want Offline with no owner", g)
	}
	g, err := c.Group(ctx, "failover1")
	if err != nil || g.Status != Online || g.Owner != "node1" {
		t.Fatalf("Group: %+v %v", g, err)
	}
	res, err := c.Resources(ctx)
	if err != nil || len(res) != 6 || res[0] != (Resource{Name: "T1", Type: "sd", Status: "Online", Owner: "node1", Group: "failover1"}) ||
		res[3].Owner != "" {
		t.Fatalf("Resources: %+v %v", res, err)
	}
	if got := c.LastEndpoint(); got != l.urls["fip"] {
		t.Fatalf("LastEndpoint %q", got)
	}
	if calls := l.calls.take(); len(calls) != 6 || calls[0] != "fip ok" {
		t.Fatalf("OnRequest calls %q", calls)
	}
}

func TestNotFound(t *testing.T) {
	l := newLab(t)
	c := l.client(t, "node1", "node2")
	ctx := testCtx(t)
	for name, call := range map[string]func() error{
		"group":      func() error { _, err := c.Group(ctx, "nope"); return err },
		"server":     func() error { _, err := c.Server(ctx, "nope"); return err },
		"empty name": func() error { _, err := c.Group(ctx, ""); return err },
		"move":       func() error { return c.MoveGroup(ctx, "nope", "node2") },
	} {
		err := call()
		var e *Error
		if !errors.Is(err, ErrNotFound) || !errors.As(err, &e) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	// Not found is an answer: the second endpoint is never asked. The empty
	// name is refused before any request; the other three ask node1 once.
	want := []string{"node1 not_found", "node1 not_found", "node1 not_found"}
	if calls := l.calls.take(); !slices.Equal(calls, want) {
		t.Fatalf("OnRequest calls %q, want %q", calls, want)
	}
}

func TestWrongPassword(t *testing.T) {
	l := newLab(t)
	c := l.clientWith(t, Config{Endpoints: []string{l.urls["node1"], l.urls["node2"]}, Username: user, Password: "wrong-" + password})
	_, err := c.Group(testCtx(t), "failover1")
	var e *Error
	if !errors.Is(err, ErrAuth) || !errors.As(err, &e) || e.Status != 401 {
		t.Fatalf("err %v, want ErrAuth with HTTP 401", err)
	}
	if calls := l.calls.take(); !slices.Equal(calls, []string{"node1 auth"}) {
		t.Fatalf("calls %q: an auth failure must not be retried or sent to another endpoint", calls)
	}
	if strings.Contains(err.Error(), password) || strings.Contains(l.logs.String(), password) {
		t.Fatal("the password shows in the error or the log")
	}
	if !strings.Contains(l.logs.String(), "ECX API call") {
		t.Fatalf("nothing logged at debug level: %q", l.logs.String())
	}
}

// newGatedLab is newLab with a gate as the cluster's Observer: every disk
// transition waits for the test until free lets all of them through (free
// also runs at cleanup, before the cluster closes).
func newGatedLab(t *testing.T) (l *lab, g *gate, free func()) {
	t.Helper()
	g = &gate{step: make(chan string), proceed: make(chan string), done: make(chan struct{})}
	l = newLabObserved(t, g)
	free = sync.OnceFunc(func() { close(g.done) })
	t.Cleanup(free) // registered after the cluster's Close, so it runs first
	return l, g, free
}

func TestOperations(t *testing.T) {
	l, held, free := newGatedLab(t)
	c := l.client(t, "fip")
	ctx := testCtx(t)
	poll := 5 * time.Millisecond

	if err := c.MoveGroup(ctx, "failover1", "node2"); err != nil {
		t.Fatal(err)
	}
	// The move is held at its disk leaving node1, so it is still running
	// however slow the machine: a second operation is refused inside HTTP 200.
	held.next(t, "disk_offline")
	err := c.MoveGroup(ctx, "failover1", "node1")
	var e *Error
	if !errors.Is(err, ErrAPI) || !errors.As(err, &e) || e.Status != 200 || e.Code != ecx.CodeBusy || !strings.Contains(e.Message, "busy") {
		t.Fatalf("second move: %v, want ErrAPI code %d", err, ecx.CodeBusy)
	}
	// Let every transition through: the rest runs at the emulator's pace.
	free()

	g, err := c.WaitGroupOnline(ctx, "failover1", "NODE2.lab.local", poll) // names compare like Windows names
	if err != nil || g.Owner != "node2" {
		t.Fatalf("wait online: %+v %v", g, err)
	}

	if err := c.StopGroup(ctx, "failover1"); err != nil {
		t.Fatal(err)
	}
	if g, err := c.WaitGroupOffline(ctx, "failover1", poll); err != nil || g.Owner != "" {
		t.Fatalf("wait offline: %+v %v", g, err)
	}
	if err := c.StopGroup(ctx, "failover1"); !errors.Is(err, ErrAPI) {
		t.Fatalf("stopping an offline group: %v, want ErrAPI", err)
	}

	if err := c.StartGroup(ctx, "failover1", "node1"); err != nil {
		t.Fatal(err)
	}
	if g, err := c.WaitGroupOnline(ctx, "failover1", "node1", poll); err != nil || g.Owner != "node1" {
		t.Fatalf("wait online after start: %+v %v", g, err)
	}
	// No target: the cluster picks (the other server for a move).
	if err := c.MoveGroup(ctx, "failover1", ""); err != nil {
		t.Fatal(err)
	}
	if g, err := c.WaitGroupOnline(ctx, "failover1", "", poll); err != nil || g.Owner != "node2" {
		t.Fatalf("move without target: %+v %v", g, err)
	}
	if err := c.MoveGroup(ctx, "failover1", "node9"); !errors.Is(err, ErrAPI) {
		t.Fatalf("move to a non-server: %v, want ErrAPI", err)
	}
}

func TestWaitReportsFailedGroup(t *testing.T) {
	l := newLab(t, failingStart(t))
	c := l.client(t, "fip")
	ctx := testCtx(t)
	// node2's start script fails; ECX fails over to node1, whose start script fails too.
	if err := c.MoveGroup(ctx, "failover1", "node2"); err != nil {
		t.Fatal(err)
	}
	g, err := c.WaitGroupOnline(ctx, "failover1", "node2", 5*time.Millisecond)
	if !errors.Is(err, ErrGroupFailed) || g.Status != OnlineFailure {
		t.Fatalf("wait: %+v %v, want ErrGroupFailed on Online Failure", g, err)
	}
}

func TestWaitReportsFailoverElsewhere(t *testing.T) {
	l := newLab(t, failingStart(t, "NODE2"))
	c := l.client(t, "fip")
	ctx := testCtx(t)
	// node2 cannot start the group; ECX fails it over back to node1.
	if err := c.MoveGroup(ctx, "failover1", "node2"); err != nil {
		t.Fatal(err)
	}
	g, err := c.WaitGroupOnline(ctx, "failover1", "node2", 5*time.Millisecond)
	if !errors.Is(err, ErrGroupFailed) || g.Status != Online || g.Owner != "node1" {
		t.Fatalf("wait: %+v %v, want ErrGroupFailed with the group Online on node1", g, err)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	l := newLab(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel only once an answer has arrived, so the error can report what
	// was last seen however slow the machine is.
	c := l.clientWith(t, Config{Endpoints: []string{l.urls["fip"]}, OnRequest: func(_, outcome string, _ time.Duration) {
		if outcome == "ok" {
			cancel()
		}
	}})
	// failover2 is Offline and nobody starts it.
	_, err := c.WaitGroupOnline(ctx, "failover2", "", 10*time.Millisecond)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `last seen "Offline"`) {
		t.Fatalf("err %v", err)
	}
}

// TestFaults drives every injected fault through the client.
func TestFaults(t *testing.T) {
	tests := []struct {
		name      string
		fault     ecx.Fault
		endpoints []string
		op        string // get or move
		wantKind  error  // nil: the call succeeds
		wantCalls []string
		check     func(t *testing.T, e *Error)
	}{
		{
			name: "one 500 is retried", fault: ecx.Fault{Kind: ecx.FaultHTTP500, Times: 1},
			endpoints: []string{"node1", "node2"}, op: "get", wantCalls: []string{"node1 ok"},
		},
		{
			name: "lasting 500 moves to the next endpoint", fault: ecx.Fault{Kind: ecx.FaultHTTP500, Endpoint: "node1"},
			endpoints: []string{"node1", "node2"}, op: "get", wantCalls: []string{"node1 transport", "node2 ok"},
		},
		{
			name: "500 everywhere", fault: ecx.Fault{Kind: ecx.FaultHTTP500, Message: "Internal error."},
			endpoints: []string{"node1", "node2"}, op: "get", wantKind: ErrTransport,
			wantCalls: []string{"node1 transport", "node2 transport"},
			check: func(t *testing.T, e *Error) {
				if !strings.Contains(e.Error(), "every endpoint failed") || !strings.Contains(e.Error(), "HTTP 500") {
					t.Errorf("error %q", e)
				}
			},
		},
		{
			name: "result code inside HTTP 200", fault: ecx.Fault{Kind: ecx.FaultResultCode, Code: 12, Message: "Cluster is suspended."},
			endpoints: []string{"node1", "node2"}, op: "get", wantKind: ErrAPI, wantCalls: []string{"node1 api_error"},
			check: func(t *testing.T, e *Error) {
				if e.Status != 200 || e.Code != 12 || e.Message != "Cluster is suspended." {
					t.Errorf("error %+v", e)
				}
			},
		},
		{
			name: "result code on an operation", fault: ecx.Fault{Kind: ecx.FaultResultCode, Path: "groups/failover1/move"},
			endpoints: []string{"node1", "node2"}, op: "move", wantKind: ErrAPI, wantCalls: []string{"node1 api_error"},
		},
		{
			name: "hang moves to the next endpoint", fault: ecx.Fault{Kind: ecx.FaultHang, Endpoint: "node1"},
			endpoints: []string{"node1", "node2"}, op: "get", wantCalls: []string{"node1 transport", "node2 ok"},
		},
		{
			name: "non-JSON moves to the next endpoint", fault: ecx.Fault{Kind: ecx.FaultNonJSON, Endpoint: "node1"},
			endpoints: []string{"node1", "node2"}, op: "get", wantCalls: []string{"node1 decode", "node2 ok"},
		},
		{
			name: "non-JSON everywhere", fault: ecx.Fault{Kind: ecx.FaultNonJSON},
			endpoints: []string{"node1"}, op: "get", wantKind: ErrDecode, wantCalls: []string{"node1 decode"},
			check: func(t *testing.T, e *Error) {
				if !strings.Contains(e.Excerpt, "<html>") {
					t.Errorf("excerpt %q", e.Excerpt)
				}
			},
		},
		{
			name: "401", fault: ecx.Fault{Kind: ecx.FaultUnauthorized},
			endpoints: []string{"node1", "node2"}, op: "get", wantKind: ErrAuth, wantCalls: []string{"node1 auth"},
		},
		{
			name: "endpoint down", fault: ecx.Fault{Kind: ecx.FaultEndpointDown, Endpoint: "node1"},
			endpoints: []string{"node1", "node2"}, op: "get", wantCalls: []string{"node1 transport", "node2 ok"},
		},
		{
			name: "endpoint down before an operation", fault: ecx.Fault{Kind: ecx.FaultEndpointDown, Endpoint: "node1"},
			endpoints: []string{"node1", "node2"}, op: "move", wantCalls: []string{"node1 transport", "node2 ok"},
		},
		{
			name: "operation hangs: outcome unknown, not sent again", fault: ecx.Fault{Kind: ecx.FaultHang, Endpoint: "node1", Path: "groups/failover1/move"},
			endpoints: []string{"node1", "node2"}, op: "move", wantKind: ErrTransport, wantCalls: []string{"node1 transport"},
			check: func(t *testing.T, e *Error) {
				if !e.OutcomeUnknown || !strings.Contains(e.Error(), "outcome unknown") {
					t.Errorf("error %q", e)
				}
			},
		},
		{
			name: "operation answered 500 goes to the next endpoint", fault: ecx.Fault{Kind: ecx.FaultHTTP500, Endpoint: "node1"},
			endpoints: []string{"node1", "node2"}, op: "move", wantCalls: []string{"node1 transport", "node2 ok"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			cfg := Config{}
			for _, e := range tc.endpoints {
				cfg.Endpoints = append(cfg.Endpoints, l.urls[e])
			}
			if tc.fault.Kind == ecx.FaultHang {
				cfg.Timeout = 500 * time.Millisecond
			}
			c := l.clientWith(t, cfg)
			if err := l.c.SetFault(tc.fault); err != nil {
				t.Fatal(err)
			}
			var err error
			if tc.op == "get" {
				_, err = c.Group(testCtx(t), "failover1")
			} else {
				err = c.MoveGroup(testCtx(t), "failover1", "node2")
			}
			if tc.wantKind == nil && err != nil || tc.wantKind != nil && !errors.Is(err, tc.wantKind) {
				t.Fatalf("err %v, want kind %v", err, tc.wantKind)
			}
			if calls := l.calls.take(); !slices.Equal(calls, tc.wantCalls) {
				t.Fatalf("calls %q, want %q", calls, tc.wantCalls)
			}
			var e *Error
			if tc.check != nil {
				if !errors.As(err, &e) {
					t.Fatalf("err %T is not *Error", err)
				}
				tc.check(t, e)
			}
		})
	}
}

// TestEndpointFailover: the first endpoint is dead, the second answers and
// the client sticks to it; when it dies too, the client goes round.
func TestEndpointFailover(t *testing.T) {
	l := newLab(t)
	dead := deadURL(t)
	l.urls["dead"] = dead
	c := l.client(t, "dead", "node2", "node1")
	ctx := testCtx(t)

	if _, err := c.Group(ctx, "failover1"); err != nil {
		t.Fatal(err)
	}
	if got := c.LastEndpoint(); got != l.urls["node2"] {
		t.Fatalf("LastEndpoint %q, want node2", got)
	}
	if _, err := c.Groups(ctx); err != nil {
		t.Fatal(err)
	}
	if calls := l.calls.take(); !slices.Equal(calls, []string{"dead transport", "node2 ok", "node2 ok"}) {
		t.Fatalf("calls %q: the client must stick to the endpoint that answered", calls)
	}

	// node2 crashes: its endpoint refuses connections; node1 answers.
	if err := l.c.ServerDown(ctx, "node2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Group(ctx, "failover1"); err != nil {
		t.Fatal(err)
	}
	if calls := l.calls.take(); !slices.Equal(calls, []string{"node2 transport", "node1 ok"}) {
		t.Fatalf("calls %q", calls)
	}
	if got := c.LastEndpoint(); got != l.urls["node1"] {
		t.Fatalf("LastEndpoint %q, want node1", got)
	}
	if !strings.Contains(l.logs.String(), "trying the next") {
		t.Fatal("moving to the next endpoint was not logged")
	}
}

func TestEveryEndpointDead(t *testing.T) {
	l := newLab(t)
	c := l.client(t, deadURL(t), deadURL(t))
	start := time.Now()
	_, err := c.Groups(testCtx(t))
	if !errors.Is(err, ErrTransport) {
		t.Fatalf("err %v, want ErrTransport", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("giving up took %s", took)
	}
}

func TestContextEndsCall(t *testing.T) {
	l := newLab(t)
	l.c.SetFault(ecx.Fault{Kind: ecx.FaultHang})
	c := l.clientWith(t, Config{Endpoints: []string{l.urls["node1"], l.urls["node2"]}, Timeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Groups(ctx)
	if !errors.Is(err, ErrTransport) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrTransport wrapping the deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the call outlived its context by %s", took-200*time.Millisecond)
	}
	if calls := l.calls.take(); len(calls) != 1 {
		t.Fatalf("calls %q: a dead context must not go on to the next endpoint", calls)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
		not  string // must not appear
	}{
		{"empty", Config{}, []string{"endpoints: empty", "username: empty"}, ""},
		{"bad scheme", Config{Endpoints: []string{"htp://x"}, Username: "u"}, []string{`endpoints[0]: "htp://x" is not an http(s) URL`}, ""},
		{"credentials in URL", Config{Endpoints: []string{"http://admin:hunter2@h:29009"}, Username: "u"}, []string{"endpoints[0]", "holds credentials"}, "hunter2"},
		{"path", Config{Endpoints: []string{"http://h:29009/x"}, Username: "u"}, []string{"path must be empty"}, ""},
		{"both TLS choices", Config{Endpoints: []string{"https://h"}, Username: "u", CAFile: "ca.pem", InsecureSkipVerify: true}, []string{"set one, not both"}, ""},
		{"missing CA file", Config{Endpoints: []string{"https://h"}, Username: "u", CAFile: "/nonexistent/ca.pem"}, []string{"ca_file"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.not != "" && strings.Contains(err.Error(), tc.not) {
				t.Errorf("error %q shows %q", err, tc.not)
			}
		})
	}
	for _, ok := range []string{"http://h:29009", "https://h:29009/", "http://h:29009/api/v1/"} {
		c, err := New(Config{Endpoints: []string{ok}, Username: "u"})
		if err != nil {
			t.Errorf("%q: %v", ok, err)
		} else if !strings.HasSuffix(c.endpoints[0], ":29009") {
			t.Errorf("%q normalised to %q", ok, c.endpoints[0])
		}
	}
}

func TestGroupStatus(t *testing.T) {
	tests := []struct {
		s                      GroupStatus
		known, settled, failed bool
	}{
		{Online, true, true, false},
		{Offline, true, true, false},
		{OnlinePending, true, false, false},
		{OfflinePending, true, false, false},
		{OnlineFailure, true, true, true},
		{OfflineFailure, true, true, true},
		{"OnlinePending", false, false, false},
		{"Unknown", false, false, false},
	}
	for _, tc := range tests {
		if tc.s.Known() != tc.known || tc.s.Settled() != tc.settled || tc.s.Failed() != tc.failed {
			t.Errorf("%q: known %v settled %v failed %v", tc.s, tc.s.Known(), tc.s.Settled(), tc.s.Failed())
		}
	}
}

// TestOperationAfterServerDroppedConnection: the server closed the
// kept-alive connection of an earlier read (Node.js does after 5s idle); an
// operation must not fail as "outcome unknown" because of it.
func TestOperationAfterServerDroppedConnection(t *testing.T) {
	l := newLab(t)
	c := l.client(t, "node1")
	ctx := testCtx(t)
	for i := range 20 {
		if _, err := c.Group(ctx, "failover1"); err != nil { // leaves an idle connection
			t.Fatal(err)
		}
		// Restarting the endpoint closes every connection it had.
		if err := l.c.SetFault(ecx.Fault{Kind: ecx.FaultEndpointDown, Endpoint: "node1"}); err != nil {
			t.Fatal(err)
		}
		if err := l.c.SetFault(ecx.Fault{Kind: ecx.FaultNone}); err != nil {
			t.Fatal(err)
		}
		target := []string{"node2", "node1"}[i%2]
		if err := c.MoveGroup(ctx, "failover1", target); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if _, err := c.WaitGroupOnline(ctx, "failover1", target, 5*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMaxCallDurationCoversBackoff: a deadline of MaxCallDuration lets a
// call get through every retry of a failing endpoint, backoff included,
// and still reach the next one. Timeout is short next to the backoff here,
// as a budget counting only timeouts would get wrong.
func TestMaxCallDurationCoversBackoff(t *testing.T) {
	l := newLab(t)
	c := l.clientWith(t, Config{Endpoints: []string{l.urls["node1"], l.urls["node2"]},
		Timeout: 300 * time.Millisecond, Retries: 4, RetryWaitMin: 400 * time.Millisecond, RetryWaitMax: 1600 * time.Millisecond})
	// 5 attempts of 300ms and waits of 0.4+0.8+1.6+1.6s, for each endpoint.
	if got, want := c.MaxCallDuration(), 2*(5*300*time.Millisecond+4400*time.Millisecond); got != want {
		t.Fatalf("MaxCallDuration %v, want %v", got, want)
	}
	if err := l.c.SetFault(ecx.Fault{Kind: ecx.FaultHTTP500, Endpoint: "node1"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.MaxCallDuration())
	defer cancel()
	if _, err := c.Group(ctx, "failover1"); err != nil {
		t.Fatalf("within MaxCallDuration: %v", err)
	}
	if calls := l.calls.take(); !slices.Equal(calls, []string{"node1 transport", "node2 ok"}) {
		t.Fatalf("calls %q", calls)
	}
}

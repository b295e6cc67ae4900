package ecx

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hvro/hvro/test/within"
)

func twoGroups(t *testing.T) *harness {
	return newHarness(t, []string{"node1", "node2"}, []GroupConfig{
		{Name: "failover1", Owner: "node1", Disk: "T1", Scripts: Scripts{Start: []string{}}},
		{Name: "failover2", Disk: "T2", Scripts: Scripts{Start: []string{}}},
	})
}

func TestAPIReads(t *testing.T) {
	h := twoGroups(t)
	tests := []struct {
		path  string
		key   string
		check func(t *testing.T, data any)
	}{
		{"/api/v1/cluster", "cluster", func(t *testing.T, d any) {
			o := d.(map[string]any)
			if o["name"] != "c1" || o["status"] != "Normal" {
				t.Errorf("cluster %v", o)
			}
		}},
		{"/api/v1/servers", "servers", func(t *testing.T, d any) {
			if names := names(d); !slices.Equal(names, []string{"node1", "node2"}) {
				t.Errorf("servers %v", names)
			}
			if s := d.([]any)[0].(map[string]any); s["status"] != "Online" {
				t.Errorf("server %v", s)
			}
		}},
		{"/api/v1/servers/node2", "servers", func(t *testing.T, d any) {
			if names := names(d); !slices.Equal(names, []string{"node2"}) {
				t.Errorf("one server is still an array: %v", d)
			}
		}},
		{"/api/v1/groups", "groups", func(t *testing.T, d any) {
			g := d.([]any)
			g1, g2 := g[0].(map[string]any), g[1].(map[string]any)
			if g1["status"] != "Online" || g1["current"] != "node1" || g2["status"] != "Offline" || g2["current"] != "None" {
				t.Errorf("groups %v", g)
			}
			if g1["type"] != "failover" {
				t.Errorf("the extra field a client must ignore is missing: %v", g1)
			}
			if rs := names(g1["resources"]); !slices.Equal(rs, []string{"T1", "fip-failover1", "script-failover1"}) {
				t.Errorf("resources of a group %v", rs)
			}
		}},
		{"/api/v1/groups/failover2", "groups", func(t *testing.T, d any) {
			if g := d.([]any); len(g) != 1 || g[0].(map[string]any)["current"] != "None" {
				t.Errorf("named group: %v", d)
			}
		}},
		{"/api/v1/groups?select=name", "groups", func(t *testing.T, d any) {
			if len(d.([]any)) != 2 {
				t.Errorf("select=name gave %d groups, want 2: %v", len(d.([]any)), d)
			}
			for _, g := range d.([]any) {
				if len(g.(map[string]any)) != 1 {
					t.Errorf("select=name gave %v", g)
				}
			}
		}},
		{"/api/v1/groups/failover1?select=name,current", "groups", func(t *testing.T, d any) {
			if g := d.([]any)[0].(map[string]any); len(g) != 2 || g["current"] != "node1" {
				t.Errorf("select=name,current gave %v", g)
			}
		}},
		{"/api/v1/resources", "resources", func(t *testing.T, d any) {
			if len(d.([]any)) != 6 {
				t.Errorf("resources %v", d)
			}
		}},
		{"/api/v1/resources/T2", "resources", func(t *testing.T, d any) {
			r := d.([]any)[0].(map[string]any)
			if r["type"] != "sd" || r["status"] != "Offline" || r["current"] != "None" || r["group"] != "failover2" {
				t.Errorf("resource %v", r)
			}
		}},
		{"/api/v1/monitors", "monitors", func(t *testing.T, d any) {
			if names := names(d); !slices.Equal(names, []string{"userw", "fipw-failover1", "fipw-failover2"}) {
				t.Errorf("monitors %v", names)
			}
		}},
		{"/api/v1/monitors/fipw-failover1", "monitors", func(t *testing.T, d any) {
			m := d.([]any)[0].(map[string]any)
			srv := m["servers"].([]any)
			if m["status"] != "Normal" || srv[0].(map[string]any)["status"] != "Normal" || srv[1].(map[string]any)["status"] != "Offline" {
				t.Errorf("monitor %v", m)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			code, m := h.call("GET", tc.path, "")
			if code != 200 || resultCode(t, m) != 0 {
				t.Fatalf("HTTP %d %v", code, m)
			}
			if res := m["result"].(map[string]any); res["message"] != "" {
				t.Errorf("message %q on success", res["message"])
			}
			tc.check(t, m[tc.key])
		})
	}
}

func names(d any) []string {
	var out []string
	for _, o := range d.([]any) {
		out = append(out, o.(map[string]any)["name"].(string))
	}
	return out
}

// TestAPIRefusals: what the emulator turns down, and how.
func TestAPIRefusals(t *testing.T) {
	h := twoGroups(t)
	tests := []struct {
		name, method, path, body string
		user, pass               string
		contentType              string
		wantHTTP, wantCode       int
	}{
		{name: "no auth", method: "GET", path: "/api/v1/groups", wantHTTP: 401, wantCode: CodeAuth},
		{name: "wrong password", method: "GET", path: "/api/v1/groups", user: "Administrator", pass: "nope", wantHTTP: 401, wantCode: CodeAuth},
		{name: "wrong user", method: "GET", path: "/api/v1/groups", user: "root", pass: "s3cret", wantHTTP: 401, wantCode: CodeAuth},
		{name: "unknown group", method: "GET", path: "/api/v1/groups/nope", wantHTTP: 404, wantCode: CodeNotFound},
		{name: "unknown server", method: "GET", path: "/api/v1/servers/nope", wantHTTP: 404, wantCode: CodeNotFound},
		{name: "unknown path", method: "GET", path: "/api/v1/nothing", wantHTTP: 404, wantCode: CodeNotFound},
		{name: "trailing slash", method: "GET", path: "/api/v1/groups/", wantHTTP: 404, wantCode: CodeNotFound},
		{name: "not the api", method: "GET", path: "/", wantHTTP: 404, wantCode: CodeNotFound},
		{name: "POST a read", method: "POST", path: "/api/v1/groups", wantHTTP: 405, wantCode: CodeInvalid},
		{name: "GET an operation", method: "GET", path: "/api/v1/groups/failover1/move", wantHTTP: 405, wantCode: CodeInvalid},
		{name: "operation on unknown group", method: "POST", path: "/api/v1/groups/nope/move", wantHTTP: 404, wantCode: CodeNotFound},
		{name: "bad JSON body", method: "POST", path: "/api/v1/groups/failover1/move", body: `{"target":`, wantHTTP: 400, wantCode: CodeInvalid},
		{name: "target not a string", method: "POST", path: "/api/v1/groups/failover1/move", body: `{"target":2}`, wantHTTP: 400, wantCode: CodeInvalid},
		{name: "form body", method: "POST", path: "/api/v1/groups/failover1/move", body: `{"target":"node2"}`, contentType: "application/x-www-form-urlencoded", wantHTTP: 400, wantCode: CodeInvalid},
		{name: "target not a server", method: "POST", path: "/api/v1/groups/failover1/move", body: `{"target":"node9"}`, wantHTTP: 200, wantCode: CodeInvalid},
		{name: "move to current owner", method: "POST", path: "/api/v1/groups/failover1/move", body: `{"target":"node1"}`, wantHTTP: 200, wantCode: CodeState},
		{name: "move an offline group", method: "POST", path: "/api/v1/groups/failover2/move", wantHTTP: 200, wantCode: CodeState},
		{name: "stop an offline group", method: "POST", path: "/api/v1/groups/failover2/stop", wantHTTP: 200, wantCode: CodeState},
		{name: "start an online group", method: "POST", path: "/api/v1/groups/failover1/start", wantHTTP: 200, wantCode: CodeState},
		{name: "start a server that is up", method: "POST", path: "/api/v1/servers/node1/start", wantHTTP: 200, wantCode: CodeState},
		{name: "server stop not emulated", method: "POST", path: "/api/v1/servers/node1/stop", wantHTTP: 501, wantCode: CodeNotSupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user, pass := "Administrator", "s3cret"
			if tc.user != "" || tc.wantHTTP == 401 {
				user, pass = tc.user, tc.pass
			}
			req, _ := http.NewRequest(tc.method, h.url+tc.path, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", cmp.Or(tc.contentType, "application/json"))
			}
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantHTTP || !strings.Contains(string(body), `"code":`+strconv.Itoa(tc.wantCode)+",") {
				t.Fatalf("HTTP %d %s, want HTTP %d code %d", resp.StatusCode, body, tc.wantHTTP, tc.wantCode)
			}
			if tc.wantHTTP == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.wantHTTP == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	// None of that changed anything.
	if st, cur := h.group("failover1"); st != StatusOnline || cur != "node1" {
		t.Fatalf("failover1 %q on %q after refusals", st, cur)
	}
}

// TestAPIMoveIsAsynchronous: POST answers at once, GET shows the Pending
// statuses while the move runs, a second operation is refused.
func TestAPIMoveIsAsynchronous(t *testing.T) {
	h := twoGroups(t)
	step := make(chan string)
	proceed := make(chan struct{})
	h.rec.gate = func(kind, server string) {
		step <- kind
		<-proceed
	}
	code, m := h.call("POST", "/api/v1/groups/failover1/move", `{"target":"node2"}`)
	if code != 200 || resultCode(t, m) != 0 || m["result"].(map[string]any)["message"] != "" {
		t.Fatalf("POST move: HTTP %d %v", code, m)
	}
	if k := within.Recv(t, step, "first transition"); k != "disk_offline" {
		t.Fatalf("first transition %q", k)
	}
	if st, cur := h.group("failover1"); st != StatusOfflinePending || cur != "node1" {
		t.Fatalf("while stopping: %q on %q", st, cur)
	}
	code, m = h.call("POST", "/api/v1/groups/failover1/move", "")
	if code != 200 || resultCode(t, m) != CodeBusy {
		t.Fatalf("second operation: HTTP %d %v, want 200 code %d", code, m, CodeBusy)
	}
	proceed <- struct{}{}
	if k := within.Recv(t, step, "second transition"); k != "disk_online" {
		t.Fatalf("second transition %q", k)
	}
	if st, cur := h.group("failover1"); st != StatusOnlinePending || cur != "node2" {
		t.Fatalf("while starting: %q on %q", st, cur)
	}
	proceed <- struct{}{}
	within.Eventually(t, "failover1 Online on node2", func() bool {
		st, cur := h.group("failover1")
		return st == StatusOnline && cur == "node2"
	})
	// Another group's operation while nothing blocks.
	h.rec.gate = nil
	code, m = h.call("POST", "/api/v1/groups/failover2/start", `{"target":"node2"}`)
	if code != 200 || resultCode(t, m) != 0 {
		t.Fatalf("start: HTTP %d %v", code, m)
	}
	within.Eventually(t, "failover2 Online on node2", func() bool {
		st, cur := h.group("failover2")
		return st == StatusOnline && cur == "node2"
	})
	code, m = h.call("POST", "/api/v1/groups/failover2/stop", "{}")
	if code != 200 || resultCode(t, m) != 0 {
		t.Fatalf("stop: HTTP %d %v", code, m)
	}
	within.Eventually(t, "failover2 Offline", func() bool {
		st, cur := h.group("failover2")
		return st == StatusOffline && cur == "None"
	})
}

func TestAPIServerStartRejoins(t *testing.T) {
	h := twoGroups(t)
	if err := h.c.ServerDown(ctxT(t), "node2"); err != nil {
		t.Fatal(err)
	}
	code, m := h.call("POST", "/api/v1/servers/node2/start", "")
	if code != 200 || resultCode(t, m) != 0 {
		t.Fatalf("HTTP %d %v", code, m)
	}
	if st := h.c.State().Servers[1]; st.Status != "Online" {
		t.Fatalf("node2 %+v", st)
	}
}

func TestFaults(t *testing.T) {
	h := twoGroups(t)
	// Only the hang case times out; the others must answer even on a loaded machine.
	client := &http.Client{Timeout: 5 * time.Second}
	hangClient := &http.Client{Timeout: 300 * time.Millisecond}
	getWith := func(client *http.Client, path string) (int, string, error) {
		req, _ := http.NewRequest("GET", h.url+path, nil)
		req.SetBasicAuth("Administrator", "s3cret")
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	get := func(path string) (int, string, error) { return getWith(client, path) }
	tests := []struct {
		fault    Fault
		wantHTTP int
		wantBody string
		wantErr  bool
	}{
		{fault: Fault{Kind: FaultHTTP500, Times: 1}, wantHTTP: 500, wantBody: `"code":99`},
		{fault: Fault{Kind: FaultResultCode, Times: 1, Code: 12, Message: "Cluster is busy."}, wantHTTP: 200, wantBody: `{"result":{"code":12,"message":"Cluster is busy."}}`},
		{fault: Fault{Kind: FaultNonJSON, Times: 1}, wantHTTP: 200, wantBody: "<html>"},
		{fault: Fault{Kind: FaultUnauthorized, Times: 1}, wantHTTP: 401, wantBody: `"code":6`},
		{fault: Fault{Kind: FaultHang, Times: 1}, wantErr: true},
		{fault: Fault{Kind: FaultHTTP500, Times: 1, Path: "groups/failover2"}, wantHTTP: 200, wantBody: `"current":"node1"`}, // other path: no fault
		{fault: Fault{Kind: FaultHTTP500, Times: 1, Endpoint: "node1"}, wantHTTP: 200, wantBody: `"current":"node1"`},        // other endpoint
	}
	for _, tc := range tests {
		t.Run(string(tc.fault.Kind), func(t *testing.T) {
			defer h.c.SetFault(Fault{Kind: FaultNone})
			if err := h.c.SetFault(tc.fault); err != nil {
				t.Fatal(err)
			}
			first := client
			if tc.fault.Kind == FaultHang {
				first = hangClient
			}
			code, body, err := getWith(first, "/api/v1/groups/failover1")
			if tc.wantErr {
				// A hang is a timeout, not a refused or dropped connection.
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("a hanging API: HTTP %d %s (%v), want the client's timeout", code, body, err)
				}
			} else if err != nil || code != tc.wantHTTP || !strings.Contains(body, tc.wantBody) {
				t.Fatalf("got HTTP %d %q (%v), want HTTP %d with %q", code, body, err, tc.wantHTTP, tc.wantBody)
			}
			// Times 1: the next request is served normally.
			if code, body, err := get("/api/v1/groups/failover1"); err != nil || code != 200 || !strings.Contains(body, `"code":0`) {
				t.Fatalf("after the fault: HTTP %d %q %v", code, body, err)
			}
		})
	}
	t.Run("result_code on an operation does nothing", func(t *testing.T) {
		h.c.SetFault(Fault{Kind: FaultResultCode, Path: "groups/failover1/move"})
		defer h.c.SetFault(Fault{Kind: FaultNone})
		for range 2 { // until cleared
			code, m := h.call("POST", "/api/v1/groups/failover1/move", "")
			if code != 200 || resultCode(t, m) != CodeInternal {
				t.Fatalf("HTTP %d %v", code, m)
			}
		}
		if st, cur := h.group("failover1"); st != StatusOnline || cur != "node1" {
			t.Fatalf("group %q on %q", st, cur)
		}
	})
	t.Run("invalid faults", func(t *testing.T) {
		for _, f := range []Fault{{Kind: "boom"}, {Kind: FaultHTTP500, Times: -1}, {Kind: FaultEndpointDown, Endpoint: "fip", Times: 2}} {
			if err := h.c.SetFault(f); err == nil {
				t.Errorf("SetFault(%+v) accepted", f)
			}
		}
	})
}

func TestHangReleasedByClose(t *testing.T) {
	h := twoGroups(t)
	h.c.SetFault(Fault{Kind: FaultHang, Times: 1})
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", h.url+"/api/v1/groups", nil)
		_, err := http.DefaultClient.Do(req)
		errc <- err
	}()
	within.Eventually(t, "request hanging", func() bool { return len(h.c.State().Faults) == 0 })
	h.c.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("the hanging request got an answer")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release a hanging request")
	}
}

// TestEndpoints: one cluster on several listeners; a fault or a crash takes
// one of them down (connection refused) and the others keep answering.
func TestEndpoints(t *testing.T) {
	h := twoGroups(t)
	a1, err := h.c.Listen("node1", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := h.c.Listen("node2", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Listen("node2", "127.0.0.1:0"); err == nil {
		t.Fatal("a second listener for one endpoint was accepted")
	}
	url1, url2 := "http://"+a1.String(), "http://"+a2.String()
	ok := func(url string) {
		t.Helper()
		code, m := callAPI(t, "GET", url+"/api/v1/groups/failover1", "Administrator", "s3cret", "")
		if code != 200 || resultCode(t, m) != 0 {
			t.Fatalf("%s: HTTP %d %v", url, code, m)
		}
	}
	refused := func(url string) {
		t.Helper()
		_, err := http.Get(url + "/api/v1/groups")
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("%s: %v, want connection refused", url, err)
		}
	}
	ok(url1)
	ok(url2)

	if err := h.c.SetFault(Fault{Kind: FaultEndpointDown, Endpoint: "node1"}); err != nil {
		t.Fatal(err)
	}
	refused(url1)
	ok(url2)
	ok(h.url)
	if err := h.c.SetFault(Fault{Kind: FaultNone, Endpoint: "node1"}); err != nil {
		t.Fatal(err)
	}
	ok(url1) // listening again on the same address

	if err := h.c.ServerDown(ctxT(t), "node2"); err != nil {
		t.Fatal(err)
	}
	refused(url2)
	ok(url1)
	if err := h.c.ServerUp(ctxT(t), "node2"); err != nil {
		t.Fatal(err)
	}
	ok(url2)

	eps := h.c.State().Endpoints
	if len(eps) != 3 || eps[1].Name != "node1" || eps[1].Addr != a1.String() || !eps[1].Up {
		t.Fatalf("endpoints %+v", eps)
	}
}

// TestHandlerForDropsConnectionsWhenDown: a mounted handler cannot refuse a
// connection; it drops it without an answer.
func TestHandlerForDropsConnectionsWhenDown(t *testing.T) {
	h := twoGroups(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h.c.HandlerFor("vip")}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	h.c.SetFault(Fault{Kind: FaultEndpointDown, Endpoint: "vip"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/api/v1/groups", nil)
	// Dropped at once: an answer, or the client giving up after 5s (a
	// handler that hangs), both fail.
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a down endpoint answered HTTP %d", resp.StatusCode)
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a down endpoint hung instead of dropping the connection: %v", err)
	}
	if code, _ := h.call("GET", "/api/v1/groups", ""); code != 200 {
		t.Fatalf("endpoint fip: HTTP %d", code)
	}
}

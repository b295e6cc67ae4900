package ecx

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/test/within"
)

func TestControlHandler(t *testing.T) {
	h := newHarness(t, []string{"node1", "node2"}, []GroupConfig{{Name: "failover1", Owner: "node1", Disk: "T1"}})
	srv := httptest.NewServer(ControlHandler(map[string]*Cluster{"c1": h.c}))
	t.Cleanup(srv.Close)
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: not JSON: %q", method, path, raw)
		}
		return resp.StatusCode, m
	}
	errCode := func(m map[string]any) string {
		e, _ := m["error"].(map[string]any)
		s, _ := e["code"].(string)
		return s
	}

	code, m := do("POST", "/sim/ecx/c1/groups/failover1/move", `{"target":"node2"}`)
	if g := m["group"].(map[string]any); code != 200 || g["status"] != "Online" || g["owner"] != "node2" {
		t.Fatalf("move: %d %v", code, m)
	}
	want := []string{"script stop NODE1 START/GROUPMOVE", "disk_offline NODE1", "disk_online NODE2", "script start NODE2 START/GROUPMOVE"}
	if got := h.events(); !slices.Equal(got, want) {
		t.Fatalf("events %q", got)
	}

	code, m = do("POST", "/sim/ecx/c1/servers/node2/down", "")
	if code != 200 || m["servers"].([]any)[1].(map[string]any)["status"] != "Offline" {
		t.Fatalf("down: %d %v", code, m)
	}
	if g := m["groups"].([]any)[0].(map[string]any); g["owner"] != "node1" {
		t.Fatalf("down answered before the failover settled: %v", g)
	}
	if code, m = do("POST", "/sim/ecx/c1/servers/node2/up", ""); code != 200 {
		t.Fatalf("up: %d %v", code, m)
	}

	code, m = do("POST", "/sim/ecx/c1/faults", `{"kind":"http500","times":2,"endpoint":"fip"}`)
	if f := m["faults"].([]any); code != 200 || len(f) != 1 {
		t.Fatalf("fault: %d %v", code, m)
	}
	if code, m = do("GET", "/sim/ecx/c1/faults", ""); len(m["faults"].([]any)) != 1 {
		t.Fatalf("faults: %d %v", code, m)
	}
	if code, _ := h.call("GET", "/api/v1/groups", ""); code != 500 {
		t.Fatalf("fault set through the control API not applied: HTTP %d", code)
	}
	if code, m = do("DELETE", "/sim/ecx/c1/faults", ""); code != 200 || len(m["faults"].([]any)) != 0 {
		t.Fatalf("clear: %d %v", code, m)
	}

	code, m = do("POST", "/sim/ecx/c1/groups/failover1/stop?wait=false", "")
	if code != 202 || m["group"].(map[string]any)["status"] != StatusOfflinePending {
		t.Fatalf("stop without wait: %d %v", code, m)
	}
	within.Eventually(t, "stopped", func() bool { return h.c.State().Group("failover1").Status == StatusOffline })

	errors := []struct {
		method, path, body string
		wantHTTP           int
		wantCode           string
	}{
		{"GET", "/sim/ecx/nope", "", 404, "not_found"},
		{"POST", "/sim/ecx/c1/groups/nope/move", "", 404, "not_found"},
		{"POST", "/sim/ecx/c1/servers/nope/down", "", 404, "not_found"},
		{"POST", "/sim/ecx/c1/groups/failover1/move", "", 409, "refused"}, // offline
		{"POST", "/sim/ecx/c1/servers/node1/up", "", 409, "refused"},
		{"POST", "/sim/ecx/c1/groups/failover1/start", `{"target":`, 400, "bad_request"},
		{"POST", "/sim/ecx/c1/groups/failover1/start", `{"server":"node1"}`, 400, "bad_request"},
		{"POST", "/sim/ecx/c1/groups/failover1/stop", `{"target":"node1"}`, 400, "bad_request"},
		{"POST", "/sim/ecx/c1/faults", `{"kind":"boom"}`, 400, "bad_request"},
		{"GET", "/sim/ecx/c1/groups/failover1/move", "", 405, "method_not_allowed"},
		{"PUT", "/sim/ecx/c1/faults", "", 405, "method_not_allowed"},
		{"GET", "/sim/ecx/c1/nothing", "", 404, "not_found"},
	}
	for _, tc := range errors {
		code, m := do(tc.method, tc.path, tc.body)
		if code != tc.wantHTTP || errCode(m) != tc.wantCode {
			t.Errorf("%s %s %s: %d %v, want %d %s", tc.method, tc.path, tc.body, code, m, tc.wantHTTP, tc.wantCode)
		}
	}

	code, m = do("GET", "/sim/ecx", "")
	if cl := m["clusters"].([]any); code != 200 || len(cl) != 1 || cl[0].(map[string]any)["name"] != "c1" {
		t.Fatalf("list: %d %v", code, m)
	}
}

func TestControlOperationFailed(t *testing.T) {
	h := newHarness(t, []string{"node1", "node2"}, []GroupConfig{{Name: "g", Disk: "T1"}}, "ECX_HELPER_FAIL=start:NODE1,start:NODE2")
	srv := httptest.NewServer(ControlHandler(map[string]*Cluster{"c1": h.c}))
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL+"/sim/ecx/c1/groups/g/start", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 409 || !strings.Contains(string(raw), "operation_failed") || !strings.Contains(string(raw), "on node2") {
		t.Fatalf("HTTP %d %s", resp.StatusCode, raw)
	}
}

func TestConfigValidation(t *testing.T) {
	good := func() Config {
		return Config{Name: "c1", Username: "u", Servers: []string{"node1", "node2"},
			Groups: []GroupConfig{{Name: "g1", Owner: "node1", Disk: "T1"}}}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "name:"},
		{"name with space", func(c *Config) { c.Name = "my cluster" }, "name:"},
		{"no user", func(c *Config) { c.Username = "" }, "username"},
		{"no servers", func(c *Config) { c.Servers = nil; c.Groups[0].Owner = "" }, "servers: empty"},
		{"duplicate server", func(c *Config) { c.Servers = []string{"node1", "NODE1"} }, "appears twice"},
		{"unknown owner", func(c *Config) { c.Groups[0].Owner = "node9" }, "groups[0].owner"},
		{"no disk", func(c *Config) { c.Groups[0].Disk = "" }, "groups[0].disk"},
		{"duplicate group", func(c *Config) { c.Groups = append(c.Groups, GroupConfig{Name: "g1", Disk: "T2"}) }, "groups[1].name"},
		{"shared disk", func(c *Config) { c.Groups = append(c.Groups, GroupConfig{Name: "g2", Disk: "T1"}) }, "groups[1].disk"},
		{"empty argv", func(c *Config) { c.Groups[0].Scripts.Start = []string{""} }, "scripts.start"},
		{"negative timeout", func(c *Config) { c.Groups[0].Scripts.Timeout = -time.Second }, "scripts.timeout"},
	}
	if c, err := New(good(), nil, nil); err != nil {
		t.Fatalf("good config: %v", err)
	} else {
		c.Close()
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.mutate(&cfg)
			_, err := New(cfg, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
	// Every problem is reported, not just the first.
	cfg := good()
	cfg.Username, cfg.Groups[0].Owner = "", "node9"
	if _, err := New(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "username") || !strings.Contains(err.Error(), "owner") {
		t.Fatalf("error %v should name both problems", err)
	}
}

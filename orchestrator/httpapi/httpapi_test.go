package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/orchestrator"
	"github.com/hvro/hvro/store"
)

type fakeController struct {
	hooks   []orchestrator.HookRequest
	waits   []time.Duration
	hookErr error
	paused  map[string]bool
	// hookTakes is how long a hook's pass lasts (never beyond its wait).
	hookTakes time.Duration
}

func (f *fakeController) Hook(ctx context.Context, h orchestrator.HookRequest, wait time.Duration) (orchestrator.HookResult, error) {
	f.hooks = append(f.hooks, h)
	f.waits = append(f.waits, wait)
	time.Sleep(min(f.hookTakes, wait))
	if f.hookErr != nil {
		return orchestrator.HookResult{}, f.hookErr
	}
	return orchestrator.HookResult{Outcome: "ok", Op: 7, Pairs: []orchestrator.HookPairResult{{Pair: "vm1", Outcome: "ok"}}}, nil
}

func (f *fakeController) Reconcile(name string) error {
	if name != "vm1" {
		return orchestrator.ErrUnknownPair
	}
	if f.paused[name] {
		return orchestrator.ErrPaused
	}
	return nil
}

func (f *fakeController) SetPaused(name string, p bool) error {
	if name != "vm1" {
		return orchestrator.ErrUnknownPair
	}
	f.paused[name] = p
	return nil
}

func (f *fakeController) Failover(name string, req orchestrator.FailoverRequest) (uint64, <-chan orchestrator.PassResult, error) {
	if f.paused[name] {
		return 0, nil, orchestrator.ErrPaused
	}
	return 42, nil, nil
}

func (f *fakeController) PairNames() []string { return []string{"vm1"} }

func (f *fakeController) Groups() map[orchestrator.GroupKey]orchestrator.GroupState {
	return map[orchestrator.GroupKey]orchestrator.GroupState{
		{Cluster: "cluster1", Group: "failover1"}: {Poll: orchestrator.Observation{Status: "Online", Owner: "node1", Source: "poll", At: time.Now()}},
		{Cluster: "cluster2", Group: "failover2"}: {Poll: orchestrator.Observation{Err: "connection refused", Source: "poll", At: time.Now()}},
	}
}

func newAPI(t *testing.T) (*httptest.Server, *fakeController) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "hvro.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.Update(func(tx store.Tx) error {
		return tx.PutPair(store.Pair{Name: "vm1", PrimaryCluster: "cluster1", Phase: "Converged",
			Config: store.PairConfig{VMName: "vm1", Primary: store.Side{Cluster: "cluster1", Group: "failover1"}, Replica: store.Side{Cluster: "cluster2", Group: "failover2"}}})
	})
	fc := &fakeController{paused: map[string]bool{}}
	srv := httptest.NewServer(Handler(Deps{
		Controller: fc, Store: st, AdminToken: "admin-secret", HookTokens: map[string]string{"cluster1": "hook-1", "cluster2": "hook-2"},
		Metrics:       http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hvro_queue_depth 0\n") }),
		Ready:         func() error { return nil },
		MetricsPublic: true,
	}))
	t.Cleanup(srv.Close)
	return srv, fc
}

func call(t *testing.T, srv *httptest.Server, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil && resp.Header.Get("Content-Type") == "application/json" {
		t.Fatalf("%s %s: body %q is not JSON", method, path, data)
	}
	if resp.StatusCode >= 400 {
		e, ok := m["error"].(map[string]any)
		code, _ := e["code"].(string)
		msg, _ := e["message"].(string)
		if !ok || code == "" || msg == "" {
			t.Fatalf("%s %s: error body %s lacks {error:{code,message}}", method, path, data)
		}
	}
	return resp.StatusCode, m
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

const hookJSON = `{"cluster":"cluster1","group":"failover1","server":"node1","phase":"start","event":"START"}`

func TestAuth(t *testing.T) {
	srv, _ := newAPI(t)
	tests := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"pairs without token", "GET", "/v1/pairs", "", "", 401, "unauthorized"},
		{"pairs with wrong token", "GET", "/v1/pairs", "nope", "", 401, "unauthorized"},
		{"pairs with a hook token", "GET", "/v1/pairs", "hook-1", "", 403, "forbidden"},
		{"pairs with admin", "GET", "/v1/pairs", "admin-secret", "", 200, ""},
		{"hook without token", "POST", "/v1/hooks", "", hookJSON, 401, "unauthorized"},
		{"hook with wrong token", "POST", "/v1/hooks", "hook-x", hookJSON, 401, "unauthorized"},
		{"hook with the other cluster's token", "POST", "/v1/hooks", "hook-2", hookJSON, 403, "forbidden"},
		{"hook with its cluster's token", "POST", "/v1/hooks", "hook-1", hookJSON, 200, ""},
		{"hook with the admin token", "POST", "/v1/hooks", "admin-secret", hookJSON, 200, ""},
		{"metrics are public here", "GET", "/metrics", "", "", 200, ""},
		{"healthz", "GET", "/healthz", "", "", 200, ""},
		{"readyz", "GET", "/readyz", "", "", 200, ""},
		{"failover with a hook token", "POST", "/v1/pairs/vm1/failover", "hook-1", `{"mode":"planned"}`, 403, "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, m := call(t, srv, tc.method, tc.path, tc.token, tc.body)
			if status != tc.status || errCode(m) != tc.code {
				t.Fatalf("%d %v, want %d %q", status, m, tc.status, tc.code)
			}
		})
	}
}

func TestPrivateMetricsAndReadiness(t *testing.T) {
	notReady := errors.New("store not open")
	srv := httptest.NewServer(Handler(Deps{Controller: &fakeController{}, AdminToken: "a",
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Ready: func() error { return notReady }}))
	defer srv.Close()
	if status, _ := call(t, srv, "GET", "/metrics", "", ""); status != 401 {
		t.Errorf("private metrics without a token: %d", status)
	}
	if status, _ := call(t, srv, "GET", "/metrics", "a", ""); status != 200 {
		t.Errorf("private metrics with the admin token: %d", status)
	}
	if status, m := call(t, srv, "GET", "/readyz", "", ""); status != 503 || errCode(m) != "not_ready" {
		t.Errorf("readyz while not ready: %d %v", status, m)
	}
}

func TestBadRequests(t *testing.T) {
	srv, fc := newAPI(t)
	big := `{"cluster":"cluster1","group":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name, method, path, token, body string
		status                          int
		code, msg                       string
	}{
		{"unknown field", "POST", "/v1/hooks", "hook-1", `{"cluster":"cluster1","grop":"x"}`, 400, "invalid_body", `unknown field "grop"`},
		{"not JSON", "POST", "/v1/hooks", "hook-1", `cluster=cluster1`, 400, "invalid_body", "invalid character"},
		{"two values", "POST", "/v1/hooks", "hook-1", hookJSON + hookJSON, 400, "invalid_body", "more than one JSON value"},
		{"missing fields", "POST", "/v1/hooks", "hook-1", `{"cluster":"cluster1"}`, 400, "invalid_body", "missing group, server, phase"},
		{"oversized", "POST", "/v1/hooks", "hook-1", big, 413, "body_too_large", "larger than"},
		{"bad wait", "POST", "/v1/hooks?wait=forever", "hook-1", hookJSON, 400, "invalid_query", `wait="forever"`},
		{"negative wait", "POST", "/v1/hooks?wait=-5m", "hook-1", hookJSON, 400, "invalid_query", `wait="-5m"`},
		{"bad failover mode", "POST", "/v1/pairs/vm1/failover", "admin-secret", `{"mode":"sideways"}`, 400, "invalid_body", `mode "sideways"`},
		{"unknown pair", "GET", "/v1/pairs/vm9", "admin-secret", "", 404, "unknown_pair", `no pair "vm9"`},
		{"unknown pair action", "POST", "/v1/pairs/vm9/reconcile", "admin-secret", "", 404, "unknown_pair", "unknown pair"},
		{"bad op id", "GET", "/v1/operations/abc", "admin-secret", "", 400, "invalid_path", `"abc"`},
		{"unknown op", "GET", "/v1/operations/999", "admin-secret", "", 404, "unknown_operation", "no operation 999"},
		{"bad limit", "GET", "/v1/operations?limit=0", "admin-secret", "", 400, "invalid_query", "limit"},
		{"unknown route", "GET", "/v1/nope", "admin-secret", "", 404, "not_found", "GET /v1/nope is not an API route"},
		{"wrong method", "DELETE", "/v1/pairs", "admin-secret", "", 405, "method_not_allowed", "DELETE is not allowed on /v1/pairs"},
		{"reload unsupported", "POST", "/v1/config/reload", "admin-secret", "", 501, "not_supported", "this server cannot reload its configuration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, m := call(t, srv, tc.method, tc.path, tc.token, tc.body)
			e, _ := m["error"].(map[string]any)
			if status != tc.status || errCode(m) != tc.code || !strings.Contains(e["message"].(string), tc.msg) {
				t.Fatalf("%d %v, want %d %s %q", status, m, tc.status, tc.code, tc.msg)
			}
		})
	}
	if len(fc.hooks) != 0 {
		t.Fatalf("rejected hooks reached the controller: %+v", fc.hooks)
	}
	for err, want := range map[error]int{
		orchestrator.ErrUnknownGroup: 404, orchestrator.ErrUnknownServer: 400, orchestrator.ErrInvalidHook: 400,
		orchestrator.ErrStopping: 503, errors.New("boom"): 500,
	} {
		fc.hookErr = err
		if status, _ := call(t, srv, "POST", "/v1/hooks", "hook-1", hookJSON); status != want {
			t.Errorf("controller error %v: status %d, want %d", err, status, want)
		}
	}
}

func TestPairActions(t *testing.T) {
	srv, _ := newAPI(t)
	if status, m := call(t, srv, "POST", "/v1/pairs/vm1/pause", "admin-secret", ""); status != 200 {
		t.Fatalf("pause: %d %v", status, m)
	}
	if status, m := call(t, srv, "POST", "/v1/pairs/vm1/reconcile", "admin-secret", ""); status != 409 || errCode(m) != "paused" {
		t.Fatalf("reconcile paused: %d %v", status, m)
	}
	if status, m := call(t, srv, "POST", "/v1/pairs/vm1/failover", "admin-secret", `{"mode":"planned"}`); status != 409 || errCode(m) != "paused" {
		t.Fatalf("failover paused: %d %v", status, m)
	}
	call(t, srv, "POST", "/v1/pairs/vm1/resume", "admin-secret", "")
	if status, m := call(t, srv, "POST", "/v1/pairs/vm1/failover", "admin-secret", `{"mode":"unplanned"}`); status != 202 || m["op"].(float64) != 42 {
		t.Fatalf("failover: %d %v", status, m)
	}
	status, m := call(t, srv, "GET", "/v1/pairs", "admin-secret", "")
	pairs := m["pairs"].([]any)
	if status != 200 || len(pairs) != 1 || pairs[0].(map[string]any)["phase"] != "Converged" {
		t.Fatalf("pairs: %d %v", status, m)
	}
	status, m = call(t, srv, "GET", "/v1/clusters", "admin-secret", "")
	cl := m["clusters"].([]any)
	if status != 200 || len(cl) != 2 || cl[1].(map[string]any)["api_healthy"] != false {
		t.Fatalf("clusters: %d %v", status, m)
	}
}

// TestHookMetricLabels: a hook is counted under its phase whatever its
// case and whether it was accepted or rejected, and labels stay bounded.
func TestHookMetricLabels(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "hvro.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fc := &fakeController{paused: map[string]bool{}}
	var counted []string
	srv := httptest.NewServer(Handler(Deps{Controller: fc, Store: st, AdminToken: "a", HookTokens: map[string]string{"cluster1": "hook-1"},
		Ready: func() error { return nil },
		OnHook: func(cluster, phase, outcome string) {
			counted = append(counted, cluster+" "+phase+" "+outcome)
		}}))
	t.Cleanup(srv.Close)
	body := func(phase string) string {
		return `{"cluster":"cluster1","group":"failover1","server":"node1","phase":"` + phase + `"}`
	}
	call(t, srv, "POST", "/v1/hooks", "hook-1", body("STOP"))
	fc.hookErr = orchestrator.ErrUnknownServer
	call(t, srv, "POST", "/v1/hooks", "hook-1", body("STOP"))
	call(t, srv, "POST", "/v1/hooks", "hook-1", body("sideways"))
	want := []string{"cluster1 stop ok", "cluster1 stop rejected", "cluster1 invalid rejected"}
	if !slices.Equal(counted, want) {
		t.Fatalf("counted %q, want %q", counted, want)
	}
}

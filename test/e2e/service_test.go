package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hvro/hvro/store"
	"github.com/hvro/hvro/test/gobuild"
	"github.com/hvro/hvro/test/sim/ecx"
)

// hvroCLI runs the hvro binary and returns its exit code and output.
func hvroCLI(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gobuild.DeclareSources()
	cmd := exec.CommandContext(ctx, hvroBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("hvro %v: %v", args, err)
	}
	return code, out.String()
}

func (e *env) tokenFile(name string) string { return filepath.Join(e.dir, "secrets", name) }

// scriptRuns returns the ECX script runs of a cluster since t.
func (e *env) scriptRuns(cluster string, since time.Time) []ecx.ScriptRun {
	var out []ecx.ScriptRun
	for _, c := range e.state().ECX {
		if c.Name == cluster {
			for _, s := range c.Scripts {
				if !s.Started.Before(since) {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func rawRequest(t *testing.T, method, url, token, contentType string, body io.Reader) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// TestService drives the real hvro binary through its API, CLI and hook,
// with the ECX emulator running the hook as script resources.
func TestService(t *testing.T) {
	e := newEnv(t, envOptions{hooks: true})
	e.waitConverged("node1", "node3")
	adminEnv := []string{"HVRO_SERVER=" + e.hvroURL, "HVRO_TOKEN_FILE=" + e.tokenFile("admin.token")}
	// Sections share one estate and run in order; env helpers fail the
	// whole test, so they are not subtests.
	section := func(name string, fn func(t *testing.T)) {
		t.Logf("--- %s", name)
		fn(t)
		e.checker.assertClean()
	}

	section("endpoints", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			if code, body := rawRequest(t, "GET", e.hvroURL+path, "", "", nil); code != 200 || body == "" {
				t.Errorf("GET %s: %d %q", path, code, body)
			}
		}
		for _, path := range []string{"/v1/pairs", "/v1/pairs/vm1", "/v1/operations", "/v1/operations?pair=vm1&limit=2", "/v1/operations/1", "/v1/clusters"} {
			if code, body := rawRequest(t, "GET", e.hvroURL+path, e.admin, "", nil); code != 200 {
				t.Errorf("GET %s: %d %s", path, code, body)
			}
		}
		var d struct {
			Observations []store.Observation
			Operations   []store.Operation
			Events       []store.Event
		}
		e.api("GET", "/v1/pairs/vm1", nil, &d)
		if len(d.Observations) != 2 || len(d.Operations) == 0 || len(d.Events) == 0 || d.Events[len(d.Events)-1].Kind != "operation" {
			t.Errorf("pair detail lacks observations, operations or events: %+v", d)
		}
		var cl struct {
			Clusters []struct {
				Name      string
				Healthy   bool `json:"api_healthy"`
				Endpoints []string
				Groups    []struct{ Group string }
			}
		}
		e.api("GET", "/v1/clusters", nil, &cl)
		if len(cl.Clusters) != 2 || !cl.Clusters[0].Healthy || len(cl.Clusters[0].Endpoints) != 2 || len(cl.Clusters[0].Groups) != 1 {
			t.Errorf("clusters: %+v", cl)
		}
		_, metrics := rawRequest(t, "GET", e.hvroURL+"/metrics", "", "", nil)
		for _, want := range []string{`hvro_pair_state{pair="vm1",state="Converged"} 1`, `hvro_pair_replication_health{pair="vm1"} 1`,
			`hvro_ecx_group_owner_info{cluster="cluster1",group="failover1",server="node1"} 1`, `hvro_winrm_requests_total{host="node1",outcome="ok"}`,
			`hvro_ecx_requests_total{cluster="cluster2"`, `hvro_operations_total{kind="reconcile",outcome="succeeded"}`,
			"hvro_pair_last_converged_timestamp_seconds", "hvro_queue_depth", "go_goroutines", "process_resident_memory_bytes"} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	section("auth and bad requests", func(t *testing.T) {
		hook := `{"cluster":"cluster1","group":"failover1","server":"node1","phase":"start"}`
		hook1, _ := os.ReadFile(e.tokenFile("hook1.token"))
		hook2, _ := os.ReadFile(e.tokenFile("hook2.token"))
		for _, tc := range []struct {
			name, method, path, token, ctype, body string
			status                                 int
		}{
			{"no token", "GET", "/v1/pairs", "", "", "", 401},
			{"wrong token", "GET", "/v1/pairs", "wrong", "", "", 401},
			{"hook token on admin routes", "GET", "/v1/pairs", strings.TrimSpace(string(hook1)), "", "", 403},
			{"other cluster's hook token", "POST", "/v1/hooks", strings.TrimSpace(string(hook2)), "application/json", hook, 403},
			{"hook without token", "POST", "/v1/hooks", "", "application/json", hook, 401},
			{"unknown field", "POST", "/v1/hooks", strings.TrimSpace(string(hook1)), "application/json", `{"cluster":"cluster1","grup":"x"}`, 400},
			{"not json", "POST", "/v1/hooks", strings.TrimSpace(string(hook1)), "text/plain", "cluster=cluster1", 415},
			{"oversized", "POST", "/v1/hooks", strings.TrimSpace(string(hook1)), "application/json", `{"group":"` + strings.Repeat("x", 100<<10) + `"}`, 413},
			{"unknown group", "POST", "/v1/hooks", strings.TrimSpace(string(hook1)), "application/json", `{"cluster":"cluster1","group":"nope","server":"node1","phase":"start"}`, 404},
			{"unknown server", "POST", "/v1/hooks", strings.TrimSpace(string(hook1)), "application/json", `{"cluster":"cluster1","group":"failover1","server":"node9","phase":"start"}`, 400},
			{"bad failover mode", "POST", "/v1/pairs/vm1/failover", e.admin, "application/json", `{"mode":"maybe"}`, 400},
			{"unknown pair", "POST", "/v1/pairs/vm9/reconcile", e.admin, "", "", 404},
		} {
			code, body := rawRequest(t, tc.method, e.hvroURL+tc.path, tc.token, tc.ctype, strings.NewReader(tc.body))
			if code != tc.status || !strings.Contains(body, `"error":{"code":`) {
				t.Errorf("%s: %d %.200s, want %d with an error object", tc.name, code, body, tc.status)
			}
		}
	})

	section("cli", func(t *testing.T) {
		code, out := hvroCLI(t, adminEnv, "status")
		if code != 0 || !strings.Contains(out, "vm1") || !strings.Contains(out, "cluster1/node1") || !strings.Contains(out, "Converged") {
			t.Errorf("status: %d\n%s", code, out)
		}
		code, out = hvroCLI(t, adminEnv, "status", "-o", "json")
		var st struct{ Pairs []pairView }
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Pairs) != 1 {
			t.Errorf("status -o json: %d\n%s", code, out)
		}
		if code, out = hvroCLI(t, adminEnv, "pair", "show", "vm1"); code != 0 || !strings.Contains(out, "observations:") || !strings.Contains(out, "enable replication to node3") {
			t.Errorf("pair show: %d\n%s", code, out)
		}
		if code, out = hvroCLI(t, adminEnv, "ops", "--pair", "vm1", "--limit", "3"); code != 0 || !strings.Contains(out, "reconcile") {
			t.Errorf("ops: %d\n%s", code, out)
		}
		if code, out = hvroCLI(t, adminEnv, "pause", "vm1"); code != 0 || e.pair().Phase != "Paused" {
			t.Errorf("pause: %d %s, phase %s", code, out, e.pair().Phase)
		}
		if code, out = hvroCLI(t, adminEnv, "reconcile", "vm1"); code != 1 || !strings.Contains(out, "paused") {
			t.Errorf("reconcile while paused: %d %s", code, out)
		}
		if code, out = hvroCLI(t, adminEnv, "resume", "vm1"); code != 0 {
			t.Errorf("resume: %d %s", code, out)
		}
		if code, out = hvroCLI(t, adminEnv, "reconcile", "vm1"); code != 0 {
			t.Errorf("reconcile: %d %s", code, out)
		}
		e.waitConverged("node1", "node3")
		if code, out = hvroCLI(t, adminEnv, "pair", "show", "vm9"); code != 1 || !strings.Contains(out, "404") {
			t.Errorf("pair show of an unknown pair: %d %s", code, out)
		}
		if code, out = hvroCLI(t, nil, "status"); code != 2 || !strings.Contains(out, "--token-file") {
			t.Errorf("status without a token: %d %s", code, out)
		}
		if code, out = hvroCLI(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "hvro ") {
			t.Errorf("version: %d %s", code, out)
		}
	})

	section("hook exit codes", func(t *testing.T) {
		hook := func(env []string, args ...string) (int, string) {
			base := []string{"hook", "--url", e.hvroURL, "--cluster", "cluster1", "--group", "failover1", "--token-file", e.tokenFile("hook1.token"), "--retry-for", "1s"}
			return hvroCLI(t, append([]string{"CLP_EVENT=START", "CLP_FACTOR=", "CLP_DISK=SUCCESS", "COMPUTERNAME=NODE1"}, env...), append(base, args...)...)
		}
		if code, out := hook(nil, "--phase", "start"); code != 0 || !strings.Contains(out, ": ok") {
			t.Errorf("start hook on the owner: %d %s", code, out)
		}
		if code, out := hook(nil, "--phase", "middle"); code != 2 || !strings.Contains(out, "usage error") {
			t.Errorf("bad phase: %d %s", code, out)
		}
		if code, out := hvroCLI(t, []string{"COMPUTERNAME=NODE1"}, "hook", "--url", e.hvroURL, "--cluster", "cluster1", "--group", "failover1",
			"--phase", "start", "--token-file", e.tokenFile("hook2.token")); code != 2 || !strings.Contains(out, "rejected") {
			t.Errorf("hook with another cluster's token: %d %s", code, out)
		}
		down := "http://" + freeAddr(t)
		if code, out := hvroCLI(t, []string{"COMPUTERNAME=NODE1"}, "hook", "--url", down, "--cluster", "cluster1", "--group", "failover1",
			"--phase", "start", "--token-file", e.tokenFile("hook1.token"), "--retry-for", "1s"); code != 0 || !strings.Contains(out, "failing open") {
			t.Errorf("hvro down: %d %s", code, out)
		}
		if code, out := hvroCLI(t, []string{"COMPUTERNAME=NODE1"}, "hook", "--url", down, "--cluster", "cluster1", "--group", "failover1",
			"--phase", "start", "--token-file", e.tokenFile("hook1.token"), "--retry-for", "1s", "--strict"); code != 3 {
			t.Errorf("hvro down with --strict: %d %s", code, out)
		}
		// A wait shorter than the pass answers "pending" (exit 0).
		e.control("POST", "/sim/latency", map[string]any{"cmdlet": "Get-VM", "ms": 800})
		code, out := hook(nil, "--phase", "start", "--wait", "100ms")
		e.control("POST", "/sim/latency", map[string]any{"cmdlet": "Get-VM", "ms": 0})
		if code != 0 || !strings.Contains(out, ": pending") {
			t.Errorf("short wait: %d %s", code, out)
		}
		e.waitConverged("node1", "node3")

		// ECX's script resource: node2 cannot host the VM (every import
		// there is refused), so its start script exits 1 and ECX moves on
		// to node1, whose script succeeds.
		start := time.Now()
		e.control("POST", "/sim/faults", map[string]any{"host": "node2", "cmdlet": "Import-VM", "error": "access_denied", "times": 100})
		e.control("POST", "/sim/ecx/cluster1/groups/failover1/move", map[string]string{"target": "node2"})
		e.waitConverged("node1", "node3")
		e.control("DELETE", "/sim/faults", nil)
		var got []string
		for _, s := range e.scriptRuns("cluster1", start) {
			got = append(got, fmt.Sprintf("%s/%s=%d", s.Phase, s.Server, s.Exit))
			if s.Env["CLP_EVENT"] == "" || s.Env["COMPUTERNAME"] == "" {
				t.Errorf("script ran without CLP_EVENT/COMPUTERNAME: %+v", s.Env)
			}
		}
		if strings.Join(got, " ") != "stop/node1=0 start/node2=1 start/node1=0" {
			t.Errorf("script runs %v, want the node2 start to fail over to node1", got)
		}

		// Degraded but the VM runs where it should: exit 0.
		e.control("POST", "/sim/ecx/cluster2/groups/failover2/stop", nil)
		if code, out := hook(nil, "--phase", "start"); code != 0 || !strings.Contains(out, "degraded") {
			t.Errorf("start hook with the replica side offline: %d %s", code, out)
		}
		e.control("POST", "/sim/ecx/cluster2/groups/failover2/start", map[string]string{"target": "node3"})
		e.waitConverged("node1", "node3")
	})

	section("reload", func(t *testing.T) {
		good, _ := os.ReadFile(e.cfgPath)
		must(t, os.WriteFile(e.cfgPath, []byte(strings.Replace(string(good), "resync_interval: 5s", "resync_interval: 0s", 1)), 0o600))
		code, body := rawRequest(t, "POST", e.hvroURL+"/v1/config/reload", e.admin, "", nil)
		if code != 400 || !strings.Contains(body, "resync_interval") || !strings.Contains(body, "old one stays") {
			t.Errorf("bad reload: %d %s", code, body)
		}
		must(t, os.WriteFile(e.cfgPath, []byte(strings.Replace(string(good), "listen: 127.0.0.1:", "listen: 127.0.0.2:", 1)), 0o600))
		if code, body = rawRequest(t, "POST", e.hvroURL+"/v1/config/reload", e.admin, "", nil); code != 400 || !strings.Contains(body, "restart hvro") {
			t.Errorf("reload that needs a restart: %d %s", code, body)
		}
		must(t, os.WriteFile(e.cfgPath, good, 0o600))
		// SIGHUP alone first: its reload must show in the log before the
		// API's, or the API's line could stand in for it.
		reloads := func() int { return strings.Count(e.stderr.String(), "configuration reloaded") }
		if n := reloads(); n != 0 {
			t.Fatalf("%d reloads logged before any good one", n)
		}
		must(t, e.proc.Process.Signal(syscall.SIGHUP))
		e.waitFor("the SIGHUP reload in the log", 10*time.Second, func() error {
			if n := reloads(); n != 1 {
				return fmt.Errorf("%d reload lines", n)
			}
			return nil
		})
		if code, body = rawRequest(t, "POST", e.hvroURL+"/v1/config/reload", e.admin, "", nil); code != 200 {
			t.Errorf("good reload: %d %s", code, body)
		}
		// hvro's stderr reaches the test through a pipe: the line may come
		// after the HTTP answer.
		e.waitFor("the API reload in the log", 10*time.Second, func() error {
			if n := reloads(); n != 2 {
				return fmt.Errorf("%d reload lines after SIGHUP and the API, want 2", n)
			}
			return nil
		})
		e.waitConverged("node1", "node3")
	})

	section("planned failover", func(t *testing.T) {
		e.checker.allowPrimary("cluster1", "cluster2")
		code, out := hvroCLI(t, adminEnv, "failover", "vm1", "--mode", "planned", "--wait", "60s")
		if code != 0 || !strings.Contains(out, "queued as operation") {
			t.Fatalf("failover: %d\n%s", code, out)
		}
		e.waitConverged("node3", "node1")
		e.checker.allowPrimary("cluster2")
		if p := e.pair(); p.Primary.Cluster != "cluster2" || p.Replica.Cluster != "cluster1" {
			t.Fatalf("after failover: %+v", p)
		}
		// And back, through the API.
		var r struct{ Op uint64 }
		e.checker.allowPrimary("cluster1", "cluster2")
		if status := e.api("POST", "/v1/pairs/vm1/failover", map[string]string{"mode": "planned"}, &r); status != 202 || r.Op == 0 {
			t.Fatalf("failover back: %d %+v", status, r)
		}
		e.waitConverged("node1", "node3")
		e.checker.allowPrimary("cluster1")
	})

	section("backup", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "copy.db")
		code, msg := hvroCLI(t, nil, "backup", "--config", e.cfgPath, "--out", out)
		if code != 0 || !strings.Contains(msg, "online copy") {
			t.Fatalf("backup: %d %s", code, msg)
		}
		st, err := store.Open(out, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var p store.Pair
		must(t, st.View(func(tx store.Tx) error { var err error; p, err = tx.Pair("vm1"); return err }))
		if p.PrimaryCluster != "cluster1" || p.Generation == 0 {
			t.Fatalf("backup holds %+v", p)
		}
	})

	section("SIGTERM mid-operation", func(t *testing.T) {
		e.control("POST", "/sim/latency", map[string]any{"cmdlet": "Enable-VMReplication", "ms": 1500})
		// Do not wait for the move: with hooks it settles only when
		// hvro's pass, the one to interrupt, is over.
		e.control("POST", "/sim/ecx/cluster2/groups/failover2/move?wait=false", map[string]string{"target": "node4"})
		var op store.Operation
		e.waitFor("a running step", 20*time.Second, func() error {
			o, ok := e.runningOp()
			for _, s := range o.Plan {
				if ok && s.Outcome == store.OutcomeRunning && s.Kind == "enable_replica" {
					op = o
					return nil
				}
			}
			return fmt.Errorf("no enable_replica step running yet")
		})
		if code := e.stopHvro(syscall.SIGTERM); code != 0 {
			t.Fatalf("hvro exited %d after SIGTERM, want 0\n%s", code, tail(e.stderr.String(), 3000))
		}
		e.control("POST", "/sim/latency", map[string]any{"cmdlet": "Enable-VMReplication", "ms": 0})
		e.startHvro()
		var got store.Operation
		e.api("GET", fmt.Sprintf("/v1/operations/%d", op.ID), nil, &got)
		// The drain itself journals the operation (a restart finding it
		// still running would say "hvro stopped while the operation ran"):
		// the running step ends ok and every later one is interrupted.
		var outcomes []string
		after := false
		for _, s := range got.Plan {
			outcomes = append(outcomes, s.Kind+"="+string(s.Outcome))
			if after && s.Outcome != store.OutcomeInterrupted {
				t.Errorf("step %s after the drained one is %s, want interrupted", s.Kind, s.Outcome)
			}
			after = after || s.Kind == "enable_replica" && s.Outcome == store.OutcomeOK
		}
		if got.State != store.OpInterrupted || got.Error != "hvro is shutting down" || !after {
			t.Fatalf("after SIGTERM the running step must finish and the rest be interrupted by the drain: %s %q %v", got.State, got.Error, outcomes)
		}
		e.waitConverged("node1", "node4")
	})
}

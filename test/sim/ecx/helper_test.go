package ecx

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as the script command: with ECX_HELPER=1 it acts
// as a start.bat/stop.bat that records what it got and exits as told.
func TestMain(m *testing.M) {
	if os.Getenv("ECX_HELPER") == "1" {
		os.Exit(helperMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// event is one line of a recorder file: a script run (as the script saw it)
// or an Observer call, in the order they happened.
type event struct {
	Kind   string            `json:"kind"` // script, disk_online, disk_offline, server_down, server_up
	Phase  string            `json:"phase,omitempty"`
	Server string            `json:"server,omitempty"`
	Group  string            `json:"group,omitempty"`
	Disk   string            `json:"disk,omitempty"`
	Env    map[string]string `json:"env,omitempty"`
	Dir    string            `json:"dir,omitempty"`
	Extra  string            `json:"extra,omitempty"` // LAB_VAR, to see Scripts.Env arrive
}

// helperMain: ECX_HELPER_RECORD file to append to; ECX_HELPER_FAIL lists
// "phase:COMPUTERNAME" that exit 1; ECX_HELPER_SLEEP lists
// "phase:COMPUTERNAME" that sleep a minute (for timeouts and crashes).
func helperMain(args []string) int {
	phase := args[0]
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "CLP_") || k == "COMPUTERNAME" {
			env[k] = v
		}
	}
	dir, _ := os.Getwd()
	appendEvent(os.Getenv("ECX_HELPER_RECORD"), event{Kind: "script", Phase: phase, Server: env["COMPUTERNAME"], Env: env, Dir: dir, Extra: os.Getenv("LAB_VAR")})
	fmt.Printf("%s script on %s\n", phase, env["COMPUTERNAME"])
	key := phase + ":" + env["COMPUTERNAME"]
	if slices.Contains(strings.Split(os.Getenv("ECX_HELPER_SLEEP"), ","), key) {
		time.Sleep(time.Minute)
	}
	if slices.Contains(strings.Split(os.Getenv("ECX_HELPER_FAIL"), ","), key) {
		fmt.Fprintln(os.Stderr, "failing as told")
		return 1
	}
	return 0
}

var recordMu sync.Mutex

func appendEvent(file string, e event) {
	recordMu.Lock()
	defer recordMu.Unlock()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	b, _ := json.Marshal(e)
	f.Write(append(b, '\n'))
}

func readEvents(t *testing.T, file string) []event {
	t.Helper()
	out, err := loadEvents(file)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// loadEvents is readEvents for goroutines other than the test's, where
// t.Fatal must not be called.
func loadEvents(file string) ([]event, error) {
	recordMu.Lock()
	defer recordMu.Unlock()
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("record line %q: %w", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// recorder is an Observer writing to the same file as the scripts, so the
// file shows the order of scripts and disk moves. gate, when set, is called
// before each call returns (tests block transitions with it).
type recorder struct {
	file string
	gate func(kind, server string)
}

func (r *recorder) note(e event) {
	appendEvent(r.file, e)
	if r.gate != nil {
		r.gate(e.Kind, e.Server)
	}
}
func (r *recorder) DiskOnline(cluster, group, disk, server string) {
	r.note(event{Kind: "disk_online", Group: group, Disk: disk, Server: strings.ToUpper(server)})
}
func (r *recorder) DiskOffline(cluster, group, disk, server string) {
	r.note(event{Kind: "disk_offline", Group: group, Disk: disk, Server: strings.ToUpper(server)})
}
func (r *recorder) ServerDown(cluster, server string) {
	r.note(event{Kind: "server_down", Server: strings.ToUpper(server)})
}
func (r *recorder) ServerUp(cluster, server string) {
	r.note(event{Kind: "server_up", Server: strings.ToUpper(server)})
}

// summary renders events as "script start NODE2 START/GROUPMOVE", "disk_offline NODE1".
func summary(events []event) []string {
	var out []string
	for _, e := range events {
		if e.Kind == "script" {
			out = append(out, fmt.Sprintf("script %s %s %s/%s", e.Phase, e.Server, e.Env["CLP_EVENT"], e.Env["CLP_FACTOR"]))
		} else {
			out = append(out, e.Kind+" "+e.Server)
		}
	}
	return out
}

type harness struct {
	t      *testing.T
	c      *Cluster
	rec    *recorder
	record string
	dir    string
	url    string // base URL of the endpoint "fip"
}

// scriptsFor returns start and stop commands running the helper, with extra env.
func scriptsFor(t *testing.T, record string, extraEnv ...string) Scripts {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The race runtime sleeps a second at exit unless told not to.
	env := append([]string{"GORACE=atexit_sleep_ms=0", "ECX_HELPER=1", "ECX_HELPER_RECORD=" + record, "LAB_VAR=from-lab"}, extraEnv...)
	return Scripts{Start: []string{exe, "start"}, Stop: []string{exe, "stop"}, Env: env, Timeout: 20 * time.Second}
}

// newHarness builds cluster "c1" with servers node1..nodeN and the given
// groups (Scripts filled in with the helper unless noScripts), served on
// 127.0.0.1 as endpoint "fip".
func newHarness(t *testing.T, servers []string, groups []GroupConfig, extraEnv ...string) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, record: filepath.Join(dir, "record.jsonl")}
	h.rec = &recorder{file: h.record}
	for i := range groups {
		if groups[i].Scripts.Start == nil {
			sc := scriptsFor(t, h.record, extraEnv...)
			sc.Dir = groups[i].Scripts.Dir
			if groups[i].Scripts.Timeout != 0 {
				sc.Timeout = groups[i].Scripts.Timeout
			}
			groups[i].Scripts = sc
		}
	}
	cfg := Config{Name: "c1", Username: "Administrator", Password: "s3cret", Servers: servers, Groups: groups,
		Timing: Timing{Pending: 5 * time.Millisecond, DiskSwitch: 5 * time.Millisecond}}
	c, err := New(cfg, h.rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	addr, err := c.Listen("fip", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.c, h.url = c, "http://"+addr.String()
	return h
}

func (h *harness) events() []string { return summary(readEvents(h.t, h.record)) }

// call sends one API request with the cluster's credentials.
func (h *harness) call(method, path, body string) (int, map[string]any) {
	h.t.Helper()
	return callAPI(h.t, method, h.url+path, "Administrator", "s3cret", body)
}

func callAPI(t *testing.T, method, url, user, pass, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %q", method, url, raw)
	}
	return resp.StatusCode, m
}

func resultCode(t *testing.T, m map[string]any) int {
	t.Helper()
	res, ok := m["result"].(map[string]any)
	if !ok {
		t.Fatalf("no result object in %v", m)
	}
	return int(res["code"].(float64))
}

// group reads one group through the API.
func (h *harness) group(name string) (status, current string) {
	h.t.Helper()
	code, m := h.call("GET", "/api/v1/groups/"+name, "")
	if code != 200 {
		h.t.Fatalf("GET group %s: HTTP %d %v", name, code, m)
	}
	g := m["groups"].([]any)[0].(map[string]any)
	return g["status"].(string), g["current"].(string)
}

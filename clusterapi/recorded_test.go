package clusterapi

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/test/sim/ecx"
)

var update = flag.Bool("update", false, "rewrite testdata/answers/emulator/* from the emulator")

// gate is an Observer that holds every transition until released, so a
// recording can catch a group in its Pending states.
type gate struct{ step, proceed chan string }

func (g *gate) wait(kind string) { g.step <- kind; <-g.proceed }

func (g *gate) DiskOnline(_, _, _, _ string)  { g.wait("disk_online") }
func (g *gate) DiskOffline(_, _, _, _ string) { g.wait("disk_offline") }
func (g *gate) ServerDown(_, _ string)        {}
func (g *gate) ServerUp(_, _ string)          {}

// TestEmulatorRecordings records the emulator's answers to the requests the
// client makes (and a few it must survive) into testdata/answers/emulator,
// and fails when they change. go test -run EmulatorRecordings -update rewrites them.
func TestEmulatorRecordings(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{step: make(chan string), proceed: make(chan string)}
	c, err := ecx.New(ecx.Config{
		Name: "cluster1", Username: user, Password: password, Servers: []string{"node1", "node2"},
		Groups: []ecx.GroupConfig{
			{Name: "failover1", Owner: "node1", Disk: "sd1"},
			{Name: "failover2", Disk: "sd2"},
			{Name: "failover3", Owner: "node2", Disk: "sd3", Scripts: ecx.Scripts{Start: []string{exe}, Env: []string{"CLUSTERAPI_HELPER=fail", "GORACE=atexit_sleep_ms=0"}}},
		},
		Timing: ecx.Timing{Pending: time.Millisecond, DiskSwitch: time.Millisecond},
	}, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr, err := c.Listen("fip", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr.String()
	record := func(file, method, path, body string, wantStatus int) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if !strings.HasPrefix(file, "unauthorized") {
			req.SetBasicAuth(user, password)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: HTTP %d %s, want %d", method, path, resp.StatusCode, got, wantStatus)
		}
		golden := filepath.Join("testdata", "answers", "emulator", file)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to record)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s changed:\n got %s\nwant %s", golden, got, want)
		}
	}

	record("cluster.json", "GET", "/api/v1/cluster", "", 200)
	record("servers.json", "GET", "/api/v1/servers", "", 200)
	record("server_named.json", "GET", "/api/v1/servers/node2", "", 200)
	record("resources.json", "GET", "/api/v1/resources", "", 200)
	record("monitors.json", "GET", "/api/v1/monitors", "", 200)
	record("group_select_name.json", "GET", "/api/v1/groups?select=name", "", 200)
	record("not_found.json", "GET", "/api/v1/groups/nope", "", 404)
	record("unauthorized.json", "GET", "/api/v1/groups", "", 401)
	record("method_not_allowed.json", "GET", "/api/v1/groups/failover1/move", "", 405)
	record("bad_body.json", "POST", "/api/v1/groups/failover1/move", "{", 400)
	record("state_refused.json", "POST", "/api/v1/groups/failover2/stop", "", 200)

	// failover3's start script fails everywhere: Online Failure.
	record("post_ok.json", "POST", "/api/v1/groups/failover3/move", `{"target":"node1"}`, 200)
	for range 4 { // node1 then node2: disk online, disk offline, disk online (stays)
		<-g.step
		g.proceed <- ""
	}
	for {
		if st := c.State().Groups[2]; st.Status == ecx.StatusOnlineFailure && !st.Busy {
			break
		}
		time.Sleep(time.Millisecond)
	}
	record("groups.json", "GET", "/api/v1/groups", "", 200)

	// A move held at each transition.
	record("post_ok.json", "POST", "/api/v1/groups/failover1/move", `{"target":"node2"}`, 200)
	<-g.step // disk_offline on node1
	record("group_offline_pending.json", "GET", "/api/v1/groups/failover1", "", 200)
	record("busy.json", "POST", "/api/v1/groups/failover1/move", "", 200)
	g.proceed <- ""
	<-g.step // disk_online on node2
	record("group_online_pending.json", "GET", "/api/v1/groups/failover1", "", 200)
	g.proceed <- ""
	for c.State().Groups[0].Busy {
		time.Sleep(time.Millisecond)
	}
	record("group_named.json", "GET", "/api/v1/groups/failover1", "", 200)

	c.SetFault(ecx.Fault{Kind: ecx.FaultNonJSON, Times: 1})
	record("non_json.html", "GET", "/api/v1/groups", "", 200)
	c.SetFault(ecx.Fault{Kind: ecx.FaultHTTP500, Times: 1})
	record("http500.json", "GET", "/api/v1/groups", "", 500)
	c.SetFault(ecx.Fault{Kind: ecx.FaultResultCode, Times: 1, Code: 12, Message: "Cluster is suspended."})
	record("result_code.json", "GET", "/api/v1/groups", "", 200)
}

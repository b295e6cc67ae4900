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
	"github.com/hvro/hvro/test/within"
)

var update = flag.Bool("update", false, "rewrite testdata/answers/emulator/* from the emulator")

// gate is an Observer that holds every transition until released, so a
// recording can catch a group in its Pending states. Closing done lets
// every transition through, so a failed test never leaves the emulator
// blocked in the observer (Close would wait for it).
type gate struct {
	step, proceed chan string
	done          chan struct{}
}

func (g *gate) wait(kind string) {
	select {
	case g.step <- kind:
	case <-g.done:
		return
	}
	select {
	case <-g.proceed:
	case <-g.done:
	}
}

// gateTimeout bounds every wait of the recording on the emulator.
const gateTimeout = within.Limit

// next waits for the emulator to reach a transition and returns its kind;
// when want is not empty the kind must be want.
func (g *gate) next(t *testing.T, want string) string {
	t.Helper()
	select {
	case kind := <-g.step:
		if want != "" && kind != want {
			t.Fatalf("emulator transition %s, want %s", kind, want)
		}
		return kind
	case <-time.After(gateTimeout):
		t.Fatalf("emulator reached no transition within %s (waiting for %q)", gateTimeout, want)
	}
	return ""
}

// release lets the transition the emulator is held at run.
func (g *gate) release(t *testing.T) {
	t.Helper()
	select {
	case g.proceed <- "":
	case <-time.After(gateTimeout):
		t.Fatalf("emulator did not take the release of a transition within %s", gateTimeout)
	}
}

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
	g := &gate{step: make(chan string), proceed: make(chan string), done: make(chan struct{})}
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
	defer close(g.done) // runs first: frees a held transition before Close
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
		g.next(t, "")
		g.release(t)
	}
	within.Eventually(t, "failover3 settled in Online Failure", func() bool {
		st := c.State().Groups[2]
		return st.Status == ecx.StatusOnlineFailure && !st.Busy
	})
	record("groups.json", "GET", "/api/v1/groups", "", 200)

	// A move held at each transition.
	record("post_ok.json", "POST", "/api/v1/groups/failover1/move", `{"target":"node2"}`, 200)
	g.next(t, "disk_offline") // on node1
	record("group_offline_pending.json", "GET", "/api/v1/groups/failover1", "", 200)
	record("busy.json", "POST", "/api/v1/groups/failover1/move", "", 200)
	g.release(t)
	g.next(t, "disk_online") // on node2
	record("group_online_pending.json", "GET", "/api/v1/groups/failover1", "", 200)
	g.release(t)
	within.Eventually(t, "failover1 done moving", func() bool { return !c.State().Groups[0].Busy })
	record("group_named.json", "GET", "/api/v1/groups/failover1", "", 200)

	setFault := func(f ecx.Fault) {
		t.Helper()
		if err := c.SetFault(f); err != nil {
			t.Fatalf("SetFault(%+v): %v", f, err)
		}
	}
	setFault(ecx.Fault{Kind: ecx.FaultNonJSON, Times: 1})
	record("non_json.html", "GET", "/api/v1/groups", "", 200)
	setFault(ecx.Fault{Kind: ecx.FaultHTTP500, Times: 1})
	record("http500.json", "GET", "/api/v1/groups", "", 500)
	setFault(ecx.Fault{Kind: ecx.FaultResultCode, Times: 1, Code: 12, Message: "Cluster is suspended."})
	record("result_code.json", "GET", "/api/v1/groups", "", 200)
}

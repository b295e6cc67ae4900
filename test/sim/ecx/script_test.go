package ecx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hvro/hvro/test/within"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestScriptsOnMove(t *testing.T) {
	scriptDir := t.TempDir()
	h := newHarness(t, []string{"node1", "node2"}, []GroupConfig{{Name: "failover1", Owner: "node1", Disk: "T1", Scripts: Scripts{Dir: scriptDir}}})
	if got := h.events(); len(got) != 0 {
		t.Fatalf("New ran something for the initial owner: %v", got)
	}
	if err := h.c.Move(ctxT(t), "failover1", "node2"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"script stop NODE1 START/GROUPMOVE",
		"disk_offline NODE1",
		"disk_online NODE2",
		"script start NODE2 START/GROUPMOVE",
	}
	if got := h.events(); !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	ev := readEvents(t, h.record)
	stop, start := ev[0], ev[3]
	for name, tc := range map[string]struct {
		e    event
		want map[string]string
	}{
		"stop on old owner": {stop, map[string]string{"CLP_SERVER": "HOME", "COMPUTERNAME": "NODE1", "CLP_PRIORITY": "1"}},
		"start on new owner": {start, map[string]string{"CLP_SERVER": "OTHER", "COMPUTERNAME": "NODE2", "CLP_PRIORITY": "2",
			"CLP_DISK": "SUCCESS"}},
	} {
		for k, v := range tc.want {
			if tc.e.Env[k] != v {
				t.Errorf("%s: %s = %q, want %q", name, k, tc.e.Env[k], v)
			}
		}
		if tc.e.Env["CLP_GROUPNAME"] != "failover1" || tc.e.Env["CLP_RESOURCENAME"] != "script-failover1" {
			t.Errorf("%s: group/resource names %q/%q", name, tc.e.Env["CLP_GROUPNAME"], tc.e.Env["CLP_RESOURCENAME"])
		}
		if tc.e.Env["CLP_SCRIPT_PATH"] != scriptDir || tc.e.Dir != scriptDir {
			t.Errorf("%s: CLP_SCRIPT_PATH %q, cwd %q, want both %q", name, tc.e.Env["CLP_SCRIPT_PATH"], tc.e.Dir, scriptDir)
		}
		if tc.e.Extra != "from-lab" {
			t.Errorf("%s: Scripts.Env did not reach the script (LAB_VAR=%q)", name, tc.e.Extra)
		}
	}
	st := h.c.State()
	g := st.Group("failover1")
	if g.Status != StatusOnline || g.Owner != "node2" || g.DiskOnline != "node2" {
		t.Fatalf("after move: %+v", g)
	}
	if len(st.Scripts) != 2 || st.Scripts[1].Exit != 0 || !strings.Contains(st.Scripts[1].Output, "start script on NODE2") {
		t.Fatalf("script runs in State: %+v", st.Scripts)
	}
}

func TestScriptsOnStopAndStart(t *testing.T) {
	h := newHarness(t, []string{"node1", "node2"}, []GroupConfig{{Name: "g", Owner: "node2", Disk: "T1"}})
	if err := h.c.StopGroup(ctxT(t), "g"); err != nil {
		t.Fatal(err)
	}
	if st, cur := h.group("g"); st != StatusOffline || cur != "None" {
		t.Fatalf("after stop: %q on %q, want Offline on None", st, cur)
	}
	if err := h.c.StartGroup(ctxT(t), "g", ""); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"script stop NODE2 START/GROUPSTOP",
		"disk_offline NODE2",
		"disk_online NODE1", // no target: the highest-priority server
		"script start NODE1 START/",
	}
	if got := h.events(); !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	ev := readEvents(t, h.record)
	if _, set := ev[3].Env["CLP_FACTOR"]; set {
		t.Errorf("a plain start set CLP_FACTOR=%q; Windows has no empty variables", ev[3].Env["CLP_FACTOR"])
	}
}

func TestFailoverAfterCrash(t *testing.T) {
	h := newHarness(t, []string{"node1", "node2", "node3"}, []GroupConfig{
		{Name: "g1", Owner: "node1", Disk: "T1"},
		{Name: "g2", Owner: "node2", Disk: "T2"},
	})
	if err := h.c.ServerDown(ctxT(t), "node1"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"server_down NODE1",
		"disk_offline NODE1",
		"disk_online NODE2",
		"script start NODE2 FAILOVER/GROUPFAILOVER",
	}
	if got := h.events(); !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q (no stop script on a crashed server)", got, want)
	}
	if st, cur := h.group("g1"); st != StatusOnline || cur != "node2" {
		t.Fatalf("g1 after crash: %q on %q", st, cur)
	}
	if st, cur := h.group("g2"); st != StatusOnline || cur != "node2" {
		t.Fatalf("g2 must not move: %q on %q", st, cur)
	}
	code, m := h.call("GET", "/api/v1/servers/node1", "")
	if srv := m["servers"].([]any)[0].(map[string]any); code != 200 || srv["status"] != "Offline" {
		t.Fatalf("crashed server reads %d %v", code, m)
	}
	// Back up: no failback.
	if err := h.c.ServerUp(ctxT(t), "node1"); err != nil {
		t.Fatal(err)
	}
	if st, cur := h.group("g1"); st != StatusOnline || cur != "node2" {
		t.Fatalf("g1 after server up: %q on %q, want it to stay on node2", st, cur)
	}
	if got := h.events(); got[len(got)-1] != "server_up NODE1" {
		t.Fatalf("last event %q, want server_up", got[len(got)-1])
	}
}

func TestStartFailureTriesNextServer(t *testing.T) {
	tests := []struct {
		name       string
		fail       string // ECX_HELPER_FAIL
		wantStatus string
		wantOwner  string
		wantErr    error
		want       []string
	}{
		{
			name: "next server takes it", fail: "start:NODE3",
			wantStatus: StatusOnline, wantOwner: "node1",
			want: []string{
				"script stop NODE2 START/GROUPMOVE", "disk_offline NODE2",
				"disk_online NODE3", "script start NODE3 START/GROUPMOVE", "disk_offline NODE3",
				"disk_online NODE1", "script start NODE1 FAILOVER/GROUPFAILOVER",
			},
		},
		{
			name: "no server succeeds", fail: "start:NODE1,start:NODE2,start:NODE3",
			wantStatus: StatusOnlineFailure, wantOwner: "node2", wantErr: ErrFailed,
			want: []string{
				"script stop NODE2 START/GROUPMOVE", "disk_offline NODE2",
				"disk_online NODE3", "script start NODE3 START/GROUPMOVE", "disk_offline NODE3",
				"disk_online NODE1", "script start NODE1 FAILOVER/GROUPFAILOVER", "disk_offline NODE1",
				"disk_online NODE2", "script start NODE2 FAILOVER/GROUPFAILOVER",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, []string{"node1", "node2", "node3"}, []GroupConfig{{Name: "g", Owner: "node2", Disk: "T1"}},
				"ECX_HELPER_FAIL="+tc.fail)
			err := h.c.Move(ctxT(t), "g", "node3")
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("move: %v, want %v", err, tc.wantErr)
			}
			if got := h.events(); !slices.Equal(got, tc.want) {
				t.Fatalf("events\n got %q\nwant %q", got, tc.want)
			}
			if st, cur := h.group("g"); st != tc.wantStatus || cur != tc.wantOwner {
				t.Fatalf("group %q on %q, want %q on %q", st, cur, tc.wantStatus, tc.wantOwner)
			}
			g := h.c.State().Group("g")
			if tc.wantStatus == StatusOnlineFailure && (g.DiskOnline != "node2" || g.Resources[2].Status != StatusOnlineFailure) {
				t.Fatalf("failed group: disk on %q, script resource %q", g.DiskOnline, g.Resources[2].Status)
			}
		})
	}
}

func TestStopScriptFailureLeavesOfflineFailure(t *testing.T) {
	h := newHarness(t, []string{"node1", "node2"}, []GroupConfig{{Name: "g", Owner: "node1", Disk: "T1"}}, "ECX_HELPER_FAIL=stop:NODE1")
	err := h.c.Move(ctxT(t), "g", "node2")
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("move: %v, want ErrFailed", err)
	}
	if st, cur := h.group("g"); st != StatusOfflineFailure || cur != "node1" {
		t.Fatalf("group %q on %q, want Offline Failure on node1", st, cur)
	}
	if got := h.events(); !slices.Equal(got, []string{"script stop NODE1 START/GROUPMOVE"}) {
		t.Fatalf("events %q: the disk must stay where the stop failed", got)
	}
	runs := h.c.State().Scripts
	if len(runs) != 1 || runs[0].Exit != 1 || !strings.Contains(runs[0].Output, "failing as told") {
		t.Fatalf("script run %+v", runs)
	}
}

func TestScriptTimeout(t *testing.T) {
	h := newHarness(t, []string{"node1", "node2"}, []GroupConfig{{Name: "g", Owner: "node1", Disk: "T1",
		Scripts: Scripts{Timeout: time.Second}}}, "ECX_HELPER_SLEEP=start:NODE2")
	if err := h.c.Move(ctxT(t), "g", "node2"); err != nil {
		t.Fatal(err) // node2 times out, node1 takes the group back
	}
	if st, cur := h.group("g"); st != StatusOnline || cur != "node1" {
		t.Fatalf("group %q on %q, want Online on node1", st, cur)
	}
	runs := h.c.State().Scripts
	var timedOut bool
	for _, r := range runs {
		if r.Server == "node2" && r.Phase == "start" && strings.Contains(r.Error, "timed out") && r.Exit == -1 {
			timedOut = true
		}
	}
	if !timedOut {
		t.Fatalf("no timed-out run in %+v", runs)
	}
}

func TestCrashDuringStartScript(t *testing.T) {
	h := newHarness(t, []string{"node1", "node2"}, []GroupConfig{{Name: "g", Owner: "node1", Disk: "T1"}}, "ECX_HELPER_SLEEP=start:NODE2")
	done := make(chan error, 1)
	go func() { done <- h.c.Move(ctxT(t), "g", "node2") }()
	within.Eventually(t, "start script on node2", func() bool {
		ev := h.events()
		return len(ev) > 0 && ev[len(ev)-1] == "script start NODE2 START/GROUPMOVE"
	})
	if err := h.c.ServerDown(ctxT(t), "node2"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("move: %v (node1 should have taken the group)", err)
	}
	want := []string{
		"script stop NODE1 START/GROUPMOVE", "disk_offline NODE1",
		"disk_online NODE2", "script start NODE2 START/GROUPMOVE",
		"server_down NODE2", "disk_offline NODE2",
		"disk_online NODE1", "script start NODE1 FAILOVER/GROUPFAILOVER",
	}
	if got := h.events(); !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	if st, cur := h.group("g"); st != StatusOnline || cur != "node1" {
		t.Fatalf("group %q on %q", st, cur)
	}
}

func TestCloseKillsRunningScripts(t *testing.T) {
	h := newHarness(t, []string{"node1", "node2"}, []GroupConfig{{Name: "g", Owner: "node1", Disk: "T1"}}, "ECX_HELPER_SLEEP=start:NODE2")
	h2, err := h.c.submit(opMove, "g", "node2")
	if err != nil {
		t.Fatal(err)
	}
	within.Eventually(t, "start script on node2", func() bool { return len(h.events()) == 4 })
	start := time.Now()
	if err := h.c.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > closeGrace+scriptKillLag+5*time.Second {
		t.Fatalf("Close took %s", took)
	}
	<-h2.done
	if h2.err == nil {
		t.Fatal("the killed script's move reported success")
	}
	if _, err := h.c.submit(opMove, "g", "node1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("operation after Close: %v", err)
	}
}

func TestOperationsOnDifferentGroupsRunConcurrently(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, []string{"node1", "node2"}, []GroupConfig{
		{Name: "g1", Owner: "node1", Disk: "T1", Scripts: Scripts{Start: []string{}}},
		{Name: "g2", Owner: "node1", Disk: "T2", Scripts: Scripts{Start: []string{}}},
	})
	gateErr := make(chan error, 1)
	h.rec.gate = func(kind, server string) {
		if kind == "disk_offline" {
			ev, err := loadEvents(h.record)
			switch {
			case err != nil || len(ev) == 0:
				gateErr <- fmt.Errorf("events at disk_offline: %v (%d read)", err, len(ev))
			case ev[len(ev)-1].Group == "g1":
				<-release
			}
		}
	}
	g1 := make(chan error, 1)
	go func() { g1 <- h.c.Move(ctxT(t), "g1", "node2") }()
	within.Eventually(t, "g1 blocked in disk_offline", func() bool { return h.c.State().Group("g1").Busy && len(h.events()) == 1 })
	if err := h.c.Move(ctxT(t), "g2", "node2"); err != nil {
		t.Fatalf("g2 moved while g1 was busy: %v", err)
	}
	if err := h.c.Move(ctxT(t), "g1", "node2"); !errors.Is(err, ErrRefused) {
		t.Fatalf("second operation on busy g1: %v, want ErrRefused", err)
	}
	close(release)
	if err := within.Recv(t, g1, "end of g1's move"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-gateErr:
		t.Fatal(err)
	default:
	}
}

func TestDefaultScriptDirIsRemovedOnClose(t *testing.T) {
	h := newHarness(t, []string{"node1"}, []GroupConfig{{Name: "g", Owner: "node1", Disk: "T1"}})
	if err := h.c.StopGroup(ctxT(t), "g"); err != nil {
		t.Fatal(err)
	}
	ev := readEvents(t, h.record)
	dir := ev[0].Env["CLP_SCRIPT_PATH"]
	if !strings.Contains(filepath.Base(dir), "ecx-c1-g-") || ev[0].Dir != dir {
		t.Fatalf("script dir %q, cwd %q", dir, ev[0].Dir)
	}
	if err := h.c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s after Close: %v, want it gone", dir, err)
	}
}

// The lab reads the cluster and the hosts under different locks; it relies
// on the cluster showing a disk on a server for as long as the hosts may use
// it there: still online during DiskOffline, already there during DiskOnline.
func TestDiskStateBracketsObserver(t *testing.T) {
	h := newHarness(t, []string{"node1", "node2"}, []GroupConfig{{Name: "g", Owner: "node1", Disk: "T1", Scripts: Scripts{Start: []string{}}}})
	var mu sync.Mutex
	var bad []string
	h.rec.gate = func(kind, server string) {
		if kind != "disk_offline" && kind != "disk_online" {
			return
		}
		if on := h.c.State().Group("g").DiskOnline; !strings.EqualFold(on, server) {
			mu.Lock()
			bad = append(bad, fmt.Sprintf("during %s %s the cluster shows the disk on %q", kind, server, on))
			mu.Unlock()
		}
	}
	if err := h.c.Move(ctxT(t), "g", "node2"); err != nil {
		t.Fatal(err)
	}
	if err := h.c.ServerDown(ctxT(t), "node2"); err != nil {
		t.Fatal(err)
	}
	if err := h.c.StopGroup(ctxT(t), "g"); err != nil {
		t.Fatal(err)
	}
	want := []string{"disk_offline NODE1", "disk_online NODE2", "server_down NODE2", "disk_offline NODE2", "disk_online NODE1", "disk_offline NODE1"}
	if got := h.events(); !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatal(strings.Join(bad, "\n"))
	}
	if on := h.c.State().Group("g").DiskOnline; on != "" {
		t.Fatalf("after the stop the disk shows online on %q", on)
	}
}

// A server brought up while its crash is still being told to the Observer
// boots only after the crash: the lab must never boot a host that then
// crashes while ECX reports it Online.
func TestServerUpWaitsForTheCrash(t *testing.T) {
	h := newHarness(t, []string{"node1", "node2"}, []GroupConfig{{Name: "g", Owner: "node2", Disk: "T1", Scripts: Scripts{Start: []string{}}}})
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the harness closes the cluster, on failure too
	h.rec.gate = func(kind, server string) {
		if kind == "server_down" {
			<-release
		}
	}
	down := make(chan error, 1)
	go func() { down <- h.c.ServerDown(ctxT(t), "node1") }()
	within.Eventually(t, "the crash reaching the Observer", func() bool { return len(h.events()) == 1 })
	up := make(chan error, 1)
	go func() { up <- h.c.ServerUp(ctxT(t), "node1") }()
	time.Sleep(200 * time.Millisecond) // room for a ServerUp that does not wait
	if got := h.events(); !slices.Equal(got, []string{"server_down NODE1"}) {
		t.Fatalf("while the crash was being handled: %q", got)
	}
	unblock()
	if err := within.Recv(t, down, "ServerDown"); err != nil {
		t.Fatal(err)
	}
	if err := within.Recv(t, up, "ServerUp"); err != nil {
		t.Fatal(err)
	}
	if got := h.events(); !slices.Equal(got, []string{"server_down NODE1", "server_up NODE1"}) {
		t.Fatalf("events %q", got)
	}
}

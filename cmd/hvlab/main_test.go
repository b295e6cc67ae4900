package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hvro/hvro/orchestrator/httpapi"
	"github.com/hvro/hvro/test/sim/ecx"
	"github.com/hvro/hvro/test/sim/hyperv"
	"github.com/hvro/hvro/test/sim/lab"
)

// TestMain lets this test binary stand in for hvlab when the demo's ECX
// scripts run it as "hvlab hook".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "hook" {
		os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestDemo runs the whole narrated tour; it exits 0 only when every step
// converged.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if code := realMain([]string{"demo"}, &out, &out); code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, out.String())
	}
	for _, want := range []string{"[1/6]", "[6/6]", "Every step converged", "vm1   cluster2/node3  cluster1/node2  Converged"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUsageErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("hyperv:\n  control: 10.0.0.1:80\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage:"},
		{[]string{"frob"}, 2, `unknown command "frob"`},
		{[]string{"run"}, 2, "--topology is required"},
		{[]string{"run", "--topology", "/nonexistent.yaml"}, 2, "read topology"},
		{[]string{"run", "--topology", bad}, 2, `hyperv.control: "10.0.0.1:80" is not a loopback address`},
		{[]string{"run", "--topology", bad, "--log-level", "loud"}, 2, `--log-level "loud"`},
		{[]string{"help"}, 0, "hvlab run --topology"},
	}
	for _, tc := range tests {
		var out, errOut bytes.Buffer
		code := realMain(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.want) {
			t.Errorf("hvlab %v: exit %d, output %q; want exit %d with %q", tc.args, code, out.String()+errOut.String(), tc.code, tc.want)
		}
	}
}

func TestRunsOnPrimary(t *testing.T) {
	vm1, vm2 := demoVMs[0].id, demoVMs[1].id
	host := func(name string, running ...string) hyperv.HostState {
		h := hyperv.HostState{Name: name}
		for _, id := range []string{vm1, vm2} {
			h.VMs = append(h.VMs, hyperv.VMEntry{ID: id, Running: slices.Contains(running, id)})
		}
		return h
	}
	state := func(disk1 string, hosts ...hyperv.HostState) lab.State {
		return lab.State{State: hyperv.State{Hosts: hosts}, ECX: []ecx.ClusterState{
			{Name: "cluster1", Groups: []ecx.GroupState{{Name: "failover1", DiskOnline: disk1}}},
			{Name: "cluster2", Groups: []ecx.GroupState{{Name: "failover2", DiskOnline: "node3"}}},
		}}
	}
	pair := func(name string) httpapi.PairView {
		return httpapi.PairView{Name: name, Primary: httpapi.SideView{Cluster: "cluster1", Group: "failover1", Host: "node1"},
			Replica: httpapi.SideView{Cluster: "cluster2", Group: "failover2", Host: "node3"}}
	}
	pairs := []httpapi.PairView{pair("vm1"), pair("vm2")}
	tests := []struct {
		name  string
		st    lab.State
		pairs []httpapi.PairView
		want  string
	}{
		{"converged", state("node1", host("node1", vm1, vm2), host("node3")), pairs, ""},
		{"a VM stopped", state("node1", host("node1", vm1), host("node3")), pairs, "vm2 runs on [], want only on its primary host node1"},
		{"the replica copy runs", state("node1", host("node1", vm1, vm2), host("node3", vm2)), pairs, "vm2 runs on [node1 node3]"},
		{"the disk is elsewhere", state("node2", host("node1", vm1, vm2), host("node3")), pairs, `ECX has the disk of cluster1/failover1 online on "node2"`},
		{"a pair is missing", state("node1", host("node1", vm1, vm2)), pairs[:1], "hvro does not list pair vm2"},
	}
	for _, tc := range tests {
		err := runsOnPrimary(tc.st, tc.pairs)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

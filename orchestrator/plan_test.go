package orchestrator

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	testSpec = PairSpec{
		Name: "vm1", VMName: "vm1",
		Sides: map[string]Side{
			"cluster1": {Cluster: "cluster1", Group: "failover1", ConfigPath: `T:\VMs\Virtual Machines\X.vmcx`},
			"cluster2": {Cluster: "cluster2", Group: "failover2", ConfigPath: `T:\VMs\Hyper-V Replica\Virtual Machines\X.vmcx`},
		},
		Replication: Settings{Port: 80, Auth: "Kerberos", FrequencySec: 300, Compression: true, UseBackup: true},
	}
	testClusters = Clusters{
		"cluster1": {Servers: map[string]string{"node1": "node1", "node2": "node2"}},
		"cluster2": {Servers: map[string]string{"node3": "node3", "node4": "node4"}},
	}
	g1 = GroupKey{"cluster1", "failover1"}
	g2 = GroupKey{"cluster2", "failover2"}
)

func online(owner string) GroupState {
	return GroupState{Poll: Observation{Status: "Online", Owner: owner, Source: "poll", At: time.Unix(100, 0)}}
}

func status(s, owner string) GroupState {
	return GroupState{Poll: Observation{Status: s, Owner: owner, Source: "poll", At: time.Unix(100, 0)}}
}

func vm(state string) *VMInfo {
	return &VMInfo{State: state, Running: state == "Running", Critical: strings.HasSuffix(state, "Critical")}
}

func rep(mode, state, primary, replica string) *RepInfo {
	return &RepInfo{Mode: mode, State: state, Health: "Normal", Primary: primary, Replica: replica}
}

// views builds the four hosts; unspecified ones have no VM.
func views(over map[string]HostView) map[string]HostView {
	v := map[string]HostView{"node1": {}, "node2": {}, "node3": {}, "node4": {}}
	for h, hv := range over {
		v[h] = hv
	}
	return v
}

// healthy is the converged estate node1 -> node3.
func healthy() map[string]HostView {
	return views(map[string]HostView{
		"node1": {VM: vm("Running"), Rep: rep("Primary", "Replicating", "node1.lab.local", "node3.lab.local")},
		"node3": {VM: vm("Off"), Rep: rep("Replica", "Replicating", "node1.lab.local", "node3.lab.local")},
	})
}

func with(base map[string]HostView, host string, hv HostView) map[string]HostView {
	out := map[string]HostView{}
	for k, v := range base {
		out[k] = v
	}
	out[host] = hv
	return out
}

func stepsOf(pl Plan) string {
	var out []string
	for _, s := range pl.Steps {
		if s.Host == "" {
			out = append(out, string(s.Kind))
			continue
		}
		out = append(out, string(s.Kind)+"@"+s.Host)
	}
	return strings.Join(out, " ")
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name             string
		groups           map[GroupKey]GroupState
		primary, replica string // settled host or ""
		why              string // substring of an unsettled reason
	}{
		{"both online", map[GroupKey]GroupState{g1: online("node1"), g2: online("node3")}, "node1", "node3", ""},
		{"short and long names", map[GroupKey]GroupState{g1: online("NODE2"), g2: online("node4.lab.local")}, "node2", "node4", ""},
		{"replica pending", map[GroupKey]GroupState{g1: online("node1"), g2: status("Online Pending", "node4")}, "node1", "", "Online Pending"},
		{"primary offline", map[GroupKey]GroupState{g1: status("Offline", ""), g2: online("node3")}, "", "node3", "Offline on no owner"},
		{"primary failure", map[GroupKey]GroupState{g1: status("Online Failure", "node2"), g2: online("node3")}, "", "node3", "Online Failure"},
		{"online without owner", map[GroupKey]GroupState{g1: status("Online", ""), g2: online("node3")}, "", "node3", "without an owner"},
		{"unknown owner", map[GroupKey]GroupState{g1: online("node9"), g2: online("node3")}, "", "node3", `"node9", which is not a configured server`},
		{"api unreachable", map[GroupKey]GroupState{g1: {Poll: Observation{Status: "Online", Owner: "node1", Err: "connection refused"}}, g2: online("node3")}, "", "node3", "unreachable: connection refused"},
		{"not observed", map[GroupKey]GroupState{g2: online("node3")}, "", "node3", "not observed yet"},
		{"start hook beats pending poll", map[GroupKey]GroupState{
			g1: {Poll: Observation{Status: "Online Pending", Owner: "node2", At: time.Unix(200, 0)}, Hook: Observation{Status: "Online", Owner: "node2", Phase: "start", Source: "hook", At: time.Unix(150, 0)}},
			g2: online("node3")}, "node2", "node3", ""},
		{"later poll elsewhere beats start hook", map[GroupKey]GroupState{
			g1: {Poll: Observation{Status: "Online Pending", Owner: "node1", At: time.Unix(200, 0)}, Hook: Observation{Status: "Online", Owner: "node2", Phase: "start", Source: "hook", At: time.Unix(150, 0)}},
			g2: online("node3")}, "", "node3", "Online Pending"},
		{"stop hook newer than poll", map[GroupKey]GroupState{
			g1: {Poll: Observation{Status: "Online", Owner: "node1", At: time.Unix(100, 0)}, Hook: Observation{Status: "Offline Pending", Owner: "node1", Phase: "stop", Source: "hook", At: time.Unix(150, 0)}},
			g2: online("node3")}, "", "node3", "Offline Pending"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(testSpec, "cluster1", tc.groups, testClusters)
			if d.Primary.Host != tc.primary || d.Replica.Host != tc.replica || d.Primary.Settled != (tc.primary != "") || d.Replica.Settled != (tc.replica != "") {
				t.Fatalf("got primary %q (%v) replica %q (%v); want %q %q", d.Primary.Host, d.Primary.Settled, d.Replica.Host, d.Replica.Settled, tc.primary, tc.replica)
			}
			if tc.why != "" && !strings.Contains(d.Primary.Why+d.Replica.Why, tc.why) {
				t.Fatalf("reasons %q / %q lack %q", d.Primary.Why, d.Replica.Why, tc.why)
			}
		})
	}
	d := Decide(testSpec, "cluster2", map[GroupKey]GroupState{g1: online("node1"), g2: online("node3")}, testClusters)
	if d.Primary.Host != "node3" || d.Replica.Host != "node1" {
		t.Fatalf("roles follow the primary cluster: %+v", d)
	}
}

func settled(p, r string) Desired {
	d := Desired{Primary: SideState{Side: testSpec.Sides["cluster1"]}, Replica: SideState{Side: testSpec.Sides["cluster2"]}}
	if p != "" {
		d.Primary.Settled, d.Primary.Host = true, p
	} else {
		d.Primary.Why = "group cluster1/failover1 is Offline Pending on node1"
	}
	if r != "" {
		d.Replica.Settled, d.Replica.Host = true, r
	} else {
		d.Replica.Why = "group cluster2/failover2 is Offline on no owner"
	}
	return d
}

func TestPlanReconcile(t *testing.T) {
	down := errors.New("dial tcp: connection refused")
	tests := []struct {
		name    string
		d       Desired
		views   map[string]HostView
		steps   string
		outcome string // converged | progressing | waiting | degraded | steps
		note    string
	}{
		{"converged", settled("node1", "node3"), healthy(), "", "converged", ""},
		{"lagging health", settled("node1", "node3"), with(healthy(), "node1", HostView{VM: vm("Running"), Rep: &RepInfo{Mode: "Primary", State: "Replicating", Health: "Warning", Primary: "node1", Replica: "node3"}}), "", "progressing", ""},
		{"primary unsettled: hands off", settled("", "node3"), healthy(), "", "waiting", ""},
		{"primary host down", settled("node1", "node3"), with(healthy(), "node1", HostView{Err: down}), "", "waiting", ""},
		{"fresh lab: nothing set up", settled("node1", "node3"), views(map[string]HostView{"node1": {VM: vm("Off")}, "node3": {VM: vm("Off")}}),
			"start_vm@node1 enable_replica@node3 enable_primary@node1 start_initial_replication@node1", "steps", ""},
		{"VM off but replicating", settled("node1", "node3"), with(healthy(), "node1", HostView{VM: vm("Off"), Rep: rep("Primary", "Replicating", "node1", "node3")}),
			"start_vm@node1", "steps", ""},
		{"replica side offline: VM still starts, replication untouched", settled("node1", ""),
			views(map[string]HostView{"node1": {VM: vm("Off"), Rep: rep("Primary", "Error", "node1", "node3")}, "node3": {VM: vm("OffCritical"), Rep: rep("Replica", "Error", "node1", "node3")}}),
			"start_vm@node1", "degraded", ""},
		{"replica back: resume from Error", settled("node1", "node3"), with(healthy(), "node1", HostView{VM: vm("Running"), Rep: rep("Primary", "Error", "node1", "node3")}),
			"resume_replication@node1", "steps", ""},
		{"a planned failover stopped after prepare", settled("node1", "node3"), with(healthy(), "node1", HostView{VM: vm("Off"), Rep: rep("Primary", "PreparedForFailover", "node1", "node3")}),
			"cancel_failover@node1 start_vm@node1", "progressing", ""},
		{"and after the replica failed over", settled("node1", "node3"), views(map[string]HostView{
			"node1": {VM: vm("Off"), Rep: rep("Primary", "Replicating", "node1", "node3")},
			"node3": {VM: vm("Off"), Rep: rep("Replica", "FailedOverWaitingCompletion", "node1", "node3")}}),
			"start_vm@node1 cancel_failover@node3", "progressing", ""},
		{"resync needed", settled("node1", "node3"), with(healthy(), "node1", HostView{VM: vm("Running"), Rep: rep("Primary", "WaitingForStartResynchronize", "node1", "node3")}),
			"resume_replication@node1", "steps", ""},
		{"suspended", settled("node1", "node3"), with(healthy(), "node1", HostView{VM: vm("Running"), Rep: rep("Primary", "Suspended", "node1", "node3")}),
			"resume_replication@node1", "steps", ""},
		{"initial replication in progress", settled("node1", "node3"), views(map[string]HostView{
			"node1": {VM: vm("Running"), Rep: rep("Primary", "InitialReplicationInProgress", "node1", "node3")},
			"node3": {VM: vm("Off"), Rep: rep("Replica", "WaitingForInitialReplication", "node1", "")}}),
			"", "progressing", ""},
		{"ready for initial replication", settled("node1", "node3"), views(map[string]HostView{
			"node1": {VM: vm("Running"), Rep: rep("Primary", "ReadyForInitialReplication", "node1", "node3")},
			"node3": {VM: vm("Off"), Rep: rep("Replica", "WaitingForInitialReplication", "node1", "")}}),
			"start_initial_replication@node1", "steps", ""},
		{"primary moved with hooks: new owner not registered", settled("node2", "node3"), views(map[string]HostView{
			"node1": {VM: vm("OffCritical")},
			"node3": {VM: vm("Off")}}),
			"register@node2", "progressing", ""},
		{"primary moved without hooks: stale relationship from the old host", settled("node2", "node3"), views(map[string]HostView{
			"node1": {VM: vm("PausedCritical"), Rep: rep("Primary", "Error", "node1", "node3")},
			"node2": {VM: vm("Saved"), Rep: rep("Primary", "Error", "node1", "node3")},
			"node3": {VM: vm("Off"), Rep: rep("Replica", "Replicating", "node1", "node3")}}),
			"remove_replication@node2 start_vm@node2 remove_replication@node3 enable_replica@node3 enable_primary@node2 start_initial_replication@node2", "steps",
			"node1 keeps a Primary relationship for vm1 but cannot reach its storage"},
		{"primary moved back: old relationship on node2 is live again", settled("node1", "node3"), with(healthy(), "node2", HostView{VM: vm("Off"), Rep: rep("Primary", "Replicating", "node2", "node3")}),
			"remove_replication@node2", "steps", ""},
		{"replica moved: retarget", settled("node1", "node4"), views(map[string]HostView{
			"node1": {VM: vm("Running"), Rep: rep("Primary", "Error", "node1", "node3")},
			"node3": {VM: vm("OffCritical"), Rep: rep("Replica", "Error", "node1", "node3")},
			"node4": {VM: vm("Off"), Rep: rep("Replica", "Replicating", "node1", "node3")}}),
			"remove_replication@node1 remove_replication@node4 enable_replica@node4 enable_primary@node1 start_initial_replication@node1", "steps",
			"node3 keeps a Replica relationship"},
		{"replica moved, new owner not registered", settled("node1", "node4"), views(map[string]HostView{
			"node1": {VM: vm("Running"), Rep: rep("Primary", "Error", "node1", "node3")},
			"node3": {VM: vm("OffCritical")}}),
			"remove_replication@node1 register@node4", "progressing", ""},
		{"replica owner down", settled("node1", "node3"), with(healthy(), "node3", HostView{Err: down}), "", "degraded", ""},
		{"replica half removed by someone", settled("node1", "node3"), with(healthy(), "node3", HostView{VM: vm("Off")}),
			"remove_replication@node1 enable_replica@node3 enable_primary@node1 start_initial_replication@node1", "steps", ""},
		{"replica half follows another primary", settled("node1", "node3"), with(healthy(), "node3", HostView{VM: vm("Off"), Rep: rep("Replica", "Replicating", "node2", "node3")}),
			"remove_replication@node1 remove_replication@node3 enable_replica@node3 enable_primary@node1 start_initial_replication@node1", "steps", ""},
		{"replica already waiting for this primary", settled("node1", "node3"), views(map[string]HostView{
			"node1": {VM: vm("Running")}, "node3": {VM: vm("Off"), Rep: rep("Replica", "WaitingForInitialReplication", "", "")}}),
			"enable_primary@node1 start_initial_replication@node1", "steps", ""},
		{"replica VM running (split brain): stop it", settled("node1", "node3"), with(healthy(), "node3", HostView{VM: vm("Running"), Rep: rep("Replica", "FailedOver", "node1", "node3")}),
			"stop_vm@node3 remove_replication@node1 remove_replication@node3 enable_replica@node3 enable_primary@node1 start_initial_replication@node1", "steps", ""},
		{"VM running on the other primary-cluster node", settled("node1", "node3"), with(healthy(), "node2", HostView{VM: vm("Running")}),
			"stop_vm@node2", "steps", ""},
		{"owner cannot reach storage yet", settled("node2", "node3"), with(healthy(), "node2", HostView{VM: vm("OffCritical")}),
			"stop_vm@node1 remove_replication@node1", "waiting", ""},
		{"replica owner cannot reach storage yet", settled("node1", "node4"), with(healthy(), "node4", HostView{VM: vm("OffCritical")}),
			"remove_replication@node3 remove_replication@node1", "waiting", ""},
		{"primary holds a replica half (roles flipped outside hvro)", settled("node1", "node3"), views(map[string]HostView{
			"node1": {VM: vm("Off"), Rep: rep("Replica", "Replicating", "node3", "node1")},
			"node3": {VM: vm("Off"), Rep: rep("Primary", "Replicating", "node3", "node1")}}),
			"remove_replication@node1 start_vm@node1 remove_replication@node3 enable_replica@node3 enable_primary@node1 start_initial_replication@node1", "steps", ""},
		{"stale host down is ignored", settled("node1", "node3"), with(healthy(), "node2", HostView{Err: down}), "", "converged", ""},
		{"both failed over at once", settled("node2", "node4"), views(map[string]HostView{
			"node1": {Err: down}, "node3": {Err: down},
			"node2": {VM: vm("Off"), Rep: rep("Primary", "Error", "node1", "node3")},
			"node4": {VM: vm("Off"), Rep: rep("Replica", "Replicating", "node1", "node3")}}),
			"remove_replication@node2 start_vm@node2 remove_replication@node4 enable_replica@node4 enable_primary@node2 start_initial_replication@node2", "steps", ""},
		{"network initial replication", settled("node1", "node3"), views(map[string]HostView{"node1": {VM: vm("Running")}, "node3": {VM: vm("Off")}}),
			"enable_replica@node3 enable_primary@node1 start_initial_replication@node1", "steps", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := testSpec
			if tc.name == "network initial replication" {
				spec.Replication.UseBackup = false
			}
			pl := PlanReconcile(spec, tc.d, testClusters, tc.views)
			if got := stepsOf(pl); got != tc.steps {
				t.Fatalf("steps:\n got  %s\n want %s", got, tc.steps)
			}
			outcome := "steps"
			switch {
			case pl.Converged:
				outcome = "converged"
			case pl.Waiting != "":
				outcome = "waiting"
			case pl.Degraded != "":
				outcome = "degraded"
			case pl.Progressing != "" && len(pl.Steps) == 0 || strings.HasPrefix(pl.Progressing, "re-inspect"):
				outcome = "progressing"
			}
			if outcome != tc.outcome {
				t.Fatalf("outcome %s (%+v), want %s", outcome, pl, tc.outcome)
			}
			if tc.note != "" && !strings.Contains(strings.Join(pl.Notes, "\n"), tc.note) {
				t.Fatalf("notes %q lack %q", pl.Notes, tc.note)
			}
			for _, s := range pl.Steps {
				if s.Kind == StepStartVM && s.Host != tc.d.Primary.Host {
					t.Fatalf("I2 violated: start on %s, primary owner %s", s.Host, tc.d.Primary.Host)
				}
				if s.Kind == StepInitial && s.UseBackup != spec.Replication.UseBackup {
					t.Fatalf("initial replication mode ignores the config")
				}
				if s.Why == "" {
					t.Fatalf("step %s has no reason", s.Kind)
				}
			}
		})
	}
}

func TestPlanEvacuate(t *testing.T) {
	tests := []struct {
		name    string
		leaving string
		primary bool
		factor  string
		views   map[string]HostView
		steps   string
		waiting string // a part of Plan.Waiting; "" when the plan must not wait
	}{
		{"primary group moves", "node1", true, "GROUPMOVE", healthy(), "stop_vm@node1 remove_replication@node1 remove_replication@node3", ""},
		{"primary group stops", "node1", true, "GROUPSTOP", healthy(), "stop_vm@node1 remove_replication@node1 remove_replication@node3", ""},
		{"primary group fails over", "node1", true, "GROUPFAILOVER", healthy(), "stop_vm@node1 remove_replication@node1 remove_replication@node3", ""},
		{"already evacuated", "node1", true, "GROUPMOVE", views(map[string]HostView{"node1": {VM: vm("Off")}}), "", ""},
		{"replica group stops: kept for resume", "node3", false, "GROUPSTOP", healthy(), "", ""},
		{"replica group moves", "node3", false, "GROUPMOVE", healthy(), "remove_replication@node3", ""},
		{"replica peer down: only the local half", "node1", true, "GROUPMOVE", with(healthy(), "node3", HostView{Err: errors.New("down")}), "stop_vm@node1 remove_replication@node1", ""},
		{"leaving host cannot be inspected", "node1", true, "GROUPMOVE", with(healthy(), "node1", HostView{Err: errors.New("down")}), "", "node1 cannot be inspected: down"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl := PlanEvacuate(testSpec, tc.leaving, tc.primary, tc.factor, tc.views)
			if got := stepsOf(pl); got != tc.steps {
				t.Fatalf("steps:\n got  %s\n want %s", got, tc.steps)
			}
			switch {
			case tc.waiting == "" && pl.Waiting != "":
				t.Fatalf("waits: %s", pl.Waiting)
			case tc.waiting != "" && !strings.Contains(pl.Waiting, tc.waiting):
				t.Fatalf("Waiting %q, want %q", pl.Waiting, tc.waiting)
			case pl.Converged != (tc.steps == "" && tc.waiting == ""):
				t.Fatalf("Converged %v with steps %q, waiting %q", pl.Converged, tc.steps, pl.Waiting)
			}
		})
	}
}

func TestPlanFailover(t *testing.T) {
	planned := FailoverRequest{Planned: true}
	pl, err := PlanFailover(testSpec, settled("node1", "node3"), planned, testClusters, nil, healthy())
	if err != nil {
		t.Fatal(err)
	}
	if got := stepsOf(pl); got != "stop_vm@node1 prepare_failover@node1 failover@node3 reverse@node3 switch_primary_role start_vm@node3" {
		t.Fatalf("planned: %s", got)
	}
	for _, tc := range []struct {
		name  string
		d     Desired
		req   FailoverRequest
		views map[string]HostView
		want  string
	}{
		{"planned without primary", settled("", "node3"), planned, healthy(), "use --mode unplanned"},
		{"replica side lost", settled("node1", ""), FailoverRequest{}, healthy(), "replica side cannot take the primary role"},
		{"not replicating", settled("node1", "node3"), planned, with(healthy(), "node1", HostView{VM: vm("Running"), Rep: rep("Primary", "Error", "node1", "node3")}), "needs replication node1 -> node3 Replicating"},
		{"no replica copy", settled("node1", "node3"), FailoverRequest{}, with(healthy(), "node3", HostView{VM: vm("Off")}), "is not a replica"},
	} {
		if _, err := PlanFailover(testSpec, tc.d, tc.req, testClusters, nil, tc.views); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestFenceUnplanned: an unplanned failover starts the replica only with
// evidence that the VM runs on no primary-cluster host (I1); a sighting
// refuses even when forced, missing evidence needs --force with a reason.
func TestFenceUnplanned(t *testing.T) {
	down := HostView{Err: errors.New("connection refused")}
	lost := with(with(healthy(), "node1", down), "node2", down)
	apiDown := map[GroupKey]GroupState{g1: {Poll: Observation{Err: "connection refused", Source: "poll", At: time.Unix(100, 0)}}}
	forced := FailoverRequest{Force: true, Reason: "site 1 flooded"}
	const steps = "failover@node3 complete_failover@node3 switch_primary_role start_vm@node3"
	for _, tc := range []struct {
		name   string
		groups map[GroupKey]GroupState
		req    FailoverRequest
		views  map[string]HostView
		want   string // error substring; "" = allowed
		note   string // a note for the journal
	}{
		{"still runs on the old primary, API down", apiDown, FailoverRequest{}, healthy(), "vm1 still runs on node1", ""},
		{"still runs: force does not override", apiDown, forced, healthy(), "vm1 still runs on node1", ""},
		{"runs on the other primary node", apiDown, forced, with(with(healthy(), "node1", down), "node2", HostView{VM: vm("Running")}), "still runs on node2", ""},
		{"ECX says Online", map[GroupKey]GroupState{g1: online("node2")}, forced, lost, "ECX reports the primary group cluster1/failover1 as Online on node2", ""},
		{"ECX says pending", map[GroupKey]GroupState{g1: status("Offline Pending", "node1")}, FailoverRequest{}, with(healthy(), "node1", HostView{VM: vm("Off")}), "Offline Pending", ""},
		{"site gone, not forced", apiDown, FailoverRequest{}, lost, `no evidence that vm1 is not running on node1 (connection refused), node2 (connection refused); if the primary site is really lost, repeat with --force`, ""},
		{"site gone, forced", apiDown, forced, lost, "", "forced by the operator without evidence from node1 (connection refused), node2 (connection refused): site 1 flooded"},
		{"every host answers, VM off, API down", apiDown, FailoverRequest{}, with(healthy(), "node1", HostView{VM: vm("Off")}), "", ""},
		{"ECX says Offline, hosts answer", map[GroupKey]GroupState{g1: status("Offline", "")}, FailoverRequest{}, with(healthy(), "node1", HostView{VM: vm("Off-Critical")}), "", ""},
		{"a critical copy is no runner", apiDown, FailoverRequest{}, with(healthy(), "node1", HostView{VM: &VMInfo{State: "Running-Critical", Running: true, Critical: true}}), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := PlanFailover(testSpec, settled("", "node3"), tc.req, testClusters, tc.groups, tc.views)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := stepsOf(pl); got != steps {
				t.Fatalf("steps %s", got)
			}
			if got := strings.Join(pl.Notes, "; "); got != tc.note {
				t.Fatalf("notes %q, want %q", got, tc.note)
			}
		})
	}
}

func TestHostNames(t *testing.T) {
	cl := Clusters{"c": {Servers: map[string]string{"node1": "node1", "node2.corp": "node2.corp"}}}
	for _, tc := range []struct {
		server, want string
		ok           bool
	}{
		{"node1", "node1", true},
		{"NODE1.lab.local", "node1", true},  // Hyper-V and hooks may send the FQDN
		{"node2.corp", "node2.corp", true},  // a configured name with a dot
		{"Node2.Corp ", "node2.corp", true}, // as ECX may spell it
		{"node2", "", false},                // not configured under that name
		{"node3", "", false},
	} {
		if got, ok := cl.host("c", tc.server); got != tc.want || ok != tc.ok {
			t.Errorf("host(%q) = %q, %v; want %q, %v", tc.server, got, ok, tc.want, tc.ok)
		}
	}
}

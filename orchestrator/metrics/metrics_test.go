package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestGroupOwnerKeepsOneSeriesPerGroup(t *testing.T) {
	m := New("test")
	m.GroupOwner("cluster1", "failover1", "node1")
	m.GroupOwner("cluster1", "failover1", "node2") // moved
	m.GroupOwner("cluster2", "failover2", "node3")
	m.GroupOwner("cluster2", "failover2", "") // no owner: no series
	want := `# HELP hvro_ecx_group_owner_info 1 for the server ECX reports as the Online owner of a group.
# TYPE hvro_ecx_group_owner_info gauge
hvro_ecx_group_owner_info{cluster="cluster1",group="failover1",server="node2"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "hvro_ecx_group_owner_info"); err != nil {
		t.Fatal(err)
	}
}

func TestPairStateIsOneHot(t *testing.T) {
	m := New("test")
	at := time.Unix(1700000000, 0)
	m.Pair("vm1", "Converging", "", "", time.Time{})
	m.Pair("vm1", "Converged", "Critical", "", at)
	for _, s := range PairStates {
		want := 0.0
		if s == "Converged" {
			want = 1
		}
		if got := testutil.ToFloat64(m.pairState.WithLabelValues("vm1", s)); got != want {
			t.Errorf("hvro_pair_state{state=%q} = %v, want %v", s, got, want)
		}
	}
	if got := testutil.ToFloat64(m.pairHealth.WithLabelValues("vm1")); got != 3 {
		t.Errorf("health = %v, want 3 (Critical)", got)
	}
	if got := testutil.ToFloat64(m.lastConverged.WithLabelValues("vm1")); got != 1700000000 {
		t.Errorf("last converged = %v", got)
	}
	m.ForgetPair("vm1")
	if n := testutil.CollectAndCount(m.pairState) + testutil.CollectAndCount(m.pairHealth) + testutil.CollectAndCount(m.lastConverged); n != 0 {
		t.Errorf("%d series left after ForgetPair", n)
	}
}

// TestDegradedReason: one series per degraded pair, with its current
// reason; none once the pair recovers or is forgotten.
func TestDegradedReason(t *testing.T) {
	m := New("test")
	m.Pair("vm1", "Degraded", "", "auth_refused", time.Time{})
	m.Pair("vm1", "Degraded", "", "not_winrm", time.Time{})
	if n := testutil.CollectAndCount(m.pairDegraded); n != 1 {
		t.Fatalf("%d degraded series, want 1", n)
	}
	if got := testutil.ToFloat64(m.pairDegraded.WithLabelValues("vm1", "not_winrm")); got != 1 {
		t.Fatalf("hvro_pair_degraded_info{reason=not_winrm} = %v", got)
	}
	m.Pair("vm1", "Converged", "Normal", "not_winrm", time.Now()) // a stale reason of a converged pair is not exported
	if n := testutil.CollectAndCount(m.pairDegraded); n != 0 {
		t.Fatalf("%d degraded series after converging", n)
	}
	m.Pair("vm2", "Degraded", "", "step_failed", time.Time{})
	m.ForgetPair("vm2")
	if n := testutil.CollectAndCount(m.pairDegraded); n != 0 {
		t.Fatalf("%d degraded series after ForgetPair", n)
	}
}

// TestLint runs client_golang's own linter (the rules promtool check
// metrics applies) over everything hvro registers.
func TestLint(t *testing.T) {
	m := New("test")
	m.Operation("reconcile", "succeeded", time.Second)
	m.Step("start_vm", time.Second)
	m.WinRM("node1", "ok", time.Second)
	m.WinRMAbandoned("node1")
	m.HostIdentity("node1", false)
	m.ECX("cluster1", "http://192.0.2.10:29009", "ok")
	m.Hook("cluster1", "start", "ok")
	m.Pair("vm1", "Converged", "Normal", "", time.Now())
	m.Pair("vm2", "Degraded", "", "auth_refused", time.Time{})
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "hvro_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/test/sim/lab"
)

// TestHostNamesNoRebuild: Hyper-V reports a primary by its own identity
// and a Replica server by the name it was given, and neither need be the
// ECX server name. Here node1's computer name is HV-NODE1 (Hyper-V reports
// HV-NODE1.lab.local), and node3 is reached for replication by its alias
// node3-mgmt.corp (replica_name). Once converged, further passes must find
// nothing to repair: no replication is removed or enabled again.
func TestHostNamesNoRebuild(t *testing.T) {
	for _, tc := range []struct {
		name      string
		topology  func(*lab.Topology)
		configure func(string) string
	}{
		{name: "computer name differs", topology: func(topo *lab.Topology) {
			topo.HyperV.Hosts[0].ComputerName = "HV-NODE1"
		}},
		{name: "replica_name alias", topology: func(topo *lab.Topology) {
			topo.HyperV.Hosts[0].ComputerName = "HV-NODE1"
			topo.HyperV.Hosts[2].DNSNames = []string{"node3-mgmt.corp"}
		}, configure: func(cfg string) string {
			return withReplicaName(t, cfg, "node3", "node3-mgmt.corp")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{topology: tc.topology, configure: func(cfg string) string {
				cfg = strings.Replace(cfg, "resync_interval: 5s", "resync_interval: 1s", 1)
				if tc.configure != nil {
					cfg = tc.configure(cfg)
				}
				return cfg
			}})
			e.waitConverged("node1", "node3")
			since := time.Now()
			// Several resyncs: each pass inspects every host and plans.
			time.Sleep(5 * time.Second)
			if cmds := e.commandsSince(since); len(cmds) > 0 {
				t.Fatalf("%d commands changed vm1 after convergence: %s", len(cmds), describeCmds(cmds))
			}
			if p := e.pair(); p.Phase != "Converged" {
				t.Fatalf("pair %s after the resyncs", p.Phase)
			}
			st := e.state()
			pv, _ := vmOn(st, "node1")
			if tc.configure != nil && (pv.Replication == nil || pv.Replication.ReplicaServer != "node3-mgmt.corp") {
				t.Fatalf("node1 replicates to %+v, want the replica_name node3-mgmt.corp", pv.Replication)
			}
			// node1's identity matches no configured name: flagged.
			resp, err := http.Get(e.hvroURL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), `hvro_host_identity_mismatch{host="node1"} 1`) || !strings.Contains(string(b), `hvro_host_identity_mismatch{host="node3"} 0`) {
				t.Errorf("identity mismatch metric:\n%s", grepLines(string(b), "hvro_host_identity"))
			}
			if !strings.Contains(e.stderr.String(), "server=node1 identity=HV-NODE1.lab.local") {
				t.Errorf("no warning naming node1 and its identity")
			}
		})
	}
}

// withReplicaName sets replica_name on a server of the generated config.
func withReplicaName(t *testing.T, cfg, server, name string) string {
	t.Helper()
	key := server + ": {winrm: "
	i := strings.Index(cfg, key)
	if i < 0 {
		t.Fatalf("no server %s in the config", server)
	}
	j := i + strings.IndexByte(cfg[i:], '}')
	return cfg[:j] + fmt.Sprintf(", replica_name: %s", name) + cfg[j:]
}

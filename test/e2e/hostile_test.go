package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/test/sim/lab"
)

const (
	vm2ID          = "6B1D4C55-93A2-4F0E-9C61-2E7D0A5B8F14"
	vm2PrimaryPath = `U:\VMs\Virtual Machines\6B1D4C55-93A2-4F0E-9C61-2E7D0A5B8F14.vmcx`
	vm2ReplicaPath = `V:\VMs\Hyper-V Replica\Virtual Machines\6B1D4C55-93A2-4F0E-9C61-2E7D0A5B8F14.vmcx`
)

// TestHostileWinRMEndpoint: server node4's WinRM URL leads to an endpoint
// that answers every request with 10,000 nested elements (17 s of CPU for
// the WinRM library per reply, and one of node4's slots held meanwhile).
// hvro must stay responsive, the pair that does not need node4 converges,
// and the pair whose replica owner is node4 says why it cannot protect it.
func TestHostileWinRMEndpoint(t *testing.T) {
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
		io.WriteString(w, `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>`+
			strings.Repeat("<a>", 10000)+strings.Repeat("</a>", 10000)+`</s:Body></s:Envelope>`)
	}))
	t.Cleanup(hostile.Close)

	e := newEnv(t, envOptions{
		// vm2: primary copy on cluster1's failover3 (node2), replica copy
		// on cluster2's failover4 (node4).
		topology: func(topo *lab.Topology) {
			topo.ECX[0].Groups = append(topo.ECX[0].Groups, lab.ECXGroup{Name: "failover3", Owner: "node2", Disk: "sd3"})
			topo.ECX[1].Groups = append(topo.ECX[1].Groups, lab.ECXGroup{Name: "failover4", Owner: "node4", Disk: "sd4"})
			topo.HyperV.Disks = append(topo.HyperV.Disks,
				lab.HyperVDisk{Name: "T3", Group: lab.DiskGroup{Cluster: "cluster1", Group: "failover3"}},
				lab.HyperVDisk{Name: "T4", Group: lab.DiskGroup{Cluster: "cluster2", Group: "failover4"}})
			topo.HyperV.VMs = append(topo.HyperV.VMs, lab.HyperVVM{Name: "vm2", ID: vm2ID, Copies: []lab.VMCopy{
				{Disk: "T3", ConfigPath: vm2PrimaryPath, RegisteredOn: "node2", State: "Running"},
				{Disk: "T4", ConfigPath: vm2ReplicaPath, RegisteredOn: "node4", State: "Off"}}})
		},
		configure: func(cfg string) string {
			node4 := cfg[strings.Index(cfg, "node4: {winrm: ")+len("node4: {winrm: "):]
			node4 = node4[:strings.IndexByte(node4, '}')]
			cfg = strings.Replace(cfg, "node4: {winrm: "+node4+"}", fmt.Sprintf("node4: {winrm: %q}", hostile.URL+"/wsman"), 1)
			return cfg + fmt.Sprintf(`  - name: vm2
    primary: {cluster: cluster1, group: failover3, vm_config_path: '%s'}
    replica: {cluster: cluster2, group: failover4, vm_config_path: '%s'}
    replication: {frequency: 30s}
`, vm2PrimaryPath, vm2ReplicaPath)
		},
	})

	// The API answers promptly all along.
	stop := make(chan struct{})
	slow := make(chan string, 1)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			// An API call that reads the store, not a static handler.
			start := time.Now()
			req, _ := http.NewRequest(http.MethodGet, e.hvroURL+"/v1/pairs", nil)
			req.Header.Set("Authorization", "Bearer "+e.admin)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("HTTP %d", resp.StatusCode)
				}
			}
			if d := time.Since(start); err != nil || d > 2*time.Second {
				select {
				case slow <- fmt.Sprintf("GET /v1/pairs: %v after %s", err, d):
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop) })

	e.waitConverged("node1", "node3")
	e.waitFor("vm2 to show why node4 cannot be used", 30*time.Second, func() error {
		p := e.pairNamed("vm2")
		if p.Degraded == nil || !strings.Contains(p.Degraded.Error, "malformed_reply") || !strings.Contains(p.Degraded.Error, "node4") {
			return fmt.Errorf("vm2: %s %+v", p.Phase, p.Degraded)
		}
		return nil
	})
	// vm2 still runs where it should: nothing was done to its primary.
	st := e.state()
	found := false
	for _, h := range st.Hosts {
		for _, v := range h.VMs {
			if v.ID == vm2ID && h.Name == "node2" {
				found = v.Running
			}
		}
	}
	if !found {
		t.Errorf("vm2 no longer runs on node2")
	}
	select {
	case msg := <-slow:
		t.Fatalf("hvro was not responsive: %s", msg)
	default:
	}
	var metrics string
	resp, err := http.Get(e.hvroURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics = string(b)
	if !strings.Contains(metrics, `hvro_winrm_requests_total{host="node4",outcome="permanent"}`) {
		t.Errorf("no permanent WinRM failures counted for node4:\n%s", grepLines(metrics, "hvro_winrm"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

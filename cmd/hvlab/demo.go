package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/cmd/hvro/service"
	"github.com/hvro/hvro/orchestrator/httpapi"
	"github.com/hvro/hvro/store"
	"github.com/hvro/hvro/test/sim/lab"
)

// The demo's estate: two ECX clusters of two Hyper-V hosts, two VMs whose
// primary copies share cluster1's group and replica copies cluster2's.
var demoVMs = []struct{ name, id string }{
	{"vm1", "C520D71E-AE84-40D6-A2B5-B1F697821703"},
	{"vm2", "5B7E21A9-0C3D-4F6E-9A12-7D4C3B2A1F00"},
}

type demo struct {
	out     io.Writer
	lab     *lab.Lab
	svc     *service.Service
	url     string
	admin   string
	dir     string // the demo's scratch folder, removed on exit
	client  *http.Client
	started time.Time
	step    int
	steps   int
}

func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hvlab demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "keep running after the tour (Ctrl-C to stop) so you can explore the API")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	d, cleanup, err := startDemo(stdout)
	defer cleanup()
	if err != nil {
		fmt.Fprintf(stderr, "hvlab demo: %v\n", err)
		return 1
	}
	if err := d.tour(); err != nil {
		fmt.Fprintf(stdout, "\nFAILED: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nEvery step converged, in %s. Nothing ran twice (I1); after each step every VM ran only on its primary host, where ECX had the primary group's disk online (I2).\n", time.Since(d.started).Round(100*time.Millisecond))
	if *keep {
		tokenFile := filepath.Join(d.dir, "admin.token")
		if err := os.WriteFile(tokenFile, []byte(d.admin), 0o600); err != nil {
			fmt.Fprintf(stderr, "hvlab demo: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "\nStill running until Ctrl-C. Try, in another terminal:\n"+
			"  export HVRO_SERVER=%s HVRO_TOKEN_FILE=%s\n"+
			"  go run ./cmd/hvro status\n"+
			"  go run ./cmd/hvro pair show vm1\n"+
			"  go run ./cmd/hvro failover vm2 --mode planned --wait 1m\n"+
			"  curl -s -X POST %s/sim/ecx/cluster1/groups/failover1/move -d '{\"target\":\"node1\"}'\n"+
			"  curl -s %s/metrics | grep ^hvro_pair\n",
			d.url, tokenFile, d.lab.Addrs().Control, d.url)
		waitInterrupt()
	}
	return 0
}

func startDemo(out io.Writer) (*demo, func(), error) {
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	dir, err := os.MkdirTemp("", "hvlab-demo-")
	if err != nil {
		return nil, cleanup, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	self, err := os.Executable()
	if err != nil {
		return nil, cleanup, fmt.Errorf("find this program for the ECX scripts: %w", err)
	}
	d := &demo{out: out, admin: "demo-admin-token-0123456789", dir: dir, client: &http.Client{Timeout: 30 * time.Second}, started: time.Now()}
	hookTokens := map[string]string{"cluster1": "demo-hook-token-cluster1-01", "cluster2": "demo-hook-token-cluster2-02"}
	tokenFiles := map[string]string{}
	for c, tok := range hookTokens {
		p := filepath.Join(dir, c+".token")
		if err := os.WriteFile(p, []byte(tok), 0o600); err != nil {
			return nil, cleanup, err
		}
		tokenFiles[c] = p
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, cleanup, err
	}
	d.url = "http://" + addr

	// The ECX scripts run this very program as "hvlab hook", the same code
	// as "hvro hook", in a child process with the CLP_* variables set.
	script := func(cluster, group, phase string) []string {
		return []string{self, "hook", "--url", d.url, "--cluster", cluster, "--group", group, "--phase", phase,
			"--token-file", tokenFiles[cluster], "--wait", "60s", "--retry-for", "5s"}
	}
	fast := lab.ECXTiming{Pending: 30 * time.Millisecond, DiskSwitch: 30 * time.Millisecond}
	var vms []lab.HyperVVM
	for _, vm := range demoVMs {
		vms = append(vms, lab.HyperVVM{Name: vm.name, ID: vm.id, Copies: []lab.VMCopy{
			{Disk: "T1", ConfigPath: primaryPath(vm.id), RegisteredOn: "node1", State: "Running"},
			{Disk: "T2", ConfigPath: replicaPath(vm.id), RegisteredOn: "node3", State: "Off"},
		}})
	}
	topo := &lab.Topology{
		Domain: "lab.local", Dir: dir,
		ECX: []lab.ECXCluster{
			{Name: "cluster1", Listen: "127.0.0.1:0", Username: "Administrator", Password: "lab-pass-1", Servers: []string{"node1", "node2"}, Timing: fast,
				Groups: []lab.ECXGroup{{Name: "failover1", Owner: "node1", Disk: "sd1", Scripts: lab.ECXScripts{
					Start: script("cluster1", "failover1", "start"), Stop: script("cluster1", "failover1", "stop"), Timeout: 2 * time.Minute}}}},
			{Name: "cluster2", Listen: "127.0.0.1:0", Username: "Administrator", Password: "lab-pass-2", Servers: []string{"node3", "node4"}, Timing: fast,
				Groups: []lab.ECXGroup{{Name: "failover2", Owner: "node3", Disk: "sd2", Scripts: lab.ECXScripts{
					Start: script("cluster2", "failover2", "start"), Stop: script("cluster2", "failover2", "stop"), Timeout: 2 * time.Minute}}}},
		},
		HyperV: lab.HyperV{
			Control: "127.0.0.1:0", Username: `LAB\admin`, Password: "lab-pass",
			Hosts: []lab.HyperVHost{{Name: "node1", Listen: "127.0.0.1:0"}, {Name: "node2", Listen: "127.0.0.1:0"},
				{Name: "node3", Listen: "127.0.0.1:0"}, {Name: "node4", Listen: "127.0.0.1:0"}},
			Disks: []lab.HyperVDisk{{Name: "T1", Group: lab.DiskGroup{Cluster: "cluster1", Group: "failover1"}},
				{Name: "T2", Group: lab.DiskGroup{Cluster: "cluster2", Group: "failover2"}}},
			VMs: vms,
			Timing: &lab.HyperVTiming{InitialReplication: 300 * time.Millisecond, Resync: 300 * time.Millisecond,
				Cycle: 100 * time.Millisecond, ErrorAfter: 600 * time.Millisecond, DiskSettle: 100 * time.Millisecond},
		},
	}
	l, err := lab.Start(context.Background(), topo, nil)
	if err != nil {
		return nil, cleanup, fmt.Errorf("start the lab: %w", err)
	}
	cleanups = append(cleanups, func() { l.Close() })
	d.lab = l

	cfg, err := demoConfig(topo, l.Addrs(), addr, dir, d.admin, hookTokens)
	if err != nil {
		return nil, cleanup, err
	}
	logPath := filepath.Join(os.TempDir(), "hvlab-demo-hvro.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, cleanup, err
	}
	cleanups = append(cleanups, func() { logFile.Close() })
	svc, err := service.New(cfg, service.Options{Logger: slog.New(slog.NewTextHandler(logFile, nil)), Version: "demo"})
	if err != nil {
		return nil, cleanup, fmt.Errorf("hvro: %w", err)
	}
	if err := svc.Start(context.Background()); err != nil {
		svc.Shutdown(context.Background())
		return nil, cleanup, fmt.Errorf("hvro: %w", err)
	}
	cleanups = append(cleanups, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		svc.Shutdown(ctx)
	})
	d.svc = svc
	fmt.Fprintf(out, "hvlab demo: two EXPRESSCLUSTER X clusters (cluster1: node1 node2; cluster2: node3 node4), VMs vm1 and vm2,\n")
	fmt.Fprintf(out, "hvro at %s (its log: %s). ECX's script resources call hvro with the real hook.\n", d.url, logPath)
	return d, cleanup, nil
}

func primaryPath(id string) string { return `T:\VMs\Virtual Machines\` + id + ".vmcx" }
func replicaPath(id string) string { return `T:\VMs\Hyper-V Replica\Virtual Machines\` + id + ".vmcx" }

// demoConfig is hvro's configuration for the lab topo describes (its
// accounts and servers) and a runs (its addresses).
func demoConfig(topo *lab.Topology, a lab.Addrs, listen, dir, admin string, hooks map[string]string) (*config.Config, error) {
	cfg := config.Defaults()
	cfg.Listen, cfg.DataDir, cfg.LogLevel, cfg.LogFormat = listen, filepath.Join(dir, "data"), "info", "text"
	cfg.Auth.AdminToken, cfg.Auth.MetricsPublic = config.NewSecret(admin), true
	cfg.WinRM.Username, cfg.WinRM.Password, cfg.WinRM.Timeout = topo.HyperV.Username, config.NewSecret(topo.HyperV.Password), 30*time.Second
	cfg.ResyncInterval = 5 * time.Second
	cfg.Retry = config.Retry{MaxAttempts: 5, InitialBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second}
	for _, ec := range topo.ECX {
		c := config.DefaultCluster()
		c.Name = ec.Name
		c.API.Endpoints = []string{a.ECX[ec.Name]["fip"]}
		c.API.Username, c.API.Password, c.API.Timeout = ec.Username, config.NewSecret(ec.Password), 2*time.Second
		c.PollInterval = time.Second
		c.HookToken = config.NewSecret(hooks[ec.Name])
		c.Servers = map[string]config.Server{}
		for _, s := range ec.Servers {
			c.Servers[s] = config.Server{WinRM: a.WinRM[s]}
		}
		cfg.Clusters = append(cfg.Clusters, c)
	}
	for _, vm := range demoVMs {
		p := config.DefaultPair()
		p.Name, p.VMName = vm.name, vm.name
		p.Primary = config.Side{Cluster: "cluster1", Group: "failover1", VMConfigPath: primaryPath(vm.id)}
		p.Replica = config.Side{Cluster: "cluster2", Group: "failover2", VMConfigPath: replicaPath(vm.id)}
		p.Replication.Frequency = 30 * time.Second
		cfg.Pairs = append(cfg.Pairs, p)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("the demo's hvro configuration: %w", err)
	}
	return cfg, nil
}

func (d *demo) get(path string, out any) error {
	req, _ := http.NewRequest(http.MethodGet, d.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+d.admin)
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (d *demo) control(path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	resp, err := d.client.Post(d.lab.Addrs().Control+path, "application/json", rd)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
	}
	return nil
}

// stage narrates one step, runs it, waits for convergence and shows what
// hvro did and where everything stands.
func (d *demo) stage(title string, want map[string][2]string, act func() error) error {
	d.step++
	fmt.Fprintf(d.out, "\n[%d/%d] %s\n", d.step, d.steps, title)
	start := time.Now()
	if act != nil {
		if err := act(); err != nil {
			return fmt.Errorf("step %d: %w", d.step, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	var pairs []httpapi.PairView
	for {
		var r struct{ Pairs []httpapi.PairView }
		if err := d.get("/v1/pairs", &r); err != nil {
			return err
		}
		pairs = r.Pairs
		ok := len(pairs) == len(want)
		for _, p := range pairs {
			w := want[p.Name]
			ok = ok && p.Phase == "Converged" && p.Primary.Host == w[0] && p.Replica.Host == w[1]
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			d.table(pairs)
			return fmt.Errorf("step %d did not converge within 30s", d.step)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var ops struct{ Operations []store.Operation }
	if err := d.get("/v1/operations?limit=100", &ops); err != nil {
		return err
	}
	sort.Slice(ops.Operations, func(i, j int) bool { return ops.Operations[i].ID < ops.Operations[j].ID })
	for _, op := range ops.Operations {
		if op.Started.Before(start) || len(op.Plan) == 0 {
			continue
		}
		var steps []string
		for _, s := range op.Plan {
			if s.Outcome == store.OutcomeOK {
				steps = append(steps, strings.TrimSpace(strings.ReplaceAll(s.Kind, "_", " ")+" "+s.Host))
			}
		}
		what := strings.Join(steps, ", ")
		if op.State != store.OpSucceeded {
			what = fmt.Sprintf("%s before %d of %d steps ran (%s)", op.State, len(op.Plan)-len(steps), len(op.Plan), op.Error)
			if len(steps) > 0 {
				what = strings.Join(steps, ", ") + "; then " + what
			}
		}
		fmt.Fprintf(d.out, "      hvro %s #%d (%s): %s\n", op.Pair, op.ID, op.Kind, what)
	}
	fmt.Fprintf(d.out, "      converged in %s\n", time.Since(start).Round(10*time.Millisecond))
	d.table(pairs)
	st := d.lab.State()
	if len(st.DualRuns) > 0 || len(st.Errors) > 0 {
		return fmt.Errorf("the lab saw a VM run twice or could not follow ECX: %+v %v", st.DualRuns, st.Errors)
	}
	if err := runsOnPrimary(st, pairs); err != nil {
		return fmt.Errorf("step %d: %w", d.step, err)
	}
	return nil
}

// runsOnPrimary checks I2 on a converged lab: each demo VM runs on its
// pair's primary host, nowhere else, and ECX has the primary group's disk
// online there.
func runsOnPrimary(st lab.State, pairs []httpapi.PairView) error {
	for _, vm := range demoVMs {
		i := slices.IndexFunc(pairs, func(p httpapi.PairView) bool { return p.Name == vm.name })
		if i < 0 {
			return fmt.Errorf("hvro does not list pair %s", vm.name)
		}
		p := pairs[i]
		var on []string
		for _, h := range st.Hosts {
			for _, v := range h.VMs {
				if v.ID == vm.id && v.Running {
					on = append(on, h.Name)
				}
			}
		}
		if len(on) != 1 || on[0] != p.Primary.Host {
			return fmt.Errorf("%s runs on %v, want only on its primary host %s", vm.name, on, p.Primary.Host)
		}
		if disk := st.Group(p.Primary.Cluster, p.Primary.Group).DiskOnline; disk != p.Primary.Host {
			return fmt.Errorf("%s runs on %s but ECX has the disk of %s/%s online on %q", vm.name, p.Primary.Host, p.Primary.Cluster, p.Primary.Group, disk)
		}
	}
	return nil
}

func (d *demo) table(pairs []httpapi.PairView) {
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "      PAIR\tPRIMARY\tREPLICA\tSTATE\tREPLICATION\tHEALTH")
	for _, p := range pairs {
		fmt.Fprintf(tw, "      %s\t%s/%s\t%s/%s\t%s\t%s\t%s\n", p.Name, p.Primary.Cluster, p.Primary.Host, p.Replica.Cluster, p.Replica.Host, p.Phase, p.Replication.State, p.Replication.Health)
	}
	tw.Flush()
}

func (d *demo) tour() error {
	both := func(p, r string) map[string][2]string { return map[string][2]string{"vm1": {p, r}, "vm2": {p, r}} }
	steps := []struct {
		title string
		want  map[string][2]string
		act   func() error
	}{
		{"hvro starts: it finds vm1 and vm2 running on node1 and sets up Hyper-V Replica to node3", both("node1", "node3"), nil},
		{"an admin moves cluster1's group failover1 from node1 to node2 (ECX runs the stop script on node1, moves the disk, runs the start script on node2)",
			both("node2", "node3"), func() error {
				return d.control("/sim/ecx/cluster1/groups/failover1/move", map[string]string{"target": "node2"})
			}},
		{"cluster2's group failover2 moves from node3 to node4: replication follows the replica side",
			both("node2", "node4"), func() error {
				return d.control("/sim/ecx/cluster2/groups/failover2/move", map[string]string{"target": "node4"})
			}},
		{"node2 crashes: no stop script runs, ECX fails failover1 over to node1, the VMs' saved state is stale",
			both("node1", "node4"), func() error {
				if err := d.control("/sim/ecx/cluster1/servers/node2/down", nil); err != nil {
					return err
				}
				return d.control("/sim/ecx/cluster1/servers/node2/up", nil)
			}},
		{"both clusters fail over at the same time: node1 and node4 crash together",
			both("node2", "node3"), func() error {
				errs := make(chan error, 2)
				go func() { errs <- d.control("/sim/ecx/cluster1/servers/node1/down", nil) }()
				go func() { errs <- d.control("/sim/ecx/cluster2/servers/node4/down", nil) }()
				if err := errors.Join(<-errs, <-errs); err != nil {
					return err
				}
				return errors.Join(d.control("/sim/ecx/cluster1/servers/node1/up", nil), d.control("/sim/ecx/cluster2/servers/node4/up", nil))
			}},
		{"a planned failover moves vm1's primary role to cluster2 (hvro failover vm1 --mode planned); vm2 stays",
			map[string][2]string{"vm1": {"node3", "node2"}, "vm2": {"node2", "node3"}}, func() error {
				req, _ := http.NewRequest(http.MethodPost, d.url+"/v1/pairs/vm1/failover", strings.NewReader(`{"mode":"planned"}`))
				req.Header.Set("Authorization", "Bearer "+d.admin)
				req.Header.Set("Content-Type", "application/json")
				resp, err := d.client.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					return fmt.Errorf("failover: HTTP %d", resp.StatusCode)
				}
				return nil
			}},
	}
	d.steps = len(steps)
	for _, s := range steps {
		if err := d.stage(s.title, s.want, s.act); err != nil {
			return err
		}
	}
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hvro/hvro/hostname"
	"github.com/hvro/hvro/store"
	"github.com/hvro/hvro/test/sim/lab"
)

// Options configure one seed's run.
type Options struct {
	Seed  uint64
	Steps int
	Pairs int
	// Binary is an hvlab executable: the runner starts hvro as "Binary
	// serve" and ECX's scripts run "Binary hook".
	Binary string
	// Dir holds the run's files; a new temporary folder when empty. A
	// failed run's folder is kept (hvro's log is evidence).
	Dir string
	// Converge bounds I4: after the faults clear, every pair must be
	// Converged within it (default 60s).
	Converge time.Duration
}

// Violation is a broken invariant and what showed it.
type Violation struct {
	At        time.Time
	Invariant string // I1 ... I6, or "panic"
	Evidence  string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s %s: %s", v.At.Format("15:04:05.000"), v.Invariant, v.Evidence)
}

// Report is the outcome of one seed.
type Report struct {
	Seed       uint64
	Pairs      int
	Actions    []Action
	Violations []Violation
	// Refused lists actions the emulators or hvro turned down (a move to a
	// node that is down, a failover while another runs): expected, not
	// failures.
	Refused []string
	Faults  map[Kind]int
	// Convergence is how long the estate took to converge after the
	// faults cleared.
	Convergence time.Duration
	Duration    time.Duration
	Dir         string // kept when the run failed
}

// Failed reports whether an invariant broke.
func (r Report) Failed() bool { return len(r.Violations) > 0 }

// run is one seed in progress.
type run struct {
	o       Options
	est     estate
	lab     *lab.Lab
	dir     string
	url     string
	admin   string
	cfgPath string
	logPath string
	client  *http.Client
	check   *checker

	killMu  sync.Mutex // one kill -9 and restart at a time; guards closing
	closing bool       // hvro is stopped for good: a kill does not restart it
	procMu  sync.Mutex
	proc    *exec.Cmd
	exited  chan struct{}

	mu      sync.Mutex
	refused []string
}

// Run runs one seed: the lab and hvro (a real process) start, the seed's
// actions run with their gaps while the checker watches the invariants,
// then the faults clear and every pair must converge.
func Run(ctx context.Context, o Options) (rep Report, err error) {
	if o.Steps <= 0 || o.Pairs <= 0 || o.Binary == "" {
		return rep, errors.New("chaos: Steps, Pairs and Binary are required")
	}
	if o.Converge <= 0 {
		o.Converge = 60 * time.Second
	}
	start := time.Now()
	r := &run{o: o, est: newEstate(o.Pairs), admin: "chaos-admin-token-0123456789", client: &http.Client{Timeout: 10 * time.Second}}
	rep = Report{Seed: o.Seed, Pairs: o.Pairs, Faults: map[Kind]int{}}
	rep.Actions = generate(o.Seed, o.Steps, r.est)
	for _, a := range rep.Actions {
		if isFault(a.Kind) {
			rep.Faults[a.Kind]++ // crash-both counts once, not also as two crashes
		}
	}
	r.dir = o.Dir
	if r.dir == "" {
		if r.dir, err = os.MkdirTemp("", fmt.Sprintf("hvro-chaos-%d-", o.Seed)); err != nil {
			return rep, err
		}
	}
	defer func() {
		rep.Duration = time.Since(start)
		if (rep.Failed() || err != nil) && ctx.Err() == nil {
			rep.Dir = r.dir
		} else if o.Dir == "" {
			os.RemoveAll(r.dir)
		}
	}()
	if err := r.setUp(ctx); err != nil {
		r.tearDown()
		return rep, err
	}
	defer r.tearDown()
	r.check = newChecker(r)
	if err := r.waitConverged(ctx, o.Converge); err != nil {
		r.check.violate("I4", "the estate did not converge before the first action: "+err.Error())
		return r.finish(rep), nil
	}
	go r.check.watch()

	var wg sync.WaitGroup
actions:
	for _, a := range rep.Actions {
		wg.Add(1)
		go func(a Action) {
			defer wg.Done()
			r.do(ctx, a)
		}(a)
		select {
		case <-time.After(a.Gap):
		case <-ctx.Done():
			break actions
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// Interrupted: no verdict. finish (deferred tearDown) still stops
		// hvro, and closing keeps a kill in flight from starting it again.
		r.check.stop()
		r.closeProcs()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
		return rep, ctx.Err()
	case <-time.After(3 * time.Minute):
		r.check.violate("I5", "actions still running 3 minutes after the last one started (a hook or a control call hangs)")
	}

	cleared := time.Now()
	r.clearFaults(ctx)
	if err := r.waitConverged(ctx, o.Converge); err != nil {
		r.check.violate("I4", fmt.Sprintf("not converged %s after the faults cleared: %v", o.Converge, err))
	}
	rep.Convergence = time.Since(cleared)
	return r.finish(rep), nil
}

func (r *run) finish(rep Report) Report {
	r.check.stop()
	// The audit reads hvro's store itself, whole (the API pages its
	// journal and events): hvro stops first and lets go of it.
	r.closeProcs()
	r.check.audit()
	rep.Violations = r.check.violations()
	r.mu.Lock()
	rep.Refused = slices.Clone(r.refused)
	r.mu.Unlock()
	return rep
}

func (r *run) setUp(ctx context.Context) error {
	// Hold hvro's port while the lab starts, so the lab cannot take it.
	ip := loopbackFor(r.o.Seed)
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	r.url = "http://" + addr
	secret, err := writeSecrets(r.dir, map[string]string{
		"admin.token": r.admin, "winrm.pass": "lab-pass", "ecx1.pass": "lab-pass-1", "ecx2.pass": "lab-pass-2",
		"cluster1.token": "chaos-hook-token-cluster1-0123", "cluster2.token": "chaos-hook-token-cluster2-0123",
	})
	if err != nil {
		return err
	}
	hook := func(cluster, group, phase string) []string {
		return []string{r.o.Binary, "hook", "--url", r.url, "--cluster", cluster, "--group", group, "--phase", phase,
			"--token-file", secret[cluster+".token"], "--wait", "30s", "--retry-for", "2s"}
	}
	r.lab, err = lab.Start(ctx, r.est.topology(r.dir, ip, hook), nil)
	if err != nil {
		ln.Close()
		return fmt.Errorf("start the lab: %w", err)
	}
	r.cfgPath = filepath.Join(r.dir, "hvro.yaml")
	cfg := r.est.hvroConfig(r.lab.Addrs(), addr, filepath.Join(r.dir, "data"), secret)
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		ln.Close()
		return err
	}
	r.logPath = filepath.Join(r.dir, "hvro.log")
	ln.Close()
	return r.startHvro()
}

func (r *run) tearDown() {
	r.closeProcs()
	if r.lab != nil {
		r.lab.Close()
	}
}

// stopHvro stops hvro with SIGTERM (SIGKILL after 30s) and waits for it.
func (r *run) stopHvro() {
	r.procMu.Lock()
	p, exited := r.proc, r.exited
	r.procMu.Unlock()
	if p == nil {
		return
	}
	p.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		p.Process.Kill()
		<-exited
	}
}

// startHvro starts hvro and waits until it is ready.
func (r *run) startHvro() error {
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(r.o.Binary, "serve", "--config", r.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start hvro: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	r.procMu.Lock()
	r.proc, r.exited = cmd, exited
	r.procMu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := r.client.Get(r.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("hvro exited while starting; see %s", r.logPath)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hvro not ready after 20s: %v; see %s", err, r.logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill9 kills hvro with SIGKILL and starts it again. Kills overlap in a
// run; each waits for the one before to have started hvro again.
func (r *run) kill9() error {
	r.killMu.Lock()
	defer r.killMu.Unlock()
	if r.closing {
		return nil
	}
	r.procMu.Lock()
	p, exited := r.proc, r.exited
	r.procMu.Unlock()
	select {
	case <-exited:
		// A kill must not hide that hvro had already stopped on its own.
		r.check.violate("I5", "hvro exited on its own before a kill -9; see its log")
	default:
		p.Process.Kill()
		<-exited
	}
	return r.startHvro()
}

// closeProcs stops hvro for good: a kill that comes after does not start
// it again.
func (r *run) closeProcs() {
	r.killMu.Lock()
	r.closing = true
	r.killMu.Unlock()
	r.stopHvro()
}

func (r *run) refuse(a string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused = append(r.refused, fmt.Sprintf("%s: %v", a, err))
}

// do carries out one action.
func (r *run) do(ctx context.Context, a Action) {
	var err error
	switch a.Kind {
	case KindMove:
		err = r.control(ctx, "POST", fmt.Sprintf("/sim/ecx/%s/groups/%s/move", a.Cluster, a.Group), map[string]string{"target": a.Target})
	case KindCrash:
		err = r.control(ctx, "POST", fmt.Sprintf("/sim/ecx/%s/servers/%s/down", a.Cluster, a.Target), nil)
	case KindBoot:
		err = r.control(ctx, "POST", fmt.Sprintf("/sim/ecx/%s/servers/%s/up", a.Cluster, a.Target), nil)
	case KindMoveBoth, KindCrashBoth:
		var wg sync.WaitGroup
		for x := a.Other; x != nil; x = x.Other {
			wg.Add(1)
			go func(x Action) {
				defer wg.Done()
				x.Other = nil
				r.do(ctx, x)
			}(*x)
		}
		wg.Wait()
		return
	case KindECXDown:
		err = r.control(ctx, "POST", "/sim/ecx/"+a.Cluster+"/faults", map[string]any{"kind": "endpoint_down", "endpoint": a.Target})
	case KindECXUp:
		err = r.control(ctx, "DELETE", "/sim/ecx/"+a.Cluster+"/faults", nil)
	case KindECXSlow:
		err = r.control(ctx, "POST", "/sim/ecx/"+a.Cluster+"/faults", map[string]any{"kind": "hang", "times": a.Times})
	case KindECXError:
		err = r.control(ctx, "POST", "/sim/ecx/"+a.Cluster+"/faults", map[string]any{"kind": "http500", "times": a.Times})
	case KindWinRMFault:
		err = r.control(ctx, "POST", "/sim/faults", map[string]any{"host": a.Host, "cmdlet": a.Cmdlet, "error": a.Error, "times": a.Times})
	case KindLatency:
		err = r.control(ctx, "POST", "/sim/latency", map[string]any{"cmdlet": a.Cmdlet, "ms": a.MS})
	case KindClearFaults:
		err = r.control(ctx, "DELETE", "/sim/faults", nil)
	case KindKill:
		err = r.kill9()
		if err != nil {
			r.check.violate("I5", "hvro did not come back after kill -9: "+err.Error())
			return
		}
	case KindPlanned, KindUnplanned:
		mode := "planned"
		if a.Kind == KindUnplanned {
			mode = "unplanned"
		}
		r.check.failoverRequested(a.Pair)
		var resp struct{ Op uint64 }
		var status int
		status, err = r.api("POST", "/v1/pairs/"+a.Pair+"/failover", map[string]string{"mode": mode}, &resp)
		if err == nil && status != http.StatusAccepted {
			err = fmt.Errorf("HTTP %d", status)
		}
	case KindWait:
	}
	if err != nil {
		r.refuse(a.String(), err)
	}
}

// clearFaults ends every fault, brings every node back up and, as an admin
// would, starts again the groups ECX left failed or offline (a start
// script that said "this node cannot host the VM" on every server leaves
// its group Online Failure). What the emulators refuse here is recorded
// like a refused action; I4 then says whether the estate recovered.
func (r *run) clearFaults(ctx context.Context) {
	try := func(what string, err error) {
		if err != nil {
			r.refuse("clearing faults: "+what, err)
		}
	}
	try("Hyper-V faults", r.control(ctx, "DELETE", "/sim/faults", nil))
	for _, c := range clusterNames {
		try("ECX faults of "+c, r.control(ctx, "DELETE", "/sim/ecx/"+c+"/faults", nil))
	}
	st := r.lab.State()
	for _, h := range st.Hosts {
		if h.Up {
			continue
		}
		for _, c := range clusterNames {
			if slices.Contains(servers[c], h.Name) {
				try("boot "+h.Name, r.control(ctx, "POST", fmt.Sprintf("/sim/ecx/%s/servers/%s/up", c, h.Name), nil))
			}
		}
	}
	st = r.lab.State()
	for _, c := range clusterNames {
		for _, g := range r.est.groups[c] {
			if gs := st.Group(c, g); gs.Status != "Online" {
				r.refuse(fmt.Sprintf("recover %s/%s", c, g), fmt.Errorf("ECX left it %s; stopped and started again on %s", gs.Status, servers[c][0]))
				_ = r.control(ctx, "POST", fmt.Sprintf("/sim/ecx/%s/groups/%s/stop", c, g), nil)
				try("start "+c+"/"+g, r.control(ctx, "POST", fmt.Sprintf("/sim/ecx/%s/groups/%s/start", c, g), map[string]string{"target": servers[c][0]}))
			}
		}
	}
	r.procMu.Lock()
	exited := r.exited
	r.procMu.Unlock()
	select {
	case <-exited:
		r.check.violate("I5", "hvro exited on its own; see its log")
		try("restart hvro", r.startHvro())
	default:
	}
}

func (r *run) control(ctx context.Context, method, path string, body any) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	return r.lab.Control(ctx, method, path, body)
}

// api calls hvro with the admin token.
func (r *run) api(method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.url+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+r.admin)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// waitConverged waits until hvro says every pair is Converged and the lab
// agrees (I4).
func (r *run) waitConverged(ctx context.Context, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	var last error
	for {
		if last = r.converged(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return last
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// converged reports whether the run is at rest: no operation running
// (I5), and every pair Converged in hvro's view and the lab's (I4).
func (r *run) converged() error {
	pairs, err := r.pairs()
	if err != nil {
		return err
	}
	var ops struct{ Operations []store.Operation }
	if status, err := r.api("GET", "/v1/operations?limit=1000", nil, &ops); err != nil || status != http.StatusOK {
		return fmt.Errorf("GET /v1/operations: %d %v", status, err)
	}
	for _, op := range ops.Operations {
		if op.State == store.OpRunning {
			return fmt.Errorf("operation %d (%s of %s) is running", op.ID, op.Kind, op.Pair)
		}
	}
	st := r.lab.State()
	for _, name := range slices.Sorted(maps.Keys(pairs)) {
		p := pairs[name]
		if p.Phase != "Converged" {
			return fmt.Errorf("%s is %s (%+v)", name, p.Phase, p.Degraded)
		}
		v, _ := r.est.vmByName(name)
		if err := labConverged(st, v, p.Primary.Host, p.Replica.Host); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// pairView is what the runner reads of GET /v1/pairs.
type pairView struct {
	Name     string
	Phase    string
	Primary  struct{ Cluster, Host string }
	Replica  struct{ Cluster, Host string }
	Degraded *struct{ Reason, Error string }
}

func (r *run) pairs() (map[string]pairView, error) {
	var resp struct{ Pairs []pairView }
	status, err := r.api("GET", "/v1/pairs", nil, &resp)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/pairs: HTTP %d", status)
	}
	out := map[string]pairView{}
	for _, p := range resp.Pairs {
		out[p.Name] = p
	}
	if len(out) != len(r.est.vms) {
		return nil, fmt.Errorf("hvro lists %d pairs, want %d", len(out), len(r.est.vms))
	}
	return out, nil
}

func (e estate) vmByName(name string) (vm, bool) {
	for _, v := range e.vms {
		if v.name == name {
			return v, true
		}
	}
	return vm{}, false
}

// labConverged checks I4 for one VM on the lab: it runs on p only,
// replicating p -> r, Replicating/Normal on both halves, and no other live
// registration keeps a relationship.
func labConverged(st lab.State, v vm, p, r string) error {
	found := map[string]bool{}
	for _, h := range st.Hosts {
		for _, x := range h.VMs {
			if x.ID != v.id || x.Storage != "live" {
				continue
			}
			switch h.Name {
			case p:
				found[p] = true
				if !h.Up || !x.Running || x.Replication == nil || x.Replication.Mode != "Primary" || x.Replication.State != "Replicating" ||
					x.Replication.Health != "Normal" || !hostname.Same(x.Replication.ReplicaServer, r) {
					return fmt.Errorf("on %s: running %v, replication %+v; want running, Primary/Replicating/Normal to %s", p, x.Running, x.Replication, r)
				}
			case r:
				found[r] = true
				if !h.Up || x.Running || x.Replication == nil || x.Replication.Mode != "Replica" || x.Replication.State != "Replicating" ||
					!hostname.Same(x.Replication.PrimaryServer, p) {
					return fmt.Errorf("on %s: running %v, replication %+v; want off, Replica/Replicating from %s", r, x.Running, x.Replication, p)
				}
			default:
				if h.Up && (x.Running || x.Replication != nil) {
					return fmt.Errorf("%s still has it: running %v, replication %+v", h.Name, x.Running, x.Replication)
				}
			}
		}
	}
	if !found[p] || !found[r] {
		return fmt.Errorf("not registered with live storage on %s and %s", p, r)
	}
	return nil
}

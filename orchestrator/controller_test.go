package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hvro/hvro/store"
	"github.com/hvro/hvro/test/within"
)

// fakeWorld is a tiny model of four Hyper-V hosts: enough to watch the
// controller converge, not a second emulator (the e2e tests use the real one).
type fakeWorld struct {
	mu       sync.Mutex
	views    map[string]HostView
	runs     []string
	firstRun time.Time // when the first step ran
	// hooks for individual tests
	beforeRun func(host string, s Step) error
	// runCtx, when set, runs before beforeRun with the step's context.
	runCtx func(ctx context.Context, host string, s Step) error
}

func newFakeWorld() *fakeWorld {
	return &fakeWorld{views: map[string]HostView{
		"node1": {VM: vm("Off")}, "node2": {}, "node3": {VM: vm("Off")}, "node4": {},
	}}
}

type fakeHost struct {
	w    *fakeWorld
	name string
}

var errTransient = errors.New("transient: configuration was not accessible. Try again later")

func (h fakeHost) Inspect(ctx context.Context, vm string) (HostView, error) {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	v := h.w.views[h.name]
	if v.Err != nil {
		return HostView{}, v.Err
	}
	cp := v
	if v.VM != nil {
		x := *v.VM
		cp.VM = &x
	}
	if v.Rep != nil {
		x := *v.Rep
		cp.Rep = &x
	}
	return cp, nil
}

func (h fakeHost) Run(ctx context.Context, vm string, s Step, _ Settings) (string, error) {
	if hook := h.w.runCtx; hook != nil {
		if err := hook(ctx, h.name, s); err != nil {
			return "", err
		}
	}
	if hook := h.w.beforeRun; hook != nil {
		if err := hook(h.name, s); err != nil {
			return "", err
		}
	}
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	if len(h.w.runs) == 0 {
		h.w.firstRun = time.Now()
	}
	kind := string(s.Kind)
	if s.Mode != "" {
		kind += "(" + string(s.Mode) + ")"
	}
	h.w.runs = append(h.w.runs, kind+"@"+h.name)
	v := h.w.views[h.name]
	switch s.Kind {
	case StepStartVM:
		if v.Rep != nil && v.Rep.State == "PreparedForFailover" {
			return "", errors.New("'vm1' cannot be started because it is prepared for a planned failover")
		}
		v.VM = vm2("Running")
	case StepCancelFailover:
		if v.Rep != nil && (v.Rep.State == "PreparedForFailover" || v.Rep.State == "FailedOverWaitingCompletion") {
			v.Rep.State = "Replicating"
		}
	case StepStopVM:
		v.VM = vm2("Off")
	case StepRegister:
		v.VM = vm2("Off")
	case StepRemove:
		v.Rep = nil
	case StepEnableReplica:
		v.Rep = &RepInfo{Mode: "Replica", State: "WaitingForInitialReplication", Health: "Normal"}
	case StepEnablePrimary:
		v.Rep = &RepInfo{Mode: "Primary", State: "ReadyForInitialReplication", Health: "Normal", Primary: h.name, Replica: s.Peer}
		peer := h.w.views[s.Peer]
		peer.Rep.Primary = h.name
		h.w.views[s.Peer] = peer
	case StepPrepareFailover:
		v.Rep.State = "PreparedForFailover"
	case StepFailover:
		v.Rep.State = "FailedOverWaitingCompletion"
	case StepCompleteFailover:
		v.Rep.State = "FailedOver"
	case StepReverse:
		v.Rep = &RepInfo{Mode: "Primary", State: "Replicating", Health: "Normal", Primary: h.name, Replica: s.Peer}
		peer := h.w.views[s.Peer]
		peer.Rep = &RepInfo{Mode: "Replica", State: "Replicating", Health: "Normal", Primary: h.name, Replica: s.Peer}
		h.w.views[s.Peer] = peer
	case StepInitial, StepResume:
		v.Rep.State = "Replicating"
		peer := h.w.views[v.Rep.Replica]
		peer.Rep.State = "Replicating"
		h.w.views[v.Rep.Replica] = peer
	default:
		return "", fmt.Errorf("fake host: %s not modelled", s.Kind)
	}
	h.w.views[h.name] = v
	return "", nil
}

func vm2(state string) *VMInfo { return vm(state) }

func (w *fakeWorld) firstRunAt() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firstRun
}

func (w *fakeWorld) ran() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.runs, " ")
}

type harness struct {
	t  testing.TB
	c  *Controller
	st *store.Store
	w  *fakeWorld
}

// newHarness starts a controller over the fake world; both groups are
// observed Online on node1 and node3 before the workers start, so the first
// pass sees a settled estate.
func newHarness(t testing.TB, w *fakeWorld, tweak func(*Config)) *harness {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "hvro.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec
	spec.InitialPrimary = "cluster1"
	cfg := Config{
		Store:            st,
		Hosts:            func(h string) (Host, bool) { return fakeHost{w, h}, true },
		Clusters:         testClusters,
		Pairs:            []PairSpec{spec},
		Transient:        func(err error) bool { return errors.Is(err, errTransient) },
		RetryBase:        time.Millisecond,
		ProgressInterval: 10 * time.Millisecond,
		BackoffMax:       50 * time.Millisecond,
		ResyncInterval:   time.Hour,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	observeBoth(c, "node1", "node3")
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, c: c, st: st, w: w}
	t.Cleanup(func() {
		c.Stop()
		st.Close()
	})
	return h
}

func (h *harness) pair() store.Pair {
	h.t.Helper()
	var p store.Pair
	if err := h.st.View(func(tx store.Tx) error {
		var err error
		p, err = tx.Pair("vm1")
		return err
	}); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) ops() []store.Operation {
	h.t.Helper()
	var ops []store.Operation
	if err := h.st.View(func(tx store.Tx) error {
		var err error
		ops, err = tx.Operations(store.OpFilter{Pair: "vm1"})
		return err
	}); err != nil {
		h.t.Fatal(err)
	}
	return ops
}

func (h *harness) waitPhase(phase store.Phase) store.Pair {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := h.pair()
		if p.Phase == phase {
			return p
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("pair phase %q (degraded %+v), want %s; ran %s", p.Phase, p.Degraded, phase, h.w.ran())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func observeBoth(c *Controller, p, r string) {
	now := time.Now()
	c.Observe(g1, Observation{Status: "Online", Owner: p, Source: "poll", At: now})
	c.Observe(g2, Observation{Status: "Online", Owner: r, Source: "poll", At: now})
}

func TestControllerConverges(t *testing.T) {
	h := newHarness(t, newFakeWorld(), nil)
	p := h.waitPhase("Converged")
	if p.ActivePrimaryHost != "node1" || p.ActiveReplicaHost != "node3" || p.Replication.State != "Replicating" || p.LastConvergedAt.IsZero() {
		t.Fatalf("pair after converging: %+v", p)
	}
	if got := h.w.ran(); got != "start_vm@node1 enable_replica@node3 enable_primary@node1 start_initial_replication@node1" {
		t.Fatalf("ran %s", got)
	}
	ops := h.ops()
	if len(ops) != 1 || ops[0].State != store.OpSucceeded || len(ops[0].Plan) != 4 || ops[0].Plan[3].Outcome != store.OutcomeOK {
		t.Fatalf("journal %+v", ops)
	}
	// Unchanged polls neither bump the generation nor queue a pass (the
	// periodic resync covers drift; a poll every few seconds must not).
	gen := p.Generation
	for i := 0; i < 5; i++ {
		observeBoth(h.c, "node1", "node3")
	}
	if h.pair().Generation != gen {
		t.Fatal("identical observations bumped the generation")
	}
	// The workers above take a queued pair at once, so look at the queue of
	// a controller that was never started: there it only collects keys.
	st, err := store.Open(filepath.Join(t.TempDir(), "idle.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	spec := testSpec
	spec.InitialPrimary = "cluster1"
	idle, err := New(Config{Store: st, Hosts: func(string) (Host, bool) { return nil, false }, Clusters: testClusters, Pairs: []PairSpec{spec}})
	if err != nil {
		t.Fatal(err)
	}
	observeBoth(idle, "node1", "node3")
	// Take the pass New queued, as a worker would.
	if n := idle.queue.Len(); n != 1 {
		t.Fatalf("a new controller queued %d passes, want 1", n)
	}
	key, _ := idle.queue.Get()
	idle.queue.Done(key)
	for i := 0; i < 5; i++ {
		observeBoth(idle, "node1", "node3")
	}
	if n := idle.queue.Len(); n != 0 {
		t.Fatalf("identical observations queued %d passes", n)
	}
	observeBoth(idle, "node2", "node3")
	if n := idle.queue.Len(); n != 1 {
		t.Fatalf("a changed observation queued %d passes, want 1", n)
	}
}

// TestCompareAndAct: a new observation while a plan runs abandons the rest
// of the plan at the next step boundary, and the next pass replans.
func TestCompareAndAct(t *testing.T) {
	w := newFakeWorld()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	w.beforeRun = func(host string, s Step) error {
		if s.Kind == StepEnableReplica {
			select {
			case entered <- struct{}{}:
				<-release
			default:
			}
		}
		return nil
	}
	h := newHarness(t, w, nil)
	within.Recv(t, entered, "enable_replica step")
	// The replica group moves while enable_replica runs on node3.
	h.w.mu.Lock()
	h.w.views["node4"] = HostView{VM: vm("Off")}
	h.w.mu.Unlock()
	h.c.Observe(g2, Observation{Status: "Online", Owner: "node4", Source: "poll", At: time.Now()})
	close(release)
	h.waitPhase("Converged")
	ops := h.ops()
	var abandoned *store.Operation
	for i := range ops {
		if ops[i].State == store.OpAbandoned {
			abandoned = &ops[i]
		}
	}
	if abandoned == nil {
		t.Fatalf("no abandoned operation in %+v", ops)
	}
	if abandoned.Plan[1].Outcome != store.OutcomeOK || abandoned.Plan[2].Outcome != store.OutcomeAbandoned {
		t.Fatalf("abandoned plan outcomes: %+v", abandoned.Plan)
	}
	if p := h.pair(); p.ActiveReplicaHost != "node4" {
		t.Fatalf("replica host %s, want node4", p.ActiveReplicaHost)
	}
	// The rest of the first plan (enable_primary towards node3) never ran;
	// the replan removed node3's half and built towards node4, once.
	want := "start_vm@node1 enable_replica@node3 remove_replication@node3 enable_replica@node4 enable_primary@node1 start_initial_replication@node1"
	if got := h.w.ran(); got != want {
		t.Fatalf("ran\n %s\nwant\n %s", got, want)
	}
}

func TestTransientRetriesThenDegraded(t *testing.T) {
	w := newFakeWorld()
	var mu sync.Mutex
	fails := 2
	w.beforeRun = func(host string, s Step) error {
		mu.Lock()
		defer mu.Unlock()
		if s.Kind == StepStartVM && fails > 0 {
			fails--
			return errTransient
		}
		return nil
	}
	h := newHarness(t, w, nil)
	h.waitPhase("Converged")
	ops := h.ops()
	if ops[len(ops)-1].Plan[0].Attempts != 3 {
		t.Fatalf("start_vm attempts %d, want 3 (two transient failures)", ops[len(ops)-1].Plan[0].Attempts)
	}

	// A permanent failure parks the pair Degraded until an observation changes.
	w2 := newFakeWorld()
	var broken atomic.Bool
	var tries atomic.Int32
	broken.Store(true)
	w2.beforeRun = func(host string, s Step) error {
		if s.Kind == StepStartVM && broken.Load() {
			tries.Add(1)
			return errors.New("Hyper-V was unable to find a virtual machine with name \"vm1\"")
		}
		return nil
	}
	h2 := newHarness(t, w2, nil)
	p := h2.waitPhase("Degraded")
	if p.Degraded == nil || p.Degraded.Reason != "step_failed" || !strings.Contains(p.Degraded.Error, "unable to find a virtual machine") {
		t.Fatalf("degraded %+v", p.Degraded)
	}
	// Nothing retries a parked pair until ECX reports a change or the
	// resync (an hour here) comes: not the backoff timer (50ms here).
	parked := tries.Load()
	time.Sleep(10 * 50 * time.Millisecond)
	if n := tries.Load(); n != parked {
		t.Fatalf("start_vm tried %d more times while the pair was Degraded", n-parked)
	}
	// The admin repairs the host. Observe stores the change synchronously
	// and clears Degraded; a pass after it can only find the replica side
	// unsettled, never the old step failure.
	broken.Store(false)
	h2.c.Observe(g2, Observation{Status: "Online Pending", Owner: "node4", Source: "poll", At: time.Now()})
	q := h2.pair()
	if q.Generation != p.Generation+1 {
		t.Fatalf("generation %d after the observation, want %d", q.Generation, p.Generation+1)
	}
	if q.Degraded != nil && q.Degraded.Reason == "step_failed" {
		t.Fatalf("a new observation did not clear Degraded: %+v", q.Degraded)
	}
}

func TestStopHookEvacuates(t *testing.T) {
	h := newHarness(t, newFakeWorld(), nil)
	h.waitPhase("Converged")
	res, err := h.c.Hook(context.Background(), HookRequest{Cluster: "cluster1", Group: "failover1", Server: "NODE1", Phase: "stop", Event: "START", Factor: "GROUPMOVE", Disk: "T:"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "ok" || res.Op == 0 {
		t.Fatalf("hook result %+v", res)
	}
	var obs store.Observation
	if err := h.st.View(func(tx store.Tx) (err error) { obs, err = tx.Observation("cluster1", "failover1"); return }); err != nil {
		t.Fatal(err)
	}
	if want := (store.HookInfo{Phase: "stop", Event: "START", Factor: "GROUPMOVE", Server: "node1", Disk: "T:"}); obs.Hook == nil || *obs.Hook != want {
		t.Fatalf("stored hook %+v, want %+v", obs.Hook, want)
	}
	h.w.mu.Lock()
	n1, n3 := h.w.views["node1"], h.w.views["node3"]
	h.w.mu.Unlock()
	if n1.VM.Running || n1.Rep != nil || n3.Rep != nil {
		t.Fatalf("after evacuation node1 %+v/%+v node3 rep %+v", n1.VM, n1.Rep, n3.Rep)
	}
	var op store.Operation
	for _, o := range h.ops() {
		if o.ID == res.Op {
			op = o
		}
	}
	if op.Kind != "stop-hook" || op.State != store.OpSucceeded || !strings.Contains(op.Trigger, "GROUPMOVE") {
		t.Fatalf("journal %+v", op)
	}
	for _, tc := range []struct {
		req  HookRequest
		want error
	}{
		{HookRequest{Cluster: "cluster1", Group: "nope", Server: "node1", Phase: "start"}, ErrUnknownGroup},
		{HookRequest{Cluster: "cluster1", Group: "failover1", Server: "node9", Phase: "start"}, ErrUnknownServer},
		{HookRequest{Cluster: "cluster2", Group: "failover1", Server: "node3", Phase: "start"}, ErrUnknownGroup},
		{HookRequest{Cluster: "cluster1", Group: "failover1", Server: "node1", Phase: "middle"}, ErrInvalidHook},
	} {
		if _, err := h.c.Hook(context.Background(), tc.req, time.Second); !errors.Is(err, tc.want) {
			t.Errorf("hook %+v: %v, want %v", tc.req, err, tc.want)
		}
	}
}

func TestStartHookWaitsForThePass(t *testing.T) {
	h := newHarness(t, newFakeWorld(), nil)
	h.c.Observe(g2, Observation{Status: "Online", Owner: "node3", Source: "poll", At: time.Now()})
	// The API still says Online Pending while the start script runs.
	h.c.Observe(g1, Observation{Status: "Online Pending", Owner: "node1", Source: "poll", At: time.Now()})
	res, err := h.c.Hook(context.Background(), HookRequest{Cluster: "cluster1", Group: "failover1", Server: "node1", Phase: "start", Event: "START"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "ok" || !strings.Contains(res.Message, "runs on node1") {
		t.Fatalf("hook result %+v", res)
	}
	if _, err := h.c.Hook(context.Background(), HookRequest{Cluster: "cluster1", Group: "failover1", Server: "node1", Phase: "start"}, 0); err != nil {
		t.Fatal(err)
	}
}

func TestHookRefusesBadRequests(t *testing.T) {
	h := newHarness(t, newFakeWorld(), nil)
	h.waitPhase("Converged")
	gen := h.pair().Generation
	ok := HookRequest{Cluster: "cluster1", Group: "failover1", Server: "node1", Phase: "start", Event: "START", Factor: "GROUPMOVE"}
	for _, tc := range []struct {
		name    string
		tweak   func(*HookRequest)
		want    error
		message string
	}{
		{"phase", func(r *HookRequest) { r.Phase = "restart" }, ErrInvalidHook, `phase "restart": want start or stop`},
		{"no server", func(r *HookRequest) { r.Server = "" }, ErrInvalidHook, "cluster, group and server are required"},
		{"long event", func(r *HookRequest) { r.Event = strings.Repeat("E", 257) }, ErrInvalidHook, "event is 257 bytes long; at most 256"},
		{"control character", func(r *HookRequest) { r.Factor = "GROUP\nMOVE" }, ErrInvalidHook, "factor contains the control character U+000A"},
		{"bad UTF-8", func(r *HookRequest) { r.Disk = "T\xff" }, ErrInvalidHook, "disk is not valid UTF-8"},
		{"unknown group", func(r *HookRequest) { r.Group = "failover9" }, ErrUnknownGroup, "cluster1/failover9"},
		{"other cluster's server", func(r *HookRequest) { r.Server = "node3" }, ErrUnknownServer, `"node3" in cluster1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.tweak(&r)
			_, err := h.c.Hook(context.Background(), r, 0)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("Hook(%+v) = %v, want %v containing %q", r, err, tc.want, tc.message)
			}
		})
	}
	if got := h.pair().Generation; got != gen {
		t.Fatalf("refused hooks changed the generation %d -> %d", gen, got)
	}
}

func TestFailoverSwitchesRole(t *testing.T) {
	w := newFakeWorld()
	h := newHarness(t, w, nil)
	h.waitPhase("Converged")
	id, done, err := h.c.Failover("vm1", FailoverRequest{Planned: true})
	if err != nil || id == 0 {
		t.Fatalf("failover: %d %v", id, err)
	}
	if _, _, err := h.c.Failover("vm1", FailoverRequest{Planned: true}); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second failover while the first is queued or running: %v, want ErrBusy", err)
	}
	if r := within.Recv(t, done, "failover result"); r.Kind != "converged" || r.OpID != id {
		t.Fatalf("failover result %+v", r)
	}
	p := h.pair()
	if p.PrimaryCluster != "cluster2" || p.Config.Primary.Cluster != "cluster2" {
		t.Fatalf("primary cluster %s after a planned failover", p.PrimaryCluster)
	}
	if got := w.ran(); !strings.Contains(got, "stop_vm@node1 prepare_failover@node1 failover@node3 reverse@node3 start_vm@node3") {
		t.Fatalf("ran %s", got)
	}
	var events []store.Event
	h.st.View(func(tx store.Tx) error { events, err = tx.Events(store.EventFilter{Pair: "vm1"}); return err })
	found := false
	for _, e := range events {
		found = found || e.Kind == "primary-role" && strings.Contains(e.Message, "cluster2") && e.Op == fmt.Sprint(id)
	}
	if !found {
		t.Fatalf("the role change is not recorded: %+v", events)
	}

	// A failover the state does not allow fails without moving the role.
	w.mu.Lock()
	w.views["node1"] = HostView{Err: errors.New("host down")}
	w.mu.Unlock()
	_, done, err = h.c.Failover("vm1", FailoverRequest{Planned: true})
	if err != nil {
		t.Fatal(err)
	}
	r := within.Recv(t, done, "result of the impossible failover")
	if r.Kind != "failed" || !strings.Contains(r.Message, "replica host node1 cannot be inspected") || h.pair().PrimaryCluster != "cluster2" {
		t.Fatalf("impossible failover: %+v, primary %s", r, h.pair().PrimaryCluster)
	}
}

func TestInterruptedOperationsOnStart(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "hvro.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(func(tx store.Tx) error {
		if err := tx.PutPair(store.Pair{Name: "vm1", PrimaryCluster: "cluster1"}); err != nil {
			return err
		}
		id, _ := tx.NextOperationID()
		return tx.PutOperation(store.Operation{ID: id, Pair: "vm1", Kind: "reconcile", State: store.OpRunning, Started: time.Now(),
			Plan: []store.Step{{Index: 0, Kind: "start_vm", Host: "node1", Outcome: store.OutcomeRunning}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = store.Open(filepath.Join(dir, "hvro.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	spec := testSpec
	spec.InitialPrimary = "cluster1"
	c, err := New(Config{Store: st, Hosts: func(h string) (Host, bool) { return fakeHost{newFakeWorld(), h}, true }, Clusters: testClusters, Pairs: []PairSpec{spec}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	var op store.Operation
	st.View(func(tx store.Tx) error { op, err = tx.Operation(1); return err })
	if op.State != store.OpInterrupted || op.Plan[0].Outcome != store.OutcomeInterrupted {
		t.Fatalf("after restart: %+v", op)
	}
}

// TestStopDrains: Stop lets the running step finish and journals the rest
// of the plan as interrupted.
func TestStopDrains(t *testing.T) {
	w := newFakeWorld()
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	w.beforeRun = func(host string, s Step) error {
		if s.Kind == StepStartVM {
			once.Do(func() { close(entered) })
			<-release
		}
		return nil
	}
	h := newHarness(t, w, nil)
	within.Recv(t, entered, "start_vm step")
	stopped := make(chan struct{})
	go func() { h.c.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a step was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	within.Recv(t, stopped, "return of Stop after the step finished")
	ops := h.ops()
	if len(ops) != 1 || ops[0].State != store.OpInterrupted || ops[0].Plan[0].Outcome != store.OutcomeOK || ops[0].Plan[1].Outcome != store.OutcomeInterrupted {
		t.Fatalf("journal after drain: %+v", ops)
	}
	if got := h.w.ran(); got != "start_vm@node1" {
		t.Fatalf("ran %s after Stop", got)
	}
}

func TestPauseResume(t *testing.T) {
	h := newHarness(t, newFakeWorld(), func(c *Config) { c.Workers = 1 })
	if err := h.c.SetPaused("vm1", true); err != nil {
		t.Fatal(err)
	}
	// A hook's waiter is answered by a pass at its generation or later; a
	// paused pair's pass answers "paused". Passes of a pair run one at a
	// time, so once it answers, the pass that may have been running when
	// the pair was paused has ended too.
	pausedPass := func(server string) {
		t.Helper()
		res, err := h.c.Hook(context.Background(), HookRequest{Cluster: "cluster1", Group: "failover1", Server: server, Phase: "start"}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Pairs) != 1 || res.Pairs[0].Outcome != "degraded" || res.Pairs[0].Message != "the pair is paused" {
			t.Fatalf("hook on a paused pair: %+v, want the answer of a paused pass", res)
		}
	}
	pausedPass("node1")
	before := h.w.ran()
	// Both groups move: a pass of an unpaused pair would act on it.
	observeBoth(h.c, "node2", "node4")
	pausedPass("node2")
	if got := h.w.ran(); got != before {
		t.Fatalf("a paused pair ran %s (before pausing: %s)", got, before)
	}
	observeBoth(h.c, "node1", "node3")
	if err := h.c.Reconcile("vm1"); !errors.Is(err, ErrPaused) {
		t.Fatalf("reconcile paused: %v", err)
	}
	if _, _, err := h.c.Failover("vm1", FailoverRequest{Planned: true}); !errors.Is(err, ErrPaused) {
		t.Fatalf("failover paused: %v", err)
	}
	if err := h.c.SetPaused("vm1", false); err != nil {
		t.Fatal(err)
	}
	h.waitPhase("Converged")
	if err := h.c.SetPaused("nope", true); !errors.Is(err, ErrUnknownPair) {
		t.Fatalf("unknown pair: %v", err)
	}
}

// startAfterCrash starts a controller on a store left by a crash in the
// middle of vm1's enable_replica step, with commands allowed hold to run.
// It returns the controller and when the crashed step started.
func startAfterCrash(t *testing.T, w *fakeWorld, hold time.Duration, mutate ...func(*Config)) (*Controller, time.Time) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "hvro.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	started := time.Now()
	err = st.Update(func(tx store.Tx) error {
		if err := tx.PutPair(store.Pair{Name: "vm1", PrimaryCluster: "cluster1"}); err != nil {
			return err
		}
		id, _ := tx.NextOperationID()
		return tx.PutOperation(store.Operation{ID: id, Pair: "vm1", Kind: "reconcile", State: store.OpRunning, Started: started,
			Plan: []store.Step{{Index: 0, Kind: "enable_replica", Host: "node3", Outcome: store.OutcomeRunning, Started: started}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec
	spec.InitialPrimary = "cluster1"
	// A shell idle timeout far below hold: the hold is the command's.
	cfg := Config{Store: st, Hosts: func(h string) (Host, bool) { return fakeHost{w, h}, true }, Clusters: testClusters,
		Pairs: []PairSpec{spec}, CommandTimeout: hold, ShellIdleTimeout: time.Millisecond, ProgressInterval: 10 * time.Millisecond}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	observeBoth(c, "node1", "node3")
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c, started
}

// TestRestartWaitsForOrphanedCommand: after a crash, a pair whose step was
// running is not acted on until that step's command must have ended.
func TestRestartWaitsForOrphanedCommand(t *testing.T) {
	w := newFakeWorld()
	_, started := startAfterCrash(t, w, 400*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for w.ran() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the pair was never reconciled after the hold")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if at := w.firstRunAt(); at.Sub(started) < 400*time.Millisecond {
		t.Fatalf("acted %v after the crashed step started, inside the 400ms hold: %s", at.Sub(started), w.ran())
	}
}

// TestRestartWaitsForOrphanedShell: after a crash, a pair whose step was
// running is held until the host must have deleted the dead process's
// shell, ShellIdleTimeout after its last request (which came before the
// restart), even when the step's command timeout has long passed: a cmdlet
// slower than the command timeout runs on until its shell idles out, and
// the next mutating command on the VM would overlap it (I3).
func TestRestartWaitsForOrphanedShell(t *testing.T) {
	w := newFakeWorld()
	const idle = 1500 * time.Millisecond
	restarted := time.Now()
	startAfterCrash(t, w, 50*time.Millisecond, func(c *Config) { c.ShellIdleTimeout = idle })
	within.Eventually(t, "the pair to be reconciled after the hold", func() bool { return w.ran() != "" })
	if at := w.firstRunAt(); at.Sub(restarted) < idle {
		t.Fatalf("acted %v after the restart, before the orphaned command's shell (idle timeout %v) must be gone: %s",
			at.Sub(restarted).Round(time.Millisecond), idle, w.ran())
	}
}

// TestHoldKeepsQueuedRequests: a stop hook and a failover that arrive while
// a pair is held after a restart wait for the hold and then run; they are
// not dropped (a dropped evacuation would let the disk leave with
// replication still set up).
func TestHoldKeepsQueuedRequests(t *testing.T) {
	w := newFakeWorld()
	w.views["node1"] = HostView{VM: vm("Running"), Rep: rep("Primary", "Replicating", "node1", "node3")}
	w.views["node3"] = HostView{VM: vm("Off"), Rep: rep("Replica", "Replicating", "node1", "node3")}
	const hold = 400 * time.Millisecond
	c, started := startAfterCrash(t, w, hold)

	id, done, err := c.Failover("vm1", FailoverRequest{Planned: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Hook(context.Background(), HookRequest{Cluster: "cluster1", Group: "failover1", Server: "node1", Phase: "stop", Event: "START", Factor: "GROUPMOVE"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "ok" || !strings.Contains(w.ran(), "remove_replication@node1") {
		t.Fatalf("stop hook during the hold: %+v; ran %s", res, w.ran())
	}
	if at := w.firstRunAt(); at.Sub(started) < hold {
		t.Fatalf("a step ran %v after the crashed step started, inside the %v hold", at.Sub(started), hold)
	}
	select {
	case r := <-done:
		if r.OpID != id {
			t.Fatalf("failover answered for op %d, want %d", r.OpID, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the failover queued during the hold never ran")
	}
	if _, _, err := c.Failover("vm1", FailoverRequest{}); errors.Is(err, ErrBusy) {
		t.Fatalf("a failover after the first one ended: %v", err)
	}
}

// TestHookWaitIsOneDeadline: a start hook for a group that several pairs
// share waits at most its wait in total, even when no pass finishes. With
// three pairs, a deadline per pair would wait 3 x 1s, past the caller's 2.5s.
func TestHookWaitIsOneDeadline(t *testing.T) {
	w := newFakeWorld()
	release := make(chan struct{})
	w.beforeRun = func(string, Step) error { <-release; return nil }
	st, err := store.Open(filepath.Join(t.TempDir(), "hvro.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var specs []PairSpec
	names := []string{"vm1", "vm2", "vm3"}
	for _, n := range names {
		s := testSpec
		s.Name, s.VMName, s.InitialPrimary = n, n, "cluster1"
		specs = append(specs, s)
	}
	c, err := New(Config{Store: st, Hosts: func(h string) (Host, bool) { return fakeHost{w, h}, true }, Clusters: testClusters,
		Pairs: specs, Workers: 2, ResyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	observeBoth(c, "node1", "node3")
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	defer close(release)

	// The caller (an ECX script) gives up after 2.5s; the hook asked to
	// wait 1s, so it must answer before, for all three pairs.
	const wait = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	res, err := c.Hook(ctx, HookRequest{Cluster: "cluster1", Group: "failover1", Server: "node1", Phase: "start"}, wait)
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil || strings.Contains(res.Message, "caller went away") {
		t.Fatalf("the hook outlived its wait until the caller gave up (%v): %+v", took, res)
	}
	if took < wait {
		t.Fatalf("the hook answered after %v, before its wait of %v ended", took, wait)
	}
	if res.Outcome != "pending" || len(res.Pairs) != len(names) {
		t.Fatalf("hook result %+v, want pending for all %d pairs", res, len(names))
	}
	for _, pr := range res.Pairs {
		if pr.Outcome != "pending" || pr.Message != "still working when the wait ended" {
			t.Fatalf("hook result %+v, want every pair pending at the end of the wait", res)
		}
	}
	// Each pair's event log shows the hook (an operator filters by pair).
	for _, n := range names {
		var events []store.Event
		if err := st.View(func(tx store.Tx) (err error) { events, err = tx.Events(store.EventFilter{Pair: n}); return }); err != nil {
			t.Fatal(err)
		}
		hooks := 0
		for _, e := range events {
			if e.Kind == "hook" && strings.Contains(e.Message, "hook start cluster1/failover1 on node1") {
				hooks++
			}
		}
		if hooks != 1 {
			t.Errorf("%s has %d hook events, want 1: %+v", n, hooks, events)
		}
	}
}

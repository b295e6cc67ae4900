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

	"github.com/hvro/hvro/clusterapi"
	"github.com/hvro/hvro/store"
	"github.com/hvro/hvro/test/within"
)

// gateStore wraps the store to stop time at one commit and to fail chosen
// journal writes, so races and store failures can be staged exactly.
type gateStore struct {
	*store.Store
	mu        sync.Mutex
	committed chan struct{} // armed: closed after the next Update commits
	release   chan struct{} // armed: that Update returns once this closes
	// failRunning fails PutOperation of a record that marks a step running.
	failRunning atomic.Bool
	runningPuts atomic.Int32
	endedPuts   chan store.Operation // every operation put in a final state
}

func (g *gateStore) arm() (committed, release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.committed, g.release = make(chan struct{}), make(chan struct{})
	return g.committed, g.release
}

func (g *gateStore) Update(fn func(store.Tx) error) error {
	g.mu.Lock()
	committed, release := g.committed, g.release
	g.committed, g.release = nil, nil
	g.mu.Unlock()
	err := g.Store.Update(func(tx store.Tx) error { return fn(gateTx{tx, g}) })
	if committed != nil {
		close(committed)
		<-release
	}
	return err
}

type gateTx struct {
	store.Tx
	g *gateStore
}

var errDiskFull = errors.New("write hvro.db: no space left on device")

func (t gateTx) PutOperation(op store.Operation) error {
	for _, st := range op.Plan {
		if st.Outcome == store.OutcomeRunning {
			t.g.runningPuts.Add(1)
			if t.g.failRunning.Load() {
				return errDiskFull
			}
		}
	}
	if op.State != store.OpRunning && t.g.endedPuts != nil {
		select {
		case t.g.endedPuts <- op:
		default:
		}
	}
	return t.Tx.PutOperation(op)
}

func withGate(g **gateStore) func(*Config) {
	return func(c *Config) {
		*g = &gateStore{Store: c.Store.(*store.Store), endedPuts: make(chan store.Operation, 64)}
		c.Store = *g
	}
}

func (h *harness) memory() (gen uint64, primary string, paused bool) {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	ps := h.c.pairs["vm1"]
	return ps.gen, ps.primary, ps.paused
}

// TestReloadDoesNotUndoFailover: a reload whose transaction read the pair
// before a failover switched its role must not write the old role back
// into memory when it finishes after the failover (issue 8, item 2): the
// next pass would stop the VM on the new primary.
func TestReloadDoesNotUndoFailover(t *testing.T) {
	var g *gateStore
	w := newFakeWorld()
	h := newHarness(t, w, withGate(&g))
	h.waitPhase(store.PhaseConverged)
	spec := testSpec
	spec.InitialPrimary = "cluster1"

	committed, release := g.arm()
	reloaded := make(chan error, 1)
	go func() { reloaded <- h.c.SetPairs([]PairSpec{spec}, testClusters) }()
	within.Recv(t, committed, "the reload's commit")
	_, done, err := h.c.Failover("vm1", FailoverRequest{Planned: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := within.Recv(t, done, "failover"); r.Kind != ResultConverged {
		t.Fatalf("failover: %+v", r)
	}
	close(release)
	if err := within.Recv(t, reloaded, "reload"); err != nil {
		t.Fatal(err)
	}
	if _, primary, _ := h.memory(); primary != "cluster2" {
		t.Fatalf("after the reload memory says the primary is %s; the store says %s", primary, h.pair().PrimaryCluster)
	}
	// The next pass keeps the VM on the new primary.
	res, err := h.c.Hook(context.Background(), HookRequest{Cluster: "cluster2", Group: "failover2", Server: "node3", Phase: "start"}, 5*time.Second)
	if err != nil || res.Outcome != OutcomeOK {
		t.Fatalf("hook after the reload: %+v %v", res, err)
	}
	if got := w.ran(); strings.Contains(got, "stop_vm@node3") {
		t.Fatalf("a pass stopped the VM on the new primary: %s", got)
	}

	// The same race against a pause.
	committed, release = g.arm()
	go func() { reloaded <- h.c.SetPairs([]PairSpec{spec}, testClusters) }()
	within.Recv(t, committed, "the reload's commit")
	if err := h.c.SetPaused("vm1", true); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := within.Recv(t, reloaded, "reload"); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Reconcile("vm1"); !errors.Is(err, ErrPaused) {
		t.Fatalf("after a reload raced the pause, Reconcile = %v, want ErrPaused", err)
	}
}

// TestStepRunsOnlyAfterItsRecord: when the journal cannot record that a
// step is running, the step does not run (issue 8, item 3): after a kill -9
// that record is what holds a restarted hvro back from an orphaned command.
func TestStepRunsOnlyAfterItsRecord(t *testing.T) {
	var g *gateStore
	w := newFakeWorld()
	ran := make(chan string, 16)
	w.beforeRun = func(host string, s Step) error {
		ran <- string(s.Kind) + "@" + host
		return nil
	}
	h := newHarness(t, w, func(c *Config) {
		withGate(&g)(c)
		g.failRunning.Store(true)
	})
	op := within.Recv(t, g.endedPuts, "the operation's end")
	if op.State != store.OpFailed || !strings.Contains(op.Error, "no space left on device") {
		t.Fatalf("operation ended %s: %q", op.State, op.Error)
	}
	select {
	case s := <-ran:
		t.Fatalf("%s ran although its running record failed to commit", s)
	default:
	}
	if g.runningPuts.Load() == 0 {
		t.Fatal("no running record was attempted")
	}
	g.failRunning.Store(false)
	h.waitPhase(store.PhaseConverged)
}

// TestSuccessResetsFailures: transient failures days apart, each followed
// by a success, never add up to Degraded (issue 8, item 12).
func TestSuccessResetsFailures(t *testing.T) {
	w := newFakeWorld()
	var fails atomic.Int32
	w.beforeRun = func(host string, s Step) error {
		if s.Kind == StepStartVM && fails.Add(-1) >= 0 {
			return errTransient
		}
		return nil
	}
	fails.Store(2) // both attempts of the first pass
	h := newHarness(t, w, func(c *Config) { c.StepRetries = 1; c.DegradeAfter = 3 })
	h.waitPhase(store.PhaseConverged)
	for round := 0; round < 3; round++ {
		// Drift: the VM stopped; its restart fails a whole pass, then works.
		w.mu.Lock()
		v := w.views["node1"]
		v.VM = vm("Off")
		w.views["node1"] = v
		w.mu.Unlock()
		fails.Store(2)
		if err := h.c.Reconcile("vm1"); err != nil {
			t.Fatal(err)
		}
		within.Eventually(t, fmt.Sprintf("round %d: the VM runs again", round), func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return fails.Load() < 0 && w.views["node1"].VM.Running
		})
		if p := h.waitPhase(store.PhaseConverged); p.Degraded != nil {
			t.Fatalf("round %d: degraded %+v", round, p.Degraded)
		}
	}
	var events []store.Event
	h.st.View(func(tx store.Tx) (err error) { events, err = tx.Events(store.EventFilter{Pair: "vm1"}); return })
	for _, e := range events {
		if e.Kind == "degraded" {
			t.Fatalf("a healthy pair was parked Degraded: %s", e.Message)
		}
	}
}

// TestRetryBackoffIsCapped: retries within a pass wait at most
// retry.max_backoff (issue 8, item 13): uncapped, 12 attempts from 1ms
// doubling would sleep about 4s.
func TestRetryBackoffIsCapped(t *testing.T) {
	w := newFakeWorld()
	var mu sync.Mutex
	var at []time.Time
	w.beforeRun = func(host string, s Step) error {
		if s.Kind != StepStartVM {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		if len(at) <= 12 {
			return errTransient
		}
		return nil
	}
	h := newHarness(t, w, func(c *Config) {
		c.StepRetries = 12
		c.RetryBase = time.Millisecond
		c.BackoffMax = 2 * time.Millisecond
	})
	h.waitPhase(store.PhaseConverged)
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 13 {
		t.Fatalf("%d attempts, want 13", len(at))
	}
	for i := 1; i < len(at); i++ {
		// 2ms asked; a loaded machine may add some, never a second.
		if gap := at[i].Sub(at[i-1]); gap > 500*time.Millisecond {
			t.Fatalf("attempt %d came %v after the one before; max_backoff is 2ms", i+1, gap)
		}
	}
}

// blockingReader answers one group read once released.
type blockingReader struct {
	asked   chan struct{}
	release chan struct{}
}

func (b blockingReader) Group(ctx context.Context, name string) (clusterapi.Group, error) {
	close(b.asked)
	<-b.release
	return clusterapi.Group{Name: name, Status: "Online", Owner: "node1"}, nil
}

func (blockingReader) LastEndpoint() string { return "http://ecx" }

// TestPollStampedWhenAsked: a poll sent before a stop hook and answered
// after it must not count as newer than the hook (issue 8, item 14).
func TestPollStampedWhenAsked(t *testing.T) {
	r := blockingReader{asked: make(chan struct{}), release: make(chan struct{})}
	got := make(chan Observation, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Poll(ctx, "cluster1", r, func() []string { return []string{"failover1"} }, time.Hour, time.Minute,
		func(_ GroupKey, o Observation) { got <- o; cancel() }, nil)
	within.Recv(t, r.asked, "the poll's request")
	hook := Observation{Status: "Offline Pending", Owner: "node1", Source: store.SourceHook, Phase: "stop", At: time.Now()}
	time.Sleep(time.Millisecond) // the answer comes strictly after the hook
	close(r.release)
	poll := within.Recv(t, got, "the poll's observation")
	if eff := (GroupState{Poll: poll, Hook: hook}).Effective(); eff.Source != store.SourceHook {
		t.Fatalf("the poll (at %v) won over the stop hook (at %v) that arrived while it was under way", poll.At, hook.At)
	}
}

// TestHookWaitersRemovedOnTimeout: a hook that stops waiting leaves no
// waiter behind (issue 8, item 9).
func TestHookWaitersRemovedOnTimeout(t *testing.T) {
	st := openStore(t)
	spec := testSpec
	spec.InitialPrimary = "cluster1"
	// Never started: no pass answers, every hook times out.
	c, err := New(Config{Store: st, Hosts: func(string) (Host, bool) { return nil, false }, Clusters: testClusters, Pairs: []PairSpec{spec}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		res, err := c.Hook(context.Background(), HookRequest{Cluster: "cluster1", Group: "failover1", Server: "node1", Phase: "start"}, time.Millisecond)
		if err != nil || res.Outcome != OutcomePending {
			t.Fatalf("hook %d: %+v %v", i, res, err)
		}
	}
	c.mu.Lock()
	n := len(c.pairs["vm1"].waiters)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d waiters of timed-out hooks are still kept", n)
	}
}

// TestStopHookLeavesPausedPairAlone: paused means hands off, also when the
// group stops (issue 8, item 15, decided in OPERATIONS.md).
func TestStopHookLeavesPausedPairAlone(t *testing.T) {
	h := newHarness(t, newFakeWorld(), nil)
	h.waitPhase(store.PhaseConverged)
	before := h.w.ran()
	if err := h.c.SetPaused("vm1", true); err != nil {
		t.Fatal(err)
	}
	res, err := h.c.Hook(context.Background(), HookRequest{Cluster: "cluster1", Group: "failover1", Server: "node1", Phase: "stop", Event: "START", Factor: "GROUPMOVE"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeDegraded || !strings.Contains(res.Message, "paused") {
		t.Fatalf("stop hook on a paused pair: %+v", res)
	}
	if got := h.w.ran(); got != before {
		t.Fatalf("a paused pair was evacuated: ran %s", strings.TrimPrefix(got, before))
	}
}

// TestPermanentInspectionDegrades: a host that refuses hvro's credentials
// parks the pair Degraded with the reason (issue 8, item 17), instead of
// Waiting forever with nothing said.
func TestPermanentInspectionDegrades(t *testing.T) {
	errAuth := errors.New("node1: the WinRM credentials were refused (HTTP 401)")
	w := newFakeWorld()
	w.views["node1"] = HostView{Err: errAuth}
	h := newHarness(t, w, func(c *Config) {
		c.Permanent = func(err error) (string, bool) {
			if errors.Is(err, errAuth) {
				return "auth_refused", true
			}
			return "", false
		}
	})
	p := h.waitPhase(store.PhaseDegraded)
	if p.Degraded == nil || p.Degraded.Reason != "auth_refused" || !strings.Contains(p.Degraded.Error, "credentials were refused") {
		t.Fatalf("degraded %+v", p.Degraded)
	}
}

// TestStopHookEscalates: when the clean shutdown and the forced one fail,
// the evacuation turns the VM off before the hook answers, so the disk
// never leaves under a running VM (issue 8, item 22).
func TestStopHookEscalates(t *testing.T) {
	w := newFakeWorld()
	h := newHarness(t, w, nil)
	h.waitPhase(store.PhaseConverged)
	w.mu.Lock()
	w.beforeRun = func(host string, s Step) error {
		if s.Kind != StepStopVM {
			return nil
		}
		switch s.Mode {
		case StopShutdown:
			return errors.New("The virtual machine could not be shut down: the guest did not respond")
		case StopForce:
			return errors.New("The shutdown integration service is not available")
		}
		return nil
	}
	w.mu.Unlock()
	res, err := h.c.Hook(context.Background(), HookRequest{Cluster: "cluster1", Group: "failover1", Server: "node1", Phase: "stop", Event: "START", Factor: "GROUPMOVE"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeOK {
		t.Fatalf("hook: %+v", res)
	}
	w.mu.Lock()
	running := w.views["node1"].VM.Running
	w.mu.Unlock()
	if running {
		t.Fatal("the VM still runs on the host its disk leaves")
	}
	if got := w.ran(); !strings.Contains(got, "stop_vm(turnoff)@node1 remove_replication@node1") {
		t.Fatalf("ran %s", got)
	}
	var op store.Operation
	for _, o := range h.ops() {
		if o.ID == res.Op {
			op = o
		}
	}
	if s := op.Plan[0]; s.Outcome != store.OutcomeOK || !strings.Contains(s.Summary, "turned off (Stop-VM -TurnOff) after clean shutdown failed") || s.Attempts != 3 {
		t.Fatalf("journaled stop step %+v", s)
	}
	var events []store.Event
	h.st.View(func(tx store.Tx) (err error) { events, err = tx.Events(store.EventFilter{Pair: "vm1"}); return })
	found := false
	for _, e := range events {
		found = found || e.Kind == "stop-escalated" && strings.Contains(e.Message, "turned off") && e.Op == fmt.Sprint(res.Op)
	}
	if !found {
		t.Fatal("no stop-escalated event")
	}
}

// TestStopEscalationFitsTheHookWait: a guest shutdown that hangs is cut
// short so that the turn-off still happens before the hook stops waiting.
func TestStopEscalationFitsTheHookWait(t *testing.T) {
	w := newFakeWorld()
	h := newHarness(t, w, func(c *Config) { c.StepTimeout = time.Hour })
	h.waitPhase(store.PhaseConverged)
	w.mu.Lock()
	w.runCtx = func(ctx context.Context, host string, s Step) error {
		if s.Kind == StepStopVM && s.Mode != StopTurnOff {
			<-ctx.Done() // a guest that never answers
			return fmt.Errorf("%s: %w", s.Mode.Describe(), ctx.Err())
		}
		return nil
	}
	w.mu.Unlock()
	res, err := h.c.Hook(context.Background(), HookRequest{Cluster: "cluster1", Group: "failover1", Server: "node1", Phase: "stop", Factor: "GROUPMOVE"}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeOK || !strings.Contains(res.Message, "evacuated") {
		t.Fatalf("the hook's wait ended before the VM was off: %+v", res)
	}
	if got := w.ran(); !strings.Contains(got, "stop_vm(turnoff)@node1") {
		t.Fatalf("ran %s", got)
	}
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "hvro.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestSetTunables: a reload's tunables reach running passes: more or fewer
// workers, and a step deadline long enough for a slow command.
func TestSetTunables(t *testing.T) {
	w := newFakeWorld()
	// start_vm takes 100ms: more than the first step deadline, less than
	// the reloaded one.
	w.runCtx = func(ctx context.Context, host string, s Step) error {
		select {
		case <-time.After(100 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h := newHarness(t, w, func(c *Config) { c.Workers = 1; c.StepTimeout = 20 * time.Millisecond })
	p := h.waitPhase(store.PhaseDegraded)
	if p.Degraded == nil || !strings.Contains(p.Degraded.Error, "deadline exceeded") {
		t.Fatalf("degraded %+v, want the step deadline", p.Degraded)
	}
	tun := h.c.Tunables()
	tun.StepTimeout = time.Minute
	h.c.SetTunables(tun)
	if err := h.c.Reconcile("vm1"); err != nil {
		t.Fatal(err)
	}
	h.waitPhase(store.PhaseConverged)

	running := func() int {
		h.c.mu.Lock()
		defer h.c.mu.Unlock()
		return h.c.running
	}
	tun.Workers = 3
	h.c.SetTunables(tun)
	if n := running(); n != 3 {
		t.Fatalf("%d workers after raising the count to 3", n)
	}
	tun.Workers = 1
	h.c.SetTunables(tun)
	within.Eventually(t, "workers retire after their pass", func() bool {
		h.c.Reconcile("vm1")
		return running() == 1
	})
}

// TestHalfDoneFailoverIsUndone: a planned failover that failed after
// preparing the primary leaves a VM Hyper-V will not start; the next pass
// cancels the preparation and starts it where the role still is (found by
// the chaos runner: such pairs stayed Degraded).
func TestHalfDoneFailoverIsUndone(t *testing.T) {
	w := newFakeWorld()
	h := newHarness(t, w, nil)
	h.waitPhase(store.PhaseConverged)
	var failed atomic.Bool
	w.mu.Lock()
	w.beforeRun = func(host string, s Step) error {
		if s.Kind == StepFailover && !failed.Swap(true) {
			return errors.New("the replica server refused the failover")
		}
		return nil
	}
	w.mu.Unlock()
	_, done, err := h.c.Failover("vm1", FailoverRequest{Planned: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := within.Recv(t, done, "failover"); r.Kind != ResultFailed {
		t.Fatalf("failover: %+v", r)
	}
	within.Eventually(t, "the half-done failover to be undone", func() bool {
		return strings.Contains(w.ran(), "stop_vm@node1 prepare_failover@node1 cancel_failover@node1 start_vm@node1")
	})
	p := h.waitPhase(store.PhaseConverged)
	w.mu.Lock()
	running := w.views["node1"].VM.Running
	w.mu.Unlock()
	if p.PrimaryCluster != "cluster1" || p.ActivePrimaryHost != "node1" || !running {
		t.Fatalf("after the failed failover: %+v, VM running on node1: %v", p, running)
	}
}

// TestHoldSurvivesAnotherRestart: hvro killed again during the hold after
// a crash must hold again when it comes back: the journal already says
// "interrupted" then, so the hold cannot come only from the operations a
// start marks (found by the chaos runner: seed 2032, three kills in a row,
// a command overlapping the orphan of the first).
func TestHoldSurvivesAnotherRestart(t *testing.T) {
	const hold = 600 * time.Millisecond
	w := newFakeWorld()
	c, started := startAfterCrash(t, w, hold)
	c.Stop() // killed again before the hold ended; nothing ran
	if got := w.ran(); got != "" {
		t.Fatalf("the first restart acted inside its hold: %s", got)
	}
	// As startAfterCrash: a shell idle timeout far below hold.
	restartAgain(t, c, w, hold, time.Millisecond)
	within.Eventually(t, "the pair to be reconciled after the hold", func() bool { return w.ran() != "" })
	if at := w.firstRunAt(); at.Sub(started) < hold {
		t.Fatalf("the second restart acted %v after the orphaned step started, inside the %v hold: %s", at.Sub(started), hold, w.ran())
	}
}

// TestShellHoldSurvivesAnotherRestart: the same when the orphan's bound
// is its shell's idle timeout: the second restart holds until the idle
// timeout has passed from the first restart, which found the step
// interrupted after the orphan's last request.
func TestShellHoldSurvivesAnotherRestart(t *testing.T) {
	const idle = 1500 * time.Millisecond
	w := newFakeWorld()
	restarted := time.Now()
	c, _ := startAfterCrash(t, w, 50*time.Millisecond, func(c *Config) { c.ShellIdleTimeout = idle })
	c.Stop() // killed again before the hold ended; nothing ran
	if got := w.ran(); got != "" {
		t.Fatalf("the first restart acted inside its hold: %s", got)
	}
	restartAgain(t, c, w, 50*time.Millisecond, idle)
	within.Eventually(t, "the pair to be reconciled after the hold", func() bool { return w.ran() != "" })
	if at := w.firstRunAt(); at.Sub(restarted) < idle {
		t.Fatalf("the second restart acted %v after the first, before the orphaned command's shell (idle timeout %v) must be gone: %s",
			at.Sub(restarted).Round(time.Millisecond), idle, w.ran())
	}
}

// restartAgain starts a new controller on c's store, as hvro started again
// after c was killed.
func restartAgain(t *testing.T, c *Controller, w *fakeWorld, cmdTimeout, shellIdle time.Duration) *Controller {
	t.Helper()
	spec := testSpec
	spec.InitialPrimary = "cluster1"
	c2, err := New(Config{Store: c.cfg.Store, Hosts: func(h string) (Host, bool) { return fakeHost{w, h}, true }, Clusters: testClusters,
		Pairs: []PairSpec{spec}, CommandTimeout: cmdTimeout, ShellIdleTimeout: shellIdle, ProgressInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	observeBoth(c2, "node1", "node3")
	if err := c2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c2.Stop)
	return c2
}

var errCommandTimeout = errors.New("start VM on node1: transient (timeout): no result within the command timeout 4s")

// TestAbandonedStepIsHeldAfterRestart: a step whose command hvro stopped
// waiting for is journaled as one whose command may still run; hvro killed
// before the host deleted that command's shell holds the pair on restart
// like a pair whose step was running (review finding: MarkInterrupted
// left such a failed step alone, so no hold).
func TestAbandonedStepIsHeldAfterRestart(t *testing.T) {
	w := newFakeWorld()
	var mu sync.Mutex
	restarted := false
	var afterRestart []time.Time // start_vm attempts of the restarted hvro
	w.beforeRun = func(host string, s Step) error {
		if s.Kind != StepStartVM {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if !restarted {
			return errCommandTimeout // every attempt before the kill times out
		}
		afterRestart = append(afterRestart, time.Now())
		return nil
	}
	h := newHarness(t, w, func(c *Config) {
		c.StepRetries = -1
		c.Abandoned = func(err error) bool { return errors.Is(err, errCommandTimeout) }
		c.Transient = func(err error) bool { return errors.Is(err, errCommandTimeout) }
	})
	failedStep := func() (store.Step, bool) {
		for _, op := range h.ops() {
			if len(op.Plan) > 0 && op.Plan[0].Kind == "start_vm" && op.Plan[0].Outcome == store.OutcomeFailed {
				return op.Plan[0], true
			}
		}
		return store.Step{}, false
	}
	within.Eventually(t, "the timed-out step to be journaled", func() bool { _, ok := failedStep(); return ok })
	h.c.Stop() // killed before the host deleted the command's shell
	st, _ := failedStep()
	for _, op := range h.ops() { // the newest failed attempt is what the restart sees
		if len(op.Plan) > 0 && op.Plan[0].Kind == "start_vm" && op.Plan[0].Ended.After(st.Ended) {
			st = op.Plan[0]
		}
	}
	if !st.MayRun {
		t.Fatalf("the step hvro stopped waiting for is journaled %+v, want may_run", st)
	}
	mu.Lock()
	restarted = true
	mu.Unlock()
	const idle = 800 * time.Millisecond
	restartAgain(t, h.c, w, time.Millisecond, idle)
	within.Eventually(t, "the pair to be reconciled after the hold", func() bool { mu.Lock(); defer mu.Unlock(); return len(afterRestart) > 0 })
	mu.Lock()
	first := afterRestart[0]
	mu.Unlock()
	if first.Sub(st.Ended) < idle {
		t.Fatalf("acted %v after the abandoned step ended, before its shell (idle timeout %v) must be gone", first.Sub(st.Ended), idle)
	}
}

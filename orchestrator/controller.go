package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hvro/hvro/hostname"
	"github.com/hvro/hvro/store"
)

// Host is one Hyper-V host as the orchestrator drives it. Inspect reads the
// VM and its replication in one command; Run carries out one step.
type Host interface {
	Inspect(ctx context.Context, vm string) (HostView, error)
	Run(ctx context.Context, vm string, s Step, settings Settings) (detail string, err error)
}

// Store is the narrow persistence interface the orchestrator needs; the
// bbolt store implements it, and a replicated backend could too.
type Store interface {
	View(fn func(store.Tx) error) error
	Update(fn func(store.Tx) error) error
	MarkInterrupted(now time.Time) ([]store.Operation, error)
}

// Metrics receives what the orchestrator measures; nil discards.
type Metrics interface {
	Operation(kind, outcome string, d time.Duration)
	Step(kind string, d time.Duration)
	// Pair exports a pair's phase, replication health, the reason it is
	// degraded ("" when it is not) and when it last converged.
	Pair(name, phase, health, degradedReason string, convergedAt time.Time)
	// ForgetPair drops the series of a pair that is no longer managed.
	ForgetPair(name string)
	QueueDepth(n int)
}

// Config configures a Controller.
type Config struct {
	Store    Store
	Hosts    func(host string) (Host, bool)
	Clusters Clusters
	Pairs    []PairSpec
	// Transient classifies a step error: true retries within the pass.
	Transient func(error) bool
	// Permanent says whether an error will not go away by retrying (the
	// credentials were refused, the endpoint is not WinRM) and names the
	// reason with a short stable word. A host whose inspection fails that
	// way parks the pair Degraded with that reason instead of waiting.
	Permanent func(error) (reason string, ok bool)
	// Abandoned says whether a step error means hvro stopped waiting for a
	// command that may still run on the host (a timeout, a cancel). The
	// journal marks such a step, and a restart soon after holds its pair
	// like one whose step was running.
	Abandoned func(error) bool

	Workers     int           // concurrent pairs (default 4)
	StepTimeout time.Duration // per step, an outer bound on the driver (default 2m)
	// CommandTimeout is how long the driver lets one command run before it
	// abandons it and deletes its shell (default StepTimeout). After a
	// crash, a pair whose step was running waits this long from the step's
	// start: the dead process could not delete its shell, so the command
	// may still be running on the host.
	CommandTimeout time.Duration
	// ShellIdleTimeout is the idle timeout the driver asks the hosts for in
	// every shell (default 60s, the driver's): a host deletes a shell, and
	// kills its command, once it got no request for that long. After a
	// crash, a pair whose step was running also waits this long from the
	// restart (plus a margin): the dead process's last request came before
	// it, so its orphaned command is gone by then however slow the cmdlet.
	ShellIdleTimeout time.Duration
	StepRetries      int           // transient retries of a step within a pass (default 3)
	RetryBase        time.Duration // first retry delay, doubling (default 1s)
	ProgressInterval time.Duration // re-check while an async transition runs (default 2s)
	ResyncInterval   time.Duration // re-check every pair (default 30s)
	BackoffMax       time.Duration // longest delay between retries, within a pass and between passes (default 2m)
	DegradeAfter     int           // consecutive failed passes before Degraded (default 3)

	Logger  *slog.Logger
	Metrics Metrics
	Now     func() time.Time

	// ReloadPause is a failpoint for tests through real processes: SetPairs
	// sleeps this long between its commit and taking the records into
	// memory, which widens the window a failover or a pause must not be
	// undone in. Zero in production.
	ReloadPause time.Duration
}

// Tunables are the settings a configuration reload may change while passes
// run; each pass reads them when it needs them.
type Tunables struct {
	Workers          int
	StepTimeout      time.Duration
	CommandTimeout   time.Duration
	ShellIdleTimeout time.Duration
	StepRetries      int
	RetryBase        time.Duration
	ProgressInterval time.Duration
	ResyncInterval   time.Duration
	BackoffMax       time.Duration
	DegradeAfter     int
}

// Tunables returns cfg's tunables with the defaults filled in.
func (cfg Config) Tunables() Tunables {
	return Tunables{Workers: cfg.Workers, StepTimeout: cfg.StepTimeout, CommandTimeout: cfg.CommandTimeout,
		ShellIdleTimeout: cfg.ShellIdleTimeout, StepRetries: cfg.StepRetries, RetryBase: cfg.RetryBase, ProgressInterval: cfg.ProgressInterval,
		ResyncInterval: cfg.ResyncInterval, BackoffMax: cfg.BackoffMax, DegradeAfter: cfg.DegradeAfter}.withDefaults()
}

// withDefaults fills in what t leaves zero (and a negative StepRetries
// means none).
func (t Tunables) withDefaults() Tunables {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.StepTimeout, 2*time.Minute)
	def(&t.CommandTimeout, t.StepTimeout)
	def(&t.ShellIdleTimeout, time.Minute)
	def(&t.RetryBase, time.Second)
	def(&t.ProgressInterval, 2*time.Second)
	def(&t.ResyncInterval, 30*time.Second)
	def(&t.BackoffMax, 2*time.Minute)
	if t.Workers <= 0 {
		t.Workers = 4
	}
	if t.StepRetries < 0 {
		t.StepRetries = 0
	} else if t.StepRetries == 0 {
		t.StepRetries = 3
	}
	if t.DegradeAfter <= 0 {
		t.DegradeAfter = 3
	}
	return t
}

// Controller reconciles every pair, one serialized worker per pair.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	queue *Queue

	mu       sync.Mutex
	tun      Tunables
	pairs    map[string]*pairState
	byGroup  map[GroupKey][]string // the pairs that use a group, sorted; rebuilt with pairs
	groups   map[GroupKey]GroupState
	clusters Clusters
	stopping bool
	running  int          // worker goroutines alive
	resyncT  *time.Ticker // nil until Start

	runCtx  context.Context
	cancel  context.CancelFunc
	workers sync.WaitGroup
}

// pairState is what the controller keeps of a pair between passes.
// gen, primary and paused are copies of the stored record and change only
// through apply; the rest is memory only.
type pairState struct {
	spec    PairSpec
	gen     uint64
	primary string // primary cluster
	paused  bool

	// failures counts failed passes at this generation (towards Degraded);
	// retries counts consecutive passes that asked to back off (the delay).
	// Both reset when the pair converges or a new observation arrives.
	failures int
	retries  int
	// holdUntil: do not act before this time (a command a crashed hvro
	// sent may still run on a host).
	holdUntil time.Time

	evacs          []*evacRequest
	failover       *failoverRequest // queued
	failoverActive bool             // a failover is running
	waiters        []*waiter
}

// apply copies the fields memory mirrors from a committed record of the
// pair. Writers commit in one order and report back in another, so a
// record older than what memory holds is ignored; that is safe because
// every write that changes the primary role or the pause also raises the
// generation (bumpPair), so an equal generation carries equal values.
func (ps *pairState) apply(p store.Pair) {
	if p.Generation < ps.gen {
		return
	}
	ps.gen, ps.primary, ps.paused = p.Generation, p.PrimaryCluster, p.Paused
}

// A waiter's channel has capacity 1 and receives exactly one result: the
// sender (publish, finishWaiters) removes the waiter from its pair under mu
// in the same step as it sends, so the send never blocks and never repeats;
// a hook that stops waiting removes its own waiters (dropWaiters) the same
// way. Requests (evacRequest, failoverRequest) follow the same rule.
type waiter struct {
	minGen uint64
	ch     chan PassResult
}

// ResultKind says how a pass ended, for the hooks and operators waiting on it.
type ResultKind string

// Pass result kinds.
const (
	ResultConverged   ResultKind = "converged"
	ResultProgressing ResultKind = "progressing"
	ResultWaiting     ResultKind = "waiting"
	ResultDegraded    ResultKind = "degraded"
	ResultFailed      ResultKind = "failed"
	ResultEvacuated   ResultKind = "evacuated"
	ResultPaused      ResultKind = "paused"
	ResultStopping    ResultKind = "stopping"
)

// PassResult is what a finished pass tells waiting hooks.
type PassResult struct {
	Pair       string
	Gen        uint64
	Kind       ResultKind
	OpID       uint64
	Message    string
	FailedHost string
	FailedStep StepKind
}

var (
	// ErrUnknownPair: no configured pair has that name.
	ErrUnknownPair = errors.New("unknown pair")
	// ErrUnknownGroup: no configured pair uses that group.
	ErrUnknownGroup = errors.New("no pair uses this group")
	// ErrUnknownServer: the server is not configured for the cluster.
	ErrUnknownServer = errors.New("server is not configured for this cluster")
	// ErrPaused: the pair is paused.
	ErrPaused = errors.New("pair is paused")
	// ErrBusy: an operation of that kind is already queued or running.
	ErrBusy = errors.New("an operation is already in progress")
	// ErrStopping: the controller is shutting down.
	ErrStopping  = errors.New("hvro is shutting down")
	errAbandoned = errors.New("generation changed: plan abandoned")
	// errJournal: the journal could not be written, so nothing may run.
	errJournal = errors.New("the journal cannot be written")
)

// New validates the configuration and loads every pair's state.
func New(cfg Config) (*Controller, error) {
	if cfg.Store == nil || cfg.Hosts == nil {
		return nil, errors.New("orchestrator: Store and Hosts are required")
	}
	if cfg.Transient == nil {
		cfg.Transient = func(error) bool { return false }
	}
	if cfg.Permanent == nil {
		cfg.Permanent = func(error) (string, bool) { return "", false }
	}
	if cfg.Abandoned == nil {
		cfg.Abandoned = func(error) bool { return false }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Controller{
		cfg:      cfg,
		log:      cfg.Logger,
		queue:    NewQueue(),
		tun:      cfg.Tunables(),
		pairs:    map[string]*pairState{},
		groups:   map[GroupKey]GroupState{},
		clusters: cfg.Clusters,
	}
	if err := c.SetPairs(cfg.Pairs, cfg.Clusters); err != nil {
		return nil, err
	}
	return c, nil
}

// Tunables returns the tunables in force.
func (c *Controller) Tunables() Tunables {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tun
}

// SetTunables applies reloaded tunables, complete as Config.Tunables
// returns them (StepRetries 0 is none there, not the default). Running
// steps keep the timeouts they started with; everything after uses the
// new ones. Fewer workers take effect as running workers finish their pass.
func (c *Controller) SetTunables(t Tunables) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.tun
	c.tun = t
	if c.resyncT != nil && old.ResyncInterval != t.ResyncInterval {
		c.resyncT.Reset(t.ResyncInterval)
	}
	if c.runCtx != nil && !c.stopping {
		c.startWorkersLocked()
	}
}

// SetPairs replaces the managed pairs and clusters (config reload). A pair
// that disappears is no longer managed; its replication is left as it is.
// What the store holds of a pair (its primary role, generation, pause) is
// never moved backwards by a reload: memory takes it from the committed
// records (apply).
func (c *Controller) SetPairs(specs []PairSpec, clusters Clusters) error {
	now := c.cfg.Now()
	loaded := map[string]store.Pair{}
	err := c.cfg.Store.Update(func(tx store.Tx) error {
		for _, s := range specs {
			if _, ok := s.Sides[s.InitialPrimary]; !ok || len(s.Sides) != 2 {
				return fmt.Errorf("pair %s: the primary cluster %q is not one of its two sides", s.Name, s.InitialPrimary)
			}
			p, err := tx.Pair(s.Name)
			switch {
			case errors.Is(err, store.ErrNotFound):
				p = store.Pair{Name: s.Name, PrimaryCluster: s.InitialPrimary, Phase: store.PhasePending}
			case err != nil:
				return fmt.Errorf("load pair %s: %w", s.Name, err)
			}
			if _, ok := s.Sides[p.PrimaryCluster]; !ok {
				return fmt.Errorf("pair %s: the store says %q holds the primary role, but the configuration's sides are %v; fix the configuration or fail the pair over explicitly", s.Name, p.PrimaryCluster, slices.Sorted(maps.Keys(s.Sides)))
			}
			p.Config = storeConfig(s, p.PrimaryCluster)
			p.UpdatedAt = now
			if err := tx.PutPair(p); err != nil {
				return fmt.Errorf("save pair %s: %w", s.Name, err)
			}
			loaded[s.Name] = p
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.cfg.ReloadPause > 0 {
		time.Sleep(c.cfg.ReloadPause)
	}
	specOf := map[string]PairSpec{}
	for _, s := range specs {
		specOf[s.Name] = s
	}
	c.mu.Lock()
	pairs := map[string]*pairState{}
	for name, rec := range loaded {
		ps, ok := c.pairs[name]
		if !ok {
			// A pair new to memory: the record just read is the newest.
			ps = &pairState{}
		}
		// A pair that stays keeps its requests and waiters, and its
		// stored fields unless this record is newer than what memory holds.
		ps.spec = specOf[name]
		ps.apply(rec)
		pairs[name] = ps
	}
	for name, old := range c.pairs {
		if _, ok := pairs[name]; !ok {
			c.finishWaiters(old, PassResult{Pair: name, Kind: ResultFailed, Message: "the pair was removed from the configuration"})
			if m := c.cfg.Metrics; m != nil {
				m.ForgetPair(name)
			}
		}
	}
	c.pairs, c.clusters = pairs, clusters
	// Every poll of every group looks its pairs up: keep that independent
	// of how many pairs there are.
	c.byGroup = map[GroupKey][]string{}
	for name, ps := range pairs {
		for _, sd := range ps.spec.Sides {
			k := GroupKey{sd.Cluster, sd.Group}
			c.byGroup[k] = append(c.byGroup[k], name)
		}
	}
	for _, names := range c.byGroup {
		sort.Strings(names)
	}
	c.mu.Unlock()
	for name := range pairs {
		c.queue.Add(name)
	}
	return nil
}

func storeConfig(s PairSpec, primary string) store.PairConfig {
	side := func(c string) store.Side {
		x := s.Sides[c]
		return store.Side{Cluster: x.Cluster, Group: x.Group, VMConfigPath: x.ConfigPath}
	}
	initial := "use_existing"
	if !s.Replication.UseBackup {
		initial = "network"
	}
	return store.PairConfig{
		VMName: s.VMName, Primary: side(primary), Replica: side(s.Other(primary)),
		Replication: store.ReplicationConfig{Port: s.Replication.Port, Authentication: s.Replication.Auth,
			CertificateThumbprint: s.Replication.Thumbprint, Frequency: time.Duration(s.Replication.FrequencySec) * time.Second,
			Compression: s.Replication.Compression, Initial: initial},
	}
}

// Start marks operations a crash left running as interrupted, holds their
// pairs until the interrupted commands cannot be running any more, then
// starts the workers and the periodic re-check.
func (c *Controller) Start(ctx context.Context) error {
	now := c.cfg.Now()
	marked, err := c.cfg.Store.MarkInterrupted(now)
	if err != nil {
		return fmt.Errorf("mark interrupted operations: %w", err)
	}
	tun := c.Tunables()
	// The dead process could not delete the shell of a step it was
	// running, so the step's command may run on. It ends when the driver
	// would have given up on it (the command timeout from the step's
	// start) or, when the cmdlet is slower, when the host deletes the idle
	// shell: ShellIdleTimeout after the dead process's last request, which
	// came before the start that found the step interrupted (its Ended).
	// The margin covers the host's timer slack and killing the shell's
	// processes.
	orphanGone := func(st store.Step) time.Time {
		found := st.Ended
		if found.IsZero() || found.After(now) {
			found = now
		}
		until := found.Add(tun.ShellIdleTimeout + max(tun.ShellIdleTimeout/10, time.Second))
		if byTimeout := st.Started.Add(tun.CommandTimeout); byTimeout.After(until) {
			until = byTimeout
		}
		return until
	}
	// The hold comes from every recently interrupted operation, not only
	// from those this start marked: hvro killed again during a hold finds
	// them marked already, and its orphan may still run all the same.
	ops, err := c.recentlyInterrupted(func(st store.Step) bool { return orphanGone(st).After(now) })
	if err != nil {
		return fmt.Errorf("read interrupted operations: %w", err)
	}
	fresh := map[uint64]bool{}
	for _, op := range marked {
		fresh[op.ID] = true
	}
	for _, op := range ops {
		hold := now
		for _, st := range op.Plan {
			if orphaned(st) {
				if until := orphanGone(st); until.After(hold) {
					hold = until
				}
			}
		}
		c.mu.Lock()
		if ps, ok := c.pairs[op.Pair]; ok && hold.After(ps.holdUntil) {
			ps.holdUntil = hold
		}
		c.mu.Unlock()
		msg := "operation was interrupted by a stop of hvro; re-planning once its last command cannot be running any more"
		switch {
		case op.State != store.OpInterrupted:
			msg = "a command hvro stopped waiting for just before it stopped may still be running; holding the pair"
		case !fresh[op.ID]:
			msg = "operation was interrupted before an earlier restart, and its last command may still be running; holding the pair"
		}
		c.log.Warn(msg, "pair", op.Pair, "op", op.ID, "kind", op.Kind, "wait", hold.Sub(now).Round(time.Millisecond).String())
		c.queue.AddAfter(op.Pair, hold.Sub(now))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runCtx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.resyncT = time.NewTicker(c.tun.ResyncInterval)
	c.startWorkersLocked()
	c.workers.Add(1)
	go c.resync(c.resyncT)
	return nil
}

// orphaned says whether a step may have left a command running on its
// host: it was running when hvro stopped, or it ended when hvro stopped
// waiting for its command (MayRun), whose shell a crash then kept from
// being deleted.
func orphaned(st store.Step) bool {
	return st.Host != "" && !st.Started.IsZero() && (st.Outcome == store.OutcomeInterrupted || st.MayRun)
}

// recentlyInterrupted returns the operations with a step that may have
// left a command running (orphaned) and for which running says it may
// still run, newest first.
func (c *Controller) recentlyInterrupted(running func(store.Step) bool) ([]store.Operation, error) {
	var out []store.Operation
	err := c.cfg.Store.View(func(tx store.Tx) error {
		ops, err := tx.Operations(store.OpFilter{Limit: 1000})
		if err != nil {
			return err
		}
		for _, op := range ops {
			for _, st := range op.Plan {
				if orphaned(st) && running(st) {
					out = append(out, op)
					break
				}
			}
		}
		return nil
	})
	return out, err
}

// startWorkersLocked starts workers up to the tunable count. Caller holds mu.
func (c *Controller) startWorkersLocked() {
	for c.running < c.tun.Workers {
		c.running++
		c.workers.Add(1)
		go c.worker()
	}
}

// Stop drains: the running step of every pass finishes and is journaled,
// the rest of its plan is marked interrupted, then Stop returns.
func (c *Controller) Stop() {
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		return
	}
	c.stopping = true
	for _, ps := range c.pairs {
		// Waiting hooks learn nothing went wrong on their node: hvro is
		// restarting, so their scripts fail open.
		c.finishWaiters(ps, PassResult{Pair: ps.spec.Name, Kind: ResultStopping, Message: ErrStopping.Error()})
	}
	c.mu.Unlock()
	c.queue.ShutDown()
	if c.cancel != nil {
		c.cancel()
	}
	c.workers.Wait()
}

func (c *Controller) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

func (c *Controller) worker() {
	defer c.workers.Done()
	for {
		key, ok := c.queue.Get()
		if !ok {
			return
		}
		c.handle(key, c.pass(key))
		c.queue.Done(key)
		if m := c.cfg.Metrics; m != nil {
			m.QueueDepth(c.queue.Len())
		}
		if c.retire() {
			return
		}
	}
}

// retire ends this worker when a reload lowered the worker count.
func (c *Controller) retire() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running > c.tun.Workers {
		c.running--
		return true
	}
	return false
}

// next is what a pass asks of the queue.
type next int

const (
	// idle: nothing to do until an observation, a request or the resync
	// (converged, waiting for a group to settle, parked Degraded, paused).
	idle next = iota
	// again: look again at once (a plan ran, or was abandoned because the
	// world changed under it).
	again
	// later: look again after passOutcome.after (an asynchronous
	// transition runs, a restart hold).
	later
	// retry: a transient trouble; look again after a delay that grows
	// with each consecutive retry of the pair, up to BackoffMax.
	retry
)

// passOutcome is what a pass returns; handle alone acts on it.
type passOutcome struct {
	next  next
	after time.Duration
	// report, when set, answers the hooks waiting for this generation.
	report *PassResult
	// settled: the pass converged or a plan succeeded: failure and backoff
	// counts start over.
	settled bool
}

// handle is the one place that decides what the queue does after a pass.
func (c *Controller) handle(name string, o passOutcome) {
	if o.report != nil {
		c.publish(name, *o.report)
	}
	c.mu.Lock()
	ps, ok := c.pairs[name]
	var delay time.Duration
	if ok {
		if o.settled {
			ps.failures, ps.retries = 0, 0
		}
		switch o.next {
		case retry:
			delay = backoffDelay(c.tun, ps.retries)
			ps.retries++
		default:
			ps.retries = 0
		}
	}
	c.mu.Unlock()
	if !ok {
		return
	}
	switch o.next {
	case again:
		c.queue.Add(name)
	case later:
		c.queue.AddAfter(name, o.after)
	case retry:
		c.queue.AddAfter(name, delay)
	}
}

// backoffDelay is the wait before a pair's retries+1st consecutive retry:
// RetryBase doubling, at most BackoffMax.
func backoffDelay(t Tunables, retries int) time.Duration {
	d := t.RetryBase
	for i := 0; i < retries && d < t.BackoffMax; i++ {
		d *= 2
	}
	return min(d, t.BackoffMax)
}

func (c *Controller) resync(t *time.Ticker) {
	defer c.workers.Done()
	defer t.Stop()
	for {
		select {
		case <-c.runCtx.Done():
			return
		case <-t.C:
			for _, name := range c.PairNames() {
				c.queue.Add(name)
			}
		}
	}
}

// PairNames lists the managed pairs, sorted.
func (c *Controller) PairNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.pairs))
}

// Observe records an observation of a group from the poller. It bumps the
// generation of every pair using the group and queues them when what the
// group says changed.
func (c *Controller) Observe(key GroupKey, o Observation) {
	if _, err := c.observe(key, o, ""); err != nil {
		c.log.Error("record observation", "cluster", key.Cluster, "group", key.Group, "error", err)
	}
}

// observe stores the observation and returns the new generation of each
// affected pair (unchanged generations are returned too).
func (c *Controller) observe(key GroupKey, o Observation, note string) (map[string]uint64, error) {
	c.mu.Lock()
	prev := c.groups[key]
	next := prev
	if o.Source == store.SourceHook {
		next.Hook = o
	} else {
		next.Poll = o
	}
	changed := !sameObservation(prev.Effective(), next.Effective()) || o.Source == store.SourceHook
	c.groups[key] = next
	names := c.byGroup[key]
	gens := map[string]uint64{}
	if !changed {
		for _, n := range names {
			gens[n] = c.pairs[n].gen
		}
		c.mu.Unlock()
		return gens, nil
	}
	c.mu.Unlock()
	eff := next.Effective()
	rec := store.Observation{Cluster: key.Cluster, Group: key.Group, Status: eff.Status, Owner: eff.Owner, Source: eff.Source,
		Endpoint: eff.Endpoint, Err: eff.Err, At: eff.At}
	if eff.Source == store.SourceHook {
		rec.Hook = &store.HookInfo{Phase: eff.Phase, Event: eff.Event, Factor: eff.Factor, Server: eff.Owner, Disk: eff.Disk}
	}
	var recs []store.Pair
	err := c.cfg.Store.Update(func(tx store.Tx) error {
		recs = recs[:0]
		if err := tx.PutObservation(rec); err != nil {
			return err
		}
		for _, n := range names {
			p, err := bumpPair(tx, n, c.cfg.Now(), func(p *store.Pair) {
				p.Degraded = nil // a new observation clears Degraded
			})
			if err != nil {
				return err
			}
			recs = append(recs, p)
			if note != "" {
				if _, err := tx.AppendEvent(store.Event{At: c.cfg.Now(), Pair: n, Kind: o.Source, Message: note}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store observation of %s: %w", key, err)
	}
	c.mu.Lock()
	for _, p := range recs {
		gens[p.Name] = p.Generation
		if ps, ok := c.pairs[p.Name]; ok {
			ps.apply(p)
			// New facts: earlier failures say nothing about them.
			ps.failures, ps.retries = 0, 0
		}
	}
	c.mu.Unlock()
	for _, n := range names {
		c.queue.Add(n)
	}
	c.log.Info("observation", "cluster", key.Cluster, "group", key.Group, "status", eff.Status, "owner", eff.Owner, "source", eff.Source, "error", eff.Err)
	return gens, nil
}

func sameObservation(a, b Observation) bool {
	return a.Status == b.Status && a.Err == b.Err && a.Source == b.Source && a.Phase == b.Phase &&
		(a.Owner == b.Owner || hostname.Same(a.Owner, b.Owner))
}

// Groups returns the latest observation of every group (for /v1/clusters).
func (c *Controller) Groups() map[GroupKey]GroupState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.groups)
}

// Reconcile queues a pass for a pair.
func (c *Controller) Reconcile(name string) error {
	c.mu.Lock()
	ps, ok := c.pairs[name]
	paused := ok && ps.paused
	if ok {
		ps.retries = 0 // the operator asked: now, not after a backoff
	}
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownPair, name)
	}
	if paused {
		return fmt.Errorf("%s: %w", name, ErrPaused)
	}
	c.queue.Add(name)
	return nil
}

// SetPaused stops or restarts acting on a pair. A paused pair finishes the
// step it is running and then does nothing until resumed.
func (c *Controller) SetPaused(name string, paused bool) error {
	c.mu.Lock()
	_, ok := c.pairs[name]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownPair, name)
	}
	var rec store.Pair
	err := c.cfg.Store.Update(func(tx store.Tx) (err error) {
		rec, err = bumpPair(tx, name, c.cfg.Now(), func(p *store.Pair) {
			p.Paused = paused
			if paused {
				p.Phase = store.PhasePaused
			}
		})
		if err != nil {
			return err
		}
		_, err = tx.AppendEvent(store.Event{At: c.cfg.Now(), Pair: name, Kind: map[bool]string{true: "paused", false: "resumed"}[paused], Message: "by the operator"})
		return err
	})
	if err != nil {
		return fmt.Errorf("pause %s: %w", name, err)
	}
	c.mu.Lock()
	if ps, ok := c.pairs[name]; ok {
		ps.apply(rec)
	}
	c.mu.Unlock()
	c.queue.Add(name)
	return nil
}

// event appends to the store's event log; failures are logged, not fatal.
func (c *Controller) event(pair, op, kind, msg string) {
	err := c.cfg.Store.Update(func(tx store.Tx) error {
		_, err := tx.AppendEvent(store.Event{At: c.cfg.Now(), Pair: pair, Op: op, Kind: kind, Message: msg})
		return err
	})
	if err != nil {
		c.log.Error("append event", "pair", pair, "kind", kind, "error", err)
	}
}

// finishWaiters answers every waiter and request of a pair. Caller holds mu.
func (c *Controller) finishWaiters(ps *pairState, r PassResult) {
	for _, w := range ps.waiters {
		w.ch <- r
	}
	ps.waiters = nil
	for _, e := range ps.evacs {
		e.done <- r
	}
	ps.evacs = nil
	if f := ps.failover; f != nil {
		f.done <- r
		ps.failover = nil
	}
}

// publish answers the waiters a terminal pass satisfies.
func (c *Controller) publish(name string, r PassResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pairs[name]
	if !ok {
		return
	}
	kept := ps.waiters[:0]
	for _, w := range ps.waiters {
		if r.Gen >= w.minGen {
			w.ch <- r
			continue
		}
		kept = append(kept, w)
	}
	clear(ps.waiters[len(kept):])
	ps.waiters = kept
}

// dropWaiters removes the given waiters of a pair that nobody reads any
// more (their hook stopped waiting), so they cannot pile up.
func (c *Controller) dropWaiters(name string, gone ...*waiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pairs[name]
	if !ok {
		return
	}
	ps.waiters = slices.DeleteFunc(ps.waiters, func(w *waiter) bool { return slices.Contains(gone, w) })
}

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
	Pair(name, phase, health string, convergedAt time.Time)
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

	Workers     int           // concurrent pairs (default 4)
	StepTimeout time.Duration // per step, an outer bound on the driver (default 2m)
	// CommandTimeout is how long the driver lets one command run before it
	// abandons it and deletes its shell (default StepTimeout). After a
	// crash, a pair whose step was running waits this long from the step's
	// start: the dead process could not delete its shell, so the command
	// may still be running on the host.
	CommandTimeout   time.Duration
	StepRetries      int           // transient retries of a step within a pass (default 3)
	RetryBase        time.Duration // first retry delay, doubling (default 1s)
	ProgressInterval time.Duration // re-check while an async transition runs (default 2s)
	ResyncInterval   time.Duration // re-check every pair (default 30s)
	BackoffMax       time.Duration // longest requeue delay after failures (default 2m)
	DegradeAfter     int           // consecutive failed passes before Degraded (default 3)

	Logger  *slog.Logger
	Metrics Metrics
	Now     func() time.Time
}

// Controller reconciles every pair, one serialized worker per pair.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	queue *Queue

	mu       sync.Mutex
	pairs    map[string]*pairState
	byGroup  map[GroupKey][]string // the pairs that use a group, sorted; rebuilt with pairs
	groups   map[GroupKey]GroupState
	clusters Clusters
	stopping bool

	runCtx  context.Context
	cancel  context.CancelFunc
	workers sync.WaitGroup
}

type pairState struct {
	spec     PairSpec
	gen      uint64
	primary  string // primary cluster (from the store)
	paused   bool
	failures int
	// holdUntil: do not act before this time (a command a crashed hvro
	// sent may still run on a host).
	holdUntil time.Time

	evacs          []*evacRequest
	failover       *failoverRequest // queued
	failoverActive bool             // a failover is running
	waiters        []*waiter
}

type waiter struct {
	minGen uint64
	ch     chan PassResult
}

// PassResult is what a finished pass tells waiting hooks.
type PassResult struct {
	Pair       string
	Gen        uint64
	Kind       string // converged, progressing, degraded, waiting, failed, evacuated, paused
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
)

// New validates the configuration and loads every pair's state.
func New(cfg Config) (*Controller, error) {
	if cfg.Store == nil || cfg.Hosts == nil {
		return nil, errors.New("orchestrator: Store and Hosts are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.StepTimeout, 2*time.Minute)
	def(&cfg.CommandTimeout, cfg.StepTimeout)
	def(&cfg.RetryBase, time.Second)
	def(&cfg.ProgressInterval, 2*time.Second)
	def(&cfg.ResyncInterval, 30*time.Second)
	def(&cfg.BackoffMax, 2*time.Minute)
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.StepRetries < 0 {
		cfg.StepRetries = 0
	} else if cfg.StepRetries == 0 {
		cfg.StepRetries = 3
	}
	if cfg.DegradeAfter <= 0 {
		cfg.DegradeAfter = 3
	}
	if cfg.Transient == nil {
		cfg.Transient = func(error) bool { return false }
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
		queue:    NewQueue(cfg.ProgressInterval, cfg.BackoffMax),
		pairs:    map[string]*pairState{},
		groups:   map[GroupKey]GroupState{},
		clusters: cfg.Clusters,
	}
	if err := c.SetPairs(cfg.Pairs, cfg.Clusters); err != nil {
		return nil, err
	}
	return c, nil
}

// SetPairs replaces the managed pairs and clusters (config reload). A pair
// that disappears is no longer managed; its replication is left as it is.
func (c *Controller) SetPairs(specs []PairSpec, clusters Clusters) error {
	now := c.cfg.Now()
	loaded := map[string]*pairState{}
	err := c.cfg.Store.Update(func(tx store.Tx) error {
		for _, s := range specs {
			if _, ok := s.Sides[s.InitialPrimary]; !ok || len(s.Sides) != 2 {
				return fmt.Errorf("pair %s: the primary cluster %q is not one of its two sides", s.Name, s.InitialPrimary)
			}
			p, err := tx.Pair(s.Name)
			switch {
			case errors.Is(err, store.ErrNotFound):
				p = store.Pair{Name: s.Name, PrimaryCluster: s.InitialPrimary, Phase: "Pending"}
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
			loaded[s.Name] = &pairState{spec: s, gen: p.Generation, primary: p.PrimaryCluster, paused: p.Paused}
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	for name, ps := range loaded {
		if old, ok := c.pairs[name]; ok {
			// Keep the in-flight requests and waiters of a pair that stays.
			old.spec, old.primary, old.paused = ps.spec, ps.primary, ps.paused
			old.raiseGen(ps.gen)
			loaded[name] = old
		}
	}
	for name, old := range c.pairs {
		if _, ok := loaded[name]; !ok {
			c.finishWaiters(old, PassResult{Pair: name, Kind: "failed", Message: "the pair was removed from the configuration"})
			if m := c.cfg.Metrics; m != nil {
				m.ForgetPair(name)
			}
		}
	}
	c.pairs, c.clusters = loaded, clusters
	// Every poll of every group looks its pairs up: keep that independent
	// of how many pairs there are.
	c.byGroup = map[GroupKey][]string{}
	for name, ps := range loaded {
		for _, sd := range ps.spec.Sides {
			k := GroupKey{sd.Cluster, sd.Group}
			c.byGroup[k] = append(c.byGroup[k], name)
		}
	}
	for _, names := range c.byGroup {
		sort.Strings(names)
	}
	c.mu.Unlock()
	for name := range loaded {
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

// Start marks operations a crash left running as interrupted, then starts
// the workers and the periodic re-check.
func (c *Controller) Start(ctx context.Context) error {
	interrupted, err := c.cfg.Store.MarkInterrupted(c.cfg.Now())
	if err != nil {
		return fmt.Errorf("mark interrupted operations: %w", err)
	}
	now := c.cfg.Now()
	for _, op := range interrupted {
		hold := now
		for _, st := range op.Plan {
			if st.Outcome == store.OutcomeInterrupted && st.Host != "" && !st.Started.IsZero() {
				if until := st.Started.Add(c.cfg.CommandTimeout); until.After(hold) {
					hold = until
				}
			}
		}
		c.mu.Lock()
		if ps, ok := c.pairs[op.Pair]; ok && hold.After(ps.holdUntil) {
			ps.holdUntil = hold
		}
		c.mu.Unlock()
		c.log.Warn("operation was interrupted by a stop of hvro; re-planning once its last command cannot be running any more",
			"pair", op.Pair, "op", op.ID, "kind", op.Kind, "wait", hold.Sub(now).Round(time.Millisecond).String())
		c.queue.AddAfter(op.Pair, hold.Sub(now))
	}
	c.runCtx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for i := 0; i < c.cfg.Workers; i++ {
		c.workers.Add(1)
		go c.worker()
	}
	c.workers.Add(1)
	go c.resync()
	return nil
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
		c.finishWaiters(ps, PassResult{Pair: ps.spec.Name, Kind: "stopping", Message: ErrStopping.Error()})
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
		c.pass(key)
		c.queue.Done(key)
		if m := c.cfg.Metrics; m != nil {
			m.QueueDepth(c.queue.Len())
		}
	}
}

func (c *Controller) resync() {
	defer c.workers.Done()
	t := time.NewTicker(c.cfg.ResyncInterval)
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
	out := make([]string, 0, len(c.pairs))
	for n := range c.pairs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
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
	err := c.cfg.Store.Update(func(tx store.Tx) error {
		if err := tx.PutObservation(rec); err != nil {
			return err
		}
		for _, n := range names {
			g, err := bumpPair(tx, n, c.cfg.Now(), func(p *store.Pair) {
				p.Degraded = nil // a new observation clears Degraded
			})
			if err != nil {
				return err
			}
			gens[n] = g
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
	for n, g := range gens {
		if ps, ok := c.pairs[n]; ok {
			ps.raiseGen(g)
			ps.failures = 0
		}
	}
	c.mu.Unlock()
	for _, n := range names {
		c.queue.Forget(n)
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
	out := make(map[GroupKey]GroupState, len(c.groups))
	for k, v := range c.groups {
		out[k] = v
	}
	return out
}

// Reconcile queues a pass for a pair.
func (c *Controller) Reconcile(name string) error {
	c.mu.Lock()
	ps, ok := c.pairs[name]
	paused := ok && ps.paused
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownPair, name)
	}
	if paused {
		return fmt.Errorf("%s: %w", name, ErrPaused)
	}
	c.queue.Forget(name)
	c.queue.Add(name)
	return nil
}

// SetPaused stops or restarts acting on a pair. A paused pair finishes the
// step it is running and then does nothing until resumed.
func (c *Controller) SetPaused(name string, paused bool) error {
	c.mu.Lock()
	ps, ok := c.pairs[name]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownPair, name)
	}
	var gen uint64
	err := c.cfg.Store.Update(func(tx store.Tx) (err error) {
		gen, err = bumpPair(tx, name, c.cfg.Now(), func(p *store.Pair) {
			p.Paused = paused
			if paused {
				p.Phase = "Paused"
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
	ps.paused = paused
	ps.raiseGen(gen)
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

// finishWaiters answers every waiter of a pair. Caller holds mu.
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
	ps.waiters = kept
}

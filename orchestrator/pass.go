package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hvro/hvro/store"
)

type evacRequest struct {
	leaving     string
	primarySide bool
	factor      string
	trigger     string
	done        chan PassResult
}

type failoverRequest struct {
	planned bool
	opID    uint64
	done    chan PassResult
}

// pass is one worker's turn on a pair: a pending stop-hook evacuation or
// failover first, else a reconcile.
func (c *Controller) pass(name string) {
	c.mu.Lock()
	ps, ok := c.pairs[name]
	if !ok || c.stopping {
		c.mu.Unlock()
		return
	}
	// A hold comes first: requests stay queued until it ends.
	if wait := ps.holdUntil.Sub(c.cfg.Now()); wait > 0 {
		c.mu.Unlock()
		c.queue.AddAfter(name, wait)
		return
	}
	var evac *evacRequest
	if len(ps.evacs) > 0 {
		evac, ps.evacs = ps.evacs[0], ps.evacs[1:]
	}
	fo := ps.failover
	if evac == nil && fo != nil {
		ps.failover, ps.failoverActive = nil, true
	}
	spec, gen, primary, paused := ps.spec, ps.gen, ps.primary, ps.paused
	groups := make(map[GroupKey]GroupState, len(spec.Sides))
	for _, sd := range spec.Sides {
		k := GroupKey{sd.Cluster, sd.Group}
		if g, ok := c.groups[k]; ok {
			groups[k] = g
		}
	}
	clusters := c.clusters
	c.mu.Unlock()

	ctx := c.runCtx
	log := c.log.With("pair", name)
	switch {
	case evac != nil:
		res := c.evacuate(ctx, log, spec, clusters, gen, evac)
		evac.done <- res
		c.queue.Add(name)
		return
	case paused:
		if fo != nil {
			c.mu.Lock()
			ps.failoverActive = false
			c.mu.Unlock()
			c.finishOp(fo.opID, store.OpAbandoned, "the pair is paused")
			fo.done <- PassResult{Pair: name, Gen: gen, Kind: "paused", OpID: fo.opID, Message: "the pair is paused"}
		}
		c.publish(name, PassResult{Pair: name, Gen: gen, Kind: "paused", Message: "the pair is paused"})
		return
	case fo != nil:
		res := c.runFailover(ctx, log, spec, primary, gen, groups, clusters, fo)
		c.mu.Lock()
		ps.failoverActive = false
		c.mu.Unlock()
		fo.done <- res
		c.queue.Add(name)
		return
	}
	res := c.reconcile(ctx, log, spec, primary, gen, groups, clusters)
	if res.Kind != "" {
		c.publish(name, res)
	}
}

func (c *Controller) reconcile(ctx context.Context, log *slog.Logger, spec PairSpec, primary string, gen uint64, groups map[GroupKey]GroupState, clusters Clusters) PassResult {
	name := spec.Name
	res := PassResult{Pair: name, Gen: gen}
	d := Decide(spec, primary, groups, clusters)
	views := c.inspectAll(ctx, spec, clusters)
	pl := PlanReconcile(spec, d, clusters, views)
	c.recordStatus(name, d, views, pl)
	for _, n := range pl.Notes {
		log.Info("note", "message", n)
	}
	if len(pl.Steps) == 0 {
		switch {
		case pl.Converged:
			res.Kind, res.Message = "converged", fmt.Sprintf("%s runs on %s and replicates to %s", spec.VMName, d.Primary.Host, d.Replica.Host)
			c.queue.Forget(name)
		case pl.Progressing != "":
			res.Kind, res.Message = "progressing", pl.Progressing
			c.queue.AddAfter(name, c.cfg.ProgressInterval)
		case pl.Degraded != "":
			res.Kind, res.Message = "degraded", pl.Degraded
		default:
			res.Kind, res.Message = "waiting", pl.Waiting
			if d.Primary.Settled {
				// A host could not be inspected or cannot reach the
				// storage yet: both pass on their own; keep looking.
				c.queue.AddRateLimited(name)
				res.Kind = ""
			}
		}
		return res
	}
	op, err := c.journalPlan(name, "reconcile", fmt.Sprintf("generation %d", gen), gen, pl.Steps)
	if err != nil {
		log.Error("journal plan", "error", err)
		c.queue.AddRateLimited(name)
		return PassResult{}
	}
	log = log.With("op", op.ID)
	log.Info("plan", "steps", describe(pl.Steps), "generation", gen)
	failed, err := c.execute(ctx, log, name, op, pl.Steps, spec, gen, true)
	switch {
	case err == nil:
		// Re-inspect at once: the plan may have been only the first part
		// (a registration), and convergence is confirmed by looking.
		c.queue.Add(name)
		if pl.Degraded != "" {
			return PassResult{Pair: name, Gen: gen, Kind: "degraded", OpID: op.ID, Message: pl.Degraded}
		}
		return PassResult{}
	case errors.Is(err, errAbandoned):
		c.queue.Add(name)
		return PassResult{}
	case errors.Is(err, ErrStopping):
		return PassResult{}
	}
	res = PassResult{Pair: name, Gen: gen, Kind: "failed", OpID: op.ID, Message: err.Error()}
	if failed != nil {
		res.FailedHost, res.FailedStep = failed.Host, failed.Kind
	}
	if !c.failed(name, gen, err) {
		c.queue.AddRateLimited(name)
	}
	return res
}

// failed counts a failed pass; repeated failures, or a permanent one, park
// the pair Degraded, and it reports whether it did: a parked pair is tried
// again on the next observation change or resync, not on a backoff timer.
func (c *Controller) failed(name string, gen uint64, err error) bool {
	c.mu.Lock()
	ps, ok := c.pairs[name]
	n := 0
	if ok && ps.gen == gen {
		ps.failures++
		n = ps.failures
	}
	c.mu.Unlock()
	if !ok || (n < c.cfg.DegradeAfter && c.cfg.Transient(err)) {
		return false
	}
	reason := "step_failed"
	if c.cfg.Transient(err) {
		reason = "retries_exhausted"
	}
	uerr := c.cfg.Store.Update(func(tx store.Tx) error {
		p, err2 := tx.Pair(name)
		if err2 != nil {
			return err2
		}
		if p.Generation != gen {
			return nil
		}
		if p.Degraded == nil {
			p.Degraded = &store.Degraded{Since: c.cfg.Now(), Reason: reason}
		}
		p.Degraded.Error = err.Error()
		p.Phase = "Degraded"
		p.UpdatedAt = c.cfg.Now()
		if perr := tx.PutPair(p); perr != nil {
			return perr
		}
		_, aerr := tx.AppendEvent(store.Event{At: c.cfg.Now(), Pair: name, Kind: "degraded", Message: err.Error()})
		return aerr
	})
	if uerr != nil {
		c.log.Error("mark degraded", "pair", name, "error", uerr)
		return false
	}
	return true
}

func describe(steps []Step) string {
	var parts []string
	for _, s := range steps {
		if s.Host != "" {
			parts = append(parts, string(s.Kind)+"@"+s.Host)
		} else {
			parts = append(parts, string(s.Kind))
		}
	}
	return strings.Join(parts, ", ")
}

// inspectAll reads every host of both clusters in parallel.
func (c *Controller) inspectAll(ctx context.Context, spec PairSpec, clusters Clusters) map[string]HostView {
	var hosts []string
	for cl := range spec.Sides {
		hosts = append(hosts, clusters.hostsOf(cl)...)
	}
	views := make(map[string]HostView, len(hosts))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func(h string) {
			defer wg.Done()
			var v HostView
			drv, ok := c.cfg.Hosts(h)
			if !ok {
				v.Err = fmt.Errorf("no WinRM endpoint is configured for %s", h)
			} else {
				ictx, cancel := context.WithTimeout(ctx, c.cfg.StepTimeout)
				var err error
				v, err = drv.Inspect(ictx, spec.VMName)
				cancel()
				if err != nil {
					v = HostView{Err: err}
				}
			}
			mu.Lock()
			views[h] = v
			mu.Unlock()
		}(h)
	}
	wg.Wait()
	return views
}

// recordStatus stores what the pass learned: hosts, replication, phase.
func (c *Controller) recordStatus(name string, d Desired, views map[string]HostView, pl Plan) {
	now := c.cfg.Now()
	var phase string
	switch {
	case pl.Converged:
		phase = "Converged"
	case pl.Degraded != "":
		phase = "Degraded"
	case len(pl.Steps) > 0 || pl.Progressing != "":
		phase = "Converging"
	default:
		phase = "Waiting"
	}
	var rs store.ReplicationStatus
	if d.Primary.Settled {
		if v := views[d.Primary.Host]; v.Rep != nil {
			rs = store.ReplicationStatus{State: v.Rep.State, Health: v.Rep.Health, PrimaryServer: v.Rep.Primary, ReplicaServer: v.Rep.Replica, LastReplication: v.Rep.LastReplication}
		}
	}
	rs.ObservedAt = now
	var convergedAt time.Time
	err := c.cfg.Store.Update(func(tx store.Tx) error {
		p, err := tx.Pair(name)
		if err != nil {
			return err
		}
		if p.Paused {
			phase = "Paused"
		} else if p.Degraded != nil && phase != "Converged" {
			phase = "Degraded"
		}
		p.ActivePrimaryHost, p.ActiveReplicaHost = d.Primary.Host, d.Replica.Host
		p.Replication = rs
		p.Phase = phase
		if pl.Converged {
			p.LastConvergedAt = now
			p.Degraded = nil
		} else if pl.Degraded != "" && p.Degraded == nil {
			p.Degraded = &store.Degraded{Since: now, Reason: "side_unavailable", Error: pl.Degraded}
		}
		convergedAt = p.LastConvergedAt
		p.UpdatedAt = now
		return tx.PutPair(p)
	})
	if err != nil {
		c.log.Error("record pair status", "pair", name, "error", err)
	}
	// Under mu, so a pass that ends after SetPairs removed its pair cannot
	// bring the forgotten series back.
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, managed := c.pairs[name]; managed && c.cfg.Metrics != nil {
		c.cfg.Metrics.Pair(name, phase, rs.Health, convergedAt)
	}
}

func (c *Controller) generation(name string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pairs[name]
	if !ok {
		return 0, false
	}
	return ps.gen, ps.paused
}

// journalPlan writes a new running operation with its planned steps.
func (c *Controller) journalPlan(name, kind, trigger string, gen uint64, steps []Step) (store.Operation, error) {
	var op store.Operation
	err := c.cfg.Store.Update(func(tx store.Tx) error {
		id, err := tx.NextOperationID()
		if err != nil {
			return err
		}
		op = store.Operation{ID: id, Pair: name, Kind: kind, Trigger: trigger, Generation: gen, State: store.OpRunning, Started: c.cfg.Now()}
		op.Plan = journalSteps(steps)
		if err := tx.PutOperation(op); err != nil {
			return err
		}
		p, err := tx.Pair(name)
		if err != nil {
			return err
		}
		p.LastOpID = id
		return tx.PutPair(p)
	})
	return op, err
}

// journalSteps is a plan as the journal records it, every step pending.
func journalSteps(steps []Step) []store.Step {
	var out []store.Step
	for i, s := range steps {
		out = append(out, store.Step{Index: i, Kind: string(s.Kind), Host: s.Host, Summary: s.Summary(), Outcome: store.OutcomePending})
	}
	return out
}

// updateOp applies fn to the journaled operation.
func (c *Controller) updateOp(op *store.Operation, fn func(*store.Operation)) {
	fn(op)
	err := c.cfg.Store.Update(func(tx store.Tx) error { return tx.PutOperation(*op) })
	if err != nil {
		c.log.Error("journal operation", "pair", op.Pair, "op", op.ID, "error", err)
	}
}

func (c *Controller) finishOp(id uint64, state store.OpState, msg string) {
	err := c.cfg.Store.Update(func(tx store.Tx) error {
		op, err := tx.Operation(id)
		if err != nil {
			return err
		}
		op.State, op.Error, op.Ended = state, msg, c.cfg.Now()
		return tx.PutOperation(op)
	})
	if err != nil {
		c.log.Error("journal operation", "op", id, "error", err)
	}
}

// execute runs a journaled plan step by step. With checkGen, it stops
// before any step once the pair's generation moved on (compare-and-act):
// the world changed, so the rest of the plan may be wrong.
func (c *Controller) execute(ctx context.Context, log *slog.Logger, name string, op store.Operation, steps []Step, spec PairSpec, gen uint64, checkGen bool) (*Step, error) {
	started := c.cfg.Now()
	end := func(state store.OpState, from int, outcome, msg string) {
		for i := from; i < len(op.Plan); i++ {
			if op.Plan[i].Outcome == store.OutcomePending {
				op.Plan[i].Outcome = outcome
			}
		}
		op.State, op.Error, op.Ended = state, msg, c.cfg.Now()
		text := fmt.Sprintf("%s %s: %s", op.Kind, state, describe(steps))
		if msg != "" {
			text += ": " + msg
		}
		// The journal entry and its event in one commit (one fsync).
		err := c.cfg.Store.Update(func(tx store.Tx) error {
			if err := tx.PutOperation(op); err != nil {
				return err
			}
			_, err := tx.AppendEvent(store.Event{At: op.Ended, Pair: name, Op: fmt.Sprint(op.ID), Kind: "operation", Message: text})
			return err
		})
		if err != nil {
			log.Error("journal operation", "op", op.ID, "error", err)
		}
		if m := c.cfg.Metrics; m != nil {
			m.Operation(op.Kind, string(state), c.cfg.Now().Sub(started))
		}
		log.Info("operation ended", "state", state, "error", msg)
	}
	for i, s := range steps {
		if c.isStopping() {
			end(store.OpInterrupted, i, store.OutcomeInterrupted, ErrStopping.Error())
			return nil, ErrStopping
		}
		if cur, paused := c.generation(name); checkGen && (cur != gen || paused) {
			end(store.OpAbandoned, i, store.OutcomeAbandoned, fmt.Sprintf("the pair changed (generation %d -> %d) before step %d", gen, cur, i+1))
			return nil, errAbandoned
		}
		c.updateOp(&op, func(o *store.Operation) {
			o.Plan[i].Outcome, o.Plan[i].Started = store.OutcomeRunning, c.cfg.Now()
		})
		t0 := c.cfg.Now()
		detail, attempts, err := c.runStep(ctx, log, name, s, spec, gen, checkGen)
		outcome := store.OutcomeOK
		if err != nil {
			outcome = store.OutcomeFailed
			if errors.Is(err, errAbandoned) {
				outcome = store.OutcomeAbandoned
			}
		}
		c.updateOp(&op, func(o *store.Operation) {
			st := &o.Plan[i]
			st.Outcome, st.Ended, st.Attempts = outcome, c.cfg.Now(), attempts
			if detail != "" {
				st.Summary += " (" + detail + ")"
			}
			if err != nil {
				st.Error = err.Error()
			}
		})
		if m := c.cfg.Metrics; m != nil {
			m.Step(string(s.Kind), c.cfg.Now().Sub(t0))
		}
		log.Info("step", "step", s.Kind, "host", s.Host, "outcome", outcome, "attempts", attempts, "detail", detail, "error", errString(err))
		if errors.Is(err, errAbandoned) {
			end(store.OpAbandoned, i+1, store.OutcomeAbandoned, err.Error())
			return nil, err
		}
		if err != nil {
			end(store.OpFailed, i+1, store.OutcomeSkipped, fmt.Sprintf("step %d (%s on %s): %v", i+1, s.Kind, s.Host, err))
			return &steps[i], fmt.Errorf("%s on %s: %w", s.Kind, s.Host, err)
		}
	}
	end(store.OpSucceeded, len(steps), store.OutcomeSkipped, "")
	return nil, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// runStep runs one step, retrying transient errors. The step's context is
// not the controller's: a shutdown lets the running step finish (within its
// timeout) so the journal tells the truth.
func (c *Controller) runStep(ctx context.Context, log *slog.Logger, name string, s Step, spec PairSpec, gen uint64, checkGen bool) (string, int, error) {
	if s.Kind == StepSwitchRole {
		return "", 1, c.switchRole(spec, s.Cluster)
	}
	host, ok := c.cfg.Hosts(s.Host)
	if !ok {
		return "", 0, fmt.Errorf("no WinRM endpoint is configured for %s", s.Host)
	}
	delay := c.cfg.RetryBase
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.StepTimeout)
		detail, err := host.Run(sctx, spec.VMName, s, spec.Replication)
		cancel()
		if err == nil || !c.cfg.Transient(err) || attempt > c.cfg.StepRetries {
			return detail, attempt, err
		}
		log.Warn("step failed, retrying", "step", s.Kind, "host", s.Host, "attempt", attempt, "error", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return "", attempt, err
		}
		delay *= 2
		if cur, paused := c.generation(name); checkGen && (cur != gen || paused) {
			return "", attempt, fmt.Errorf("%w (after a failed attempt: %v)", errAbandoned, err)
		}
	}
}

// switchRole records the new primary cluster: the only way the primary
// role changes (I6).
func (c *Controller) switchRole(spec PairSpec, cluster string) error {
	name := spec.Name
	if _, ok := spec.Sides[cluster]; !ok {
		return fmt.Errorf("record the primary role: cluster %s is not a side of pair %s", cluster, name)
	}
	var gen uint64
	err := c.cfg.Store.Update(func(tx store.Tx) error {
		var err error
		gen, err = bumpPair(tx, name, c.cfg.Now(), func(p *store.Pair) {
			p.PrimaryCluster = cluster
			p.Config = storeConfig(spec, cluster)
		})
		if err != nil {
			return err
		}
		_, err = tx.AppendEvent(store.Event{At: c.cfg.Now(), Pair: name, Kind: "primary-role", Message: "the primary role moved to " + cluster})
		return err
	})
	if err != nil {
		return fmt.Errorf("record the primary role: %w", err)
	}
	// The pair may have left the configuration while the failover ran.
	c.mu.Lock()
	if ps, ok := c.pairs[name]; ok {
		ps.primary = cluster
		ps.raiseGen(gen)
	}
	c.mu.Unlock()
	return nil
}

// bumpPair changes a stored pair and raises its generation, so that a pass
// working from the old one stops at its next step. It returns the new
// generation, for raiseGen once the transaction has committed.
func bumpPair(tx store.Tx, name string, now time.Time, change func(*store.Pair)) (uint64, error) {
	p, err := tx.Pair(name)
	if err != nil {
		return 0, err
	}
	change(&p)
	p.Generation++
	p.UpdatedAt = now
	return p.Generation, tx.PutPair(p)
}

// raiseGen moves the in-memory generation forward to a committed one.
// Writers commit in some order but report back in another; taking the
// larger keeps the generation from going backwards.
func (ps *pairState) raiseGen(g uint64) {
	if g > ps.gen {
		ps.gen = g
	}
}

func (c *Controller) evacuate(ctx context.Context, log *slog.Logger, spec PairSpec, clusters Clusters, gen uint64, e *evacRequest) PassResult {
	name := spec.Name
	views := c.inspectAll(ctx, spec, clusters)
	pl := PlanEvacuate(spec, e.leaving, e.primarySide, e.factor, views)
	res := PassResult{Pair: name, Gen: gen, Kind: "evacuated"}
	if len(pl.Steps) == 0 {
		res.Message = "nothing to do before the disk leaves " + e.leaving
		if pl.Waiting != "" {
			res.Kind, res.Message = "failed", pl.Waiting
		}
		return res
	}
	op, err := c.journalPlan(name, "stop-hook", e.trigger, gen, pl.Steps)
	if err != nil {
		return PassResult{Pair: name, Gen: gen, Kind: "failed", Message: "journal: " + err.Error()}
	}
	res.OpID = op.ID
	failed, err := c.execute(ctx, log.With("op", op.ID), name, op, pl.Steps, spec, gen, false)
	if err != nil {
		res.Kind, res.Message = "failed", err.Error()
		if failed != nil {
			res.FailedHost, res.FailedStep = failed.Host, failed.Kind
		}
		return res
	}
	res.Message = fmt.Sprintf("%s evacuated from %s: %s", spec.VMName, e.leaving, describe(pl.Steps))
	return res
}

func (c *Controller) runFailover(ctx context.Context, log *slog.Logger, spec PairSpec, primary string, gen uint64, groups map[GroupKey]GroupState, clusters Clusters, f *failoverRequest) PassResult {
	name := spec.Name
	res := PassResult{Pair: name, Gen: gen, OpID: f.opID}
	d := Decide(spec, primary, groups, clusters)
	views := c.inspectAll(ctx, spec, clusters)
	pl, err := PlanFailover(spec, d, f.planned, views)
	if err != nil {
		c.finishOp(f.opID, store.OpFailed, err.Error())
		res.Kind, res.Message = "failed", err.Error()
		return res
	}
	var op store.Operation
	err = c.cfg.Store.Update(func(tx store.Tx) error {
		var err error
		op, err = tx.Operation(f.opID)
		if err != nil {
			return err
		}
		op.Generation = gen
		op.Plan = journalSteps(pl.Steps) // journaled without steps when it was queued
		return tx.PutOperation(op)
	})
	if err != nil {
		res.Kind, res.Message = "failed", "journal: "+err.Error()
		return res
	}
	if _, err := c.execute(ctx, log.With("op", op.ID), name, op, pl.Steps, spec, gen, false); err != nil {
		res.Kind, res.Message = "failed", err.Error()
		return res
	}
	res.Kind, res.Message = "converged", fmt.Sprintf("the primary role of %s moved to %s", name, d.Replica.Side.Cluster)
	return res
}

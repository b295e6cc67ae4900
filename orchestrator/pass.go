package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/hvro/hvro/store"
)

type evacRequest struct {
	leaving     string
	primarySide bool
	factor      string
	trigger     string
	// deadline is when the hook stops waiting (zero: it does not wait):
	// an escalating shutdown must end before it, or ECX takes the disk
	// from a VM that still runs.
	deadline time.Time
	done     chan PassResult
}

// FailoverRequest is an operator's request to move a pair's primary role.
type FailoverRequest struct {
	Planned bool
	// Force lets an unplanned failover go ahead without positive evidence
	// that the VM runs nowhere on the primary cluster (the site is gone and
	// cannot be asked); Reason, required with it, is journaled.
	Force  bool
	Reason string
}

type failoverRequest struct {
	FailoverRequest
	opID uint64
	done chan PassResult
}

// pass is one worker's turn on a pair: a pending stop-hook evacuation or
// failover first, else a reconcile. It decides nothing about the queue: it
// says what it needs in its passOutcome, and handle acts on that.
func (c *Controller) pass(name string) passOutcome {
	c.mu.Lock()
	ps, ok := c.pairs[name]
	if !ok || c.stopping {
		c.mu.Unlock()
		return passOutcome{next: idle}
	}
	// A hold comes first: requests stay queued until it ends.
	if wait := ps.holdUntil.Sub(c.cfg.Now()); wait > 0 {
		c.mu.Unlock()
		return passOutcome{next: later, after: wait}
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
	pausedResult := PassResult{Pair: name, Gen: gen, Kind: ResultPaused, Message: "the pair is paused"}
	switch {
	case evac != nil && paused:
		// Paused means hands off, also when the disk leaves (OPERATIONS.md).
		evac.done <- pausedResult
		return passOutcome{next: again}
	case evac != nil:
		evac.done <- c.evacuate(ctx, log, spec, clusters, gen, evac)
		return passOutcome{next: again}
	case paused:
		if fo != nil {
			c.mu.Lock()
			ps.failoverActive = false
			c.mu.Unlock()
			c.finishOp(fo.opID, store.OpAbandoned, "the pair is paused")
			r := pausedResult
			r.OpID = fo.opID
			fo.done <- r
		}
		return passOutcome{next: idle, report: &pausedResult}
	case fo != nil:
		res := c.runFailover(ctx, log, spec, primary, gen, groups, clusters, fo)
		c.mu.Lock()
		ps.failoverActive = false
		c.mu.Unlock()
		fo.done <- res
		return passOutcome{next: again}
	}
	return c.reconcile(ctx, log, spec, primary, gen, groups, clusters)
}

func (c *Controller) reconcile(ctx context.Context, log *slog.Logger, spec PairSpec, primary string, gen uint64, groups map[GroupKey]GroupState, clusters Clusters) passOutcome {
	name := spec.Name
	d := Decide(spec, primary, groups, clusters)
	views := c.inspectAll(ctx, spec, clusters)
	pl := PlanReconcile(spec, d, clusters, views)
	c.recordStatus(name, d, views, pl)
	for _, n := range pl.Notes {
		log.Info("note", "message", n)
	}
	report := func(kind ResultKind, opID uint64, msg string) *PassResult {
		return &PassResult{Pair: name, Gen: gen, Kind: kind, OpID: opID, Message: msg}
	}
	if len(pl.Steps) == 0 {
		switch {
		case pl.Converged:
			msg := fmt.Sprintf("%s runs on %s and replicates to %s", spec.VMName, d.Primary.Host, d.Replica.Host)
			return passOutcome{next: idle, settled: true, report: report(ResultConverged, 0, msg)}
		case pl.Progressing != "":
			return passOutcome{next: later, after: c.Tunables().ProgressInterval, settled: true, report: report(ResultProgressing, 0, pl.Progressing)}
		case pl.Degraded != "":
			if pl.DegradedReason != "" {
				log.Warn("degraded", "reason", pl.DegradedReason, "error", pl.Degraded)
			}
			return passOutcome{next: idle, report: report(ResultDegraded, 0, pl.Degraded)}
		case d.Primary.Settled:
			// A host could not be inspected or cannot reach the storage
			// yet: both pass on their own; keep looking.
			return passOutcome{next: retry}
		default:
			// A side is unsettled: the next observation brings the pass.
			return passOutcome{next: idle, report: report(ResultWaiting, 0, pl.Waiting)}
		}
	}
	op, err := c.journalPlan(name, store.OpReconcile, fmt.Sprintf("generation %d", gen), gen, pl.Steps)
	if err != nil {
		log.Error("journal plan; nothing runs until it can be written", "error", err)
		return passOutcome{next: retry}
	}
	log = log.With("op", op.ID)
	log.Info("plan", "steps", describe(pl.Steps), "generation", gen)
	failed, err := c.execute(ctx, log, name, op, pl.Steps, spec, gen, true)
	switch {
	case err == nil:
		// Look again at once: the plan may have been only the first part
		// (a registration), and convergence is confirmed by looking.
		o := passOutcome{next: again, settled: true}
		if pl.Degraded != "" {
			o.report = report(ResultDegraded, op.ID, pl.Degraded)
		}
		return o
	case errors.Is(err, errAbandoned):
		return passOutcome{next: again}
	case errors.Is(err, ErrStopping):
		return passOutcome{next: idle}
	case errors.Is(err, errJournal):
		return passOutcome{next: retry}
	}
	res := report(ResultFailed, op.ID, err.Error())
	if failed != nil {
		res.FailedHost, res.FailedStep = failed.Host, failed.Kind
	}
	if c.failed(name, gen, err) {
		return passOutcome{next: idle, report: res}
	}
	return passOutcome{next: retry, report: res}
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
	degradeAfter := c.tun.DegradeAfter
	c.mu.Unlock()
	if !ok || (n < degradeAfter && c.cfg.Transient(err)) {
		return false
	}
	reason := "step_failed"
	if r, ok := c.cfg.Permanent(err); ok {
		reason = r
	} else if c.cfg.Transient(err) {
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
		p.Phase = store.PhaseDegraded
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
		k := string(s.Kind)
		if s.Mode != "" {
			k += "(" + string(s.Mode) + ")"
		}
		if s.Host != "" {
			k += "@" + s.Host
		}
		parts = append(parts, k)
	}
	return strings.Join(parts, ", ")
}

// inspectAll reads every host of both clusters in parallel.
func (c *Controller) inspectAll(ctx context.Context, spec PairSpec, clusters Clusters) map[string]HostView {
	var hosts []string
	for cl := range spec.Sides {
		hosts = append(hosts, clusters.hostsOf(cl)...)
	}
	timeout := c.Tunables().StepTimeout
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
				ictx, cancel := context.WithTimeout(ctx, timeout)
				var err error
				v, err = drv.Inspect(ictx, spec.VMName)
				cancel()
				if err != nil {
					v = HostView{Err: err}
					v.Reason, _ = c.cfg.Permanent(err)
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

// phaseOf is the phase a plan puts a pair in, before what the store adds
// (paused, an earlier Degraded).
func phaseOf(pl Plan) store.Phase {
	switch {
	case pl.Converged:
		return store.PhaseConverged
	case pl.Degraded != "":
		return store.PhaseDegraded
	case len(pl.Steps) > 0 || pl.Progressing != "":
		return store.PhaseConverging
	}
	return store.PhaseWaiting
}

// recordStatus stores what the pass learned: hosts, replication, phase.
func (c *Controller) recordStatus(name string, d Desired, views map[string]HostView, pl Plan) {
	now := c.cfg.Now()
	phase := phaseOf(pl)
	var rs store.ReplicationStatus
	if d.Primary.Settled {
		if v := views[d.Primary.Host]; v.Rep != nil {
			rs = store.ReplicationStatus{State: v.Rep.State, Health: v.Rep.Health, PrimaryServer: v.Rep.Primary, ReplicaServer: v.Rep.Replica, LastReplication: v.Rep.LastReplication}
		}
	}
	rs.ObservedAt = now
	var convergedAt time.Time
	var reason string
	err := c.cfg.Store.Update(func(tx store.Tx) error {
		p, err := tx.Pair(name)
		if err != nil {
			return err
		}
		if p.Paused {
			phase = store.PhasePaused
		} else if p.Degraded != nil && phase != store.PhaseConverged {
			phase = store.PhaseDegraded
		}
		p.ActivePrimaryHost, p.ActiveReplicaHost = d.Primary.Host, d.Replica.Host
		p.Replication = rs
		p.Phase = phase
		if pl.Converged {
			p.LastConvergedAt = now
			p.Degraded = nil
		} else if pl.Degraded != "" && (p.Degraded == nil || p.Degraded.Error != pl.Degraded) {
			r := pl.DegradedReason
			if r == "" {
				r = "side_unavailable"
			}
			p.Degraded = &store.Degraded{Since: now, Reason: r, Error: pl.Degraded}
		}
		if p.Degraded != nil {
			reason = p.Degraded.Reason
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
		c.cfg.Metrics.Pair(name, string(phase), rs.Health, reason, convergedAt)
	}
}

// current returns the pair's generation and pause as memory holds them.
func (c *Controller) current(name string) (gen uint64, paused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pairs[name]
	if !ok {
		return 0, false
	}
	return ps.gen, ps.paused
}

// journalPlan writes a new running operation with its planned steps.
func (c *Controller) journalPlan(name string, kind store.OpKind, trigger string, gen uint64, steps []Step) (store.Operation, error) {
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

// putOp applies fn to a copy of the journaled operation and commits it;
// only once the commit succeeded does op take the change. A step must not
// run unless its running record is durable: after a kill -9, that record
// is what makes the restart wait for an orphaned command (I5).
func (c *Controller) putOp(op *store.Operation, fn func(*store.Operation)) error {
	next := *op
	next.Plan = append([]store.Step(nil), op.Plan...)
	fn(&next)
	if err := c.cfg.Store.Update(func(tx store.Tx) error { return tx.PutOperation(next) }); err != nil {
		return fmt.Errorf("%w: operation %d: %v", errJournal, op.ID, err)
	}
	*op = next
	return nil
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
	end := func(state store.OpState, from int, outcome store.StepOutcome, msg string) {
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
			m.Operation(string(op.Kind), string(state), c.cfg.Now().Sub(started))
		}
		log.Info("operation ended", "state", state, "error", msg)
	}
	for i, s := range steps {
		if c.isStopping() {
			end(store.OpInterrupted, i, store.OutcomeInterrupted, ErrStopping.Error())
			return nil, ErrStopping
		}
		if cur, paused := c.current(name); checkGen && (cur != gen || paused) {
			end(store.OpAbandoned, i, store.OutcomeAbandoned, fmt.Sprintf("the pair changed (generation %d -> %d) before step %d", gen, cur, i+1))
			return nil, errAbandoned
		}
		err := c.putOp(&op, func(o *store.Operation) {
			o.Plan[i].Outcome, o.Plan[i].Started = store.OutcomeRunning, c.cfg.Now()
		})
		if err != nil {
			log.Error("cannot journal the step, so it does not run", "step", s.Kind, "host", s.Host, "error", err)
			end(store.OpFailed, i, store.OutcomeSkipped, err.Error())
			return &steps[i], err
		}
		t0 := c.cfg.Now()
		detail, attempts, err := c.runStep(ctx, log, name, op.ID, s, spec, gen, checkGen)
		outcome := store.OutcomeOK
		if err != nil {
			outcome = store.OutcomeFailed
			if errors.Is(err, errAbandoned) {
				outcome = store.OutcomeAbandoned
			}
		}
		jerr := c.putOp(&op, func(o *store.Operation) {
			st := &o.Plan[i]
			st.Outcome, st.Ended, st.Attempts = outcome, c.cfg.Now(), attempts
			st.MayRun = err != nil && c.cfg.Abandoned(err)
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
		if jerr != nil && err == nil {
			// The step ran but its end is not durable: stop here, the
			// journal must never run ahead of what it records.
			log.Error("cannot journal the step's end; stopping the plan", "step", s.Kind, "host", s.Host, "error", jerr)
			end(store.OpFailed, i+1, store.OutcomeSkipped, jerr.Error())
			return &steps[i], jerr
		}
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

// runStep runs one step, retrying transient errors with a backoff capped at
// BackoffMax. The step's context is not the controller's: a shutdown lets
// the running step finish (within its timeout) so the journal tells the
// truth.
func (c *Controller) runStep(ctx context.Context, log *slog.Logger, name string, opID uint64, s Step, spec PairSpec, gen uint64, checkGen bool) (string, int, error) {
	if s.Kind == StepSwitchRole {
		return "", 1, c.switchRole(spec, s.Cluster, opID)
	}
	host, ok := c.cfg.Hosts(s.Host)
	if !ok {
		return "", 0, fmt.Errorf("no WinRM endpoint is configured for %s", s.Host)
	}
	if s.Kind == StepStopVM && s.Escalate {
		return c.stopEscalating(ctx, log, name, opID, host, s, spec)
	}
	t := c.Tunables()
	attempts := 0
	var last error
	detail, err := backoff.Retry(ctx, func() (string, error) {
		if attempts > 0 && checkGen {
			if cur, paused := c.current(name); cur != gen || paused {
				return "", backoff.Permanent(fmt.Errorf("%w (after a failed attempt: %v)", errAbandoned, last))
			}
		}
		attempts++
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.StepTimeout)
		detail, err := host.Run(sctx, spec.VMName, s, spec.Replication)
		cancel()
		if err != nil && !c.cfg.Transient(err) {
			return detail, backoff.Permanent(err)
		}
		last = err
		return detail, err
	},
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: t.RetryBase, Multiplier: 2, MaxInterval: t.BackoffMax}),
		backoff.WithMaxTries(uint(t.StepRetries+1)),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, d time.Duration) {
			log.Warn("step failed, retrying", "step", s.Kind, "host", s.Host, "attempt", attempts, "in", d.String(), "error", err)
		}))
	if err != nil && last != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// Stopped while backing off: report what the step itself said.
		err = last
	}
	var perm *backoff.PermanentError
	if errors.As(err, &perm) {
		err = perm.Err
	}
	return detail, attempts, err
}

// escalation is the order in which a VM whose disk is about to leave is
// stopped, and each stage's share of the time left.
var escalation = []struct {
	mode   StopMode
	weight int
}{{StopShutdown, 2}, {StopForce, 1}, {StopTurnOff, 1}}

// stopEscalating stops a VM before its disk leaves: a clean shutdown, then
// Stop-VM -Force, then -TurnOff, each within its share of the time the
// hook still waits. A guest that is cut off hard loses what it had not
// written; a VM left running while ECX hands its disk to another node
// corrupts it, which is worse.
func (c *Controller) stopEscalating(ctx context.Context, log *slog.Logger, name string, opID uint64, host Host, s Step, spec PairSpec) (string, int, error) {
	stepTimeout := c.Tunables().StepTimeout
	deadline, bounded := ctx.Deadline()
	weights := 0
	for _, e := range escalation {
		weights += e.weight
	}
	var failures []string
	for i, e := range escalation {
		timeout := stepTimeout
		if bounded {
			timeout = min(timeout, time.Until(deadline)*time.Duration(e.weight)/time.Duration(weights))
		}
		weights -= e.weight
		st := s
		st.Mode = e.mode
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(timeout, time.Second))
		detail, err := host.Run(sctx, spec.VMName, st, spec.Replication)
		cancel()
		if err == nil {
			if i == 0 {
				return detail, 1, nil
			}
			msg := fmt.Sprintf("%s on %s: %s after %s", spec.VMName, s.Host, e.mode.Describe(), strings.Join(failures, "; "))
			log.Warn("stop escalated", "step", s.Kind, "host", s.Host, "mode", e.mode, "after", strings.Join(failures, "; "))
			c.event(name, fmt.Sprint(opID), "stop-escalated", msg)
			return e.mode.Describe() + " after " + strings.Join(failures, "; "), i + 1, nil
		}
		failures = append(failures, fmt.Sprintf("%s failed: %v", e.mode.Describe(), err))
		log.Warn("stop failed, escalating", "step", s.Kind, "host", s.Host, "mode", e.mode, "error", err)
	}
	return "", len(escalation), fmt.Errorf("%s still runs: %s", spec.VMName, strings.Join(failures, "; "))
}

// switchRole records the new primary cluster: the only way the primary
// role changes (I6). Its event names the operation, in the same commit:
// a kill -9 right after it can leave the step "interrupted" in the
// journal, but the event says the switch happened, and for which failover.
func (c *Controller) switchRole(spec PairSpec, cluster string, opID uint64) error {
	name := spec.Name
	if _, ok := spec.Sides[cluster]; !ok {
		return fmt.Errorf("record the primary role: cluster %s is not a side of pair %s", cluster, name)
	}
	var rec store.Pair
	err := c.cfg.Store.Update(func(tx store.Tx) error {
		var err error
		rec, err = bumpPair(tx, name, c.cfg.Now(), func(p *store.Pair) {
			p.PrimaryCluster = cluster
			p.Config = storeConfig(spec, cluster)
		})
		if err != nil {
			return err
		}
		_, err = tx.AppendEvent(store.Event{At: c.cfg.Now(), Pair: name, Op: fmt.Sprint(opID), Kind: "primary-role", Message: "the primary role moved to " + cluster})
		return err
	})
	if err != nil {
		return fmt.Errorf("record the primary role: %w", err)
	}
	// The pair may have left the configuration while the failover ran.
	c.mu.Lock()
	if ps, ok := c.pairs[name]; ok {
		ps.apply(rec)
	}
	c.mu.Unlock()
	return nil
}

// bumpPair changes a stored pair and raises its generation, so that a pass
// working from the old one stops at its next step. It returns the record
// it wrote, for apply once the transaction has committed.
func bumpPair(tx store.Tx, name string, now time.Time, change func(*store.Pair)) (store.Pair, error) {
	p, err := tx.Pair(name)
	if err != nil {
		return store.Pair{}, err
	}
	change(&p)
	p.Generation++
	p.UpdatedAt = now
	return p, tx.PutPair(p)
}

func (c *Controller) evacuate(ctx context.Context, log *slog.Logger, spec PairSpec, clusters Clusters, gen uint64, e *evacRequest) PassResult {
	name := spec.Name
	views := c.inspectAll(ctx, spec, clusters)
	pl := PlanEvacuate(spec, e.leaving, e.primarySide, e.factor, views)
	res := PassResult{Pair: name, Gen: gen, Kind: ResultEvacuated}
	if len(pl.Steps) == 0 {
		res.Message = "nothing to do before the disk leaves " + e.leaving
		if pl.Waiting != "" {
			res.Kind, res.Message = ResultFailed, pl.Waiting
		}
		return res
	}
	op, err := c.journalPlan(name, store.OpStopHook, e.trigger, gen, pl.Steps)
	if err != nil {
		return PassResult{Pair: name, Gen: gen, Kind: ResultFailed, Message: "journal: " + err.Error()}
	}
	res.OpID = op.ID
	ectx := ctx
	if !e.deadline.IsZero() {
		var cancel context.CancelFunc
		ectx, cancel = context.WithDeadline(ctx, e.deadline)
		defer cancel()
	}
	failed, err := c.execute(ectx, log.With("op", op.ID), name, op, pl.Steps, spec, gen, false)
	if err != nil {
		res.Kind, res.Message = ResultFailed, err.Error()
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
	pl, err := PlanFailover(spec, d, f.FailoverRequest, clusters, groups, views)
	if err != nil {
		c.finishOp(f.opID, store.OpFailed, err.Error())
		c.event(name, fmt.Sprint(f.opID), "failover-refused", err.Error())
		res.Kind, res.Message = ResultFailed, err.Error()
		return res
	}
	for _, n := range pl.Notes {
		log.Warn("failover", "note", n)
		c.event(name, fmt.Sprint(f.opID), "failover-forced", n)
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
		if len(pl.Notes) > 0 {
			op.Trigger += "; " + strings.Join(pl.Notes, "; ")
		}
		return tx.PutOperation(op)
	})
	if err != nil {
		res.Kind, res.Message = ResultFailed, "journal: "+err.Error()
		return res
	}
	if _, err := c.execute(ctx, log.With("op", op.ID), name, op, pl.Steps, spec, gen, false); err != nil {
		res.Kind, res.Message = ResultFailed, err.Error()
		return res
	}
	res.Kind, res.Message = ResultConverged, fmt.Sprintf("the primary role of %s moved to %s", name, d.Replica.Side.Cluster)
	return res
}

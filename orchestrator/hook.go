package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hvro/hvro/store"
)

// HookRequest is what an ECX start or stop script reports (hvro hook).
type HookRequest struct {
	Cluster, Group, Server string
	Phase                  string // start | stop
	Event, Factor, Disk    string // CLP_EVENT, CLP_FACTOR, CLP_DISK
}

// Outcome is what a hook's script should tell ECX, worst last.
type Outcome string

// Hook outcomes, in rank order (worse later).
const (
	OutcomeOK       Outcome = "ok"
	OutcomePending  Outcome = "pending"
	OutcomeDegraded Outcome = "degraded"
	OutcomeFailed   Outcome = "failed"
)

// HookResult is the answer a hook waits for.
type HookResult struct {
	Outcome Outcome          `json:"outcome"`
	Op      uint64           `json:"op,omitempty"`
	Pairs   []HookPairResult `json:"pairs"`
	Message string           `json:"message"`
}

// HookPairResult is the outcome for one pair of the group.
type HookPairResult struct {
	Pair    string  `json:"pair"`
	Outcome Outcome `json:"outcome"`
	Op      uint64  `json:"op,omitempty"`
	Message string  `json:"message"`
}

// ErrInvalidHook: the hook request is malformed.
var ErrInvalidHook = errors.New("invalid hook")

// Hook records what a start/stop script reports and, with wait > 0,
// answers when the pass it triggered has finished. A stop hook from the
// group's owner first evacuates the VM from the leaving host (stop it
// cleanly, remove replication on both ends) before the disk leaves.
func (c *Controller) Hook(ctx context.Context, h HookRequest, wait time.Duration) (HookResult, error) {
	h.Phase = strings.ToLower(h.Phase)
	if h.Phase != "start" && h.Phase != "stop" {
		return HookResult{}, fmt.Errorf("%w: phase %q: want start or stop", ErrInvalidHook, h.Phase)
	}
	if h.Cluster == "" || h.Group == "" || h.Server == "" {
		return HookResult{}, fmt.Errorf("%w: cluster, group and server are required", ErrInvalidHook)
	}
	for _, f := range []struct{ name, v string }{{"cluster", h.Cluster}, {"group", h.Group}, {"server", h.Server},
		{"event", h.Event}, {"factor", h.Factor}, {"disk", h.Disk}} {
		if err := checkHookField(f.name, f.v); err != nil {
			return HookResult{}, err
		}
	}
	key := GroupKey{h.Cluster, h.Group}
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		return HookResult{}, ErrStopping
	}
	host, known := c.clusters.host(h.Cluster, h.Server)
	names := c.byGroup[key]
	c.mu.Unlock()
	if len(names) == 0 {
		return HookResult{}, fmt.Errorf("%w: %s", ErrUnknownGroup, key)
	}
	if !known {
		return HookResult{}, fmt.Errorf("%w: %q in %s", ErrUnknownServer, h.Server, h.Cluster)
	}
	status := "Online"
	if h.Phase == "stop" {
		status = "Offline Pending"
	}
	trigger := fmt.Sprintf("hook %s %s/%s on %s (event %s, factor %s)", h.Phase, h.Cluster, h.Group, h.Server, orNone(h.Event), orNone(h.Factor))
	// The observation and each pair's "hook" event go in one commit.
	gens, err := c.observe(key, Observation{Status: status, Owner: host, Source: store.SourceHook, Phase: h.Phase, Event: h.Event, Factor: h.Factor, Disk: h.Disk, At: c.cfg.Now()}, trigger)
	if err != nil {
		return HookResult{}, err
	}
	type pending struct {
		name string
		ch   chan PassResult
		w    *waiter // a start hook's waiter, dropped if the wait ends first
	}
	var waits []pending
	// The hook answers before its wait ends, with a margin to write the
	// answer: an evacuation must be done (or have escalated) by then.
	var deadline time.Time
	if wait > 0 {
		deadline = c.cfg.Now().Add(wait - min(wait/10, time.Second))
	}
	c.mu.Lock()
	for _, n := range names {
		ps := c.pairs[n]
		if ps == nil {
			continue
		}
		primarySide := ps.spec.Sides[ps.primary].Group == h.Group && ps.primary == h.Cluster
		ch := make(chan PassResult, 1)
		p := pending{name: n, ch: ch}
		switch {
		case ps.paused && h.Phase == "stop":
			// Hands off a paused pair, also when its disk leaves: the
			// operator may be moving it by hand (OPERATIONS.md).
			ch <- PassResult{Pair: n, Gen: gens[n], Kind: ResultPaused, Message: "the pair is paused: hvro did not shut it down or remove its replication before the disk left " + host}
		case h.Phase == "stop":
			// The evacuation is the work itself: queued whether or not
			// the caller waits for it.
			ps.evacs = append(ps.evacs, &evacRequest{leaving: host, primarySide: primarySide, factor: strings.ToUpper(h.Factor), trigger: trigger, deadline: deadline, done: ch})
		case wait > 0:
			p.w = &waiter{minGen: gens[n], ch: ch}
			ps.waiters = append(ps.waiters, p.w)
		}
		waits = append(waits, p)
	}
	c.mu.Unlock()
	for _, n := range names {
		c.queue.Add(n)
	}

	res := HookResult{Outcome: OutcomeOK}
	if wait <= 0 {
		res.Outcome, res.Message = OutcomePending, "recorded; not waiting for the outcome"
		for _, w := range waits {
			res.Pairs = append(res.Pairs, HookPairResult{Pair: w.name, Outcome: OutcomePending})
		}
		return res, nil
	}
	// One deadline for all the group's pairs: the caller asked to wait
	// this long in total, not per pair.
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var msgs []string
	for _, w := range waits {
		pr := HookPairResult{Pair: w.name, Outcome: OutcomePending, Message: "still working when the wait ended"}
		select {
		case r := <-w.ch:
			pr = HookPairResult{Pair: w.name, Outcome: hookOutcome(h, host, r), Op: r.OpID, Message: r.Message}
			if r.OpID > res.Op {
				res.Op = r.OpID
			}
		case <-wctx.Done():
			if ctx.Err() != nil {
				pr.Message = "the caller went away: " + ctx.Err().Error()
			}
			if w.w != nil {
				c.dropWaiters(w.name, w.w)
			}
		}
		res.Pairs = append(res.Pairs, pr)
		res.Outcome = worse(res.Outcome, pr.Outcome)
		msgs = append(msgs, w.name+": "+pr.Message)
	}
	res.Message = strings.Join(msgs, "; ")
	return res, nil
}

// maxHookField bounds each hook field: ECX names and CLP_* values are short,
// and whatever a hook carries ends up in the store, the journal and logs.
const maxHookField = 256

// checkHookField refuses values that no ECX script sends: they would only
// pollute the journal and the logs.
func checkHookField(name, v string) error {
	if len(v) > maxHookField {
		return fmt.Errorf("%w: %s is %d bytes long; at most %d", ErrInvalidHook, name, len(v), maxHookField)
	}
	if err := checkText(name, v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidHook, err)
	}
	return nil
}

// checkText refuses text that would reach terminals and logs as something
// else than it says: invalid UTF-8, control characters, and the format
// characters that reorder what a terminal shows (U+202E and kin).
func checkText(name, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8", name)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s contains the control character %U", name, r)
		}
		if unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%s contains the invisible format character %U", name, r)
		}
	}
	return nil
}

// hookOutcome maps a pass result to what the script should tell ECX.
// "failed" (exit 1: try another node) only when this very node could not
// take the VM; a stop hook never fails the group's stop.
func hookOutcome(h HookRequest, host string, r PassResult) Outcome {
	switch r.Kind {
	case ResultConverged, ResultProgressing, ResultEvacuated, ResultWaiting:
		return OutcomeOK
	case ResultDegraded, ResultPaused:
		return OutcomeDegraded
	case ResultStopping:
		return OutcomePending
	}
	if h.Phase == "start" && r.FailedHost == host && (r.FailedStep == StepRegister || r.FailedStep == StepStartVM || r.FailedStep == StepEnableReplica) {
		return OutcomeFailed
	}
	return OutcomeDegraded
}

var outcomeRank = map[Outcome]int{OutcomeOK: 0, OutcomePending: 1, OutcomeDegraded: 2, OutcomeFailed: 3}

func worse(a, b Outcome) Outcome {
	if outcomeRank[b] > outcomeRank[a] {
		return b
	}
	return a
}

// ErrInvalidFailover: the failover request is malformed.
var ErrInvalidFailover = errors.New("invalid failover request")

// maxReason bounds a forced failover's reason: it goes to the journal.
const maxReason = 1024

// Failover queues a move of the primary role to the other cluster and
// returns the operation id at once; done receives the outcome.
func (c *Controller) Failover(name string, req FailoverRequest) (uint64, <-chan PassResult, error) {
	req.Reason = strings.TrimSpace(req.Reason)
	switch {
	case req.Force && req.Planned:
		return 0, nil, fmt.Errorf("%w: force applies to an unplanned failover only (a planned one needs both sides)", ErrInvalidFailover)
	case req.Force && req.Reason == "":
		return 0, nil, fmt.Errorf("%w: force needs a reason for the journal (why the primary site is known to be lost)", ErrInvalidFailover)
	case !req.Force && req.Reason != "":
		return 0, nil, fmt.Errorf("%w: a reason is only recorded with force", ErrInvalidFailover)
	case len(req.Reason) > maxReason:
		return 0, nil, fmt.Errorf("%w: reason is %d bytes long; at most %d", ErrInvalidFailover, len(req.Reason), maxReason)
	}
	if req.Reason != "" {
		if err := checkText("reason", req.Reason); err != nil {
			return 0, nil, fmt.Errorf("%w: %v", ErrInvalidFailover, err)
		}
	}
	c.mu.Lock()
	ps, ok := c.pairs[name]
	switch {
	case c.stopping:
		c.mu.Unlock()
		return 0, nil, ErrStopping
	case !ok:
		c.mu.Unlock()
		return 0, nil, fmt.Errorf("%w %q", ErrUnknownPair, name)
	case ps.paused:
		c.mu.Unlock()
		return 0, nil, fmt.Errorf("%s: %w", name, ErrPaused)
	case ps.failover != nil || ps.failoverActive:
		c.mu.Unlock()
		return 0, nil, fmt.Errorf("%s: a failover is already in progress: %w", name, ErrBusy)
	}
	gen := ps.gen
	c.mu.Unlock()
	kind := store.OpFailoverUnplanned
	if req.Planned {
		kind = store.OpFailoverPlanned
	}
	trigger := "operator"
	if req.Force {
		trigger = "operator, forced: " + req.Reason
	}
	// The plan is made when the operation runs; journal it now so the
	// operator gets an id to follow.
	op, err := c.journalPlan(name, kind, trigger, gen, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("journal failover of %s: %w", name, err)
	}
	id := op.ID
	done := make(chan PassResult, 1)
	c.mu.Lock()
	if ps.failover != nil || ps.failoverActive {
		c.mu.Unlock()
		c.finishOp(id, store.OpAbandoned, "another failover was queued first")
		return 0, nil, fmt.Errorf("%s: a failover is already in progress: %w", name, ErrBusy)
	}
	ps.failover = &failoverRequest{FailoverRequest: req, opID: id, done: done}
	c.mu.Unlock()
	c.event(name, fmt.Sprint(id), string(kind), "queued by the "+trigger)
	c.queue.Add(name)
	return id, done, nil
}

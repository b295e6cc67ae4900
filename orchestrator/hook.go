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

// HookResult is the answer a hook waits for.
type HookResult struct {
	Outcome string           `json:"outcome"` // ok | degraded | failed | pending
	Op      uint64           `json:"op,omitempty"`
	Pairs   []HookPairResult `json:"pairs"`
	Message string           `json:"message"`
}

// HookPairResult is the outcome for one pair of the group.
type HookPairResult struct {
	Pair    string `json:"pair"`
	Outcome string `json:"outcome"`
	Op      uint64 `json:"op,omitempty"`
	Message string `json:"message"`
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
	}
	var waits []pending
	c.mu.Lock()
	for _, n := range names {
		ps := c.pairs[n]
		if ps == nil {
			continue
		}
		primarySide := ps.spec.Sides[ps.primary].Group == h.Group && ps.primary == h.Cluster
		ch := make(chan PassResult, 1)
		switch {
		case h.Phase == "stop":
			// The evacuation is the work itself: queued whether or not
			// the caller waits for it.
			ps.evacs = append(ps.evacs, &evacRequest{leaving: host, primarySide: primarySide, factor: strings.ToUpper(h.Factor), trigger: trigger, done: ch})
		case wait > 0:
			ps.waiters = append(ps.waiters, &waiter{minGen: gens[n], ch: ch})
		}
		waits = append(waits, pending{n, ch})
	}
	c.mu.Unlock()
	for _, n := range names {
		c.queue.Add(n)
	}

	res := HookResult{Outcome: "ok"}
	if wait <= 0 {
		res.Outcome, res.Message = "pending", "recorded; not waiting for the outcome"
		for _, w := range waits {
			res.Pairs = append(res.Pairs, HookPairResult{Pair: w.name, Outcome: "pending"})
		}
		return res, nil
	}
	// One deadline for all the group's pairs: the caller asked to wait
	// this long in total, not per pair.
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var msgs []string
	for _, w := range waits {
		pr := HookPairResult{Pair: w.name, Outcome: "pending", Message: "still working when the wait ended"}
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
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidHook, name)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s contains the control character %U", ErrInvalidHook, name, r)
		}
	}
	return nil
}

// hookOutcome maps a pass result to what the script should tell ECX.
// "failed" (exit 1: try another node) only when this very node could not
// take the VM; a stop hook never fails the group's stop.
func hookOutcome(h HookRequest, host string, r PassResult) string {
	switch r.Kind {
	case "converged", "progressing", "evacuated", "waiting":
		return "ok"
	case "degraded", "paused":
		return "degraded"
	case "stopping":
		return "pending"
	}
	if h.Phase == "start" && r.FailedHost == host && (r.FailedStep == StepRegister || r.FailedStep == StepStartVM || r.FailedStep == StepEnableReplica) {
		return "failed"
	}
	return "degraded"
}

var outcomeRank = map[string]int{"ok": 0, "pending": 1, "degraded": 2, "failed": 3}

func worse(a, b string) string {
	if outcomeRank[b] > outcomeRank[a] {
		return b
	}
	return a
}

// Failover queues a move of the primary role to the other cluster and
// returns the operation id at once; done receives the outcome.
func (c *Controller) Failover(name string, planned bool) (uint64, <-chan PassResult, error) {
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
	kind := "failover-unplanned"
	if planned {
		kind = "failover-planned"
	}
	// The plan is made when the operation runs; journal it now so the
	// operator gets an id to follow.
	op, err := c.journalPlan(name, kind, "operator", gen, nil)
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
	ps.failover = &failoverRequest{planned: planned, opID: id, done: done}
	c.mu.Unlock()
	c.event(name, fmt.Sprint(id), kind, "queued by the operator")
	c.queue.Add(name)
	return id, done, nil
}

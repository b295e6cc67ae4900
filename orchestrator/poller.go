package orchestrator

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"github.com/hvro/hvro/clusterapi"
	"github.com/hvro/hvro/store"
)

// GroupReader reads failover groups of one cluster (clusterapi.Client).
type GroupReader interface {
	Group(ctx context.Context, name string) (clusterapi.Group, error)
	LastEndpoint() string
}

// Poll reads every group of a cluster that a pair uses, every interval,
// until ctx ends, and hands each answer to observe. A failed read is an
// observation too: the side becomes unsettled rather than trusted stale.
func Poll(ctx context.Context, cluster string, api GroupReader, groups func() []string, every, timeout time.Duration, observe func(GroupKey, Observation), log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, g := range groups() {
			if ctx.Err() != nil {
				return
			}
			// Stamped when asked, not when answered: the answer says how
			// the group was at some instant after this, and a hook that
			// arrived while the request was under way may be newer news.
			asked := time.Now()
			rctx, cancel := context.WithTimeout(ctx, timeout)
			grp, err := api.Group(rctx, g)
			cancel()
			if ctx.Err() != nil {
				return
			}
			o := Observation{Source: store.SourcePoll, Endpoint: api.LastEndpoint(), At: asked}
			if err != nil {
				o.Err = err.Error()
				log.Warn("poll group", "cluster", cluster, "group", g, "error", err)
			} else {
				o.Status, o.Owner = string(grp.Status), grp.Owner
			}
			observe(GroupKey{cluster, g}, o)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// GroupsOf lists the groups of a cluster that managed pairs use, sorted.
func (c *Controller) GroupsOf(cluster string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.byGroup {
		if k.Cluster == cluster {
			out = append(out, k.Group)
		}
	}
	sort.Strings(out)
	return out
}

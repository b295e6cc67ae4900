package clusterapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/hvro/hvro/hostname"
)

// ErrGroupFailed is returned by the Wait methods when the group settled
// somewhere other than asked: a failure status, or Online on another server
// after a transition (its start failed on the target and it failed over).
var ErrGroupFailed = errors.New("group did not reach the wanted state")

// StartGroup asks the cluster to start an offline group on target (""
// lets the cluster choose). It returns once the cluster accepted the
// request: the start runs asynchronously; use WaitGroupOnline.
func (c *Client) StartGroup(ctx context.Context, group, target string) error {
	return c.operate(ctx, "start", group, target)
}

// StopGroup asks the cluster to stop a group. Asynchronous like StartGroup;
// use WaitGroupOffline.
func (c *Client) StopGroup(ctx context.Context, group string) error {
	return c.operate(ctx, "stop", group, "")
}

// MoveGroup asks the cluster to move an online group to target ("" lets the
// cluster choose). Asynchronous like StartGroup; use WaitGroupOnline.
func (c *Client) MoveGroup(ctx context.Context, group, target string) error {
	return c.operate(ctx, "move", group, target)
}

func (c *Client) operate(ctx context.Context, verb, group, target string) error {
	op := fmt.Sprintf("%s group %s", verb, group)
	if target != "" {
		op += " on " + target
		if verb == "move" {
			op = fmt.Sprintf("move group %s to %s", group, target)
		}
	}
	if group == "" {
		return &Error{Kind: ErrNotFound, Op: op, Cluster: c.cfg.Name, Message: "empty group name"}
	}
	var body []byte
	if target != "" {
		// Send a body only with a target, as NEC's own client does.
		body, _ = json.Marshal(map[string]string{"target": target})
	}
	return c.call(ctx, op, http.MethodPost, "groups/"+url.PathEscape(group)+"/"+verb, body, "", nil)
}

// WaitGroupOnline polls the group every poll (default 1s) until it is Online
// on target (on any server when target is ""), and returns it. It fails with
// ErrGroupFailed when the group reaches Online Failure or Offline Failure,
// or settles Online elsewhere or Offline after having been seen in
// transition. Auth and not-found errors end the wait; other errors are
// retried until ctx ends.
func (c *Client) WaitGroupOnline(ctx context.Context, group, target string, poll time.Duration) (Group, error) {
	want := "Online"
	if target != "" {
		want += " on " + target
	}
	return c.wait(ctx, group, want, poll, func(g Group) bool {
		return g.Status == Online && (target == "" || hostname.Same(g.Owner, target))
	})
}

// WaitGroupOffline polls the group until it is Offline. It fails with
// ErrGroupFailed on a failure status, or when the group settles Online after
// having been seen in transition.
func (c *Client) WaitGroupOffline(ctx context.Context, group string, poll time.Duration) (Group, error) {
	return c.wait(ctx, group, "Offline", poll, func(g Group) bool { return g.Status == Offline })
}

// wait polls a group until reached says so, and fails with ErrGroupFailed
// when the group reaches a failure status or settles elsewhere after having
// been seen in transition. Right after an operation is accepted a cluster
// may still report the old settled state, which must not count as the end.
func (c *Client) wait(ctx context.Context, group, want string, poll time.Duration, reached func(Group) bool) (Group, error) {
	if poll <= 0 {
		poll = time.Second
	}
	var (
		last    Group
		lastErr error
		moved   bool
	)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("wait for group %s to be %s: %w (last error: %w)", group, want, ctx.Err(), lastErr)
			}
			return last, fmt.Errorf("wait for group %s to be %s: %w (last seen %q on %q)", group, want, ctx.Err(), last.Status, last.Owner)
		case <-t.C:
		}
		g, err := c.Group(ctx, group)
		switch {
		case errors.Is(err, ErrAuth) || errors.Is(err, ErrNotFound):
			return last, err
		case err != nil:
			lastErr = err
		default:
			last, lastErr = g, nil
			if !g.Status.Settled() && g.Status.Known() {
				moved = true
			}
			switch {
			case reached(g):
				return g, nil
			case g.Status.Failed(), moved && g.Status.Settled():
				return g, fmt.Errorf("wait for group %s to be %s: %w: it is %q on %q", group, want, ErrGroupFailed, g.Status, g.Owner)
			}
		}
		t.Reset(poll)
	}
}

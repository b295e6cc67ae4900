// Package within bounds what tests wait for: a value on a channel, a
// condition to come true. A test waiting on a broken system then fails
// after Limit, naming what it waited for, instead of hanging until go
// test's own timeout.
package within

import (
	"testing"
	"time"
)

// Limit is how long any wait may take: far beyond what a loaded CI
// machine needs for a loopback round trip, far below go test's timeout.
const Limit = 10 * time.Second

// Recv returns the next value from ch.
func Recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	return recv(t, ch, what, Limit)
}

func recv[T any](t testing.TB, ch <-chan T, what string, limit time.Duration) T {
	t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("no %s within %s", what, limit)
		panic("unreachable")
	}
}

// Eventually polls cond every few milliseconds until it holds.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	eventually(t, what, cond, Limit)
}

func eventually(t testing.TB, what string, cond func() bool, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

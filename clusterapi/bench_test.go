package clusterapi

import (
	"context"
	"testing"
)

// BenchmarkGroup: one group read through the client against the emulator on loopback.
func BenchmarkGroup(b *testing.B) {
	l := newLab(b)
	c := l.client(b, "fip")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Group(ctx, "failover1"); err != nil {
			b.Fatal(err)
		}
	}
}

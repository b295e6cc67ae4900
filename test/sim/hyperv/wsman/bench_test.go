package wsman_test

import (
	"testing"

	"github.com/hvro/hvro/test/sim/hyperv/wsman"
	"github.com/hvro/hvro/test/sim/mzwinrm"
)

// BenchmarkMasterzenRunPS measures one full masterzen command cycle over
// loopback (Create, Command, Receive, Signal, Delete: five HTTP requests).
func BenchmarkMasterzenRunPS(b *testing.B) {
	h, err := wsman.NewHost(wsman.HostConfig{Server: baseConfig(nil), HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	if err := h.Start(); err != nil {
		b.Fatal(err)
	}
	defer h.Stop()
	c, err := mzwinrm.Client(h.HTTPAddr(), mzwinrm.Options{User: testUser, Password: testPassword, OperationTimeout: "PT10S", Unchecked: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, code, err := c.RunPSWithString("out x", ""); err != nil || code != 0 {
			b.Fatal(code, err)
		}
	}
}

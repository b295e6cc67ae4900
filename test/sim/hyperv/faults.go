package hyperv

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv/ps"
)

// Fault makes the next Times calls of Cmdlet on Host fail with a catalogue
// error (POST /sim/faults).
type Fault struct {
	Host   string `json:"host"`
	Cmdlet string `json:"cmdlet"`
	Error  string `json:"error"`
	Times  int    `json:"times"`
}

// AddFault validates and queues a fault.
func (w *World) AddFault(f Fault) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hostByName(f.Host) == nil {
		return fmt.Errorf("fault host %q: no such host", f.Host)
	}
	if !isCmdlet(f.Cmdlet) {
		return fmt.Errorf("fault cmdlet %q: not a Hyper-V cmdlet of the emulator (one of %s)", f.Cmdlet, strings.Join(CmdletNames(), ", "))
	}
	if _, ok := hvErrors[f.Error]; !ok {
		return fmt.Errorf("fault error %q: not a known error (one of %s)", f.Error, strings.Join(FaultNames(), ", "))
	}
	if f.Times < 1 {
		return fmt.Errorf("fault times %d: must be at least 1", f.Times)
	}
	if guestFaults[f.Error] && !strings.EqualFold(f.Cmdlet, "Stop-VM") {
		return fmt.Errorf("fault error %q describes the guest's shutdown: only Stop-VM can have it, not %s", f.Error, f.Cmdlet)
	}
	cp := f
	w.faults = append(w.faults, &cp)
	return nil
}

// ClearFaults drops all queued faults and latencies.
func (w *World) ClearFaults() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.faults = nil
	w.latency = map[string]time.Duration{}
}

// guestFaults are conditions of the guest, not of a call: a shutdown
// through the guest's Shutdown integration service fails, with or without
// -Force (shutdown_unavailable) or only without it (guest_locked).
// -TurnOff and -Save do not involve the guest.
var guestFaults = map[string]bool{"shutdown_unavailable": true, "guest_locked": true}

// faultApplies tells whether a queued fault affects this call.
func faultApplies(f *Fault, c *ps.Call) bool {
	if !guestFaults[f.Error] {
		return true
	}
	if c.Bool("TurnOff") || c.Bool("Save") {
		return false
	}
	return f.Error == "shutdown_unavailable" || !c.Bool("Force")
}

func (w *World) takeFault(h *Host, cmdlet string, c *ps.Call) (string, bool) {
	for i, f := range w.faults {
		if strings.EqualFold(f.Cmdlet, cmdlet) && w.hostByName(f.Host) == h && faultApplies(f, c) {
			f.Times--
			if f.Times <= 0 {
				w.faults = append(w.faults[:i], w.faults[i+1:]...)
			}
			return f.Error, true
		}
	}
	return "", false
}

// SetLatency makes every call of cmdlet take d longer (POST /sim/latency);
// d = 0 removes it.
func (w *World) SetLatency(cmdlet string, d time.Duration) error {
	if !isCmdlet(cmdlet) {
		return fmt.Errorf("latency cmdlet %q: not a Hyper-V cmdlet of the emulator (one of %s)", cmdlet, strings.Join(CmdletNames(), ", "))
	}
	if d < 0 || d > 10*time.Minute {
		return fmt.Errorf("latency %s: must be between 0 and 10m", d)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if d == 0 {
		delete(w.latency, strings.ToLower(cmdlet))
	} else {
		w.latency[strings.ToLower(cmdlet)] = d
	}
	return nil
}

func (w *World) delayFor(h *Host, cmdlet string, c *ps.Call) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.latency[strings.ToLower(cmdlet)]
	if strings.EqualFold(cmdlet, "Stop-VM") && !c.Bool("TurnOff") {
		d += w.cfg.Timing.Shutdown
	}
	return d
}

var cmdletNames = sync.OnceValue(func() []string {
	var out []string
	t := (&Host{Name: "x"}).commandTable()
	for _, n := range t.Names() {
		if c, _ := t.Lookup(n); strings.HasPrefix(c.Class, cmdClass) {
			out = append(out, n)
		}
	}
	return out
})

// CmdletNames lists the Hyper-V cmdlets the emulator implements.
func CmdletNames() []string { return cmdletNames() }

func isCmdlet(name string) bool {
	for _, n := range CmdletNames() {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

package wsman_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv/wsman"
	"github.com/hvro/hvro/test/within"
)

// shellBody is a Create body with an rsp:IdleTimeOut (value verbatim) in
// schema order, before InputStreams, or after the streams as pywinrm and
// pypsrp place it (Windows takes both: pypsrp test_winrs_extra_opts.yml).
func shellBody(idle string, after bool) string {
	streams := `<rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>`
	el := `<rsp:IdleTimeOut>` + idle + `</rsp:IdleTimeOut>`
	if after {
		return `<rsp:Shell>` + streams + el + `</rsp:Shell>`
	}
	return `<rsp:Shell>` + el + streams + `</rsp:Shell>`
}

// TestCreateShellIdleTimeout: a client-requested rsp:IdleTimeOut is
// honoured within the server's bounds (at least MinShellIdleTimeout, at
// most ShellIdleTimeout) and the Create response reports the value in
// force; a value that is not an xs:duration is refused like Windows does
// (pywinrm issue #377) and creates no shell.
func TestCreateShellIdleTimeout(t *testing.T) {
	tests := []struct {
		name     string
		min, max time.Duration // server config; zero: defaults
		body     string
		want     string // reported rsp:IdleTimeOut
		fault    bool
	}{
		{name: "none: the server's IdleTimeout", body: createBody, want: "PT7200.000S"},
		{name: "schema order", body: shellBody("PT90S", false), want: "PT90.000S"},
		// The Windows capture: PT60S after the streams, reported PT60.000S.
		{name: "after the streams, as pypsrp sends it", body: shellBody("PT60S", true), want: "PT60.000S"},
		{name: "fractional seconds", body: shellBody("PT90.5S", false), want: "PT90.500S"},
		{name: "days hours minutes", body: shellBody("P0DT0H2M0S", false), want: "PT120.000S"},
		{name: "surrounding whitespace", body: shellBody(" PT75S\n", false), want: "PT75.000S"},
		{name: "below Windows' minimum is raised to it", body: shellBody("PT10S", false), want: "PT60.000S"},
		{name: "zero is raised to the minimum", body: shellBody("PT0S", false), want: "PT60.000S"},
		{name: "above the server's IdleTimeout is lowered to it", body: shellBody("PT3H", false), want: "PT7200.000S"},
		{name: "a lowered server maximum", max: 5 * time.Minute, body: shellBody("PT1H", false), want: "PT300.000S"},
		{name: "a lab minimum", min: 100 * time.Millisecond, body: shellBody("PT2S", false), want: "PT2.000S"},
		{name: "a lab minimum still bounds", min: 100 * time.Millisecond, body: shellBody("PT0.01S", false), want: "PT0.100S"},
		// pywinrm 0.3.0 passes idle_timeout through unconverted.
		{name: "milliseconds, not a duration", body: shellBody("3600000", true), fault: true},
		{name: "empty", body: shellBody("", false), fault: true},
		{name: "no component", body: shellBody("PT", false), fault: true},
		{name: "negative", body: shellBody("-PT60S", false), fault: true},
		{name: "unit out of place", body: shellBody("P60S", false), fault: true},
		{name: "twice", body: `<rsp:Shell><rsp:IdleTimeOut>PT60S</rsp:IdleTimeOut><rsp:IdleTimeOut>PT90S</rsp:IdleTimeOut></rsp:Shell>`, fault: true},
		{name: "element content", body: shellBody("<rsp:Seconds>60</rsp:Seconds>", false), fault: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(nil)
			cfg.MinShellIdleTimeout, cfg.ShellIdleTimeout = tc.min, tc.max
			h := startHost(t, wsman.HostConfig{Server: cfg})
			c := newRaw(t, h)
			r := c.post(msg{action: actCreate, body: tc.body})
			if tc.fault {
				checkFault(t, r, faultWant{"s:Sender", "w:SchemaValidationError", "2150858817", "element IdleTimeOut that is invalid"})
				if want := "The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML and retry. "; r.reason != want {
					t.Errorf("reason %q, want %q", r.reason, want)
				}
				if n := h.Server().Shells(); n != 0 {
					t.Errorf("%d shells after a refused Create", n)
				}
				return
			}
			if r.status != http.StatusOK || r.shellID == "" {
				t.Fatalf("status %d\n%s", r.status, r.raw)
			}
			if r.idleTimeOut != tc.want {
				t.Errorf("reported IdleTimeOut %q, want %q", r.idleTimeOut, tc.want)
			}
		})
	}
}

// TestRequestedIdleTimeoutEndsOrphanedCommand: a client that stops sending
// requests mid-command (it died) leaves a shell that the server deletes
// once its requested idle timeout has passed, cancelling the command; a
// client that keeps polling keeps its shell past the same timeout.
func TestRequestedIdleTimeoutEndsOrphanedCommand(t *testing.T) {
	rec := newRecorder()
	cfg := baseConfig(rec)
	cfg.MinShellIdleTimeout = 50 * time.Millisecond
	h := startHost(t, wsman.HostConfig{Server: cfg})
	c := newRaw(t, h)
	const idle = 600 * time.Millisecond

	live := c.ok(msg{action: actCreate, body: shellBody("PT0.6S", false)}).shellID
	liveCmd := c.command(live, "powershell", "-Command", "sleep 1500; out kept")

	orphan := c.ok(msg{action: actCreate, body: shellBody("PT0.6S", false)}).shellID
	start := time.Now()
	c.command(orphan, "powershell", "-Command", "sleep 30000; out never")

	// The live client polls with an OperationTimeout below the idle timeout.
	out, _, _, _ := c.receiveAll(live, liveCmd, "PT0.2S")
	if string(out) != "kept\r\n" {
		t.Fatalf("live command's output %q, want %q", out, "kept\r\n")
	}
	recs := rec.wait(t, 2)
	var orphaned *wsman.CommandRecord
	for i := range recs {
		if recs[i].ShellID == orphan {
			orphaned = &recs[i]
		}
	}
	if orphaned == nil {
		t.Fatalf("no record of the orphaned command: %+v", recs)
	}
	ended := orphaned.Start.Add(orphaned.Duration)
	if !orphaned.Canceled {
		t.Fatalf("orphaned command was not cancelled: %+v", *orphaned)
	}
	if took := ended.Sub(start); took < idle || took > idle+2*time.Second {
		t.Errorf("orphaned command cancelled %v after its last request; want about the %v idle timeout", took, idle)
	}
	checkFault(t, c.post(msg{action: actReceive, shellID: orphan, body: receiveBody("X")}),
		faultWant{"s:Sender", "w:InvalidSelectors", "2150858843", "shell was not found"})
	// The live shell is still there until it too goes idle.
	c.ok(msg{action: actDelete, shellID: live})
	within.Eventually(t, "every shell gone", func() bool { return h.Server().Shells() == 0 })
}

// TestMinShellIdleTimeoutConfig: the floor cannot be negative.
func TestMinShellIdleTimeoutConfig(t *testing.T) {
	cfg := baseConfig(nil)
	cfg.MinShellIdleTimeout = -time.Second
	if _, err := wsman.NewServer(cfg); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("NewServer with a negative MinShellIdleTimeout: %v", err)
	}
}

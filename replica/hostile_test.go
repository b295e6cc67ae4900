package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hostileWSMan answers the first command's Receive with a hostile reply
// (and may hang its Delete), then behaves like a healthy host: the second
// command shows whether the first one left its host's slot taken.
type hostileWSMan struct {
	fake    fakeWSMan
	receive func(w http.ResponseWriter, r *http.Request)
	// hangDelete keeps the first shell's Delete waiting this long.
	hangDelete time.Duration
	creates    atomic.Int32
	release    chan struct{}
	once       sync.Once
}

func (h *hostileWSMan) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	first := h.creates.Load() <= 1
	switch {
	case strings.Contains(string(body), "transfer/Create</"):
		h.creates.Add(1)
	case first && strings.Contains(string(body), "shell/Receive</"):
		h.receive(w, r)
		return
	case first && h.hangDelete > 0 && strings.Contains(string(body), "transfer/Delete</"):
		select {
		case <-time.After(h.hangDelete):
		case <-h.release:
		}
	}
	h.fake.ServeHTTP(w, r)
}

func nested(n int) string { return strings.Repeat("<a>", n) + strings.Repeat("</a>", n) }

// soapReply writes a SOAP 200 whose ReceiveResponse holds inner.
func soapReply(inner string) func(http.ResponseWriter, *http.Request) {
	a := soapOK(`<rsp:ReceiveResponse>` + inner + `</rsp:ReceiveResponse>`)
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", a.contentType)
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}
}

// TestHostileReplyFreesTheSlot: a reply that would jam the WinRM library
// (deep nesting, a huge body) is refused before it parses, and a reply
// that never comes ends at the command timeout; either way the command
// ends within its timeout and the host's only slot is free for the next
// command, even while the first command's shell is still being deleted.
func TestHostileReplyFreesTheSlot(t *testing.T) {
	const timeout = 2 * time.Second
	tests := []struct {
		name       string
		receive    func(http.ResponseWriter, *http.Request)
		hangDelete time.Duration
		kind       error
		reason     string
		msg        string
		abandoned  int
	}{
		{name: "10,000 nested elements", receive: soapReply(nested(10000)),
			kind: ErrPermanent, reason: ReasonMalformedReply, msg: "deeper than 64 levels"},
		{name: "1.5 MB of nesting", receive: soapReply(nested(1_500_000 / 7)),
			kind: ErrPermanent, reason: ReasonMalformedReply, msg: "larger than 307200 bytes"},
		{name: "20,000 flat elements", receive: soapReply(strings.Repeat("<a/>", 20000)),
			kind: ErrPermanent, reason: ReasonMalformedReply, msg: "more than 10000 elements"},
		{name: "a DTD", receive: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
			io.WriteString(w, `<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa">]><s:Envelope `+soapNS+`><s:Body/></s:Envelope>`)
		}, kind: ErrPermanent, reason: ReasonMalformedReply, msg: "DTD"},
		{name: "a reply that never comes", receive: func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			hangDelete: 8 * time.Second, kind: ErrTransient, reason: ReasonTimeout, msg: "command timeout", abandoned: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &hostileWSMan{fake: fakeWSMan{t: t, stdout: inspectOK}, receive: tc.receive, hangDelete: tc.hangDelete, release: make(chan struct{})}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			var abandoned atomic.Int32
			d, err := New("hostile", Config{Endpoint: srv.URL + "/wsman", Username: "u", Password: "p", Timeout: timeout, MaxConcurrent: 1,
				OnAbandoned: func(host string) {
					if host == "hostile" {
						abandoned.Add(1)
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			t.Cleanup(func() { close(h.release) }) // before Close: lets a hanging Delete go

			start := time.Now()
			_, err = d.Inspect(context.Background(), vm1)
			took := time.Since(start)
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, tc.kind) || e.Reason != tc.reason || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("first command: got %v\nwant %v (%s) mentioning %q", err, tc.kind, tc.reason, tc.msg)
			}
			if took > timeout+500*time.Millisecond {
				t.Errorf("first command took %s, beyond its timeout %s", took, timeout)
			}

			// The host's only slot must be free now: a second command gets
			// it at once and succeeds. (On another VM: a command on vm1
			// waits for the abandoned one on vm1 to end on the host, see
			// TestNextCommandWaitsForTheAbandonedOne.)
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if _, err := d.Inspect(ctx, VMRef{Name: "vm2"}); err != nil {
				t.Fatalf("second command on the same host: %v", err)
			}
			if got := int(abandoned.Load()); got != tc.abandoned {
				t.Errorf("abandoned commands counted: %d, want %d", got, tc.abandoned)
			}
		})
	}
}

// TestAbandonedCommandsAreBounded: commands nobody waits for any more
// still hold a shell until their goroutine ends; when MaxShells of them
// are stuck, the next command fails transient, naming why, instead of
// piling up goroutines and shells on the host.
func TestAbandonedCommandsAreBounded(t *testing.T) {
	release := make(chan struct{})
	f := &fakeWSMan{t: t, stdout: inspectOK}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		switch {
		case strings.Contains(string(body), "shell/Receive</"):
			<-r.Context().Done()
			return
		case strings.Contains(string(body), "transfer/Delete</"):
			<-release
		}
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	d, err := New("hostile", Config{Endpoint: srv.URL + "/wsman", Username: "u", Password: "p", Timeout: 300 * time.Millisecond, MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	t.Cleanup(func() { close(release) }) // before Close: lets the Deletes go
	d.shells = make(chan struct{}, 2)    // MaxShells, scaled down

	// Other VMs each time: a command on a VM waits for an abandoned one on
	// the same VM (TestNextCommandWaitsForTheAbandonedOne).
	for i := range 2 {
		if _, err := d.Inspect(context.Background(), VMRef{Name: fmt.Sprintf("vm%d", i+1)}); !IsTransient(err) {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	if d.Abandoned() != 2 {
		t.Fatalf("abandoned: %d, want 2", d.Abandoned())
	}
	_, err = d.Inspect(context.Background(), VMRef{Name: "vm3"})
	if !IsTransient(err) || !strings.Contains(err.Error(), "still has 2 commands whose callers gave up") {
		t.Fatalf("third command: %v", err)
	}
}

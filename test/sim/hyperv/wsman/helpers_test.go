package wsman_test

import (
	"context"
	"crypto/tls"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv/wsman"
)

// Test accounts: a local account and a domain account.
const (
	testUser     = "admin"
	testPassword = "lab-pass"
	domainUser   = `LAB\svc`
	domainPass   = "svc-pass"
)

// fakePS is a tiny scripted PowerShell for the protocol tests. A script is
// statements separated by ";": "out X" writes X and CRLF to stdout, "err X"
// to stderr, "exit N" ends with code N, "sleep MS" waits (honouring
// cancellation), "echo-script" writes the whole script to stdout. The
// "$ProgressPreference = ..." statement masterzen prepends is ignored.
func fakePS(ctx context.Context, script string, _ bool) wsman.Result {
	var res wsman.Result
	for _, stmt := range strings.Split(script, ";") {
		stmt = strings.TrimSpace(stmt)
		verb, arg, _ := strings.Cut(stmt, " ")
		switch verb {
		case "", "$ProgressPreference":
		case "out":
			res.Stdout = append(res.Stdout, arg+"\r\n"...)
		case "err":
			res.Stderr = append(res.Stderr, arg+"\r\n"...)
		case "exit":
			n, _ := strconv.Atoi(arg)
			res.ExitCode = n
			return res
		case "sleep":
			ms, _ := strconv.Atoi(arg)
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-ctx.Done():
				res.Stderr = append(res.Stderr, "cancelled\r\n"...)
				res.ExitCode = 1
				return res
			}
		case "echo-script":
			res.Stdout = append(res.Stdout, script...)
		default:
			res.Stdout = append(res.Stdout, "ran: "+stmt+"\r\n"...)
		}
	}
	return res
}

// recorder collects command records.
type recorder struct {
	mu      sync.Mutex
	records []wsman.CommandRecord
	added   chan struct{}
}

func newRecorder() *recorder { return &recorder{added: make(chan struct{}, 1000)} }

func (r *recorder) log(rec wsman.CommandRecord) {
	r.mu.Lock()
	r.records = append(r.records, rec)
	r.mu.Unlock()
	r.added <- struct{}{}
}

// wait returns the first n records, failing the test after a deadline.
func (r *recorder) wait(t *testing.T, n int) []wsman.CommandRecord {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		if len(r.records) >= n {
			out := append([]wsman.CommandRecord{}, r.records...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.added:
		case <-deadline:
			t.Fatalf("waited for %d command records", n)
		}
	}
}

func baseConfig(rec *recorder) wsman.Config {
	cfg := wsman.Config{
		Host:       "NODE1",
		Users:      map[string]string{testUser: testPassword, domainUser: domainPass},
		PowerShell: fakePS,
	}
	if rec != nil {
		cfg.Log = rec.log
	}
	return cfg
}

// startHost runs a host on a loopback port until the test ends.
// labTLS makes a lab CA in a temporary folder and a server certificate it
// signs for hostnames.
func labTLS(t *testing.T, hostnames ...string) (*wsman.LabCA, *tls.Config) {
	t.Helper()
	ca, err := wsman.NewLabCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ca.ServerTLS(hostnames...)
	if err != nil {
		t.Fatal(err)
	}
	return ca, cfg
}

func startHost(t *testing.T, hc wsman.HostConfig) *wsman.Host {
	t.Helper()
	if hc.HTTPAddr == "" && hc.HTTPSAddr == "" {
		hc.HTTPAddr = "127.0.0.1:0"
	}
	h, err := wsman.NewHost(hc)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Stop(); err != nil {
			t.Error(err)
		}
	})
	return h
}

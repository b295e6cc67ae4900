package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hvro/hvro/orchestrator/httpapi"
	"github.com/hvro/hvro/store"
)

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"node1", "node1"},
		{`T:\VMs\vm1.vmcx`, `T:\VMs\vm1.vmcx`},
		{"Ünïcödé 日本", "Ünïcödé 日本"},
		{"a\x1b[31mred", `a\x1b[31mred`},
		{"line\r\nnext\ttab", `line\r\nnext\ttab`},
		{"\x07\x08\x7f\u0085", `\a\b\x7f\u0085`},
		{"evil\u202etxt.exe", `evil\u202etxt.exe`},
		{"\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069", `\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069`},
		{"zero\u200bwidth\u200e", `zero\u200bwidth\u200e`},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`},
		{strings.Repeat("x", 100), strings.Repeat("x", 64) + "..."},
		{strings.Repeat("x", 64), strings.Repeat("x", 64)},
		{strings.Repeat("é", 40), strings.Repeat("é", 32) + "..."},
		{strings.Repeat("\x1b", 100), strings.Repeat(`\x1b`, 16) + "..."},
		{"\xff", `\xff`},
		{"\x01", `\x01`},
	}
	for _, tc := range tests {
		if got := printable(tc.in, 64); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// hostile is what a compromised or broken ECX could name an owner, or a
// hook field could carry: a terminal title change, a screen clear, a
// right-to-left override, invalid UTF-8, and a lot of it.
var hostile = "\x1b]0;pwned\x07\x1b[2J\u202e\xff" + strings.Repeat("B\x1b[31m", 5000)

// assertSafe fails when out could act on a terminal, or holds a line no
// field bound explains.
func assertSafe(t *testing.T, what, out string, maxLine int) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s: invalid UTF-8 in the output", what)
	}
	for _, r := range out {
		if r != '\n' && unsafeRune(r) {
			t.Errorf("%s: %q in the output: %.200q", what, r, out)
			break
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > maxLine {
			t.Errorf("%s: a %d-byte line: %.200q...", what, len(line), line)
		}
	}
	if !strings.Contains(out, `\x1b]0;pwned\a\x1b[2J\u202e`) {
		t.Errorf("%s: the hostile value is not shown escaped: %.300q", what, out)
	}
}

// TestTablesPrintUntrustedStringsSafely: hvro status, pair show, ops and
// the result of a failover print what hvro relays (ECX names, hook
// fields, host errors) escaped and bounded.
func TestTablesPrintUntrustedStringsSafely(t *testing.T) {
	now := time.Now()
	pv := httpapi.PairView{Name: "vm1", VMName: hostile, Phase: "Degraded",
		Primary:     httpapi.SideView{Cluster: "cluster1", Group: hostile, Host: hostile},
		Replica:     httpapi.SideView{Cluster: "cluster2", Group: "failover2", Host: "node3"},
		Degraded:    &store.Degraded{Since: now, Reason: hostile, Error: hostile},
		Replication: httpapi.ReplicationView{State: hostile, Health: hostile, PrimaryServer: hostile, ReplicaServer: hostile},
	}
	op := store.Operation{ID: 7, Pair: "vm1", Kind: "reconcile", State: store.OpFailed, Trigger: hostile, Error: hostile,
		Started: now, Ended: now, Plan: []store.Step{{Kind: "start", Host: hostile, Summary: hostile, Outcome: "failed", Error: hostile}}}
	var b bytes.Buffer
	printStatus(&b, []httpapi.PairView{pv}, now)
	assertSafe(t, "status", b.String(), 600)
	b.Reset()
	printPair(&b, httpapi.PairDetail{PairView: pv,
		Observations: []store.Observation{{Cluster: "cluster1", Group: hostile, Status: hostile, Owner: hostile, Source: "hook", At: now},
			{Cluster: "cluster2", Group: "failover2", Err: hostile, Source: "poll", At: now}},
		Operations: []store.Operation{op}})
	assertSafe(t, "pair show", b.String(), 700)
	b.Reset()
	printOps(&b, []store.Operation{op})
	assertSafe(t, "ops", b.String(), 600)
	b.Reset()
	printSteps(&b, op)
	assertSafe(t, "failover --wait", b.String(), 700)
}

// TestHookLinePrintsUntrustedStringsSafely: the one line hvro hook leaves
// in the ECX log shows hvro's message and the CLP_* fields escaped and
// bounded, and so does the error of any other command.
func TestHookLinePrintsUntrustedStringsSafely(t *testing.T) {
	for _, status := range []int{200, 403} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			if status == 200 {
				w.Write([]byte(`{"outcome":"degraded","op":3,"message":` + jsonString(hostile) + `}`))
				return
			}
			w.Write([]byte(`{"error":{"code":"forbidden","message":` + jsonString(hostile) + `}}`))
		}))
		args := []string{"--url", srv.URL, "--cluster", "cluster1", "--group", "failover1", "--phase", "start",
			"--token-file", hookTokenFile(t), "--wait", "1s", "--retry-for", "0s"}
		env := func(k string) string {
			switch k {
			case "CLP_EVENT", "CLP_FACTOR", "COMPUTERNAME":
				return hostile
			}
			return ""
		}
		var out, errb bytes.Buffer
		Hook(args, env, &out, &errb)
		assertSafe(t, "hook line", out.String()+errb.String(), 2000)

		tok := hookTokenFile(t)
		out.Reset()
		errb.Reset()
		Admin("reconcile", []string{"vm1", "--server", srv.URL, "--token-file", tok}, func(string) string { return "" }, &out, &errb)
		if status != 200 {
			assertSafe(t, "an API error", out.String()+errb.String(), 2000)
		}
		srv.Close()
	}
}

func jsonString(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

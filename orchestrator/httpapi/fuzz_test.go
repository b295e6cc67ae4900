package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hvro/hvro/orchestrator"
	"github.com/hvro/hvro/store"
)

// FuzzHook sends arbitrary bodies, tokens and wait values to POST
// /v1/hooks in front of a real controller and store (not started: no host
// is contacted). Whatever arrives, the answer is a 2xx or a 4xx with a
// named error, a cluster's token never acts on the other cluster, and the
// store stays readable.
func FuzzHook(f *testing.F) {
	for _, s := range []struct {
		body  string
		token uint8
		wait  string
	}{
		{`{"cluster":"cluster1","group":"failover1","server":"node1","phase":"start","event":"START","factor":"GROUPMOVE","disk":"T"}`, 1, ""},
		{`{"cluster":"cluster1","group":"failover1","server":"NODE2","phase":"STOP","event":"FAILOVER"}`, 1, "0s"},
		{`{"cluster":"cluster2","group":"failover2","server":"node3","phase":"start"}`, 1, ""},
		{`{"cluster":"cluster2","group":"failover2","server":"node3","phase":"start"}`, 3, "31m"},
		{`{"cluster":"cluster1","group":"failover1","server":"node1","phase":"start","extra":1}`, 1, ""},
		{`{"cluster":"cluster1"}{}`, 2, ""},
		{`[]`, 0, ""},
		{`{"cluster":"cluster1","group":"failover1","server":"node1","phase":"start","event":"\u0000"}`, 1, ""},
	} {
		f.Add([]byte(s.body), s.token, s.wait)
	}
	st, err := store.Open(filepath.Join(f.TempDir(), "hvro.db"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	side := func(c, g string) orchestrator.Side { return orchestrator.Side{Cluster: c, Group: g} }
	c, err := orchestrator.New(orchestrator.Config{
		Store: st,
		Hosts: func(string) (orchestrator.Host, bool) { return nil, false },
		Clusters: orchestrator.Clusters{
			"cluster1": {Servers: map[string]string{"node1": "node1", "node2": "node2"}},
			"cluster2": {Servers: map[string]string{"node3": "node3", "node4": "node4"}},
		},
		Pairs: []orchestrator.PairSpec{{Name: "vm1", VMName: "vm1", InitialPrimary: "cluster1",
			Sides: map[string]orchestrator.Side{"cluster1": side("cluster1", "failover1"), "cluster2": side("cluster2", "failover2")}}},
	})
	if err != nil {
		f.Fatal(err)
	}
	tokens := []string{"", "hook-1", "hook-2", "admin-secret", "nonsense"}
	h := Handler(Deps{Controller: c, Store: st, AdminToken: "admin-secret",
		HookTokens: map[string]string{"cluster1": "hook-1", "cluster2": "hook-2"}, Ready: func() error { return nil }})

	f.Fuzz(func(t *testing.T, body []byte, token uint8, wait string) {
		tok := tokens[int(token)%len(tokens)]
		target := "/v1/hooks"
		if wait != "" {
			target += "?wait=" + url.QueryEscape(wait)
		}
		// No worker runs passes, so an accepted wait would last its full
		// length: the caller gives up instead, as a script's timeout would.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		var answer struct {
			Outcome string `json:"outcome"`
			Error   *struct {
				Code, Message string
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("status %d with a body that is not JSON: %q", rec.Code, rec.Body.String())
		}
		switch {
		case rec.Code == http.StatusOK:
			var sent struct{ Cluster string }
			_ = json.Unmarshal(body, &sent)
			if tok == "hook-1" && sent.Cluster != "cluster1" || tok == "hook-2" && sent.Cluster != "cluster2" {
				t.Fatalf("token %s acted on cluster %q", tok, sent.Cluster)
			}
			if tok == "" || tok == "nonsense" {
				t.Fatalf("accepted without a valid token")
			}
		case rec.Code >= 400 && rec.Code < 500:
			if answer.Error == nil || answer.Error.Code == "" || answer.Error.Message == "" {
				t.Fatalf("status %d without a named error: %q", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("status %d: %q", rec.Code, rec.Body.String())
		}
		if err := st.View(func(tx store.Tx) error { _, err := tx.Pair("vm1"); return err }); err != nil {
			t.Fatalf("store unreadable after the hook: %v", err)
		}
	})
}

package clusterapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// TestNamesFromECXAreValidated: a server, owner, group or other name from
// ECX that could not come from a real cluster (terminal escape sequences,
// bidi overrides, a name of 100 KB) makes the answer an error that names
// the field and shows a bounded, escaped excerpt, never the raw value; so
// such a value can never reach a metric label, a log line or a terminal.
func TestNamesFromECXAreValidated(t *testing.T) {
	long := strings.Repeat("a", 100<<10)
	tests := []struct {
		name    string
		decode  string // groups, servers, resources, cluster
		data    string // the collection's JSON
		field   string // in the error
		escaped string // the excerpt as the error shows it
	}{
		{name: "escape sequence in the owner", decode: "groups", data: `[{"name":"failover1","status":"Online","current":"\u001b[31mnode1\u001b[0m"}]`,
			field: `"current"`, escaped: `\x1b[31mnode1\x1b[0m`},
		{name: "U+202E in the owner", decode: "groups", data: `[{"name":"failover1","status":"Online","current":"node1\u202egpj.exe"}]`,
			field: `"current"`, escaped: `node1\u202egpj.exe`},
		{name: "100 KB owner", decode: "groups", data: `[{"name":"failover1","status":"Online","current":"` + long + `"}]`,
			field: `"current"`, escaped: `"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"… (102400 bytes)`},
		{name: "space in the owner", decode: "groups", data: `[{"name":"failover1","status":"Online","current":"node 1"}]`,
			field: `"current"`, escaped: `"node 1"`},
		{name: "newline in a group name", decode: "groups", data: `[{"name":"failover1\nINFO forged line","status":"Online","current":"node1"}]`,
			field: `"name"`, escaped: `failover1\nINFO forged line`},
		{name: "U+202E in a group name", decode: "groups", data: `[{"name":"fail\u202eover","status":"Online","current":"node1"}]`,
			field: `"name"`, escaped: `fail\u202eover`},
		{name: "100 KB group name", decode: "groups", data: `[{"name":"` + long + `","status":"Online","current":"node1"}]`,
			field: `"name"`, escaped: `… (102400 bytes)`},
		{name: "escape sequence in a status", decode: "groups", data: `[{"name":"failover1","status":"Online\u001b]0;pwned\u0007","current":"node1"}]`,
			field: `"status"`, escaped: `Online\x1b]0;pwned\a`},
		{name: "escape sequence in a server name", decode: "servers", data: `[{"name":"node1\u001b[2J","status":"Online"}]`,
			field: `"name"`, escaped: `node1\x1b[2J`},
		{name: "server name of 256 bytes", decode: "servers", data: `[{"name":"` + strings.Repeat("n", 256) + `","status":"Online"}]`,
			field: `"name"`, escaped: `(256 bytes)`},
		{name: "U+202E in a resource owner", decode: "resources", data: `[{"name":"sd1","type":"sd","status":"Online","current":"node\u202e1","group":"failover1"}]`,
			field: `"current"`, escaped: `node\u202e1`},
		{name: "NUL in a resource's group", decode: "resources", data: `[{"name":"sd1","type":"sd","status":"Online","current":"node1","group":"failover1\u0000"}]`,
			field: `"group"`, escaped: `failover1\x00`},
		{name: "escape sequence in the cluster name", decode: "cluster", data: `{"name":"cluster\u001b[1m","status":"Normal"}`,
			field: `"name"`, escaped: `cluster\x1b[1m`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := decodeAny(tc.decode, json.RawMessage(tc.data))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.field) || !strings.Contains(msg, tc.escaped) {
				t.Errorf("error %q\nwant it to name %s and show %s", msg, tc.field, tc.escaped)
			}
			if len(msg) > 600 {
				t.Errorf("error of %d bytes", len(msg))
			}
			for _, r := range msg {
				if !unicode.IsPrint(r) && r != ' ' {
					t.Fatalf("error carries the raw character %U: %q", r, msg)
				}
			}
		})
	}
}

// TestValidNamesFromECX: what real clusters send still decodes.
func TestValidNamesFromECX(t *testing.T) {
	groups, err := decodeGroups(json.RawMessage(`[{"name":"failover1","status":"Online Pending","current":"NODE1.lab.local"},
		{"name":"fail_over-2.x","status":"Offline","current":"None"},{"name":"g3","status":"Online","current":null},{"name":"g4","status":"Offline","current":""}]`))
	if err != nil {
		t.Fatal(err)
	}
	if groups[0].Owner != "NODE1.lab.local" || groups[0].Status != OnlinePending || groups[1].Owner != "" || groups[2].Owner != "" || groups[3].Owner != "" {
		t.Fatalf("groups: %+v", groups)
	}
	if _, err := decodeServers(json.RawMessage(`[{"name":"node_1-a","status":"Online"},{"name":"` + strings.Repeat("n", 255) + `","status":"Offline"},{}]`)); err != nil {
		t.Fatal(err)
	}
}

// TestClientRefusesHostileOwner: through the client, the answer is an
// ErrDecode whose error text and excerpt show no raw control or format
// character and stay short.
func TestClientRefusesHostileOwner(t *testing.T) {
	for _, owner := range []string{"\u001b[31mnode1", "node\u202e1", strings.Repeat("x", 100<<10)} {
		t.Run(fmt.Sprintf("%.12q", owner), func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"result": map[string]any{"code": 0},
				"groups": []map[string]string{{"name": "failover1", "status": "Online", "current": owner}}})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write(body)
			}))
			defer srv.Close()
			c, err := New(Config{Name: "c", Endpoints: []string{srv.URL}, Username: "u", Password: "p", Timeout: time.Second, Retries: -1})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Group(testCtx(t), "failover1")
			var e *Error
			if !errors.Is(err, ErrDecode) || !errors.As(err, &e) || !strings.Contains(err.Error(), `"current"`) {
				t.Fatalf("got %v, want a decode error naming \"current\"", err)
			}
			for _, s := range []string{err.Error(), e.Excerpt} {
				if len(s) > 1000 || strings.Contains(s, owner) {
					t.Fatalf("error or excerpt of %d bytes shows the raw owner: %.200q", len(s), s)
				}
				for _, r := range s {
					if !unicode.IsPrint(r) && r != ' ' || r == utf8.RuneError {
						t.Fatalf("raw character %U in %q", r, s)
					}
				}
			}
		})
	}
}

func decodeAny(what string, data json.RawMessage) error {
	var err error
	switch what {
	case "groups":
		_, err = decodeGroups(data)
	case "servers":
		_, err = decodeServers(data)
	case "resources":
		_, err = decodeResources(data)
	case "cluster":
		_, err = decodeCluster(data)
	}
	return err
}

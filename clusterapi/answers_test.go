package clusterapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAnswers replays each recorded answer in testdata/answers (see its
// README for where each comes from) through the whole client: HTTP status
// handling, envelope, decoding, typed result or error.
func TestAnswers(t *testing.T) {
	g := func(name string, st GroupStatus, owner string, res ...string) Group {
		return Group{Name: name, Status: st, Owner: owner, Resources: res}
	}
	emuRes := func(n string) []string { return []string{"sd" + n, "fip-failover" + n, "script-failover" + n} }
	// The resources of emulator group n, as /resources lists them.
	emuResources := func(n string, status, owner string) []Resource {
		var out []Resource
		for i, name := range emuRes(n) {
			out = append(out, Resource{Name: name, Type: []string{"sd", "fip", "script"}[i], Status: status, Owner: owner, Group: "failover" + n})
		}
		return out
	}
	tests := []struct {
		file   string
		status int
		call   string // cluster, servers, server node2, resources, groups, group failover1, move
		want   any    // the value the call returns, when it succeeds
		kind   error  // the error kind, when it fails
		check  func(t *testing.T, e *Error)
	}{
		// Recorded from test/sim/ecx.
		{file: "emulator/cluster.json", call: "cluster", want: ClusterInfo{"cluster1", "Normal"}},
		{file: "emulator/servers.json", call: "servers", want: []Server{{"node1", ServerOnline}, {"node2", ServerOnline}}},
		{file: "emulator/server_named.json", call: "server node2", want: Server{"node2", ServerOnline}},
		{file: "emulator/resources.json", call: "resources", want: slices.Concat(
			emuResources("1", "Online", "node1"),
			emuResources("2", "Offline", ""), // "current": "None"
			emuResources("3", "Online", "node2"),
		)},
		{file: "emulator/groups.json", call: "groups", want: []Group{
			g("failover1", Online, "node1", emuRes("1")...),
			g("failover2", Offline, "", emuRes("2")...), // "current": "None"
			g("failover3", OnlineFailure, "node2", emuRes("3")...),
		}},
		{file: "emulator/group_named.json", call: "group failover1", want: g("failover1", Online, "node2", emuRes("1")...)},
		{file: "emulator/group_offline_pending.json", call: "group failover1", want: g("failover1", OfflinePending, "node1", emuRes("1")...)},
		{file: "emulator/group_online_pending.json", call: "group failover1", want: g("failover1", OnlinePending, "node2", emuRes("1")...)},
		{file: "emulator/group_select_name.json", call: "groups", want: []Group{{Name: "failover1"}, {Name: "failover2"}, {Name: "failover3"}}},
		{file: "emulator/post_ok.json", call: "move"},
		{file: "emulator/not_found.json", status: 404, call: "group failover1", kind: ErrNotFound, check: code(2)},
		{file: "emulator/unauthorized.json", status: 401, call: "groups", kind: ErrAuth, check: code(6)},
		{file: "emulator/method_not_allowed.json", status: 405, call: "move", kind: ErrAPI, check: code(1)},
		{file: "emulator/bad_body.json", status: 400, call: "move", kind: ErrAPI, check: code(1)},
		{file: "emulator/busy.json", call: "move", kind: ErrAPI, check: code(3)},
		{file: "emulator/state_refused.json", call: "move", kind: ErrAPI, check: code(4)},
		{file: "emulator/result_code.json", call: "groups", kind: ErrAPI, check: code(12)},
		{file: "emulator/http500.json", status: 500, call: "groups", kind: ErrTransport, check: code(99)},
		{file: "emulator/non_json.html", call: "groups", kind: ErrDecode, check: excerptHas("502 Bad Gateway")},

		// Synthetic: the other readings of what the research left open.
		{file: "group_current_null.json", call: "group failover1", want: g("failover1", Offline, "")},
		{file: "group_current_empty.json", call: "group failover1", want: g("failover1", Offline, "")},
		{file: "group_current_none_lowercase.json", call: "group failover1", want: g("failover1", Offline, "")},
		{file: "group_current_missing.json", call: "group failover1", want: g("failover1", Offline, "")},
		{file: "group_statuses.json", call: "groups", want: []Group{
			g("g1", Online, "server1"), g("g2", Offline, ""), g("g3", OnlinePending, "server2"), g("g4", OfflinePending, "server1"),
			g("g5", OnlineFailure, "server2"), g("g6", OfflineFailure, "server1"),
			g("g7", "Unknown", ""), g("g8", "OnlinePending", "server1"), // kept raw, never guessed
		}},
		{file: "group_lone_object.json", call: "group failover1", want: g("failover1", Online, "server1")},
		{file: "group_name_case.json", call: "group failover1", want: g("failover1", Online, "SERVER1")},
		{file: "group_resources_as_names.json", call: "group failover1", want: g("failover1", Online, "server1", "sd1", "fip1", "script1")},
		{file: "unknown_fields.json", call: "group failover1", want: g("failover1", Online, "server1", "sd1", "fip1", "script1")},
		{file: "result_code_string.json", call: "group failover1", want: g("failover1", Online, "server1")},
		{file: "result_code_float.json", call: "group failover1", want: g("failover1", Online, "server1")},
		{file: "result_missing.json", call: "group failover1", want: g("failover1", Online, "server1")},
		{file: "result_code_string_error.json", call: "move", kind: ErrAPI, check: code(3)},
		{file: "post_message_with_code0.json", call: "move", kind: ErrAPI, check: func(t *testing.T, e *Error) {
			if e.Code != 0 || e.Message != "Failed to move the group." {
				t.Errorf("error %+v", e)
			}
		}},
		{file: "post_message_with_code0.json", call: "groups", kind: ErrDecode}, // a read must carry its data
		{file: "cluster_as_array.json", call: "cluster", want: ClusterInfo{"cluster1", "Caution"}},
		{file: "groups_empty.json", call: "groups", want: []Group{}},
		{file: "groups_empty.json", call: "group failover1", kind: ErrNotFound},
		{file: "groups_null.json", call: "group failover1", kind: ErrNotFound},
		{file: "group_other_name.json", call: "group failover1", kind: ErrDecode},
		{file: "groups_missing.json", call: "groups", kind: ErrDecode},
		{file: "result_code_missing.json", call: "groups", kind: ErrDecode},
		{file: "group_current_number.json", call: "groups", kind: ErrDecode, check: excerptHas(`"current":17`)},
		{file: "truncated.json", call: "groups", kind: ErrDecode},
		{file: "top_level_array.json", call: "groups", kind: ErrDecode},
		{file: "unauthorized.html", status: 401, call: "groups", kind: ErrAuth},
	}
	for _, tc := range tests {
		t.Run(tc.call+" "+tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "answers", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			status := tc.status
			if status == 0 {
				status = 200
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(tc.file, ".html") {
					w.Header().Set("Content-Type", "text/html")
				} else {
					w.Header().Set("Content-Type", "application/json")
				}
				w.WriteHeader(status)
				w.Write(body)
			}))
			defer srv.Close()
			c, err := New(Config{Name: "c", Endpoints: []string{srv.URL}, Username: "u", Password: "p",
				Timeout: time.Second, Retries: -1})
			if err != nil {
				t.Fatal(err)
			}
			got, err := invoke(t, c, tc.call)
			if tc.kind != nil {
				var e *Error
				if !errors.Is(err, tc.kind) || !errors.As(err, &e) {
					t.Fatalf("err %v, want kind %v", err, tc.kind)
				}
				if e.Endpoint != srv.URL {
					t.Errorf("error does not name the endpoint: %v", e)
				}
				if tc.check != nil {
					tc.check(t, e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func invoke(t *testing.T, c *Client, call string) (any, error) {
	ctx := testCtx(t)
	verb, arg, _ := strings.Cut(call, " ")
	switch verb {
	case "cluster":
		return c.Cluster(ctx)
	case "servers":
		return c.Servers(ctx)
	case "server":
		return c.Server(ctx, arg)
	case "resources":
		return c.Resources(ctx)
	case "groups":
		return c.Groups(ctx)
	case "group":
		return c.Group(ctx, arg)
	case "move":
		return nil, c.MoveGroup(ctx, "failover1", "node2")
	}
	t.Fatalf("unknown call %q", call)
	return nil, nil
}

func code(n int) func(*testing.T, *Error) {
	return func(t *testing.T, e *Error) {
		if !e.HasCode || e.Code != n || e.Message == "" {
			t.Errorf("error %+v, want result code %d with its message", e, n)
		}
	}
}

func excerptHas(s string) func(*testing.T, *Error) {
	return func(t *testing.T, e *Error) {
		if !strings.Contains(e.Excerpt, s) {
			t.Errorf("excerpt %q, want it to show %q", e.Excerpt, s)
		}
	}
}

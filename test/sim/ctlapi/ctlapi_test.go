package ctlapi

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type body struct {
		MS int `json:"ms"`
	}
	tests := []struct {
		name     string
		in       string
		optional bool
		want     int
		err      string
	}{
		{"object", `{"ms": 5}`, false, 5, ""},
		{"empty optional", " \n", true, 0, ""},
		{"empty required", "", false, 0, "body: missing"},
		{"unknown field", `{"ms": 1, "sec": 2}`, true, 0, `unknown field "sec"`},
		{"two values", `{"ms": 1} {"ms": 2}`, true, 0, "more than one JSON value"},
		{"too large", `{"ms": 1, "pad": "` + strings.Repeat("x", MaxBody) + `"}`, true, 0, "request body too large"},
		{"not JSON", `ms=5`, true, 0, "body: invalid character"},
	}
	for _, tc := range tests {
		var b body
		err := Decode(httptest.NewRequest("POST", "/", strings.NewReader(tc.in)), &b, tc.optional)
		switch {
		case tc.err == "" && err != nil, tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want error %q", tc.name, err, tc.err)
		case tc.err == "" && b.MS != tc.want:
			t.Errorf("%s: ms %d, want %d", tc.name, b.MS, tc.want)
		}
	}
}

func TestError(t *testing.T) {
	rec := httptest.NewRecorder()
	Error(rec, 409, "conflict", `disk "T1" is busy`)
	if rec.Code != 409 || rec.Header().Get("Content-Type") != "application/json" ||
		rec.Body.String() != `{"error":{"code":"conflict","message":"disk \"T1\" is busy"}}` {
		t.Fatalf("HTTP %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
}

func TestReplyUnencodable(t *testing.T) {
	rec := httptest.NewRecorder()
	Reply(rec, 200, map[string]any{"f": func() {}})
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"code":"internal"`) {
		t.Fatalf("HTTP %d %s", rec.Code, rec.Body.String())
	}
}

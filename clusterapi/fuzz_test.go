package clusterapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// seedAnswers adds every recorded answer to a fuzz corpus (testdata/fuzz
// holds the hand-made edge cases).
func seedAnswers(f *testing.F, add func([]byte)) {
	files, _ := filepath.Glob(filepath.Join("testdata", "answers", "*.*"))
	emu, _ := filepath.Glob(filepath.Join("testdata", "answers", "emulator", "*"))
	for _, file := range append(files, emu...) {
		if strings.HasSuffix(file, ".md") {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzDecode: the decoders never panic, and what they accept keeps the
// promises of the types (no "None" owner, no invented status).
func FuzzDecode(f *testing.F) {
	seedAnswers(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, body []byte) {
		if ex := excerpt(body); utf8.RuneCountInString(ex) > 121 || strings.ContainsAny(ex, "\n\r\t\x00") {
			t.Fatalf("excerpt %q too long or with control characters", ex)
		}
		for _, key := range []string{"groups", "servers", "resources", "cluster"} {
			env, err := decodeEnvelope(body, key)
			if err != nil {
				continue
			}
			switch key {
			case "groups":
				groups, err := decodeGroups(env.data)
				if err != nil {
					continue
				}
				for _, g := range groups {
					if strings.EqualFold(g.Owner, "none") || g.Owner != strings.TrimSpace(g.Owner) {
						t.Fatalf("owner %q leaked through", g.Owner)
					}
					for _, v := range []string{g.Name, string(g.Status), g.Owner} {
						assertSafe(t, v)
					}
					if g.Status.Known() && !bytes.Contains(body, []byte(string(g.Status))) && !bytes.Contains(body, []byte(`\u`)) {
						t.Fatalf("status %q is not in the answer", g.Status)
					}
				}
			case "servers":
				servers, _ := decodeServers(env.data)
				for _, sv := range servers {
					assertSafe(t, sv.Name)
					assertSafe(t, string(sv.Status))
				}
			case "resources":
				res, _ := decodeResources(env.data)
				for _, r := range res {
					for _, v := range []string{r.Name, r.Type, r.Status, r.Owner, r.Group} {
						assertSafe(t, v)
					}
				}
			case "cluster":
				ci, _ := decodeCluster(env.data)
				assertSafe(t, ci.Name)
				assertSafe(t, ci.Status)
			}
		}
	})
}

// assertSafe: a value the decoders let through is short, valid UTF-8 and
// free of control and format characters.
func assertSafe(t *testing.T, v string) {
	t.Helper()
	if len(v) > maxName || !utf8.ValidString(v) {
		t.Fatalf("value %.60q (%d bytes) leaked through", v, len(v))
	}
	for _, r := range v {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Fatalf("value %q with %U leaked through", v, r)
		}
	}
}

// answerTransport answers every request with one status and body, in memory.
type answerTransport struct {
	status int
	body   []byte
}

func (a answerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: a.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(a.body)), Request: r}, nil
}

// FuzzClientAnswer: whatever status and body an endpoint sends, the client
// returns a result or an *Error of one of the five kinds, never panics.
func FuzzClientAnswer(f *testing.F) {
	seedAnswers(f, func(b []byte) {
		for _, st := range []int{200, 401, 404, 500} {
			f.Add(st, b)
		}
	})
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		c, err := New(Config{Name: "c", Endpoints: []string{"http://a", "http://b"}, Username: "u", Password: "p", Retries: -1, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c.reads.HTTPClient.Transport = answerTransport{status, body}
		c.ops.HTTPClient.Transport = c.reads.HTTPClient.Transport
		ctx := context.Background()
		_, err1 := c.Group(ctx, "failover1")
		_, err2 := c.Groups(ctx)
		err3 := c.MoveGroup(ctx, "failover1", "node2")
		_, err4 := c.Cluster(ctx)
		for _, err := range []error{err1, err2, err3, err4} {
			if err == nil {
				continue
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T %v is not *Error", err, err)
			}
			known := false
			for _, k := range []error{ErrAuth, ErrNotFound, ErrAPI, ErrTransport, ErrDecode} {
				known = known || errors.Is(err, k)
			}
			if !known || strings.Contains(err.Error(), "Basic ") {
				t.Fatalf("error %v", err)
			}
		}
	})
}

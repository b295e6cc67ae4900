package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const fuzzMarker = "S3CR3T"

// fuzzFiles has a secret file under /fuzz/secrets/ for every name, each
// with its own content, and nothing else.
type fuzzFiles struct{}

func fuzzSecret(name string) string {
	sum := sha256.Sum256([]byte(name))
	return fuzzMarker + "-" + hex.EncodeToString(sum[:8])
}

func (fuzzFiles) Stat(name string) (fs.FileInfo, error) {
	if !strings.HasPrefix(name, "/fuzz/secrets/") {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return fakeInfo{name, int64(len(fuzzSecret(name))), 0o600}, nil
}

func (f fuzzFiles) ReadFile(name string) ([]byte, error) {
	if _, err := f.Stat(name); err != nil {
		return nil, err
	}
	return []byte(fuzzSecret(name) + "\n"), nil
}

func fuzzEnv(name string) (string, bool) { return fuzzSecret("env:" + name), true }

// FuzzParse: Parse never panics; every error is Problems without a secret
// in it; a Config it accepts holds everything the service dereferences,
// validates again, and survives yaml.Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(strings.ReplaceAll(minimal, "/abs/hook-b", "/fuzz/secrets/hook-b")))
	f.Add([]byte(strings.ReplaceAll(mergeYAML, "/abs/hook-b", "/fuzz/secrets/hook-b")))
	f.Add([]byte(laughs))
	f.Add([]byte("hooks: &h {<<: *h}\n"))
	f.Add([]byte("clusters: [{servers: {a: {winrm: 'http://a/wsman'}, A: {}}}]\n"))
	f.Add([]byte("- a\n---\nb: c\n"))
	opts := []Option{WithFiles(fuzzFiles{}), WithEnv(fuzzEnv)}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "/fuzz", opts...)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error %v (%T) is not Problems", err, err)
			}
			for _, p := range ps {
				if p.Msg == "" {
					t.Errorf("a problem without a message at %q", p.Path)
				}
			}
			if !strings.Contains(string(data), fuzzMarker) && strings.Contains(err.Error(), fuzzMarker) {
				t.Fatalf("a secret leaked into the error:\n%v", err)
			}
			return
		}
		checkUsable(t, c)
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := Parse(out, "/fuzz", opts...)
		if err != nil {
			t.Fatalf("the marshalled config does not parse: %v\n%s", err, out)
		}
		c.lines, again.lines = nil, nil
		// Lines move when the config is marshalled; what a warning says
		// must not.
		if len(c.Warnings) != len(again.Warnings) {
			t.Fatalf("warnings %v became %v", c.Warnings, again.Warnings)
		}
		for i := range c.Warnings {
			if c.Warnings[i].Path != again.Warnings[i].Path || c.Warnings[i].Msg != again.Warnings[i].Msg {
				t.Fatalf("warning %v became %v", c.Warnings[i], again.Warnings[i])
			}
		}
		c.Warnings, again.Warnings = nil, nil
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("marshal and parse changed the config:\n%s", out)
		}
	})
}

// checkUsable asserts what the service relies on without checking.
func checkUsable(t *testing.T, c *Config) {
	t.Helper()
	if len(c.Clusters) == 0 || c.Auth.AdminToken.IsZero() || c.WinRM.Password.IsZero() || c.DataDir == "" {
		t.Fatalf("accepted without clusters, admin token, WinRM password or data_dir: %+v", c)
	}
	for _, cl := range c.Clusters {
		if cl.Servers == nil || len(cl.Servers) == 0 || len(cl.API.Endpoints) == 0 || cl.API.Password.IsZero() || cl.HookToken.IsZero() {
			t.Fatalf("cluster %q accepted incomplete: %+v", cl.Name, cl)
		}
		if got := len(c.Hosts(cl.Name)); got != len(cl.Servers) {
			t.Fatalf("cluster %q: %d hosts for %d servers", cl.Name, got, len(cl.Servers))
		}
		for _, h := range c.Hosts(cl.Name) {
			if _, ok := cl.Servers[h.Server]; !ok || h.Host == "" || h.Port == 0 {
				t.Fatalf("cluster %q: host %+v", cl.Name, h)
			}
		}
	}
	for i := range c.Pairs {
		p := &c.Pairs[i]
		if p.VMName == "" {
			t.Fatalf("pair %q without a VM name", p.Name)
		}
		for _, s := range []Side{p.Primary, p.Replica} {
			if _, ok := c.Cluster(s.Cluster); !ok {
				t.Fatalf("pair %q names cluster %q, which is missing", p.Name, s.Cluster)
			}
		}
	}
}

// TestFuzzSeedsValid makes sure the fuzzer starts from configs Parse
// accepts, so the checks on an accepted Config run at all.
func TestFuzzSeedsValid(t *testing.T) {
	opts := []Option{WithFiles(fuzzFiles{}), WithEnv(fuzzEnv)}
	for _, seed := range []string{string(exampleYAML(t)), strings.ReplaceAll(minimal, "/abs/hook-b", "/fuzz/secrets/hook-b"),
		strings.ReplaceAll(mergeYAML, "/abs/hook-b", "/fuzz/secrets/hook-b")} {
		c, err := Parse([]byte(seed), "/fuzz", opts...)
		if err != nil {
			t.Fatalf("seed refused: %v", err)
		}
		checkUsable(t, c)
	}
}

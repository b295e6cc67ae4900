package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestExampleLoads(t *testing.T) {
	dir := exampleDir(t)
	// Relative paths start at the config's folder, not the working directory.
	t.Chdir(t.TempDir())
	c, err := Load(filepath.Join(dir, "hvro.yaml"))
	if err != nil {
		t.Fatalf("the example does not load:\n%v", err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"data_dir", c.DataDir, filepath.Join(dir, "data")},
		{"admin token file", c.Auth.AdminTokenFile, filepath.Join(dir, "secrets/admin.token")},
		{"admin token", c.Auth.AdminToken.Value(), secretValues["secrets/admin.token"]},
		{"winrm password", c.WinRM.Password.Value(), secretValues["secrets/winrm.pass"]},
		{"cluster1 api password", c.Clusters[0].API.Password.Value(), secretValues["secrets/ecx-cluster1.pass"]},
		{"cluster2 api password", c.Clusters[1].API.Password.Value(), secretValues["secrets/ecx-cluster2.pass"]},
		{"cluster1 hook token", c.Clusters[0].HookToken.Value(), secretValues["secrets/hook-cluster1.token"]},
		{"cluster2 hook token", c.Clusters[1].HookToken.Value(), secretValues["secrets/hook-cluster2.token"]},
		{"winrm username", c.WinRM.Username, `CORP\svc-hvro`},
		{"endpoints", c.Clusters[0].API.Endpoints, []string{"http://192.0.2.10:29009", "http://192.0.2.11:29009"}},
		{"cluster2 retries (default)", c.Clusters[1].API.Retries, 2},
		{"servers", len(c.Clusters[1].Servers), 2},
		{"vm path", c.Pairs[0].Replica.VMConfigPath, `T:\VMs\Hyper-V Replica\Virtual Machines\C520D71E-AE84-40D6-A2B5-B1F697821703.vmcx`},
		{"frequency", c.Pairs[0].Replication.Frequency, 300 * time.Second},
		{"max_wait", c.Hooks.MaxWait, 10 * time.Minute},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.what, ch.got, ch.want)
		}
	}
	// What the docs tell admins to copy must not send secrets in cleartext.
	for _, w := range c.Warnings {
		t.Errorf("the example warns: %v", w)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

// minimal holds only what has no default.
const minimal = `
auth: {admin_token_env: HVRO_ADMIN_TOKEN}
winrm: {username: svc, password_env: HVRO_WINRM_PASS}
clusters:
  - name: a
    api: {endpoints: ["http://a:29009"], username: u, password_env: HVRO_WINRM_PASS}
    hook_token_env: HVRO_HOOK_SHARED
    servers: {n1: {winrm: "http://n1:5985/wsman"}}
  - name: b
    api: {endpoints: ["http://b:29009"], username: u, password_env: HVRO_WINRM_PASS}
    hook_token_file: /abs/hook-b
    servers: {n2: {winrm: "http://n2:5985/wsman"}}
pairs:
  - name: vm1
    primary: {cluster: a, group: ga, vm_config_path: 'C:\VMs\vm1.vmcx'}
    replica: {cluster: b, group: gb, vm_config_path: 'C:\Replica\vm1.vmcx'}
`

// fakeFiles serves secret files from memory, mode 0600 unless modes says.
type fakeFiles struct {
	files map[string]string
	modes map[string]fs.FileMode
	errs  map[string]error
}

type fakeInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (f fakeInfo) Name() string       { return filepath.Base(f.name) }
func (f fakeInfo) Size() int64        { return f.size }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return nil }

func (f fakeFiles) Stat(name string) (fs.FileInfo, error) {
	content, ok := f.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	mode, ok := f.modes[name]
	if !ok {
		mode = 0o600
	}
	return fakeInfo{name, int64(len(content)), mode}, nil
}

func (f fakeFiles) ReadFile(name string) ([]byte, error) {
	if err := f.errs[name]; err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	content, ok := f.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(content), nil
}

func TestDefaultsApplied(t *testing.T) {
	files := fakeFiles{files: map[string]string{"/abs/hook-b": "hook-b-0123456789abcdef\n"}}
	c, err := Parse([]byte(minimal), "/etc/hvro", WithEnv(fakeEnv), WithFiles(files))
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.DataDir = "/etc/hvro/data" // resolved against the config folder
	got := *c
	got.Clusters, got.Pairs, got.lines, got.Warnings = nil, nil, nil, nil // warnings: TestWarnings
	got.Auth = want.Auth
	got.WinRM.Username, got.WinRM.PasswordEnv, got.WinRM.Password = "", "", Secret{}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("top-level defaults:\n got %+v\nwant %+v", got, *want)
	}
	if !c.Auth.MetricsPublic {
		t.Error("auth.metrics_public should default to true")
	}
	dc := DefaultCluster()
	for _, cl := range c.Clusters {
		if cl.API.Timeout != dc.API.Timeout || cl.API.Retries != dc.API.Retries || cl.PollInterval != dc.PollInterval {
			t.Errorf("cluster %s: api.timeout %v, retries %d, poll_interval %v: defaults not applied", cl.Name, cl.API.Timeout, cl.API.Retries, cl.PollInterval)
		}
	}
	p := c.Pairs[0]
	if p.VMName != "vm1" {
		t.Errorf("vm_name = %q, want the pair's name", p.VMName)
	}
	if !reflect.DeepEqual(p.Replication, DefaultPair().Replication) {
		t.Errorf("replication = %+v, want the defaults %+v", p.Replication, DefaultPair().Replication)
	}
	if c.Clusters[1].HookToken.Value() != "hook-b-0123456789abcdef" {
		t.Errorf("hook token of b: trailing newline not trimmed")
	}
}

func TestExplicitZeroValuesStay(t *testing.T) {
	data := mutate(t, []byte(minimal),
		edit{"pairs[0].replication", "{compression: false}"},
		edit{"auth.metrics_public", "false"},
		edit{"clusters[0].api.retries", "0"})
	files := fakeFiles{files: map[string]string{"/abs/hook-b": "hook-b-0123456789abcdef"}}
	c, err := Parse(data, "/etc/hvro", WithEnv(fakeEnv), WithFiles(files))
	if err != nil {
		t.Fatal(err)
	}
	if c.Pairs[0].Replication.Compression || c.Auth.MetricsPublic || c.Clusters[0].API.Retries != 0 {
		t.Errorf("an explicit false/0 was replaced by the default: compression %v, metrics_public %v, retries %d",
			c.Pairs[0].Replication.Compression, c.Auth.MetricsPublic, c.Clusters[0].API.Retries)
	}
	if c.Pairs[0].Replication.Frequency != 300*time.Second {
		t.Errorf("a partly given replication lost its other defaults: %+v", c.Pairs[0].Replication)
	}
}

func TestManyProblemsAtOnce(t *testing.T) {
	dir := exampleDir(t)
	data := mutate(t, exampleYAML(t),
		edit{"listen", "nope"},
		edit{"log_level", "loud"},
		edit{"winrm.timeout", "60"},
		edit{"winrm.colour", "blue"},
		edit{"clusters[0].api.endpoints", `["ftp://x:1"]`},
		edit{"clusters[1].servers.node3.winrm", `"htp://x"`},
		edit{"clusters[1].name", "cluster1"},
		edit{"pairs[0].replication.frequency", "60s"},
		edit{"pairs[0].replication.port", "0"},
		edit{"auth.admin_token_file", "secrets/missing"},
	)
	_, err := Parse(data, dir)
	ps := problemsOf(t, err)
	want := []string{
		"listen", "log_level", "auth.admin_token_file", "winrm.timeout", "winrm.colour",
		"clusters[0].api.endpoints[0]", "clusters[1].name", "clusters[1].servers.node3.winrm",
		"pairs[0].replica.cluster", "pairs[0].replication.port", "pairs[0].replication.frequency",
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Path)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems, in file order:\n got %q\nwant %q\n%v", got, want, err)
	}
	for i := 1; i < len(ps); i++ {
		if ps[i].Line < ps[i-1].Line {
			t.Errorf("problems not in file order: %v before %v", ps[i-1], ps[i])
		}
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("Error() has %d lines, want one per problem:\n%v", len(lines), err)
	}
	var first *Problem
	if !errors.As(err, &first) || first.Path != "listen" {
		t.Errorf("errors.As(*Problem) = %v, want the listen problem", first)
	}
}

// TestProblemFormat builds a config in code, as the lab does, so no line
// numbers are known: the message is exactly the documented form.
func TestProblemFormat(t *testing.T) {
	c := codeBuilt()
	if err := c.Validate(); err != nil {
		t.Fatalf("a config built in code from the defaults: %v", err)
	}
	c.Clusters[1].Servers["node3"] = Server{WinRM: "htp://x"}
	err := c.Validate()
	want := `clusters[1].servers.node3.winrm: "htp://x" is not an http(s) URL`
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v\nwant %s", err, want)
	}
	p := &Problem{Path: "winrm.timeout", Line: 12, Msg: "x"}
	if got := p.Error(); got != "winrm.timeout (line 12): x" {
		t.Errorf("with a line: %q", got)
	}
	p = &Problem{Line: 3, Msg: "not valid YAML"}
	if got := p.Error(); got != "(line 3): not valid YAML" {
		t.Errorf("without a path: %q", got)
	}
}

func codeBuilt() *Config {
	c := Defaults()
	c.Auth.AdminToken = NewSecret("admin-token-0123456789")
	c.WinRM.Username = `LAB\admin`
	c.WinRM.Password = NewSecret("lab-pass")
	for i, name := range []string{"cluster1", "cluster2"} {
		cl := DefaultCluster()
		cl.Name = name
		cl.API.Endpoints = []string{fmt.Sprintf("http://127.0.0.1:%d", 29009+i)}
		cl.API.Username = "Administrator"
		cl.API.Password = NewSecret("lab-pass")
		cl.HookToken = NewSecret(fmt.Sprintf("hook-token-%d-0123456789", i))
		cl.Servers = map[string]Server{
			fmt.Sprintf("node%d", 2*i+1): {WinRM: fmt.Sprintf("http://127.0.0.1:%d/wsman", 15985+2*i)},
			fmt.Sprintf("node%d", 2*i+2): {WinRM: fmt.Sprintf("http://127.0.0.1:%d/wsman", 15986+2*i)},
		}
		c.Clusters = append(c.Clusters, cl)
	}
	p := DefaultPair()
	p.Name = "vm1"
	p.Primary = Side{Cluster: "cluster1", Group: "failover1", VMConfigPath: `T:\VMs\vm1.vmcx`}
	p.Replica = Side{Cluster: "cluster2", Group: "failover2", VMConfigPath: `T:\Replica\vm1.vmcx`}
	c.Pairs = append(c.Pairs, p)
	return c
}

func TestSecretRedaction(t *testing.T) {
	dir := exampleDir(t)
	c, err := Load(filepath.Join(dir, "hvro.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		fmt.Fprintf(&buf, verb+"\n"+verb+"\n", c, *c)
	}
	fmt.Fprintf(&buf, "%v %+v %#v %+v\n", c.Auth.AdminToken, c.WinRM, c.Clusters, c.Clusters[0].API)
	// A struct that hides a Secret in an unexported field: fmt cannot call
	// its methods there, but sees only a pointer.
	hidden := struct{ s Secret }{c.Auth.AdminToken}
	fmt.Fprintf(&buf, "%v %+v %#v\n", hidden, hidden, hidden)
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(j)
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(y)
	y, err = yaml.Marshal(map[string]any{"secret": c.Auth.AdminToken, "cluster": c.Clusters[0]})
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(y)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c, "token", c.Auth.AdminToken, "cluster", c.Clusters[0])
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c, "token", c.Auth.AdminToken, "cluster", c.Clusters[0])
	out := buf.String()
	assertNoSecret(t, "printing a Config", out)
	if !strings.Contains(out, "[redacted]") {
		t.Errorf("no [redacted] in the output:\n%s", out)
	}
	if got := fmt.Sprint(Secret{}); got != "[unset]" {
		t.Errorf("an unset Secret prints %q", got)
	}
	if got := fmt.Sprintf("%q", c.Auth.AdminToken); got != `"[redacted]"` {
		t.Errorf("%%q prints %s", got)
	}
}

func TestSecretEqual(t *testing.T) {
	s := NewSecret("token-0123456789abcdef")
	if !s.Equal("token-0123456789abcdef") || s.Equal("token-0123456789abcdeF") || s.Equal("") {
		t.Error("Equal compares wrongly")
	}
	var unset Secret
	if unset.Equal("") || !unset.IsZero() || unset.Value() != "" {
		t.Error("an unset Secret must equal nothing")
	}
}

func TestSecretFileMode(t *testing.T) {
	cases := []struct {
		mode fs.FileMode
		want string // "" = accepted
	}{
		{0o600, ""},
		{0o400, ""},
		{0o700, ""},
		{0o640, "mode 0640: must not be readable by group or others (chmod 600 $F)"},
		{0o644, "mode 0644: must not be readable by group or others (chmod 600 $F)"},
		{0o604, "mode 0604: must not be readable by group or others (chmod 600 $F)"},
		{0o620, "mode 0620: must not grant group or others any access (chmod 600 $F)"},
		{0o601, "mode 0601: must not grant group or others any access (chmod 600 $F)"},
	}
	for _, tc := range cases {
		t.Run(tc.mode.String(), func(t *testing.T) {
			dir := exampleDir(t)
			f := filepath.Join(dir, "secrets/winrm.pass")
			chmod(t, f, tc.mode)
			_, err := Load(filepath.Join(dir, "hvro.yaml"))
			want := strings.ReplaceAll(tc.want, "$F", f)
			ps := problemsOf(t, err)
			switch {
			case want == "" && err != nil:
				t.Fatalf("mode %04o refused: %v", tc.mode, err)
			case want != "" && (len(ps) != 1 || ps[0].Path != "winrm.password_file" || ps[0].Msg != want):
				t.Fatalf("got %v\nwant winrm.password_file: %s", err, want)
			}
			if _, err := Load(filepath.Join(dir, "hvro.yaml"), WithModeCheck(false)); err != nil {
				t.Errorf("without the mode check: %v", err)
			}
		})
	}
}

func TestSecretFileUnreadable(t *testing.T) {
	files := fakeFiles{
		files: map[string]string{"/abs/hook-b": "hook-b-0123456789abcdef"},
		errs:  map[string]error{"/abs/hook-b": fs.ErrPermission},
	}
	_, err := Parse([]byte(minimal), "/etc/hvro", WithEnv(fakeEnv), WithFiles(files))
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].Path != "clusters[1].hook_token_file" || !strings.Contains(ps[0].Msg, "permission denied") {
		t.Fatalf("got %v, want one permission problem at clusters[1].hook_token_file", err)
	}
}

// countingFiles counts Stat and ReadFile calls per name.
type countingFiles struct {
	Files
	stats, reads map[string]int
}

func (c countingFiles) Stat(name string) (fs.FileInfo, error) {
	c.stats[name]++
	return c.Files.Stat(name)
}

func (c countingFiles) ReadFile(name string) ([]byte, error) {
	c.reads[name]++
	return c.Files.ReadFile(name)
}

// TestSecretFileStatOnce: a secret file is looked at once (type, mode and
// size from one Stat), then read once.
func TestSecretFileStatOnce(t *testing.T) {
	files := countingFiles{Files: fakeFiles{files: map[string]string{"/abs/hook-b": "hook-b-0123456789abcdef"}},
		stats: map[string]int{}, reads: map[string]int{}}
	if _, err := Parse([]byte(minimal), "/etc/hvro", WithEnv(fakeEnv), WithFiles(files)); err != nil {
		t.Fatal(err)
	}
	if files.stats["/abs/hook-b"] != 1 || files.reads["/abs/hook-b"] != 1 {
		t.Errorf("/abs/hook-b: %d Stat and %d ReadFile calls, want 1 and 1", files.stats["/abs/hook-b"], files.reads["/abs/hook-b"])
	}
}

func TestSecretFileShapes(t *testing.T) {
	cases := []struct{ name, content, want string }{
		{"newline trimmed", "hook-b-0123456789abcdef\n", ""},
		{"CRLF trimmed", "hook-b-0123456789abcdef\r\n", ""},
		{"BOM dropped", "\ufeffhook-b-0123456789abcdef\n", ""},
		{"empty", "", "is empty"},
		{"blank", "  \n", "is empty"},
		{"two lines", "a-0123456789abcdef\nb\n", "has more than one line"},
		{"huge", strings.Repeat("x", maxSecretFile+1), "a secret file holds the secret on one line"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := fakeFiles{files: map[string]string{"/abs/hook-b": tc.content}}
			c, err := Parse([]byte(minimal), "/etc/hvro", WithEnv(fakeEnv), WithFiles(files))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := c.Clusters[1].HookToken.Value(); got != "hook-b-0123456789abcdef" {
					t.Errorf("token %q", got)
				}
				return
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 || !strings.Contains(ps[0].Msg, tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestEnvAndFile(t *testing.T) {
	data := mutate(t, []byte(minimal), edit{"auth", "{admin_token_env: HVRO_ADMIN_TOKEN}"})
	files := fakeFiles{files: map[string]string{"/abs/hook-b": "hook-b-0123456789abcdef"}}
	c, err := Parse(data, "/etc/hvro", WithEnv(fakeEnv), WithFiles(files))
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.AdminToken.Value() != envValues["HVRO_ADMIN_TOKEN"] || c.Clusters[0].HookToken.Value() != envValues["HVRO_HOOK_SHARED"] {
		t.Error("secrets from variables not read")
	}
	if c.Clusters[1].HookToken.Value() != "hook-b-0123456789abcdef" {
		t.Error("secret from a file not read")
	}
	// Without WithEnv the process environment is used.
	t.Setenv("HVRO_ADMIN_TOKEN", "process-env-token-0123")
	t.Setenv("HVRO_WINRM_PASS", "x")
	t.Setenv("HVRO_HOOK_SHARED", "process-env-hook-0123")
	c, err = Parse(data, "/etc/hvro", WithFiles(files))
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.AdminToken.Value() != "process-env-token-0123" {
		t.Error("os environment not used by default")
	}
}

func TestRelativePaths(t *testing.T) {
	files := fakeFiles{files: map[string]string{
		"/etc/hvro/secrets/b.token": "hook-b-0123456789abcdef",
	}}
	data := mutate(t, []byte(minimal),
		edit{"clusters[1].hook_token_file", "secrets/b.token"},
		edit{"data_dir", "/var/lib/hvro"})
	c, err := Parse(data, "/etc/hvro", WithEnv(fakeEnv), WithFiles(files))
	if err != nil {
		t.Fatal(err)
	}
	if c.Clusters[1].HookTokenFile != "/etc/hvro/secrets/b.token" {
		t.Errorf("relative secret path = %q", c.Clusters[1].HookTokenFile)
	}
	if c.DataDir != "/var/lib/hvro" {
		t.Errorf("absolute data_dir changed to %q", c.DataDir)
	}
}

func TestDecodeYAMLFeatures(t *testing.T) {
	files := fakeFiles{files: map[string]string{"/abs/hook-b": "hook-b-0123456789abcdef"}}
	cases := []struct {
		name, yaml string
		want       []string // "path (line N): message part"; empty = valid
	}{
		{"empty file", "", []string{"auth.admin_token_file: required", "winrm.username: required", "winrm.password_file: required", "clusters: required"}},
		{"only a comment", "# nothing\n", []string{"auth.admin_token_file: required", "winrm.username: required", "winrm.password_file: required", "clusters: required"}},
		{"not YAML", "listen: [\n", []string{"(line 1): not valid YAML: did not find expected node content"}},
		{"tab indent", "winrm:\n\tusername: x\n", []string{"(line 2): not valid YAML: found character that cannot start any token"}},
		{"root is a list", "- a\n", []string{"(line 1): expected a mapping (key: value), got a list"}},
		{"two documents", minimal + "---\nlisten: x\n", []string{"(line 17): the file holds more than one YAML document"}},
		{"duplicate key", minimal + "listen: :1\nlisten: :2\n", []string{`listen (line 18): key "listen" appears twice (first on line 17)`}},
		{"merge keys and anchors", mergeYAML, nil},
		{"anchor holder key", "x-api: &api {username: u}\n" + minimal, []string{`x-api (line 1): unknown key "x-api"`}},
		{"alias cycle", minimal + "hooks: &h {max_wait: *h}\n", []string{`hooks.max_wait (line 17): alias "*h" refers to a value that contains it`}},
		{"merge cycle", minimal + "hooks: &h {<<: *h}\n", []string{`hooks (line 17): alias "*h" refers to a value that contains it`}},
		{"merge of a scalar", minimal + "hooks: {<<: 5}\n", []string{`hooks (line 17): << merges a mapping or a list of mappings, not "5"`}},
		{"billion laughs", laughs, []string{`x (line 1): unknown key "x"`, "the document is too large or uses too many aliases"}},
		{"custom tag", minimal + "listen: !vault abc\n", []string{"listen (line 17): tag !vault is not supported here"}},
		{"key is a list", minimal + "[a]: b\n", []string{"(line 17): a key must be a plain name, not a list"}},
		{"unknown keys everywhere", strings.NewReplacer("name: vm1", "name: vm1\n    nmae: x", "winrm: {", "winrm: {usr: x, ").Replace(minimal), []string{
			`winrm.usr (line 3): unknown key "usr"`, `pairs[0].nmae (line 15): unknown key "nmae"; did you mean "name"?`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "/etc/hvro", WithEnv(fakeEnv), WithFiles(files))
			ps := problemsOf(t, err)
			if len(tc.want) == 0 && err != nil {
				t.Fatal(err)
			}
			if len(ps) != len(tc.want) {
				t.Errorf("want %d problems, got %d:\n%v", len(tc.want), len(ps), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("want a problem %q, got:\n%v", w, err)
				}
			}
		})
	}
}

// mergeYAML shares settings through anchors and merge keys.
const mergeYAML = `
auth: {admin_token_env: HVRO_ADMIN_TOKEN}
winrm: {username: svc, password_env: HVRO_WINRM_PASS}
clusters:
  - name: a
    api: &api {username: u, password_env: HVRO_WINRM_PASS, timeout: 7s, endpoints: ["http://a:29009"]}
    hook_token_env: HVRO_HOOK_SHARED
    servers: {n1: {winrm: "http://n1:5985/wsman"}}
  - name: b
    api: {<<: *api, endpoints: ["http://b:29009"], timeout: 9s}
    hook_token_file: /abs/hook-b
    servers: {n2: {winrm: "http://n2:5985/wsman"}}
pairs:
  - name: vm1
    primary: {cluster: a, group: ga, vm_config_path: 'C:\VMs\vm1.vmcx'}
    replica: {cluster: b, group: gb, vm_config_path: 'C:\Replica\vm1.vmcx'}
`

// laughs nests merges ten deep, ten wide: 10^10 keys once expanded.
var laughs = func() string {
	var b strings.Builder
	b.WriteString("x:\n  - &m0 {max_wait: 1s}\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "  - &m%d {<<: [%s]}\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d, ", i-1), 10), ", "))
	}
	b.WriteString("hooks: {<<: *m9}\n")
	return b.String()
}()

func TestMergeKeys(t *testing.T) {
	files := fakeFiles{files: map[string]string{"/abs/hook-b": "hook-b-0123456789abcdef"}}
	c, err := Parse([]byte(mergeYAML), "/etc/hvro", WithEnv(fakeEnv), WithFiles(files))
	if err != nil {
		t.Fatal(err)
	}
	if c.Clusters[0].API.Timeout != 7*time.Second || c.Clusters[1].API.Timeout != 9*time.Second || c.Clusters[1].API.Username != "u" {
		t.Errorf("merge: a %+v, b %+v", c.Clusters[0].API, c.Clusters[1].API)
	}
}

func TestPrintDefaults(t *testing.T) {
	var buf bytes.Buffer
	if err := PrintDefaults(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "defaults.yaml")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("PrintDefaults differs from %s (go test -update):\n%s", golden, buf.String())
	}

	// What it prints decodes, key for key, into the defaults.
	c := Defaults()
	ps := &problems{lines: map[string]int{}}
	if _, ok := decodeDocument(buf.Bytes(), c, ps); !ok || ps.err() != nil {
		t.Fatalf("the printed defaults do not decode: %v", ps.err())
	}
	top := *c
	top.Clusters, top.Pairs = nil, nil
	if !reflect.DeepEqual(&top, Defaults()) {
		t.Errorf("printed top-level defaults differ:\n got %+v\nwant %+v", top, *Defaults())
	}
	wantCluster := DefaultCluster()
	if len(c.Clusters) != 1 || !reflect.DeepEqual(c.Clusters[0], wantCluster) {
		t.Errorf("printed cluster entry %+v, want %+v", c.Clusters, wantCluster)
	}
	if len(c.Pairs) != 1 || !reflect.DeepEqual(c.Pairs[0], DefaultPair()) {
		t.Errorf("printed pair entry %+v, want %+v", c.Pairs, DefaultPair())
	}
}

// TestDocsCoverEveryKey keeps PrintDefaults' comments in step with the types.
func TestDocsCoverEveryKey(t *testing.T) {
	seen := map[string]bool{}
	var walk func(t reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		switch typ.Kind() {
		case reflect.Struct:
			if typ == durationType {
				return
			}
			for i := range typ.NumField() {
				f := typ.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if !f.IsExported() || name == "" || name == "-" {
					continue
				}
				fp := name
				if path != "" {
					fp = path + "." + name
				}
				seen[fp] = true
				if _, ok := docs[fp]; !ok {
					t.Errorf("docs has no entry for %s", fp)
				}
				walk(f.Type, fp)
			}
		case reflect.Slice:
			walk(typ.Elem(), path+"[]")
		case reflect.Map:
			walk(typ.Elem(), path+".*")
		}
	}
	walk(reflect.TypeFor[Config](), "")
	for k := range docs {
		if !seen[k] {
			t.Errorf("docs has %s, which is no key", k)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	dir := exampleDir(t)
	c, err := Load(filepath.Join(dir, "hvro.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(out, t.TempDir())
	if err != nil {
		t.Fatalf("yaml.Marshal of a Config does not load again: %v\n%s", err, out)
	}
	c.lines, again.lines = nil, nil
	if !reflect.DeepEqual(c, again) {
		t.Errorf("round trip changed the config:\n%s", out)
	}
}

func TestLookups(t *testing.T) {
	c := codeBuilt()
	c.Clusters[1].Servers = map[string]Server{
		"NODE3":         {WinRM: "https://node3.lab.local/wsman"},
		"hv5.lab.local": {WinRM: "http://10.0.0.6:5985/wsman"},
		"node4":         {WinRM: "http://10.0.0.4:15988/wsman"},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if hs := c.Hosts("cluster1"); len(hs) != 2 || hs[0].Server != "node1" || hs[1].URL != "http://127.0.0.1:15986/wsman" {
		t.Errorf("Hosts(cluster1) = %+v", hs)
	}
	want := []struct {
		server, host string
		port         int
		https        bool
	}{
		{"NODE3", "node3.lab.local", 5986, true},
		{"hv5.lab.local", "10.0.0.6", 5985, false},
		{"node4", "10.0.0.4", 15988, false},
	}
	hs := c.Hosts("cluster2")
	if len(hs) != len(want) {
		t.Fatalf("Hosts(cluster2) = %+v", hs)
	}
	for i, w := range want {
		h := hs[i]
		if h.Cluster != "cluster2" || h.Server != w.server || h.Host != w.host || h.Port != w.port || h.HTTPS != w.https {
			t.Errorf("Hosts(cluster2)[%d] = %+v, want %+v", i, h, w)
		}
		if h.WinRM.Username != `LAB\admin` || h.WinRM.Password.Value() != "lab-pass" {
			t.Errorf("Hosts(cluster2)[%d] lacks the WinRM settings: %+v", i, h)
		}
	}
	if hs := c.Hosts("cluster9"); hs != nil {
		t.Errorf("Hosts of an unknown cluster: %+v", hs)
	}
	if cl, ok := c.Cluster("cluster2"); !ok || cl != &c.Clusters[1] {
		t.Error("Cluster(cluster2)")
	}
}

package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/orchestrator/metrics"
)

func read(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// ---------------------------------------------------------------- ECX scripts

// hookLine is the invocation both scripts must carry, phase aside: the flags
// of hvro hook (CONTRACTS.md section 2), every value quoted for paths and
// URLs with spaces or & in them.
func hookLine(phase string) string {
	return `"%HVRO_EXE%" hook --url "%HVRO_URL%" --cluster "%HVRO_CLUSTER%" --group "%HVRO_GROUP%" --phase ` + phase +
		` --token-file "%HVRO_TOKEN_FILE%" --wait "%HVRO_WAIT%" %HVRO_CA_ARGS% %HVRO_EXTRA_ARGS%`
}

// crlfLines checks Windows line endings throughout and splits on them.
func crlfLines(t *testing.T, name string, data []byte) []string {
	t.Helper()
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		t.Errorf("%s: does not end with CRLF", name)
	}
	for i, b := range data {
		switch {
		case b == '\n' && (i == 0 || data[i-1] != '\r'):
			t.Errorf("%s: byte %d: LF without CR (the file must keep CRLF line endings)", name, i)
			return nil
		case b == '\r' && (i+1 == len(data) || data[i+1] != '\n'):
			t.Errorf("%s: byte %d: CR without LF", name, i)
			return nil
		}
	}
	return strings.Split(strings.TrimSuffix(string(data), "\r\n"), "\r\n")
}

var (
	gotoLabel = regexp.MustCompile(`\bgoto (\S+)$`)
	exitCode  = regexp.MustCompile(`(?i)exit /b (\S+)`)
)

func isComment(l string) bool {
	l = strings.ToLower(strings.TrimSpace(l))
	return l == "" || strings.HasPrefix(l, "rem ") || l == "rem" || strings.HasPrefix(l, "::")
}

func TestECXScripts(t *testing.T) {
	code := map[string][]string{}
	for _, phase := range []string{"start", "stop"} {
		name := filepath.Join("ecx", phase+".bat")
		lines := crlfLines(t, name, read(t, name))
		idx := func(want string) int {
			return slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == want })
		}
		cd := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, `cd /d "%CLP_SCRIPT_PATH%"`) })
		env := idx(`call "hvro-hook.env.bat"`)
		hook := idx(hookLine(phase))
		switch {
		case cd < 0:
			t.Errorf(`%s: no line starts with cd /d "%%CLP_SCRIPT_PATH%%"`, name)
		case env < 0:
			t.Errorf(`%s: no call "hvro-hook.env.bat"`, name)
		case hook < 0:
			t.Errorf("%s: the hook invocation is missing or changed; want the line\n%s", name, hookLine(phase))
		case !(cd < env && env < hook):
			t.Errorf("%s: want cd (line %d) before the env file (line %d) before the hook (line %d)", name, cd+1, env+1, hook+1)
		case hook+1 >= len(lines) || lines[hook+1] != "exit /b %ERRORLEVEL%":
			t.Errorf("%s: the line after the hook must be exit /b %%ERRORLEVEL%%, so that ECX gets hvro hook's exit code", name)
		}
		other := map[string]string{"start": "stop", "stop": "start"}[phase]
		labels := map[string]bool{}
		for _, l := range lines {
			if strings.HasPrefix(l, ":") && !strings.HasPrefix(l, "::") {
				labels[strings.ToLower(strings.TrimPrefix(l, ":"))] = true
			}
		}
		for i, l := range lines {
			if isComment(l) {
				continue
			}
			code[phase] = append(code[phase], l)
			low := strings.ToLower(strings.TrimSpace(l))
			where := fmt.Sprintf("%s:%d: %s", name, i+1, l)
			// Cluster-Set's scripts read %ERRORLEVEL% inside ( ) blocks, where
			// cmd expands it before the block runs: no blocks here at all.
			if strings.HasSuffix(low, "(") || strings.HasPrefix(low, ")") {
				t.Errorf("%s: a parenthesised block", where)
			}
			if strings.Contains(low, "enabledelayedexpansion") || strings.Contains(l, "!") {
				t.Errorf("%s: delayed expansion; keep the script without it", where)
			}
			if strings.Contains(low, "--phase "+other) {
				t.Errorf("%s: --phase %s in the %s script", where, other, phase)
			}
			for _, f := range strings.Fields(low) {
				if f == "exit" && !strings.Contains(low, "exit /b") {
					t.Errorf("%s: exit without /b", where)
				}
			}
			if m := gotoLabel.FindStringSubmatch(low); m != nil && !labels[strings.TrimPrefix(m[1], ":")] {
				t.Errorf("%s: goto %s: no such label", where, m[1])
			}
		}
		// Every exit code a script produces itself is 2 (configuration), or
		// the hook's own.
		for _, l := range code[phase] {
			if m := exitCode.FindStringSubmatch(l); m != nil && m[1] != "2" && m[1] != "%ERRORLEVEL%" {
				t.Errorf("%s: %q: a script's own exit code must be 2 (configuration error)", name, l)
			}
		}
	}
	// The two scripts are one script with two phases.
	start := strings.Join(code["start"], "\n")
	stop := strings.ReplaceAll(strings.Join(code["stop"], "\n"), "--phase stop", "--phase start")
	if start != stop {
		t.Errorf("start.bat and stop.bat differ in more than the phase:\n--- start\n%s\n--- stop\n%s", start, stop)
	}
}

func TestECXEnvExample(t *testing.T) {
	name := filepath.Join("ecx", "hvro-hook.env.bat.example")
	lines := crlfLines(t, name, read(t, name))
	set := map[string]bool{}
	setLine := regexp.MustCompile(`^set "(HVRO_[A-Z_]+)=[^"]*"$`)
	for i, l := range lines {
		if isComment(l) || l == "@echo off" {
			continue
		}
		m := setLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf(`%s:%d: %q: only set "HVRO_NAME=value" lines belong in the settings file`, name, i+1, l)
			continue
		}
		set[m[1]] = true
	}
	for _, v := range []string{"HVRO_URL", "HVRO_CLUSTER", "HVRO_GROUP", "HVRO_TOKEN_FILE"} {
		if !set[v] {
			t.Errorf("%s: does not set %s, which the scripts require", name, v)
		}
	}
	script := string(read(t, filepath.Join("ecx", "start.bat")))
	for v := range set {
		if !strings.Contains(script, "%"+v+"%") {
			t.Errorf("%s sets %s, which start.bat never uses", name, v)
		}
	}
}

// --------------------------------------------------------------------- systemd

// unitDirectives reads a unit file into section.key -> values, in order.
func unitDirectives(t *testing.T, data []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = strings.Trim(l, "[]")
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				t.Fatalf("hvro.service:%d: %q is not key=value inside a section", i+1, l)
			}
			out[section+"."+strings.TrimSpace(k)] = append(out[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	d := unitDirectives(t, read(t, filepath.Join("systemd", "hvro.service")))
	want := map[string]string{
		"Service.User":                     "hvro",
		"Service.Group":                    "hvro",
		"Service.ExecStart":                "/usr/local/bin/hvro serve --config /etc/hvro/hvro.yaml",
		"Service.ExecReload":               "/bin/kill -HUP $MAINPID",
		"Service.KillSignal":               "SIGTERM",
		"Service.Restart":                  "on-failure",
		"Service.RestartPreventExitStatus": "2",
		"Service.StateDirectory":           "hvro",
		"Service.ConfigurationDirectory":   "hvro",
		"Service.ProtectSystem":            "strict",
		"Service.ProtectHome":              "yes",
		"Service.PrivateTmp":               "yes",
		"Service.NoNewPrivileges":          "yes",
		"Service.CapabilityBoundingSet":    "",
		"Service.AmbientCapabilities":      "",
		"Service.RestrictAddressFamilies":  "AF_INET AF_INET6 AF_UNIX",
		"Service.UMask":                    "0077",
		"Install.WantedBy":                 "multi-user.target",
	}
	for k, v := range want {
		got, ok := d[k]
		switch {
		case !ok:
			t.Errorf("hvro.service: %s= is missing (want %q)", k, v)
		case len(got) != 1 || got[0] != v:
			t.Errorf("hvro.service: %s=%q, want exactly %q", k, got, v)
		}
	}
	if !slices.Contains(d["Service.SystemCallFilter"], "@system-service") {
		t.Errorf("hvro.service: SystemCallFilter=%q lacks @system-service", d["Service.SystemCallFilter"])
	}
	if _, ok := d["Service.DynamicUser"]; ok {
		t.Error("hvro.service: DynamicUser= is set; the unit runs as the fixed user hvro (README.md says why)")
	}
	// The drain must fit into the stop timeout, or systemd kills hvro in
	// the middle of a step.
	stop, err := time.ParseDuration(strings.Join(d["Service.TimeoutStopSec"], ""))
	if err != nil {
		t.Fatalf("hvro.service: TimeoutStopSec=%q: want a plain duration such as 150s: %v", d["Service.TimeoutStopSec"], err)
	}
	if drain := config.Defaults().ShutdownTimeout; stop < drain+15*time.Second {
		t.Errorf("hvro.service: TimeoutStopSec=%s leaves no margin above the default shutdown_timeout %s", stop, drain)
	}
}

// TestSystemdVerify lets systemd itself judge the unit, where it is
// installed: systemd-analyze verify and security work without systemd
// running as PID 1.
func TestSystemdVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; TestSystemdUnit checks the text")
	}
	dir := t.TempDir()
	// verify insists that ExecStart's binary exists: point it at a stub.
	stub := filepath.Join(dir, "hvro")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(read(t, filepath.Join("systemd", "hvro.service"))), "/usr/local/bin/hvro", stub)
	path := filepath.Join(dir, "hvro.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Exposure 0 (locked down) to 10 (unprotected); the unit scores about 1.1.
	out, err = exec.Command(sa, "security", "--offline=yes", "--threshold=20", "--no-pager", path).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("unrecognized option")) {
			t.Logf("this systemd-analyze has no offline security check:\n%s", out)
			return
		}
		t.Errorf("systemd-analyze security: exposure above 2.0 or an error: %v\n%s", err, lastLines(out, 3))
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// ------------------------------------------------------------------ promtool

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("HVRO_SKIP_PROMTOOL") == "1" {
		t.Skip("promtool not installed and HVRO_SKIP_PROMTOOL=1")
	}
	t.Fatal("promtool not found: apt-get install -y prometheus (.ci/run does), or set HVRO_SKIP_PROMTOOL=1")
	return ""
}

func runPromtool(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestAlertRulesPromtool(t *testing.T) {
	// A broken rule proves that promtool here can fail.
	canary := filepath.Join(t.TempDir(), "broken.yml")
	if err := os.WriteFile(canary, []byte("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(x[5m])\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runPromtool(t, ".", "check", "rules", canary); err == nil {
		t.Fatalf("promtool check rules accepted a broken expression:\n%s", out)
	}
	if out, err := runPromtool(t, "prometheus", "check", "rules", "alerts.yml"); err != nil {
		t.Errorf("promtool check rules alerts.yml: %v\n%s", err, out)
	}
	if out, err := runPromtool(t, "prometheus", "test", "rules", "alerts_test.yml"); err != nil {
		t.Errorf("promtool test rules alerts_test.yml: %v\n%s", err, out)
	}
}

// grafanaVars stands in for Grafana's variables so that promtool can parse
// the dashboard's queries.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	"$instance", ".*", "$pair", ".*", "$cluster", ".*", "$host", ".*",
)

// TestDashboardQueriesParse runs every dashboard query through promtool as a
// recording rule: a typo in PromQL fails here, not in front of an admin.
func TestDashboardQueriesParse(t *testing.T) {
	var rules []map[string]string
	for i, q := range dashboardQueries(t) {
		if q.template {
			continue // label_values() is Grafana's, not PromQL
		}
		if strings.Contains(grafanaVars.Replace(q.expr), "$") {
			t.Errorf("%s: a Grafana variable the test does not know: %s", q.where, q.expr)
		}
		rules = append(rules, map[string]string{"record": fmt.Sprintf("dashboard:query_%d", i), "expr": grafanaVars.Replace(q.expr)})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard.yml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runPromtool(t, ".", "check", "rules", path); err != nil {
		t.Errorf("the dashboard's queries do not parse: %v\n%s", err, out)
	}
}

// ------------------------------------------------------------ metric names

type query struct {
	where    string // panel or rule, for messages
	expr     string
	legend   string
	template bool // a label_values() query of a template variable
}

type dashboard struct {
	SchemaVersion int    `json:"schemaVersion"`
	UID           string `json:"uid"`
	Title         string `json:"title"`
	Panels        []struct {
		ID         int             `json:"id"`
		Type       string          `json:"type"`
		Title      string          `json:"title"`
		Datasource json.RawMessage `json:"datasource"`
		GridPos    struct{ X, Y, W, H int }
		Targets    []struct {
			RefID        string          `json:"refId"`
			Expr         string          `json:"expr"`
			LegendFormat string          `json:"legendFormat"`
			Datasource   json.RawMessage `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Type       string          `json:"type"`
			Name       string          `json:"name"`
			Query      json.RawMessage `json:"query"`
			Datasource json.RawMessage `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string          `json:"name"`
			Expr       string          `json:"expr"`
			Datasource json.RawMessage `json:"datasource"`
		} `json:"list"`
	} `json:"annotations"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(read(t, filepath.Join("grafana", "hvro.json")), &d); err != nil {
		t.Fatalf("grafana/hvro.json: %v", err)
	}
	return d
}

func dashboardQueries(t *testing.T) []query {
	t.Helper()
	d := loadDashboard(t)
	var qs []query
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			qs = append(qs, query{where: fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), expr: tg.Expr, legend: tg.LegendFormat})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Fatalf("variable %s: query is neither an object nor a string: %s", v.Name, v.Query)
			}
		}
		qs = append(qs, query{where: "variable " + v.Name, expr: q.Query, template: true})
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			qs = append(qs, query{where: "annotation " + a.Name, expr: a.Expr})
		}
	}
	return qs
}

func alertQueries(t *testing.T) []query {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []struct{ Alert, Record, Expr string }
		}
	}
	if err := yaml.Unmarshal(read(t, filepath.Join("prometheus", "alerts.yml")), &f); err != nil {
		t.Fatalf("prometheus/alerts.yml: %v", err)
	}
	var qs []query
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{where: "alert " + r.Alert + r.Record, expr: r.Expr})
		}
	}
	return qs
}

// family is what the registry says about one exported metric.
type family struct {
	typ    string
	help   string
	labels map[string]bool
}

// exported creates hvro's real metrics, gives every vector a child and
// gathers the registry.
func exported(t *testing.T) map[string]family {
	t.Helper()
	m := metrics.New("test")
	m.Operation("reconcile", "succeeded", time.Second)
	m.Step("register", "ok", time.Second)
	m.Pair("vm1", "Converged", "Normal", time.Now())
	m.QueueDepth(1)
	m.WinRM("node1", "ok", time.Second)
	m.ECX("cluster1", "http://192.0.2.10:29009", "ok")
	m.GroupOwner("cluster1", "failover1", "node1")
	m.Hook("cluster1", "start", "ok")
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]family{}
	for _, f := range fams {
		fam := family{typ: f.GetType().String(), help: f.GetHelp(), labels: map[string]bool{}}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				fam.labels[l.GetName()] = true
			}
		}
		out[f.GetName()] = fam
	}
	return out
}

var (
	metricName = regexp.MustCompile(`\b(?:hvro_[a-z_]+|up)\b`)
	selector   = regexp.MustCompile(`\b(hvro_[a-z_]+|up)\s*\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	grouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
	legendVar  = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	// Prometheus adds these to every series it scrapes.
	targetLabels = map[string]bool{"job": true, "instance": true}
)

// labelValues are the values hvro documents for some labels (the Help of
// each metric lists them, which the test checks, so a change in
// metrics.go shows up here).
var labelValues = map[string]map[string][]string{
	"hvro_pair_state":           {"state": metrics.PairStates},
	"hvro_hook_requests_total":  {"outcome": {"ok", "degraded", "failed", "pending", "rejected"}},
	"hvro_ecx_requests_total":   {"outcome": {"ok", "auth", "not_found", "api_error", "transport", "decode"}},
	"hvro_operations_total":     {"outcome": {"succeeded", "failed", "abandoned", "interrupted"}, "kind": {"reconcile", "stop-hook", "failover-planned", "failover-unplanned"}},
	"hvro_winrm_requests_total": {"outcome": {"ok", "transient", "permanent", "unknown"}},
}

// resolve maps a name used in PromQL to the exported family: histograms
// are queried through their _bucket, _sum and _count series.
func resolve(fams map[string]family, name string) (string, family, bool) {
	if f, ok := fams[name]; ok {
		return name, f, true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if f, ok := fams[base]; ok && (f.typ == "HISTOGRAM" || f.typ == "SUMMARY") {
				if suf == "_bucket" {
					f.labels = mapWith(f.labels, "le")
				}
				return base, f, true
			}
		}
	}
	return "", family{}, false
}

func mapWith(m map[string]bool, k string) map[string]bool {
	c := map[string]bool{k: true}
	for x := range m {
		c[x] = true
	}
	return c
}

// reporter is the part of *testing.T that checkQuery uses.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// checkQuery reports names, label names and label values that hvro does
// not export; it returns the exported families the query uses.
func checkQuery(t reporter, fams map[string]family, q query) []string {
	t.Helper()
	var used []string
	labelsHere := map[string]bool{"le": true}
	for k := range targetLabels {
		labelsHere[k] = true
	}
	for _, name := range metricName.FindAllString(q.expr, -1) {
		if name == "up" {
			continue // Prometheus's own; its selector is checked below
		}
		base, f, ok := resolve(fams, name)
		if !ok {
			t.Errorf("%s: %s is not a metric hvro exports\n  query: %s", q.where, name, q.expr)
			continue
		}
		used = append(used, base)
		for l := range f.labels {
			labelsHere[l] = true
		}
	}
	for _, m := range selector.FindAllStringSubmatch(q.expr, -1) {
		name, body := m[1], m[2]
		if name == "up" {
			if !strings.Contains(body, `job="hvro"`) {
				t.Errorf(`%s: up{%s} without job="hvro" is not about hvro`, q.where, body)
			}
			continue
		}
		base, f, ok := resolve(fams, name)
		if !ok {
			continue // reported above
		}
		for _, mm := range matcher.FindAllStringSubmatch(body, -1) {
			label, op, value := mm[1], mm[2], mm[3]
			if !f.labels[label] && !targetLabels[label] {
				t.Errorf("%s: %s has no label %q (it has %v)", q.where, name, label, keys(f.labels))
				continue
			}
			allowed := labelValues[base][label]
			if allowed == nil || strings.Contains(value, "$") {
				continue
			}
			vals := []string{value}
			if op == "=~" || op == "!~" {
				vals = strings.Split(value, "|")
			}
			for _, v := range vals {
				if !slices.Contains(allowed, v) {
					t.Errorf("%s: %s{%s%s%q}: %q is not one of %v", q.where, name, label, op, value, v, allowed)
				}
			}
		}
	}
	for _, m := range grouping.FindAllStringSubmatch(q.expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !labelsHere[l] {
				t.Errorf("%s: groups by %q, a label none of its metrics has\n  query: %s", q.where, l, q.expr)
			}
		}
	}
	for _, m := range legendVar.FindAllStringSubmatch(q.legend, -1) {
		if !labelsHere[m[1]] {
			t.Errorf("%s: legend {{%s}}: no such label in the query's metrics", q.where, m[1])
		}
	}
	return used
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestMetricNamesAreExported(t *testing.T) {
	fams := exported(t)
	for metric, ls := range labelValues {
		f, ok := fams[metric]
		if !ok {
			t.Errorf("labelValues names %s, which hvro does not export", metric)
			continue
		}
		for label, vals := range ls {
			if !f.labels[label] {
				t.Errorf("%s has no label %s", metric, label)
			}
			if label != "state" && !strings.Contains(f.help, strings.Join(vals, ", ")) {
				t.Errorf("%s: Help %q no longer lists %s values %v: update labelValues", metric, f.help, label, vals)
			}
		}
	}

	onDashboard := map[string]bool{}
	for _, q := range dashboardQueries(t) {
		for _, name := range checkQuery(t, fams, q) {
			onDashboard[name] = true
		}
	}
	inAlerts := map[string]bool{}
	for _, q := range alertQueries(t) {
		for _, name := range checkQuery(t, fams, q) {
			inAlerts[name] = true
		}
	}
	if len(onDashboard) == 0 || len(inAlerts) == 0 {
		t.Fatalf("found no hvro metric in the dashboard (%d) or the alerts (%d): the extraction is broken", len(onDashboard), len(inAlerts))
	}
	var missing []string
	for name := range fams {
		if strings.HasPrefix(name, "hvro_") && !onDashboard[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Logf("exported but not on the dashboard: %s", strings.Join(missing, ", "))
	}
}

// TestMetricCheckCanFail feeds the checker queries with mistakes it must
// catch; otherwise a broken extraction would pass every dashboard.
func TestMetricCheckCanFail(t *testing.T) {
	fams := exported(t)
	bad := []query{
		{where: "unknown metric", expr: `rate(hvro_pair_moves_total[5m])`},
		{where: "histogram without suffix check", expr: `hvro_queue_depth_bucket`},
		{where: "wrong label", expr: `hvro_pair_state{pair="vm1",phase="Degraded"}`},
		{where: "wrong state", expr: `hvro_pair_state{state="Failed"}`},
		{where: "wrong outcome in a regex", expr: `hvro_hook_requests_total{outcome=~"failed|error"}`},
		{where: "up of another job", expr: `up{job="node"} == 0`},
		{where: "grouping by a missing label", expr: `sum by (node) (hvro_winrm_requests_total)`},
		{where: "legend", expr: `hvro_queue_depth`, legend: "{{pair}}"},
	}
	for _, q := range bad {
		rec := &recorder{}
		checkQuery(rec, fams, q)
		if len(rec.errs) == 0 {
			t.Errorf("%s: %s passed the check", q.where, q.expr)
		}
	}
	good := query{where: "good", expr: `histogram_quantile(0.9, sum by (le, host) (rate(hvro_winrm_request_duration_seconds_bucket{instance=~".*"}[5m])))`, legend: "{{host}}"}
	rec := &recorder{}
	checkQuery(rec, fams, good)
	if len(rec.errs) > 0 {
		t.Errorf("a correct query failed the check: %v", rec.errs)
	}
}

// recorder collects what checkQuery reports, for TestMetricCheckCanFail.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// ------------------------------------------------------------------ dashboard

func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion != 39 || d.UID != "hvro" || d.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q: want 39, hvro and a title", d.SchemaVersion, d.UID, d.Title)
	}
	const ds = `${DS_PROMETHEUS}`
	dsOK := func(raw json.RawMessage) bool {
		var v struct{ Type, UID string }
		return json.Unmarshal(raw, &v) == nil && v.Type == "prometheus" && v.UID == ds
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" && !dsOK(v.Datasource) {
			t.Errorf("variable %s: datasource %s, want the %s variable", v.Name, v.Datasource, ds)
		}
	}
	if vars["DS_PROMETHEUS"] != "datasource" {
		t.Errorf("no datasource variable DS_PROMETHEUS (variables: %v)", vars)
	}
	var pairQuery string
	for _, q := range dashboardQueries(t) {
		if q.where == "variable pair" {
			pairQuery = q.expr
		}
	}
	if !regexp.MustCompile(`^label_values\(hvro_pair_state(\{[^}]*\})?, *pair\)$`).MatchString(pairQuery) {
		t.Errorf("variable pair: query %q, want label_values(hvro_pair_state, pair)", pairQuery)
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" && !dsOK(a.Datasource) {
			t.Errorf("annotation %s: datasource %s, want %s", a.Name, a.Datasource, ds)
		}
	}

	ids := map[int]string{}
	type rect struct {
		title      string
		x, y, w, h int
	}
	var placed []rect
	for _, p := range d.Panels {
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is outside the 24-column grid", p.Title, g)
		}
		r := rect{p.Title, g.X, g.Y, g.W, g.H}
		for _, o := range placed {
			if r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h {
				t.Errorf("panels %q and %q overlap", o.title, r.title)
			}
		}
		placed = append(placed, r)
		if p.Type == "row" {
			continue
		}
		if !dsOK(p.Datasource) {
			t.Errorf("panel %q: datasource %s, want %s", p.Title, p.Datasource, ds)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] {
				t.Errorf("panel %q: two queries with refId %s", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if !dsOK(tg.Datasource) || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q query %s: empty or not on %s", p.Title, tg.RefID, ds)
			}
		}
	}
}

// ------------------------------------------------------------------- Windows

// TestWindowsInstallParses parses install.ps1 with tree-sitter-powershell
// (test/pstool, as the replica driver's scripts are), next to a broken
// canary that proves the parser rejects errors. Like that check, a missing
// tool is a failure: .ci/run installs it.
func TestWindowsInstallParses(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (%v): install Node.js, then run: (cd test/pstool && npm ci)", err)
	}
	tool := filepath.Join("..", "test", "pstool")
	for _, dep := range []string{"web-tree-sitter", "tree-sitter-powershell"} {
		if _, err := os.Stat(filepath.Join(tool, "node_modules", dep)); err != nil {
			t.Fatalf("%s is not installed: run: (cd test/pstool && npm ci)", dep)
		}
	}
	canary := filepath.Join(t.TempDir(), "canary.ps1")
	if err := os.WriteFile(canary, []byte("if ($x { 'unclosed'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join("windows", "install.ps1")
	out, err := exec.Command(node, filepath.Join(tool, "parse.mjs"), canary, script).CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte(canary+":")) {
		t.Fatalf("parse.mjs did not reject a broken script (exit %v):\n%s", err, out)
	}
	if bytes.Contains(out, []byte(script+":")) {
		t.Errorf("tree-sitter-powershell rejects %s:\n%s", script, out)
	}
	// The steps the README promises.
	text := string(read(t, script))
	for _, want := range []string{
		"#Requires -RunAsAdministrator",
		"service install --config $configPath --name $Name",
		"check-config --config $configPath",
		"SetAccessRuleProtection($true, $false)",
		"'S-1-5-18'",     // SYSTEM
		"'S-1-5-32-544'", // Administrators
	} {
		if !strings.Contains(text, want) {
			t.Errorf("%s: missing %q", script, want)
		}
	}
}

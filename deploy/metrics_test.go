package deploy

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hvro/hvro/orchestrator/metrics"
)

type query struct {
	where    string // panel or rule, for messages
	expr     string
	legend   string
	template bool // a label_values() query of a template variable
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
	m.Step("register", time.Second)
	m.Pair("vm1", "Converged", "Normal", "", time.Now())
	m.Pair("vm2", "Degraded", "", "auth_refused", time.Time{})
	m.QueueDepth(1)
	m.WinRM("node1", "ok", time.Second)
	m.WinRMAbandoned("node1")
	m.HostIdentity("node1", false)
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

package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

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

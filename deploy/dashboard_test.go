package deploy

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hvro/hvro/orchestrator/metrics"
)

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

// TestDashboardStateCodes: the "Pair state" panel encodes each state as a
// number in PromQL and names the numbers in its value mappings; both must
// agree, and cover every state hvro exports.
func TestDashboardStateCodes(t *testing.T) {
	type mapping struct {
		Options map[string]struct{ Text string }
	}
	type panel struct {
		Title       string
		Targets     []struct{ Expr string }
		FieldConfig struct{ Defaults struct{ Mappings []mapping } }
	}
	var d struct{ Panels []panel }
	if err := json.Unmarshal(read(t, filepath.Join("grafana", "hvro.json")), &d); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(d.Panels, func(p panel) bool { return p.Title == "Pair state" })
	if i < 0 || len(d.Panels[i].Targets) != 1 || len(d.Panels[i].FieldConfig.Defaults.Mappings) != 1 {
		t.Fatal(`no "Pair state" panel with one query and one value mapping`)
	}
	expr := d.Panels[i].Targets[0].Expr
	names := map[string]string{}
	for code, m := range d.Panels[i].FieldConfig.Defaults.Mappings[0].Options {
		names[m.Text] = code
	}
	coded := regexp.MustCompile(`(\d+) \* hvro_pair_state\{[^}]*state="(\w+)"\}`).FindAllStringSubmatch(expr, -1)
	if len(coded) != len(metrics.PairStates) {
		t.Errorf("the query codes %d states, hvro exports %d (%v)", len(coded), len(metrics.PairStates), metrics.PairStates)
	}
	for _, c := range coded {
		if names[c[2]] != c[1] {
			t.Errorf("state %s is %s in the query but %q in the value mapping", c[2], c[1], names[c[2]])
		}
		if !slices.Contains(metrics.PairStates, c[2]) {
			t.Errorf("state %s is not one hvro exports", c[2])
		}
	}
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

package api

import (
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// promqlWords are PromQL's keywords, which look like metric names.
var promqlWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
	"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true, "le": true}

// metricNames returns the metric names a PromQL expression (or a Grafana
// label_values() query) reads: identifiers that are not functions (followed
// by "("), keywords, label matchers, grouping labels, durations or strings.
func metricNames(expr string) []string {
	for _, re := range []string{`"[^"]*"`, `\{[^}]*\}`, `\[[^\]]*\]`, `\b(?:by|without|on|ignoring)\s*\([^)]*\)`, `\$\w+`, `,\s*\w+\)`} {
		expr = regexp.MustCompile(re).ReplaceAllString(expr, " ")
	}
	var out []string
	for _, m := range regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`).FindAllString(expr, -1) {
		if strings.HasSuffix(m, "(") || promqlWords[m] {
			continue
		}
		out = append(out, m)
	}
	return out
}

// TestGrafanaDashboardUsesRealMetrics: every metric deploy/grafana/sculpt.json
// reads, in its panels and its variables, is in what /metrics serves after
// an interval with one of everything; every panel has a query.
func TestGrafanaDashboardUsesRealMetrics(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/sculpt.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("deploy/grafana/sculpt.json: %v", err)
	}
	srv, ts := newTestServer(t, nil, nil)
	srv.Publish(fixture())
	release := fixture() // an undo because no rule wants the arrangement
	release.Step.Undone[0].Event = "undone"
	srv.Publish(release)
	srv.Reverted(release.Step.Applied[:1])
	resp, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		served[regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`).FindString(line)] = true
	}
	exprs := map[string]string{} // expression -> where
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs[tg.Expr] = "panel " + p.Title
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok && v.Type == "query" {
			exprs[q] = "variable " + v.Name
		}
	}
	used := map[string]bool{}
	for expr, where := range exprs {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, n := range names {
			used[n] = true
			if !served[n] {
				t.Errorf("%s reads %s, which /metrics does not serve (expr %q)", where, n, expr)
			}
		}
	}
	// The dashboard covers what sculpt exports of its own.
	for name := range served {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(name, "sculpt_") && !used[name] && !used[base+"_bucket"] && !used[base+"_sum"] {
			t.Errorf("the dashboard shows nothing of %s", name)
		}
	}
}

func TestMetricNames(t *testing.T) {
	got := metricNames(`histogram_quantile(0.99, sum by (le, workload) (rate(sculpt_x_bucket{instance=~"$instance", a="b"}[$__rate_interval]))) / on (x) sculpt_y == 1`)
	if strings.Join(got, " ") != "sculpt_x_bucket sculpt_y" {
		t.Errorf("metricNames: %q", got)
	}
	if got := metricNames(`label_values(sculpt_workload_gene{instance=~"$instance"}, gene)`); strings.Join(got, " ") != "sculpt_workload_gene" {
		t.Errorf("metricNames of label_values: %q", got)
	}
}

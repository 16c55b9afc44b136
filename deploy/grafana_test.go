package deploy

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

const dashboardPath = "deploy/grafana/hammer.json"

// TestGrafanaDashboard checks that deploy/grafana/hammer.json is a dashboard
// Grafana can import, whose queries name only metrics the code registers,
// and that it shows what an operator looks at first.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name, Type string
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(readFile(t, dashboardPath), &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("%s: no uid or title", dashboardPath)
	}
	if len(dash.Templating.List) == 0 || dash.Templating.List[0].Type != "datasource" {
		t.Errorf("%s: the first variable should pick the Prometheus data source", dashboardPath)
	}

	registered := registeredMetrics(t)
	// Histograms are queried through their series.
	suffix := regexp.MustCompile(`_(bucket|sum|count)$`)
	name := regexp.MustCompile(`\bhammer_[a-z0-9_]+`)
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("%s: panel id %d used twice", dashboardPath, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", dashboardPath, p.Title)
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("%s: panel %q does not use the datasource variable", dashboardPath, p.Title)
		}
		for _, target := range p.Targets {
			if target.Expr == "" || target.RefID == "" {
				t.Errorf("%s: panel %q has an empty query", dashboardPath, p.Title)
			}
			if strings.Count(target.Expr, "(") != strings.Count(target.Expr, ")") {
				t.Errorf("%s: panel %q: unbalanced parentheses in %s", dashboardPath, p.Title, target.Expr)
			}
			for _, m := range name.FindAllString(target.Expr, -1) {
				base := m
				if _, ok := registered[base]; !ok {
					base = suffix.ReplaceAllString(m, "")
				}
				if _, ok := registered[base]; !ok {
					t.Errorf("%s: panel %q queries %s, which no code registers", dashboardPath, p.Title, m)
				}
				used[base] = true
			}
		}
	}
	for _, want := range []string{
		"hammer_api_messages_accepted_total",       // ingest rate
		"hammer_delivery_outcomes_total",           // deliveries by result
		"hammer_delivery_request_duration_seconds", // request duration
		"hammer_delivery_lag_seconds",              // lag
		"hammer_jetstream_consumer_pending",        // backlog
		"hammer_delivery_held_total",               // held retries
		"hammer_http_requests_total",               // API rate and errors
		"hammer_http_request_duration_seconds",     // API latency
	} {
		if !used[want] {
			t.Errorf("%s: no panel shows %s", dashboardPath, want)
		}
	}
}

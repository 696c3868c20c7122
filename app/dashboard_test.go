package app

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestDashboardQueriesNameExportedMetrics checks that every metric the
// Grafana dashboard (config/grafana/dashboards/eventflow.json) queries is on
// a live eventflow's /metrics, once events of every kind went through it.
func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	t.Parallel()
	queried := dashboardMetricNames(t, "../config/grafana/dashboards/eventflow.json")
	if len(queried) == 0 {
		t.Fatal("the dashboard queries no metric")
	}

	cfg, err := readConfig([]string{"DATABASE_URL=postgres://nowhere.invalid:1/x", "REDIS_URL=redis://nowhere.invalid:1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dev, cfg.Transport, cfg.AutoMigrate = true, TransportMemory, false
	cfg.HTTPAddr, cfg.MetricsAddr, cfg.LogLevel = "127.0.0.1:0", "127.0.0.1:0", "WARN"
	h := startWithoutDB(t, cfg)

	// Labelled series exist only once something was counted: an accepted,
	// a duplicate, a rejected, a processed, a dead-lettered and a replayed
	// event.
	ok, bad := uuid.NewString(), uuid.NewString()
	for _, body := range []string{orderBody(ok), orderBody(ok), signupBody(bad, "nope")} {
		if res := h.post("/v1/events", body); res.status != http.StatusAccepted {
			t.Fatalf("post: %d %s", res.status, res.body)
		}
	}
	if res := h.post("/v1/events", `{"event_type":"no.such.type","source":"test","payload":{}}`); res.status != http.StatusUnprocessableEntity {
		t.Fatalf("post an unknown type: %d %s, want 422", res.status, res.body)
	}
	for id, want := range map[string]string{ok: "processed", bad: "failed"} {
		eventually(t, 5*time.Second, "event "+want, func() bool {
			res := h.do(http.MethodGet, "/v1/events/"+id, nil)
			return res.status == http.StatusOK && strings.Contains(string(res.body), `"status":"`+want+`"`)
		})
	}
	// A replay, for events_replayed_total; the event fails again.
	if res := h.post("/v1/dead-letters/"+bad+"/replay", ""); res.status/100 != 2 {
		t.Logf("replay a dead letter: %d %s", res.status, res.body)
	}

	exported := scrapedMetricNames(t, h.metrics+"/metrics")
	var missing []string
	for _, name := range queried {
		if !exported[name] && !exported[name+"_bucket"] && !exported[name+"_count"] && !exported[name+"_sum"] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the dashboard queries metrics that /metrics does not have: %s", strings.Join(missing, ", "))
	}
}

// scrapedMetricNames returns the names of the series on a /metrics page.
func scrapedMetricNames(t *testing.T, url string) map[string]bool {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// dashboardMetricNames returns the metric names the queries of a Grafana
// dashboard use, sorted. (config/config_test.go has the same extractor; test
// code of two packages cannot share it.)
func dashboardMetricNames(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels json.RawMessage `json:"panels"` // a collapsed row's
	}
	var d struct {
		Panels json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	names := map[string]bool{}
	var walk func(json.RawMessage)
	walk = func(raw json.RawMessage) {
		var panels []panel
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &panels); err != nil {
				t.Fatalf("parse %s: panels: %v", path, err)
			}
		}
		for _, p := range panels {
			for _, target := range p.Targets {
				for _, name := range promqlMetricNames(target.Expr) {
					names[name] = true
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return slices.Sorted(maps.Keys(names))
}

// promqlMetricNames returns the metric names a PromQL expression uses,
// sorted: its identifiers, less function names (followed by "("),
// keywords, label names, durations, numbers and Grafana variables;
// histogram series (_bucket, _sum, _count) by their base name.
func promqlMetricNames(expr string) []string {
	for _, re := range promqlNoise {
		expr = re.ReplaceAllString(expr, " ")
	}
	names := map[string]bool{}
	for _, loc := range promqlToken.FindAllStringIndex(expr, -1) {
		tok := expr[loc[0]:loc[1]]
		rest := strings.TrimLeft(expr[loc[1]:], " \t\n")
		if tok[0] >= '0' && tok[0] <= '9' || strings.HasPrefix(rest, "(") || promqlKeywords[strings.ToLower(tok)] {
			continue
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(tok, suffix); ok && base != "" {
				tok = base
				break
			}
		}
		names[tok] = true
	}
	return slices.Sorted(maps.Keys(names))
}

var (
	// promqlNoise is what holds no metric name, removed in this order:
	// string literals, Grafana variables, range and subquery selectors,
	// label matchers, and grouping and vector-matching clauses.
	promqlNoise = []*regexp.Regexp{
		regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`"),
		regexp.MustCompile(`\$\{[^}]*\}|\$\w+`),
		regexp.MustCompile(`\[[^\]]*\]`),
		regexp.MustCompile(`\{[^}]*\}`),
		regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`),
	}
	// promqlToken is a number or duration (from a digit on), or an identifier.
	promqlToken    = regexp.MustCompile(`[0-9][0-9a-zA-Z_.]*|[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlKeywords = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"bool": true, "offset": true, "and": true, "or": true, "unless": true, "atan2": true,
		"inf": true, "nan": true,
	}
)

// Tests of the observability configuration: the Compose file, the Prometheus
// scrape configuration and the Grafana provisioning and dashboard, read as
// the tools read them and checked against each other and against what
// eventflow exports. app/dashboard_test.go checks the dashboard's metric
// names against a live /metrics scrape.
package config_test

import (
	"encoding/json"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// repoRoot is where docker-compose.yml lives; the Compose file's relative
// paths start there.
const repoRoot = ".."

// composePath is the Compose file with the observability services:
// config/docker-compose.full.yml until it replaces docker-compose.yml.
func composePath(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("docker-compose.full.yml"); err == nil {
		return "docker-compose.full.yml"
	}
	return filepath.Join(repoRoot, "docker-compose.yml")
}

// specVariables are the environment variables eventflow reads (SPEC §4 and
// the README's configuration table) that the Compose file may set.
var specVariables = []string{
	"EVENTFLOW_TRANSPORT", "DATABASE_URL", "REDIS_URL", "EVENTFLOW_HTTP_ADDR",
	"EVENTFLOW_METRICS_ADDR", "EVENTFLOW_STREAM", "EVENTFLOW_CONSUMER_GROUP",
	"EVENTFLOW_API_KEYS", "EVENTFLOW_AUTO_MIGRATE", "EVENTFLOW_STRICT_INGEST",
	"EVENTFLOW_CONSUMER_NAME", "EVENTFLOW_WORKER_CONCURRENCY", "EVENTFLOW_LOG_LEVEL",
	"EVENTFLOW_LOG_FORMAT", "EVENTFLOW_SHUTDOWN_TIMEOUT", "EVENTFLOW_REDELIVERY_IDLE",
	"EVENTFLOW_DEAD_LETTER_RETENTION",
}

// exportedMetrics are the metric names eventflow serves on /metrics (README,
// "Observability"), histograms by their base name.
var exportedMetrics = []string{
	"events_received_total", "events_processed_total", "events_failed_total",
	"events_duplicates_total", "events_rejected_total", "events_relayed_total", "event_retries_total",
	"events_replayed_total",
	"queue_depth", "queue_oldest_age_seconds", "active_workers", "dead_letters", "dead_letter_oldest_age_seconds",
	"event_processing_duration_seconds", "event_end_to_end_seconds",
	// Watermill's router metrics.
	"handler_execution_time_seconds", "subscriber_messages_received_total", "publish_time_seconds",
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string   `yaml:"image"`
	Build       any      `yaml:"build"`
	Command     []string `yaml:"command"`
	Environment any      `yaml:"environment"` // a map, or a list of NAME=value
	Volumes     []string `yaml:"volumes"`     // short syntax, source:target[:mode]
	Deploy      struct {
		Replicas *int `yaml:"replicas"`
	} `yaml:"deploy"`
}

// env returns the service's environment as a map.
func (s composeService) env(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	switch e := s.Environment.(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			env[k] = stringOf(v)
		}
	case []any:
		for _, item := range e {
			k, v, _ := strings.Cut(stringOf(item), "=")
			env[k] = v
		}
	default:
		t.Fatalf("environment of type %T, want a map or a list", e)
	}
	return env
}

func stringOf(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// mounts returns the service's bind mounts, target → source relative to
// the repository root.
func (s composeService) mounts() map[string]string {
	m := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && (strings.HasPrefix(parts[0], "./") || strings.HasPrefix(parts[0], "../")) {
			m[parts[1]] = filepath.Clean(parts[0])
		}
	}
	return m
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, composePath(t), &c)
	for _, name := range []string{"postgres", "redis", "migrate", "api", "worker", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("%s: no service %q", composePath(t), name)
		}
	}
	return c
}

func TestCompose_EventflowServicesSetOnlySpecVariables(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	var eventflow []string
	for name, s := range c.Services {
		if s.Build == nil && !strings.Contains(s.Image, "eventflow") {
			continue
		}
		eventflow = append(eventflow, name)
		env := s.env(t)
		for k := range env {
			if !slices.Contains(specVariables, k) {
				t.Errorf("service %s sets %s, which eventflow does not read", name, k)
			}
		}
		if env["EVENTFLOW_TRANSPORT"] != "redis" || env["EVENTFLOW_METRICS_ADDR"] != ":9091" {
			t.Errorf("service %s: EVENTFLOW_TRANSPORT=%q EVENTFLOW_METRICS_ADDR=%q, want redis and :9091",
				name, env["EVENTFLOW_TRANSPORT"], env["EVENTFLOW_METRICS_ADDR"])
		}
	}
	slices.Sort(eventflow)
	if want := []string{"api", "migrate", "worker"}; !slices.Equal(eventflow, want) {
		t.Errorf("eventflow services %v, want %v", eventflow, want)
	}
	for _, name := range []string{"api", "worker"} {
		if got := c.Services[name].env(t)["EVENTFLOW_AUTO_MIGRATE"]; got != "false" {
			t.Errorf("service %s: EVENTFLOW_AUTO_MIGRATE=%q, want false (the migrate service applies them)", name, got)
		}
	}
}

func TestCompose_RedisKeepsEveryEvent(t *testing.T) {
	t.Parallel()
	cmd := readCompose(t).Services["redis"].Command
	for flag, want := range map[string]string{"--appendonly": "yes", "--appendfsync": "everysec", "--maxmemory-policy": "noeviction"} {
		i := slices.Index(cmd, flag)
		if i < 0 || i+1 >= len(cmd) || cmd[i+1] != want {
			t.Errorf("redis command %q, want %s %s", cmd, flag, want)
		}
	}
}

func TestCompose_TwoWorkerReplicas(t *testing.T) {
	t.Parallel()
	if r := readCompose(t).Services["worker"].Deploy.Replicas; r == nil || *r != 2 {
		t.Errorf("worker deploy.replicas = %v, want 2", r)
	}
}

func TestCompose_PrometheusAndGrafanaMountTheConfigFiles(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	tests := []struct {
		service string
		mounts  map[string]string // target → source
	}{
		{"prometheus", map[string]string{"/etc/prometheus/prometheus.yml": "config/prometheus.yml"}},
		{"grafana", map[string]string{
			"/etc/grafana/provisioning": "config/grafana/provisioning",
			"/etc/grafana/dashboards":   "config/grafana/dashboards",
		}},
	}
	for _, tt := range tests {
		mounts := c.Services[tt.service].mounts()
		for target, source := range tt.mounts {
			if mounts[target] != source {
				t.Errorf("%s mounts %q at %s, want %q", tt.service, mounts[target], target, source)
			}
		}
		for target, source := range mounts {
			if _, err := os.Stat(filepath.Join(repoRoot, source)); err != nil {
				t.Errorf("%s mounts %s at %s: %v", tt.service, source, target, err)
			}
		}
	}

	grafana := c.Services["grafana"].env(t)
	if grafana["GF_AUTH_ANONYMOUS_ENABLED"] != "true" || grafana["GF_AUTH_ANONYMOUS_ORG_ROLE"] != "Viewer" {
		t.Errorf("grafana environment %v, want anonymous Viewer access", grafana)
	}
	if home := grafana["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" && home != "/etc/grafana/dashboards/eventflow.json" {
		t.Errorf("grafana home dashboard %s is not the mounted eventflow.json", home)
	}

	// The provisioning points inside the mounts, at the Compose services.
	var providers struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/dashboards.yml", &providers)
	if len(providers.Providers) != 1 || providers.Providers[0].Type != "file" || providers.Providers[0].Options.Path != "/etc/grafana/dashboards" {
		t.Errorf("dashboard providers %+v, want one file provider reading /etc/grafana/dashboards", providers.Providers)
	}
	ds := readDatasource(t)
	if ds.URL != "http://prometheus:9090" || ds.Type != "prometheus" {
		t.Errorf("datasource %+v, want type prometheus at http://prometheus:9090", ds)
	}
}

type datasource struct {
	Name string `yaml:"name"`
	UID  string `yaml:"uid"`
	Type string `yaml:"type"`
	URL  string `yaml:"url"`
}

func readDatasource(t *testing.T) datasource {
	t.Helper()
	var f struct {
		Datasources []datasource `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/datasource.yml", &f)
	if len(f.Datasources) != 1 || f.Datasources[0].UID == "" {
		t.Fatalf("datasources %+v, want one, with a uid", f.Datasources)
	}
	return f.Datasources[0]
}

func TestPrometheus_ScrapesAPIAndEveryWorkerOnTheMetricsPort(t *testing.T) {
	t.Parallel()
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus.yml", &cfg)
	if len(cfg.ScrapeConfigs) == 0 {
		t.Fatal("prometheus.yml has no scrape_configs")
	}
	services := readCompose(t).Services
	scraped := map[string]bool{} // eventflow services scraped on :9091
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port, err := net.SplitHostPort(target)
				if err != nil {
					t.Errorf("job %s: target %q: %v", sc.JobName, target, err)
					continue
				}
				if _, ok := services[host]; ok && host != "prometheus" {
					scraped[host] = port == "9091"
				}
			}
		}
		for _, dns := range sc.DNSSDConfigs {
			for _, name := range dns.Names {
				if _, ok := services[name]; !ok {
					t.Errorf("job %s: DNS name %q is no Compose service", sc.JobName, name)
				}
				scraped[name] = dns.Type == "A" && dns.Port == 9091
			}
		}
	}
	for _, name := range []string{"api", "worker"} {
		if !scraped[name] {
			t.Errorf("service %s is not scraped on port 9091 (scraped: %v)", name, scraped)
		}
	}
}

// dashboard is the part of a Grafana dashboard these tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
}

type panel struct {
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a row's, when collapsed
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/dashboards/eventflow.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("parse eventflow.json: %v", err)
	}
	return d
}

// queryPanels returns the dashboard's panels that show data, rows' panels
// included.
func queryPanels(panels []panel) []panel {
	var out []panel
	for _, p := range panels {
		if p.Type == "row" {
			out = append(out, queryPanels(p.Panels)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// dashboardMetrics returns the metric names the dashboard's queries use,
// sorted.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	names := map[string]bool{}
	for _, p := range queryPanels(readDashboard(t).Panels) {
		for _, target := range p.Targets {
			for _, name := range metricNames(target.Expr) {
				names[name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(names))
}

func TestDashboard_IsProvisionable(t *testing.T) {
	t.Parallel()
	d := readDashboard(t)
	if d.UID != "eventflow" || d.SchemaVersion < 36 {
		t.Errorf("dashboard uid %q, schemaVersion %d; want eventflow and at least 36", d.UID, d.SchemaVersion)
	}
	uid := readDatasource(t).UID
	panels := queryPanels(d.Panels)
	if len(panels) == 0 {
		t.Fatal("dashboard has no panels")
	}
	for _, p := range panels {
		if p.Datasource == nil || p.Datasource.UID != uid {
			t.Errorf("panel %q: datasource %+v, want the provisioned uid %q", p.Title, p.Datasource, uid)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, target := range p.Targets {
			if len(metricNames(target.Expr)) == 0 {
				t.Errorf("panel %q: query %q names no metric", p.Title, target.Expr)
			}
			if strings.Contains(target.Expr, "histogram_quantile") && !strings.Contains(target.Expr, "_bucket[") {
				t.Errorf("panel %q: histogram_quantile over no _bucket series: %q", p.Title, target.Expr)
			}
		}
	}
}

func TestDashboard_ShowsExactlyTheExportedMetrics(t *testing.T) {
	t.Parallel()
	used := dashboardMetrics(t)
	for _, name := range used {
		if !slices.Contains(exportedMetrics, name) {
			t.Errorf("the dashboard queries %s, which eventflow does not export", name)
		}
	}
	for _, name := range exportedMetrics {
		if !slices.Contains(used, name) {
			t.Errorf("no dashboard panel shows %s", name)
		}
	}
}

func TestDashboard_MetricNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want []string
	}{
		{`sum by (event_type) (rate(events_received_total[$__rate_interval]))`, []string{"events_received_total"}},
		{`histogram_quantile(0.99, sum(rate(event_end_to_end_seconds_bucket{event_type=~"order.*"}[5m])) by (le))`, []string{"event_end_to_end_seconds"}},
		{`rate(a_sum[1m]) / rate(a_count[1m]) > bool 0.5 or on(instance) b offset 1h`, []string{"a", "b"}},
		{`max(queue_depth) unless ignoring(job) group_left(x) dead_letters * 1e3`, []string{"dead_letters", "queue_depth"}},
		{`label_replace(up{job="api"}, "role", "$1", "job", "(.*)") and ${metric}`, []string{"up"}},
		{`sum without (instance) (x:recorded:rate5m)`, []string{"x:recorded:rate5m"}},
	}
	for _, tt := range tests {
		if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// metricNames returns the metric names a PromQL expression uses, sorted:
// its identifiers, less function names (followed by "("), keywords, label
// names (in grouping clauses and label matchers), durations, numbers and
// Grafana variables; histogram series (_bucket, _sum, _count) by their
// base name.
func metricNames(expr string) []string {
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

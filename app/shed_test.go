package app

import (
	"fmt"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Load shedding end to end: an API with no worker lets the backlog grow
// past EVENTFLOW_SHED_BACKLOG and then refuses ingestion with 503, storing
// nothing, while reads and health checks go on; a worker drains the
// backlog and intake resumes. On each durable transport: the backlog is a
// consumer group's lag on Redis and the outbox's rows on Postgres.
func TestLoadShedBacklog(t *testing.T) {
	t.Parallel()
	for _, tr := range []string{TransportRedis, TransportPostgres} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			loadShedBacklog(t, tr)
		})
	}
}

func loadShedBacklog(t *testing.T, tr string) {
	cfg := testConfig(t, tr)
	cfg.ShedBacklog = 50
	if tr == TransportRedis {
		// Redis counts a group's lag only once the group exists, which
		// the first worker's subscription does; this test's worker comes
		// late.
		if err := redisClient(t, cfg.RedisURL).XGroupCreateMkStream(t.Context(), cfg.Stream, cfg.ConsumerGroup, "0").Err(); err != nil {
			t.Fatalf("create consumer group: %v", err)
		}
	}
	api := start(t, cfg, Roles{API: true})

	items := make([]string, 60)
	for i := range items {
		items[i] = fmt.Sprintf(`{"event_id":%q,"event_type":"page.view","source":"web","payload":{"url":"https://example.com/%d"}}`, uuid.NewString(), i)
	}
	if res := api.post("/v1/events/batch", `{"events":[`+strings.Join(items, ",")+`]}`); res.status != http.StatusAccepted {
		t.Fatalf("batch of 60: %d %s", res.status, res.body)
	}
	eventually(t, 10*time.Second, "load_shedding{reason=backlog} 1 with 60 events waiting", func() bool {
		return api.metricValue(`load_shedding{reason="backlog"}`) == 1
	})

	id := uuid.NewString()
	for _, path := range []string{"/v1/events", "/events"} {
		res := api.post(path, orderBody(id))
		if res.status != http.StatusServiceUnavailable {
			t.Fatalf("POST %s while shedding: %d %s", path, res.status, res.body)
		}
		if ra, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || ra < 1 || ra > 5 {
			t.Errorf("POST %s: Retry-After %q, want 1 to 5 seconds", path, res.header.Get("Retry-After"))
		}
		if p := res.problem(t); p.Type != "/problems/unavailable" || !strings.Contains(p.Detail, "backlog") {
			t.Errorf("POST %s: problem %+v, want one naming the backlog", path, p)
		}
	}
	if res := api.post("/v1/events/batch", `{"events":[`+orderBody(id)+`]}`); res.status != http.StatusServiceUnavailable {
		t.Fatalf("batch while shedding: %d %s", res.status, res.body)
	}
	if n := api.count("raw_events", "event_id = $1", id); n != 0 {
		t.Errorf("the refused event is in raw_events (%d rows)", n)
	}
	if n := api.count("raw_events", ""); n != 60 {
		t.Errorf("raw_events has %d rows, want the 60 accepted", n)
	}
	for _, path := range []string{"/healthz", "/readyz", "/v1/events/" + uuid.NewString()} {
		if res := api.do(http.MethodGet, path, nil); res.status == http.StatusServiceUnavailable {
			t.Errorf("GET %s while shedding: %d %s", path, res.status, res.body)
		}
	}
	if v := api.metricValue(`load_shed_total{reason="backlog"}`); v != 3 {
		t.Errorf("load_shed_total{reason=backlog} %v, want 3", v)
	}
	if v := api.metricValue(`events_rejected_total{status="503"}`); v != 3 {
		t.Errorf(`events_rejected_total{status="503"} %v, want 3`, v)
	}

	start(t, cfg, Roles{Worker: true})
	eventually(t, 30*time.Second, "shedding stopped once a worker drained the backlog", func() bool {
		return api.metricValue(`load_shedding{reason="backlog"}`) == 0
	})
	if res := api.post("/v1/events", orderBody(id)); res.status != http.StatusAccepted {
		t.Fatalf("POST after the backlog drained: %d %s", res.status, res.body)
	}
	eventually(t, 30*time.Second, "all 61 events processed", func() bool { return api.count("processed_events", "") == 61 })
}

func TestShedConfig(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ShedBacklog != 1_000_000 || cfg.ShedDBWait != time.Second || cfg.ShedMemory != defaultShedMemory(debug.SetMemoryLimit(-1)) {
		t.Errorf("defaults: backlog %d, db wait %v, memory %d", cfg.ShedBacklog, cfg.ShedDBWait, cfg.ShedMemory)
	}
	cfg, err = LoadConfig([]string{"EVENTFLOW_SHED_BACKLOG=0", "EVENTFLOW_SHED_DB_WAIT=0", "EVENTFLOW_SHED_MEMORY=0"}, "")
	if err != nil || cfg.ShedBacklog != 0 || cfg.ShedDBWait != 0 || cfg.ShedMemory != 0 {
		t.Errorf("0 turns each off: %v %d %v %d", err, cfg.ShedBacklog, cfg.ShedDBWait, cfg.ShedMemory)
	}
	cfg, err = LoadConfig([]string{"EVENTFLOW_SHED_MEMORY=1073741824", "EVENTFLOW_SHED_DB_WAIT=250ms"}, "")
	if err != nil || cfg.ShedMemory != 1<<30 || cfg.ShedDBWait != 250*time.Millisecond {
		t.Errorf("set values: %v %d %v", err, cfg.ShedMemory, cfg.ShedDBWait)
	}
	for _, env := range []string{
		"EVENTFLOW_SHED_BACKLOG=-1", "EVENTFLOW_SHED_BACKLOG=lots",
		"EVENTFLOW_SHED_DB_WAIT=-1s", "EVENTFLOW_SHED_DB_WAIT=500",
		"EVENTFLOW_SHED_MEMORY=-1", "EVENTFLOW_SHED_MEMORY=512",
	} {
		name, _, _ := strings.Cut(env, "=")
		if _, err := LoadConfig([]string{env}, ""); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming %s", env, err, name)
		}
	}
	for limit, want := range map[int64]int64{
		math.MaxInt64: 0, // no GOMEMLIMIT: off
		1 << 30:       (1 << 30) / 10 * 7,
		20 << 20:      0, // 70 % would be under the minimum: off
	} {
		if got := defaultShedMemory(limit); got != want {
			t.Errorf("defaultShedMemory(%d) = %d, want %d", limit, got, want)
		}
	}
}

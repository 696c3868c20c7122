package app

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// transports are the transports every pipeline case runs on.
var transports = []string{TransportRedis, TransportPostgres, TransportMemory}

// TestPipeline is eventflow's end-to-end contract, run on every transport:
// ingest → transport → process → tables, dead letters, duplicates,
// redelivery and failures. Each case gets its own eventflow, database and
// stream.
func TestPipeline(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{"Accepted", pipelinePostEventAccepted},
		{"AliasAndGeneratedIDs", pipelinePostEventAliasAndGeneratedIDs},
		{"DuplicateAndConflict", pipelinePostEventDuplicateAndConflict},
		{"TransportDownThenRetry", pipelineTransportDownThenRetryPublishes},
		{"GetEvent", pipelineGetEvent},
		{"BatchAllAccepted", pipelineBatchAllAccepted},
		{"BatchPartlyRejected", pipelineBatchPartlyRejected},
		{"PayloadRuleViolation", pipelinePayloadRuleViolationIsDeadLetteredOnce},
		{"TransientFailureRetried", pipelineTransientFailureIsRetriedThenSucceeds},
		{"RetriesExhausted", pipelineRetriesExhaustedIsDeadLettered},
		{"RedeliveryNoSecondRow", pipelineRedeliveryMakesNoSecondRow},
		{"ForeignMessageDeadLettered", pipelineForeignMessageIsDeadLettered},
		{"ClientRun", pipelineClientRun},
	}
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, setupOn(t, transport))
				})
			}
		})
	}
}

// eventflow dev runs with DATABASE_URL and REDIS_URL pointing at nothing:
// it accepts events, processes the valid ones, dead-letters the others, and
// GET tells both.
func TestDevModeNeedsNothing(t *testing.T) {
	t.Parallel()
	cfg, err := readConfig([]string{"DATABASE_URL=postgres://nowhere.invalid:1/x", "REDIS_URL=redis://nowhere.invalid:1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dev, cfg.Transport, cfg.AutoMigrate = true, TransportMemory, false
	cfg.HTTPAddr, cfg.MetricsAddr, cfg.LogLevel = "127.0.0.1:0", "127.0.0.1:0", "WARN"
	h := startWithoutDB(t, cfg)
	ok, bad := uuid.NewString(), uuid.NewString()
	for _, body := range []string{orderBody(ok), signupBody(bad, "nope")} {
		if res := h.post("/v1/events", body); res.status != http.StatusAccepted {
			t.Fatalf("post: %d %s", res.status, res.body)
		}
	}
	for id, want := range map[string]string{ok: "processed", bad: "failed"} {
		eventually(t, 5*time.Second, "event "+want, func() bool {
			res := h.do(http.MethodGet, "/v1/events/"+id, nil)
			return res.status == 200 && strings.Contains(string(res.body), `"status":"`+want+`"`)
		})
	}
	if res := h.do(http.MethodGet, "/readyz", nil); res.status != 200 {
		t.Errorf("/readyz in dev mode: %d %s", res.status, res.body)
	}
}

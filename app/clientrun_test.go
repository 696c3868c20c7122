package app

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// sample is one generated event and what eventflow must make of it.
type sample struct {
	id   string
	body string
	// fate: "processed", "failed" (breaks payload rules) or "rejected"
	// (invalid envelope, never stored).
	fate string
	// totalCents is an order's expected total_amount, in cents.
	totalCents int64
}

func generate(r *rand.Rand, i int) sample {
	id := uuid.NewString()
	invalidPayload := r.IntN(10) == 0
	invalidEnvelope := r.IntN(25) == 0
	s := sample{id: id, fate: "processed"}
	var typ, payload string
	switch i % 4 {
	case 0:
		typ, payload = "user.signup", fmt.Sprintf(`{"user_id":"u-%d","email":"User%d@Example.COM","plan":"pro"}`, i, i)
		if invalidPayload {
			payload = fmt.Sprintf(`{"user_id":"u-%d","email":"no-at-sign"}`, i)
		}
	case 1:
		typ, payload = "user.login", fmt.Sprintf(`{"user_id":"u-%d","ip":"10.0.%d.%d"}`, i, i%256, r.IntN(256))
		if invalidPayload {
			payload = fmt.Sprintf(`{"user_id":"u-%d","ip":"999.1.1.1"}`, i)
		}
	case 2:
		typ, payload = "page.view", fmt.Sprintf(`{"url":"https://shop.example.com/p/%d","referrer":"https://search.example"}`, i)
		if invalidPayload {
			payload = `{"url":"ftp://shop.example.com/"}`
		}
	case 3:
		var items []string
		for j := range 1 + r.IntN(3) {
			q, cents := 1+r.IntN(4), int64(r.IntN(10000))
			s.totalCents += int64(q) * cents
			items = append(items, fmt.Sprintf(`{"sku":"sku-%d","quantity":%d,"unit_price":%d.%02d}`, j, q, cents/100, cents%100))
		}
		typ, payload = "order.placed", fmt.Sprintf(`{"order_id":"o-%d","user_id":"u-%d","currency":"EUR","items":[%s]}`, i, i, strings.Join(items, ","))
		if invalidPayload {
			payload = fmt.Sprintf(`{"order_id":"o-%d","user_id":"u-%d","currency":"EUR","items":[{"sku":"x","quantity":0,"unit_price":1}]}`, i, i)
		}
	}
	if invalidPayload {
		s.fate = "failed"
	}
	if invalidEnvelope {
		typ, s.fate = "no.such.type", "rejected"
	}
	s.body = fmt.Sprintf(`{"event_id":%q,"event_type":%q,"source":"client-run","payload":%s}`, id, typ, payload)
	return s
}

// The acceptance run: 1,000 events of the four types, singly and in
// batches, some invalid and some repeated; afterwards the tables, the
// status endpoint and the metrics must all tell the same, true story.
func pipelineClientRun(t *testing.T, h *harness) {
	if testing.Short() {
		t.Skip("posts 1,000 events")
	}
	r := rand.New(rand.NewPCG(1, 2))
	samples := make([]sample, 1000)
	for i := range samples {
		samples[i] = generate(r, i)
	}

	// 400 singly, by 8 concurrent clients, each event with a 1-in-10
	// chance of being sent twice; the rest in 6 batches of 100, each batch
	// also repeating 5 events sent earlier.
	var wg sync.WaitGroup
	errs := make(chan string, 1000)
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < 400; i += 8 {
				s := samples[i]
				for range 1 + boolInt(i%10 == 3) {
					res := h.post("/v1/events", s.body)
					if want := statusFor(s.fate); res.status != want {
						errs <- fmt.Sprintf("event %d (%s): status %d, want %d: %s", i, s.fate, res.status, want, res.body)
					}
				}
			}
		}()
	}
	wg.Wait()
	for b := range 6 {
		part := samples[400+b*100 : 500+b*100]
		bodies := make([]string, 0, 105)
		for _, s := range part {
			bodies = append(bodies, s.body)
		}
		for k := range 5 {
			if s := samples[b*50+k*7]; s.fate != "rejected" {
				bodies = append(bodies, s.body)
			}
		}
		res := h.post("/v1/events/batch", batch(bodies...))
		var ans batchResult
		res.json(t, &ans)
		rejected := 0
		for _, s := range part {
			rejected += boolInt(s.fate == "rejected")
		}
		if ans.Rejected != rejected || ans.Accepted != 100-rejected || ans.Duplicates != len(bodies)-100 {
			errs <- fmt.Sprintf("batch %d: accepted %d duplicates %d rejected %d; want %d %d %d",
				b, ans.Accepted, ans.Duplicates, ans.Rejected, 100-rejected, len(bodies)-100, rejected)
		}
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	want := map[string][]string{}
	for _, s := range samples {
		want[s.fate] = append(want[s.fate], s.id)
	}
	eventually(t, 60*time.Second, "every valid event processed and every violation dead-lettered", func() bool {
		return h.count("processed_events", "") == len(want["processed"]) && h.count("failed_events", "") == len(want["failed"])
	})
	if n := h.count("processed_events", "event_id = ANY($1::uuid[])", pqArray(want["processed"])); n != len(want["processed"]) {
		t.Errorf("processed_events holds %d of the %d valid events", n, len(want["processed"]))
	}
	if n := h.count("failed_events", "event_id = ANY($1::uuid[]) AND error_kind = 'permanent' AND attempts = 1", pqArray(want["failed"])); n != len(want["failed"]) {
		t.Errorf("failed_events holds %d of the %d payload-rule violations as permanent, 1 attempt", n, len(want["failed"]))
	}
	if n := h.count("raw_events", ""); n != len(want["processed"])+len(want["failed"]) {
		t.Errorf("raw_events %d rows, want %d", n, len(want["processed"])+len(want["failed"]))
	}

	// Enrichment, checked against what the generator computed.
	for _, s := range samples {
		if s.fate != "processed" {
			continue
		}
		var e map[string]any
		var raw []byte
		if err := h.db.Get(&raw, `SELECT enrichment FROM processed_events WHERE event_id = $1`, s.id); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(raw, &e)
		switch {
		case strings.Contains(s.body, "order.placed"):
			if got := fmt.Sprint(e["total_amount"]); got != fmt.Sprint(float64(s.totalCents)/100) {
				t.Errorf("order %s total_amount %v, want %d cents", s.id, e["total_amount"], s.totalCents)
			}
		case strings.Contains(s.body, "user.signup"):
			if e["email_domain"] != "example.com" || !strings.HasPrefix(fmt.Sprint(e["email_normalized"]), "user") {
				t.Errorf("signup %s enrichment %v", s.id, e)
			}
		}
	}

	// GET tells the truth for a sample of each fate.
	for fate, ids := range want {
		for _, id := range ids[:min(10, len(ids))] {
			res := h.do(http.MethodGet, "/v1/events/"+id, nil)
			switch fate {
			case "rejected":
				if res.status != 404 {
					t.Errorf("rejected event %s: GET %d, want 404", id, res.status)
				}
			default:
				var st struct{ Status string }
				res.json(t, &st)
				if st.Status != fate {
					t.Errorf("event %s: GET status %q, want %q", id, st.Status, fate)
				}
			}
		}
	}

	var processed float64
	for _, typ := range []string{"user.signup", "user.login", "page.view", "order.placed"} {
		processed += h.metricValue(fmt.Sprintf(`events_processed_total{event_type=%q}`, typ))
	}
	if int(processed) != h.count("processed_events", "") {
		t.Errorf("events_processed_total sums to %v, processed_events has %d rows", processed, h.count("processed_events", ""))
	}
	t.Logf("processed %d, dead-lettered %d, rejected %d", len(want["processed"]), len(want["failed"]), len(want["rejected"]))
}

func statusFor(fate string) int {
	if fate == "rejected" {
		return http.StatusUnprocessableEntity
	}
	return http.StatusAccepted
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

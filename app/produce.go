package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

// produceOptions are the flags of "eventflow produce".
type produceOptions struct {
	URL         string        // base URL of the eventflow API
	APIKey      string        // sent as Authorization: Bearer; empty sends none
	Rate        float64       // events per second; 0 sends as fast as possible
	Count       int           // events to send in all
	Invalid     float64       // share of events whose payload breaks its type's rules
	Duplicates  float64       // share of events that repeat an earlier one exactly
	Batch       int           // events per request; above 1 uses POST /v1/events/batch
	Concurrency int           // requests in flight at once
	Seed        uint64        // seed of the sample generator; 0 picks one
	Timeout     time.Duration // bound of one request
}

func (o produceOptions) validate() error {
	u, err := url.Parse(o.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("--url %q: want an http(s) URL such as http://localhost:8080", o.URL)
	case o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0):
		return fmt.Errorf("--rate %v: want events per second ≥ 0 (0 = as fast as possible)", o.Rate)
	case o.Count < 1:
		return fmt.Errorf("--count %d: want at least 1 event", o.Count)
	case !(o.Invalid >= 0 && o.Invalid <= 1):
		return fmt.Errorf("--invalid %v: want a share between 0 and 1", o.Invalid)
	case !(o.Duplicates >= 0 && o.Duplicates <= 1):
		return fmt.Errorf("--duplicates %v: want a share between 0 and 1", o.Duplicates)
	case o.Invalid+o.Duplicates > 1:
		return fmt.Errorf("--invalid %v plus --duplicates %v: their sum must not exceed 1", o.Invalid, o.Duplicates)
	case o.Batch < 1:
		return fmt.Errorf("--batch %d: want at least 1 event per request", o.Batch)
	case o.Concurrency < 1:
		return fmt.Errorf("--concurrency %d: want at least 1", o.Concurrency)
	case o.Timeout <= 0:
		return fmt.Errorf("--timeout %v: want a positive duration", o.Timeout)
	}
	return nil
}

// newProduceCommand returns "eventflow produce", which sends sample events
// to a running eventflow and prints what it sent and what came back to
// stdout.
func newProduceCommand(stdout io.Writer) *cobra.Command {
	var o produceOptions
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Send realistic sample events to a running eventflow",
		Long: `Send sample events of the built-in types (user.signup, user.login, page.view,
order.placed) to a running eventflow over HTTP, some of them breaking their
type's payload rules (--invalid) and some repeating an earlier event with the
same event_id and body (--duplicates).

It prints a progress line at most once a second and, at the end, what it sent
by type, what came back by HTTP status and by result, and the events per
second achieved. It fails only on a usage error or when no request succeeded.
--seed makes the sequence of types, payloads and choices reproducible; event
ids are always new, and which earlier event a duplicate repeats depends on
which requests were answered first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return produce(cmd.Context(), o, stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "http://localhost:8080", "base URL of the eventflow API")
	f.StringVar(&o.APIKey, "api-key", "", "API key, sent as Authorization: Bearer <key>")
	f.Float64Var(&o.Rate, "rate", 50, "events per second; 0 sends as fast as possible")
	f.IntVar(&o.Count, "count", 1000, "events to send in all")
	f.Float64Var(&o.Invalid, "invalid", 0.05, "share (0..1) of events whose payload breaks its type's rules")
	f.Float64Var(&o.Duplicates, "duplicates", 0.02, "share (0..1) of events re-sent with an earlier event_id and the same body")
	f.IntVar(&o.Batch, "batch", 1, "events per request; 1 posts to /v1/events, more to /v1/events/batch")
	f.IntVar(&o.Concurrency, "concurrency", 4, "requests in flight at once")
	f.Uint64Var(&o.Seed, "seed", 0, "seed of the sample generator, for reproducible runs; 0 picks one")
	f.DurationVar(&o.Timeout, "timeout", 10*time.Second, "bound of one request")
	return cmd
}

// produce sends o.Count sample events and prints the summary. Event i is
// never sent before start + i/o.Rate: a batch goes out at the turn of its
// first event, and a producer that fell behind catches up.
func produce(ctx context.Context, o produceOptions, stdout io.Writer) error {
	if o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	httpTransport := http.DefaultTransport.(*http.Transport).Clone()
	httpTransport.MaxIdleConnsPerHost = o.Concurrency
	p := &producer{
		opts:   o,
		client: &http.Client{Timeout: o.Timeout, Transport: httpTransport},
		stats:  newProduceStats(),
	}
	defer p.client.CloseIdleConnections()

	start := time.Now()
	stopProgress := p.reportProgress(stdout, start)
	requests := make(chan []sampleEvent)
	var senders sync.WaitGroup
	for range o.Concurrency {
		senders.Go(func() {
			for events := range requests {
				p.send(ctx, events)
			}
		})
	}
	gen := newSampler(o.Seed, o.Invalid, o.Duplicates)
generate:
	for i := 0; i < o.Count; i += o.Batch {
		if waitTurn(ctx, start, i, o.Rate) != nil {
			break
		}
		events := make([]sampleEvent, min(o.Batch, o.Count-i))
		for j := range events {
			events[j] = gen.next(&p.sent)
		}
		select {
		case requests <- events:
		case <-ctx.Done():
			break generate
		}
	}
	close(requests)
	senders.Wait()
	elapsed := time.Since(start)
	stopProgress()

	p.stats.writeSummary(stdout, p.endpoint(), o.Seed, elapsed)
	if p.stats.succeeded == 0 {
		return errors.New("produce: no request succeeded")
	}
	return nil
}

// waitTurn waits until event i's turn at rate events per second since
// start. A rate of 0 does not wait.
func waitTurn(ctx context.Context, start time.Time, i int, rate float64) error {
	if rate == 0 {
		return ctx.Err()
	}
	wait := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second))))
	if wait <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// producer sends sample events to one eventflow and counts the answers.
type producer struct {
	opts   produceOptions
	client *http.Client
	stats  *produceStats
	sent   sentEvents
}

func (p *producer) endpoint() string {
	path := "/v1/events"
	if p.opts.Batch > 1 {
		path = "/v1/events/batch"
	}
	return strings.TrimRight(p.opts.URL, "/") + path
}

// send posts events in one request, records the answer and makes the
// events available for duplicates.
func (p *producer) send(ctx context.Context, events []sampleEvent) {
	status, results := p.post(ctx, p.body(events), len(events))
	p.stats.record(events, status, results)
	p.sent.add(events)
}

// body is the request body that carries events to p.endpoint(): the one
// event itself, or a batch {"events": […]}.
func (p *producer) body(events []sampleEvent) []byte {
	if p.opts.Batch <= 1 {
		return events[0].Body
	}
	batch := struct {
		Events []json.RawMessage `json:"events"`
	}{}
	for _, e := range events {
		batch.Events = append(batch.Events, e.Body)
	}
	body, _ := json.Marshal(batch) // raw JSON objects always marshal
	return body
}

// Results of an event besides the API's "accepted", "duplicate" and
// "rejected" (every event of a request answered with another status than
// 202 or 207 counts as rejected).
const (
	resultUnanswered = "unanswered" // no HTTP answer: connection error or timeout
	resultUnknown    = "unknown"    // a 202 or 207 whose body did not say
)

// post sends one request and returns its HTTP status, or "unanswered", and
// the result of each of its n events.
func (p *producer) post(ctx context.Context, body []byte, n int) (status string, results []string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint(), bytes.NewReader(body))
	if err != nil {
		return resultUnanswered, slices.Repeat([]string{resultUnanswered}, n)
	}
	req.Header.Set("Content-Type", "application/json")
	if p.opts.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.opts.APIKey)
	}
	res, err := p.client.Do(req)
	if err != nil {
		return resultUnanswered, slices.Repeat([]string{resultUnanswered}, n)
	}
	defer res.Body.Close()
	defer io.Copy(io.Discard, res.Body) // drained, so that the connection is reused

	if res.StatusCode != http.StatusAccepted && res.StatusCode != http.StatusMultiStatus {
		return strconv.Itoa(res.StatusCode), slices.Repeat([]string{"rejected"}, n)
	}
	results = slices.Repeat([]string{resultUnknown}, n)
	var answer struct {
		Status  string `json:"status"` // one event
		Results []struct {
			Index  int    `json:"index"`
			Status string `json:"status"`
		} `json:"results"` // a batch
	}
	if json.NewDecoder(res.Body).Decode(&answer) == nil {
		if p.opts.Batch == 1 && answer.Status != "" {
			results[0] = answer.Status
		}
		for _, r := range answer.Results {
			if r.Index >= 0 && r.Index < n && r.Status != "" {
				results[r.Index] = r.Status
			}
		}
	}
	return strconv.Itoa(res.StatusCode), results
}

// reportProgress prints a progress line to w once a second until the
// returned stop is called; stop returns once printing has stopped.
func (p *producer) reportProgress(w io.Writer, start time.Time) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Fprintln(w, p.stats.progress(p.opts.Count, time.Since(start)))
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// produceStats counts what produce sent and what came back. It is safe for
// concurrent use.
type produceStats struct {
	mu        sync.Mutex
	requests  int
	events    int
	byType    map[string]int
	invalid   int
	duplicate int
	byStatus  map[string]int // "202", "207", "422", … or "unanswered"
	byResult  map[string]int // "accepted", "duplicate", "rejected", …
	succeeded int            // requests answered 202 or 207
}

func newProduceStats() *produceStats {
	return &produceStats{byType: map[string]int{}, byStatus: map[string]int{}, byResult: map[string]int{}}
}

func (s *produceStats) record(events []sampleEvent, status string, results []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.byStatus[status]++
	if status == "202" || status == "207" {
		s.succeeded++
	}
	for i, e := range events {
		s.events++
		s.byType[e.Type]++
		if e.Invalid {
			s.invalid++
		}
		if e.Duplicate {
			s.duplicate++
		}
		s.byResult[results[i]]++
	}
}

func (s *produceStats) progress(total int, elapsed time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("progress: %d/%d events sent, %d of %d requests succeeded, %.1f events/s",
		s.events, total, s.succeeded, s.requests, float64(s.events)/elapsed.Seconds())
}

// writeSummary prints the final report, such as
//
//	sent 1000 events in 1000 requests to http://localhost:8080/v1/events in 19.981s: 50.05 events/s (seed 42)
//	sent:      user.signup=98 user.login=254 page.view=502 order.placed=146 invalid=47 duplicate=21
//	by status: 202=1000
//	by result: accepted=979 duplicate=21 rejected=0
func (s *produceStats) writeSummary(w io.Writer, endpoint string, seed uint64, elapsed time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "sent %d events in %d requests to %s in %s: %.2f events/s (seed %d)\n",
		s.events, s.requests, endpoint, elapsed.Round(time.Millisecond), float64(s.events)/elapsed.Seconds(), seed)
	b.WriteString("sent:      ")
	for _, t := range sampleTypes {
		fmt.Fprintf(&b, "%s=%d ", t.name, s.byType[t.name])
	}
	fmt.Fprintf(&b, "invalid=%d duplicate=%d\n", s.invalid, s.duplicate)
	b.WriteString("by status:")
	for _, status := range slices.Sorted(maps.Keys(s.byStatus)) {
		fmt.Fprintf(&b, " %s=%d", status, s.byStatus[status])
	}
	fmt.Fprintf(&b, "\nby result: accepted=%d duplicate=%d rejected=%d",
		s.byResult["accepted"], s.byResult["duplicate"], s.byResult["rejected"])
	for _, result := range slices.Sorted(maps.Keys(s.byResult)) {
		if result != "accepted" && result != "duplicate" && result != "rejected" {
			fmt.Fprintf(&b, " %s=%d", result, s.byResult[result])
		}
	}
	b.WriteString("\n")
	io.WriteString(w, b.String())
}

// sentEvents keeps the most recent events whose request is done, for
// duplicates to repeat: so a duplicate never races its original. It is
// safe for concurrent use; the zero value is empty.
type sentEvents struct {
	mu     sync.Mutex
	events []sampleEvent // a ring of at most maxSentEvents
	next   int
}

const maxSentEvents = 1024

func (s *sentEvents) add(events []sampleEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range events {
		if len(s.events) < maxSentEvents {
			s.events = append(s.events, e)
			continue
		}
		s.events[s.next] = e
		s.next = (s.next + 1) % maxSentEvents
	}
}

func (s *sentEvents) pick(rng *rand.Rand) (sampleEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) == 0 {
		return sampleEvent{}, false
	}
	return s.events[rng.IntN(len(s.events))], true
}

// sampleEvent is one event as produce sends it.
type sampleEvent struct {
	Type      string
	Invalid   bool // a fresh event whose payload breaks its type's rules
	Duplicate bool // repeats an earlier event: same event_id, same body
	Body      json.RawMessage
}

// sampler makes sample events from a seeded random source. It is not safe
// for concurrent use.
type sampler struct {
	rng                 *rand.Rand
	invalid, duplicates float64
}

func newSampler(seed uint64, invalid, duplicates float64) *sampler {
	return &sampler{rng: rand.New(rand.NewPCG(seed, seed)), invalid: invalid, duplicates: duplicates}
}

// next returns the next event: a repeat of one of sent (or a fresh valid
// event while sent is empty), a fresh invalid event or a fresh valid one.
func (s *sampler) next(sent *sentEvents) sampleEvent {
	r := s.rng.Float64()
	if r < s.duplicates {
		if e, ok := sent.pick(s.rng); ok {
			e.Duplicate, e.Invalid = true, false
			return e
		}
		return s.fresh(false)
	}
	return s.fresh(r < s.duplicates+s.invalid)
}

func (s *sampler) fresh(invalid bool) sampleEvent {
	t := s.pickType()
	payload := t.payload(s)
	if invalid {
		t.breaks[s.rng.IntN(len(t.breaks))](payload)
	}
	// Strings, numbers, slices and maps of them always marshal.
	body, _ := json.Marshal(struct {
		EventID   string            `json:"event_id"`
		EventType string            `json:"event_type"`
		Source    string            `json:"source"`
		Timestamp string            `json:"timestamp"`
		Payload   map[string]any    `json:"payload"`
		Metadata  map[string]string `json:"metadata"`
	}{
		EventID:   uuid.NewString(),
		EventType: t.name,
		Source:    t.source,
		Timestamp: time.Now().UTC().Format(time.RFC3339Nano),
		Payload:   payload,
		Metadata:  map[string]string{"region": s.pick("eu", "us", "ap"), "producer": "eventflow-produce"},
	})
	return sampleEvent{Type: t.name, Invalid: invalid, Body: body}
}

func (s *sampler) pickType() sampleType {
	total := 0
	for _, t := range sampleTypes {
		total += t.weight
	}
	n := s.rng.IntN(total)
	for _, t := range sampleTypes {
		if n < t.weight {
			return t
		}
		n -= t.weight
	}
	return sampleTypes[len(sampleTypes)-1]
}

func (s *sampler) pick(choices ...string) string { return choices[s.rng.IntN(len(choices))] }

func (s *sampler) userID() string { return fmt.Sprintf("u-%05d", s.rng.IntN(100000)) }

// sampleType is a built-in event type as produce sends it: its share of the
// traffic, the service it comes from, a valid payload, and ways to break
// the payload's rules (see schema/type_*.go).
type sampleType struct {
	name    string
	weight  int
	source  string
	payload func(*sampler) map[string]any
	breaks  []func(payload map[string]any)
}

var sampleTypes = []sampleType{
	{
		name: "user.signup", weight: 10, source: "accounts",
		payload: func(s *sampler) map[string]any {
			name := s.pick("Ada", "Grace", "Alan", "Barbara", "Ken", "Margaret", "Edsger", "Frances")
			return map[string]any{
				"user_id": s.userID(),
				"email":   fmt.Sprintf("%s.%d@%s", name, s.rng.IntN(1000), s.pick("example.com", "Example.org", "mail.example.net")),
				"plan":    s.pick("free", "pro", "team"),
			}
		},
		breaks: []func(map[string]any){
			func(p map[string]any) { p["email"] = "not-an-email" },
			func(p map[string]any) { delete(p, "user_id") },
		},
	},
	{
		name: "user.login", weight: 25, source: "accounts",
		payload: func(s *sampler) map[string]any {
			p := map[string]any{"user_id": s.userID()}
			switch s.rng.IntN(5) {
			case 0, 1, 2:
				p["ip"] = fmt.Sprintf("%s.%d", s.pick("203.0.113", "198.51.100", "192.0.2"), 1+s.rng.IntN(254))
			case 3:
				p["ip"] = fmt.Sprintf("2001:db8::%x", 1+s.rng.IntN(0xffff))
			}
			return p
		},
		breaks: []func(map[string]any){
			func(p map[string]any) { p["ip"] = "300.1.2.3" },
			func(p map[string]any) { p["user_id"] = "" },
		},
	},
	{
		name: "page.view", weight: 50, source: "web",
		payload: func(s *sampler) map[string]any {
			path := s.pick("/", "/pricing", "/docs/getting-started", "/blog/exactly-once", "/cart")
			if s.rng.IntN(3) == 0 {
				path = fmt.Sprintf("/products/%d", 100+s.rng.IntN(900))
			}
			p := map[string]any{"url": "https://shop.example.com" + path}
			if s.rng.IntN(2) == 0 {
				p["user_id"] = s.userID()
			}
			if s.rng.IntN(3) == 0 {
				p["referrer"] = s.pick("https://www.example.org/search?q=tea", "https://news.example.net/", "https://shop.example.com/")
			}
			return p
		},
		breaks: []func(map[string]any){
			func(p map[string]any) { p["url"] = "/pricing" },
			func(p map[string]any) { p["url"] = "ftp://files.example.com/catalog.pdf" },
		},
	},
	{
		name: "order.placed", weight: 15, source: "checkout",
		payload: func(s *sampler) map[string]any {
			items := make([]any, 1+s.rng.IntN(4))
			for i := range items {
				product := sampleProducts[s.rng.IntN(len(sampleProducts))]
				items[i] = map[string]any{"sku": product.sku, "quantity": 1 + s.rng.IntN(3), "unit_price": float64(product.cents) / 100}
			}
			return map[string]any{
				"order_id": fmt.Sprintf("A-%06d", s.rng.IntN(1000000)),
				"user_id":  s.userID(),
				"currency": s.pick("EUR", "USD", "GBP"),
				"items":    items,
			}
		},
		breaks: []func(map[string]any){
			func(p map[string]any) { p["currency"] = "euro" },
			func(p map[string]any) { p["items"] = []any{} },
			func(p map[string]any) { p["items"].([]any)[0].(map[string]any)["quantity"] = 0 },
		},
	},
}

var sampleProducts = []struct {
	sku   string
	cents int
}{
	{"tea-sencha-100g", 899}, {"tea-assam-250g", 1250}, {"mug-stoneware", 1499},
	{"kettle-1l", 4990}, {"teapot-cast-iron", 3450}, {"filters-100", 399},
}

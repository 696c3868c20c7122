package app

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/eventflow/eventflow/schema"
)

// hostileCase is a hostile body and the answer it must get: as one event
// (POST /v1/events), and as the one item of a batch (POST /v1/events/batch),
// where it is rejected alone with the same problem (207) unless it spoils
// the whole body (wholeBatch: the batch gets the status itself).
type hostileCase struct {
	name        string
	body        string
	status      int
	problemType string
	field       string // a field the problem names, if any
	wholeBatch  bool
}

func pageView(payload string) string {
	return `{"event_type":"page.view","source":"web","payload":` + payload + `}`
}

const hostileURL = `"url":"https://example.com/pricing"`

func hostileCases() []hostileCase {
	const (
		malformed = "/problems/malformed-request"
		invalid   = "/problems/invalid-event"
	)
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	return []hostileCase{
		// Nesting: past schema.MaxNesting it is refused by name; past
		// encoding/json's own limit (10,000) it is not JSON it can read.
		{"nesting past MaxNesting", pageView(`{` + hostileURL + `,"x":` + deep(schema.MaxNesting) + `}`), 422, invalid, "payload", false},
		{"nesting past the JSON parser's depth", pageView(`{` + hostileURL + `,"x":` + deep(10001) + `}`), 400, malformed, "", true},
		{"nesting in metadata", `{"event_type":"page.view","source":"web","payload":{` + hostileURL + `},"metadata":{"k":` + deep(200) + `}}`, 400, malformed, "metadata.k", false},
		// Huge numbers.
		{"number 1e999999", pageView(`{` + hostileURL + `,"n":1e999999}`), 422, invalid, "payload", false},
		{"number -1e-999999", pageView(`{` + hostileURL + `,"n":-1e-999999}`), 422, invalid, "payload", false},
		{"10,000-digit integer", pageView(`{` + hostileURL + `,"n":` + strings.Repeat("9", 10000) + `}`), 422, invalid, "payload", false},
		{"10,000-digit quantity", `{"event_type":"order.placed","source":"shop","payload":{"order_id":"A","user_id":"u","currency":"EUR","items":[{"sku":"a","quantity":` +
			strings.Repeat("9", 10000) + `,"unit_price":1}]}}`, 422, invalid, "payload", false},
		{"number as the source", `{"event_type":"page.view","source":1e999999,"payload":{` + hostileURL + `}}`, 400, malformed, "source", false},
		// Repeated keys: ambiguous, refused wherever they are.
		{"repeated envelope field", `{"event_type":"page.view","event_type":"user.login","source":"web","payload":{` + hostileURL + `}}`, 400, malformed, "event_type", false},
		{"repeated payload field", `{"event_type":"page.view","source":"web","payload":{` + hostileURL + `},"payload":{}}`, 400, malformed, "payload", false},
		{"repeated payload key", pageView(`{` + hostileURL + `,"url":"not a url"}`), 422, invalid, "payload.url", false},
		{"repeated payload key, once escaped", pageView(`{` + hostileURL + `,"\u0075rl":"not a url"}`), 422, invalid, "payload.url", false},
		{"repeated key deep in the payload", pageView(`{` + hostileURL + `,"items":[{"sku":"a"},{"sku":"b","sku":"c"}]}`), 422, invalid, "payload.items[1].sku", false},
		{"repeated metadata key", `{"event_type":"page.view","source":"web","payload":{` + hostileURL + `},"metadata":{"k":"a","k":"b"}}`, 422, invalid, "metadata.k", false},
		// NUL, which Postgres jsonb and text refuse.
		{"NUL in a payload string", pageView(`{` + hostileURL + `,"note":"a\u0000b"}`), 422, invalid, "payload", false},
		{"NUL in a payload key", pageView(`{` + hostileURL + `,"\u0000":1}`), 422, invalid, "payload", false},
		{"NUL in the source", `{"event_type":"page.view","source":"web\u0000","payload":{` + hostileURL + `}}`, 422, invalid, "source", false},
		{"NUL in a metadata value", `{"event_type":"page.view","source":"web","payload":{` + hostileURL + `},"metadata":{"k":"\u0000"}}`, 422, invalid, "metadata.k", false},
		{"unpaired surrogate in the payload", pageView(`{` + hostileURL + `,"note":"\ud800"}`), 422, invalid, "payload", false},
		// Invalid UTF-8 anywhere spoils the whole body.
		{"invalid UTF-8 in the source", "{\"event_type\":\"page.view\",\"source\":\"web\xff\",\"payload\":{" + hostileURL + "}}", 400, malformed, "", true},
		{"invalid UTF-8 in the payload", pageView("{" + hostileURL + ",\"note\":\"caf\xe9\"}"), 400, malformed, "", true},
		{"overlong UTF-8 NUL", pageView("{" + hostileURL + ",\"note\":\"\xc0\x80\"}"), 400, malformed, "", true},
		// Trailing data.
		{"trailing garbage", pageView(`{`+hostileURL+`}`) + ` garbage`, 400, malformed, "", true},
		{"trailing second event", pageView(`{`+hostileURL+`}`) + pageView(`{`+hostileURL+`}`), 400, malformed, "", true},
		{"trailing NUL byte", pageView(`{`+hostileURL+`}`) + "\x00", 400, malformed, "", true},
		// A timestamp whose offset carries it out of RFC 3339's years.
		{"timestamp past year 9999 in UTC", `{"event_type":"page.view","source":"web","timestamp":"9999-12-31T23:59:59-01:00","payload":{` + hostileURL + `}}`, 422, invalid, "timestamp", false},
	}
}

// TestHostileRequests sends hostile requests to a running eventflow, one
// event and batches alike: each gets its documented 4xx and a problem body,
// none a 5xx, and nothing of them is stored or processed.
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	const readTimeout = time.Second
	h := setup(t, func(c *Config) { c.HTTPReadTimeout = readTimeout })

	for _, tc := range hostileCases() {
		res := h.post("/v1/events", tc.body)
		checkProblem(t, "/v1/events: "+tc.name, res, tc.status, tc.problemType, tc.field)

		res = h.post("/v1/events/batch", batch(tc.body))
		if tc.wholeBatch {
			checkProblem(t, "/v1/events/batch: "+tc.name, res, tc.status, tc.problemType, tc.field)
			continue
		}
		checkRejectedItem(t, "/v1/events/batch: "+tc.name, res, tc.status, tc.problemType, tc.field)
	}

	// Whole batch bodies.
	item := pageView(`{` + hostileURL + `}`)
	for _, tc := range []hostileCase{
		{name: "repeated events field", body: `{"events":[` + item + `],"events":[]}`, status: 400, problemType: "/problems/malformed-request", field: "events"},
		{name: "trailing garbage", body: batch(item) + ` garbage`, status: 400, problemType: "/problems/malformed-request"},
		{name: "trailing second batch", body: batch(item) + batch(item), status: 400, problemType: "/problems/malformed-request"},
		{name: "nesting past the JSON parser's depth", body: `{"events":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, status: 400, problemType: "/problems/malformed-request"},
	} {
		res := h.post("/v1/events/batch", tc.body)
		checkProblem(t, "/v1/events/batch: "+tc.name, res, tc.status, tc.problemType, tc.field)
	}

	// What only a raw connection can send. Each body is a valid event, so
	// that what is refused is the way it is sent.
	for _, path := range []string{"/v1/events", "/v1/events/batch"} {
		id := uuid.NewString()
		body := orderBody(id)
		if path == "/v1/events/batch" {
			body = batch(body)
		}

		// A slow drip: a byte every 100ms, the whole body in far more than
		// the read timeout. The server answers 408 when the timeout strikes
		// and closes the connection, without waiting for the rest.
		start := time.Now()
		res, closes := rawPost(t, h, path, fmt.Sprintf("Content-Length: %d\r\n", len(body)), func(conn net.Conn, stop <-chan struct{}) {
			for i := range len(body) {
				if _, err := conn.Write([]byte{body[i]}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
		checkProblem(t, path+": slow drip", res, http.StatusRequestTimeout, "/problems/request-timeout", "")
		if took := time.Since(start); took > readTimeout+3*time.Second {
			t.Errorf("%s: slow drip answered after %v, want about the read timeout %v", path, took, readTimeout)
		}
		if !closes {
			t.Errorf("%s: slow drip answered without Connection: close", path)
		}

		// A multi-GiB Content-Length with a small body: refused before a
		// byte is read.
		res, _ = rawPost(t, h, path, "Content-Length: 5368709120\r\n", func(conn net.Conn, _ <-chan struct{}) {
			_, _ = io.WriteString(conn, body)
		})
		checkProblem(t, path+": 5 GiB Content-Length", res, http.StatusRequestEntityTooLarge, "/problems/too-large", "")

		// A body that breaks off before its Content-Length: the client
		// stops sending, and says so.
		res, _ = rawPost(t, h, path, fmt.Sprintf("Content-Length: %d\r\n", len(body)+100), func(conn net.Conn, _ <-chan struct{}) {
			_, _ = io.WriteString(conn, body)
			_ = conn.(*net.TCPConn).CloseWrite()
		})
		checkProblem(t, path+": body shorter than its Content-Length", res, http.StatusBadRequest, "/problems/malformed-request", "")

		// A Content-Length beyond int64 never reaches eventflow's handlers:
		// net/http answers a plain-text 400 itself and closes the
		// connection.
		res, _ = rawPost(t, h, path, "Content-Length: 99999999999999999999\r\n", func(net.Conn, <-chan struct{}) {})
		if res.status != http.StatusBadRequest {
			t.Errorf("%s: Content-Length beyond int64: status %d, want 400 from net/http; body %s", path, res.status, res.body)
		}
	}

	// Slow headers get no answer: net/http has no request to answer, and
	// closes the connection at the read timeout.
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_, _ = io.WriteString(conn, "POST /v1/events HTTP/1.1\r\nHost: eventflow\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Errorf("slow headers: read %d bytes, %v; want the connection closed", n, err)
	} else if took := time.Since(start); took > readTimeout+3*time.Second {
		t.Errorf("slow headers: connection closed after %v, want about the read timeout %v", took, readTimeout)
	}

	for _, table := range []string{"raw_events", "processed_events", "failed_events"} {
		if n := h.count(table, ""); n != 0 {
			t.Errorf("%s has %d rows after hostile requests, want 0", table, n)
		}
	}
	if logs := h.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("hostile requests logged errors:\n%s", logs)
	}
}

// checkProblem checks an answer's status and problem body.
func checkProblem(t *testing.T, name string, res response, status int, problemType, field string) {
	t.Helper()
	if res.status != status {
		t.Errorf("%s: status %d, want %d; body %.300s", name, res.status, status, res.body)
		return
	}
	p := res.problem(t)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	if p.Type != problemType || field != "" && !slices.Contains(fields, field) {
		t.Errorf("%s: problem %s naming %v, want %s naming %q", name, p.Type, fields, problemType, field)
	}
}

// checkRejectedItem checks a batch answer whose one item was rejected.
func checkRejectedItem(t *testing.T, name string, res response, status int, problemType, field string) {
	t.Helper()
	if res.status != http.StatusMultiStatus {
		t.Errorf("%s: status %d, want 207; body %.300s", name, res.status, res.body)
		return
	}
	var b batchResult
	res.json(t, &b)
	if b.Accepted != 0 || b.Rejected != 1 || len(b.Results) != 1 || b.Results[0].Status != "rejected" || b.Results[0].Error == nil {
		t.Errorf("%s: %s, want one rejected item", name, res.body)
		return
	}
	e := b.Results[0].Error
	var fields []string
	for _, fe := range e.Errors {
		fields = append(fields, fe.Field)
	}
	if e.Status != status || e.Type != problemType || field != "" && !slices.Contains(fields, field) {
		t.Errorf("%s: item problem %d %s naming %v, want %d %s naming %q", name, e.Status, e.Type, fields, status, problemType, field)
	}
}

// rawPost sends a JSON POST to path on a connection of its own: the
// request line, the given header lines, then whatever send writes. It
// reads the answer while send runs, then closes stop and waits for send.
// closes reports whether the answer said Connection: close.
func rawPost(t *testing.T, h *harness, path, headers string, send func(conn net.Conn, stop <-chan struct{})) (_ response, closes bool) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: eventflow\r\nContent-Type: application/json\r\n%s\r\n", path, headers); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var sending sync.WaitGroup
	sending.Go(func() { send(conn, stop) })
	defer sending.Wait()
	defer close(stop)

	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("POST %s: no answer: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("POST %s: read the answer: %v", path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: body}, res.Close
}

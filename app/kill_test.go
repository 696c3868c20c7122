package app

import (
	"bytes"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

// kill -9 in the middle of the load, then a restart, while clients retry
// every event not answered 202 with the same event_id — the way Jepsen's
// queue checker counts: lost (202, never processed) and duplicated (more
// than one processed row) must be 0; recovered (the client never learnt the
// outcome of its first try, and the event was stored anyway) is reported.
func TestKill9UnderLoadLosesNothing(t *testing.T) {
	onDurableTransports(t, "kills and restarts eventflow under load", kill9UnderLoad)
}

func kill9UnderLoad(t *testing.T, transport string) {
	cfg := testConfig(t, transport)
	cfg.HandlerTimeout, cfg.RedeliveryIdle = 200*time.Millisecond, 3*time.Second
	cfg.IngestTimeout, cfg.RelayAfter, cfg.RelayInterval = time.Second, 2*time.Second, 200*time.Millisecond
	first, base, _ := startProcess(t, cfg)
	var url atomic.Value
	url.Store(base)

	type outcome struct {
		id        string
		uncertain bool // the first try got no clear answer
	}
	var (
		mu        sync.Mutex
		accepted  []outcome
		serverErr int
		wg        sync.WaitGroup
	)
	stopNew := make(chan struct{})
	client := &http.Client{Timeout: 5 * time.Second}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopNew:
					return
				default:
				}
				o := outcome{id: uuid.NewString()}
				body := orderBody(o.id)
				deadline := time.Now().Add(45 * time.Second)
				for try := 0; ; try++ {
					res, err := client.Post(url.Load().(string)+"/v1/events", "application/json", bytes.NewReader([]byte(body)))
					if err == nil {
						res.Body.Close()
						if res.StatusCode == http.StatusAccepted {
							break
						}
						if res.StatusCode >= 500 {
							mu.Lock()
							serverErr++
							mu.Unlock()
						}
					}
					if try == 0 {
						o.uncertain = true
					}
					if time.Now().After(deadline) {
						t.Errorf("event %s never accepted", o.id)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				mu.Lock()
				accepted = append(accepted, o)
				mu.Unlock()
			}
		}()
	}

	time.Sleep(1500 * time.Millisecond)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	second, base, stderr := startProcess(t, cfg)
	url.Store(base)
	time.Sleep(1500 * time.Millisecond)
	close(stopNew)
	wg.Wait()

	ids := make([]string, len(accepted))
	recovered := 0
	for i, o := range accepted {
		ids[i] = o.id
		if o.uncertain {
			recovered++
		}
	}
	h := &harness{t: t, cfg: cfg}
	db := openTestDB(t, cfg.DatabaseURL)
	h.db = db
	eventually(t, 60*time.Second, "every accepted event processed", func() bool {
		return h.count("processed_events", "event_id = ANY($1::uuid[])", pqArray(ids)) == len(ids)
	})
	lost := len(ids) - h.count("processed_events", "event_id = ANY($1::uuid[])", pqArray(ids))
	var duplicated int
	if err := db.Get(&duplicated, `SELECT count(*) - count(DISTINCT event_id) FROM processed_events`); err != nil {
		t.Fatal(err)
	}
	if lost != 0 || duplicated != 0 {
		t.Errorf("lost %d, duplicated %d; want 0 and 0", lost, duplicated)
	}
	if n, raw := h.count("processed_events", ""), h.count("raw_events", ""); n != raw {
		t.Errorf("processed_events %d rows, raw_events %d: every stored event must be processed once", n, raw)
	}
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(); err != nil {
		t.Errorf("the restarted process did not exit cleanly: %v; %s", err, stderr.String())
	}
	t.Logf("%s: accepted %d, lost %d, duplicated %d, recovered %d (first try unanswered), 5xx answers %d",
		transport, len(ids), lost, duplicated, recovered, serverErr)
}

package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

// envOf turns a config into the environment that produces it.
func envOf(cfg Config) []string {
	return []string{
		execEnv + "=1", "EVENTFLOW_TRANSPORT=" + cfg.Transport,
		"DATABASE_URL=" + cfg.DatabaseURL, "REDIS_URL=" + cfg.RedisURL,
		"EVENTFLOW_STREAM=" + cfg.Stream, "EVENTFLOW_CONSUMER_GROUP=" + cfg.ConsumerGroup,
		"EVENTFLOW_CONSUMER_NAME=" + cfg.ConsumerName,
		"EVENTFLOW_HTTP_ADDR=127.0.0.1:0", "EVENTFLOW_METRICS_ADDR=127.0.0.1:0",
		"EVENTFLOW_LOG_LEVEL=INFO", fmt.Sprintf("EVENTFLOW_REDELIVERY_IDLE=%s", cfg.RedeliveryIdle),
		"EVENTFLOW_SHUTDOWN_TIMEOUT=20s",
		fmt.Sprintf("EVENTFLOW_RETRY_MAX=%d", cfg.RetryMax),
		fmt.Sprintf("EVENTFLOW_HANDLER_TIMEOUT=%s", cfg.HandlerTimeout),
		fmt.Sprintf("EVENTFLOW_RETRY_INITIAL_INTERVAL=%s", cfg.RetryInitialInterval),
		fmt.Sprintf("EVENTFLOW_RETRY_MAX_INTERVAL=%s", cfg.RetryMaxInterval),
		fmt.Sprintf("EVENTFLOW_INGEST_TIMEOUT=%s", cfg.IngestTimeout),
		fmt.Sprintf("EVENTFLOW_RELAY_AFTER=%s", cfg.RelayAfter),
		fmt.Sprintf("EVENTFLOW_RELAY_INTERVAL=%s", cfg.RelayInterval),
	}
}

// startProcess runs eventflow serve as a child process and returns it with
// its API's base URL and its stderr.
func startProcess(t *testing.T, cfg Config) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	c, err := startCommand(t, cfg, "serve")
	if err != nil {
		t.Fatal(err)
	}
	return c.cmd, c.api, c.stderr
}

// child is an eventflow process run from the test binary.
type child struct {
	cmd     *exec.Cmd
	api     string      // the API's base URL; "" for a worker
	metrics string      // the metrics server's base URL
	logs    *syncBuffer // stdout: the JSON log lines
	stderr  *syncBuffer
}

// startCommand runs eventflow <command> (serve, api or worker) as a child
// process with the environment of cfg, then env (later values win), and
// returns it once it has logged "eventflow running"; the test's end kills
// it. It fails if the process exits (the child is then returned too, its
// ProcessState set) or stays silent for 30s first.
func startCommand(t *testing.T, cfg Config, command string, env ...string) (*child, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], command)
	cmd.Env = append(append(os.Environ(), envOf(cfg)...), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, logs: &syncBuffer{}, stderr: &syncBuffer{}}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	type addrs struct{ api, metrics string }
	running := make(chan addrs, 1)
	silent := make(chan struct{})
	go func() {
		scan := bufio.NewScanner(stdout)
		scan.Buffer(make([]byte, 64<<10), 16<<20)
		for scan.Scan() {
			c.logs.Write(append(scan.Bytes(), '\n'))
			var line struct {
				Msg         string `json:"msg"`
				HTTPAddr    string `json:"http_addr"`
				MetricsAddr string `json:"metrics_addr"`
			}
			if json.Unmarshal(scan.Bytes(), &line) == nil && line.Msg == "eventflow running" {
				running <- addrs{line.HTTPAddr, line.MetricsAddr}
			}
		}
		close(silent)
		_, _ = io.Copy(io.Discard, stdout) // never leave the child blocked on a full pipe
	}()
	var a addrs
	select {
	case a = <-running:
	case <-silent:
		select {
		case a = <-running: // it ran, and has exited since
		default:
			_ = cmd.Wait()
			return c, fmt.Errorf("eventflow %s exited at start (%v): %s %s", command, cmd.ProcessState, c.logs.String(), c.stderr.String())
		}
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("eventflow %s did not start: %s %s", command, c.logs.String(), c.stderr.String())
	}
	if a.api != "" {
		c.api = "http://" + a.api
	}
	c.metrics = "http://" + a.metrics
	return c, nil
}

// SIGTERM while clients keep posting: the process exits 0, every event
// answered 202 is stored, no request gets a 5xx, and every accepted event
// is processed exactly once (by a worker started afterwards for those the
// first process left pending).
func TestSIGTERMUnderLoadLosesNothing(t *testing.T) {
	onDurableTransports(t, "runs eventflow as a child process under load", sigtermUnderLoad)
}

// onDurableTransports runs a child-process test on each transport that
// survives a process (redis, postgres), in parallel; -short skips it.
func onDurableTransports(t *testing.T, what string, run func(t *testing.T, transport string)) {
	if testing.Short() {
		t.Skip(what)
	}
	t.Parallel()
	for _, transport := range []string{TransportRedis, TransportPostgres} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			run(t, transport)
		})
	}
}

func sigtermUnderLoad(t *testing.T, transport string) {
	cfg := testConfig(t, transport)
	cfg.RedeliveryIdle = 10 * time.Second
	cmd, base, stderr := startProcess(t, cfg)

	var (
		mu        sync.Mutex
		accepted  []string
		serverErr int
		wg        sync.WaitGroup
	)
	stopLoad := make(chan struct{})
	client := &http.Client{Timeout: 30 * time.Second}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				id := uuid.NewString()
				res, err := client.Post(base+"/v1/events", "application/json", bytes.NewReader([]byte(orderBody(id))))
				if err != nil {
					continue // refused once the listener closed: not accepted
				}
				res.Body.Close()
				mu.Lock()
				switch {
				case res.StatusCode == http.StatusAccepted:
					accepted = append(accepted, id)
				case res.StatusCode >= 500:
					serverErr++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr %s", err, stderr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("no exit within 40s of SIGTERM")
	}
	close(stopLoad)
	wg.Wait()
	if len(accepted) == 0 {
		t.Fatal("no event was accepted before the signal")
	}
	if serverErr != 0 {
		t.Errorf("%d requests got a 5xx during shutdown", serverErr)
	}

	// Whatever the first process left pending is claimed by the next
	// worker once idle for RedeliveryIdle.
	h := start(t, cfg, Roles{Worker: true})
	if n := h.count("raw_events", "event_id = ANY($1::uuid[])", pqArray(accepted)); n != len(accepted) {
		t.Fatalf("raw_events holds %d of %d accepted events", n, len(accepted))
	}
	eventually(t, 60*time.Second, "every accepted event processed", func() bool {
		return h.count("processed_events", "event_id = ANY($1::uuid[])", pqArray(accepted)) == len(accepted)
	})
	if n, raw := h.count("processed_events", ""), h.count("raw_events", ""); n != raw {
		t.Errorf("processed_events %d rows, raw_events %d: every stored event should be processed once", n, raw)
	}
	if n := h.count("failed_events", ""); n != 0 {
		t.Errorf("failed_events %d rows after a graceful shutdown, want 0", n)
	}
	t.Logf("accepted %d events before and during shutdown", len(accepted))
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

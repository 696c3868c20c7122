package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventflow/eventflow/schema"
)

// execEnv makes the test binary act as the eventflow command, so that
// tests can run eventflow as a real process and send it signals.
const execEnv = "EVENTFLOW_TEST_EXEC_MAIN"

// chaosTypesEnv, set to 1 beside execEnv, makes the child accept the event
// type chaos.probe too (see chaosRegistry).
const chaosTypesEnv = "EVENTFLOW_TEST_CHAOS_TYPES"

func TestMain(m *testing.M) {
	if os.Getenv(execEnv) == "1" {
		if os.Getenv(chaosTypesEnv) == "1" {
			r, err := chaosRegistry()
			if err != nil {
				fmt.Fprintln(os.Stderr, "eventflow:", err)
				os.Exit(1)
			}
			newRegistry = func() *schema.Registry { return r }
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := Execute(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "eventflow:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashExitCode is the exit status of a child that checked a chaos.probe
// event with "crash": true.
const crashExitCode = 3

// chaosProbe is the payload of a chaos.probe event.
type chaosProbe struct {
	// Key tells events apart; a chaos test uses the event_id.
	Key string `json:"key"`
	// Crash makes the process that checks the event exit at once with
	// crashExitCode, every time: a poison message that crashes its worker.
	Crash bool `json:"crash"`
	// Stall makes the first check of Key in a process take this long (a Go
	// duration): a handler slower than the redelivery idle time. Later
	// checks of the same Key in that process return at once.
	Stall string `json:"stall"`
}

// chaosRegistry is the built-in event types plus chaos.probe, whose
// payload (chaosProbe) tells the process handler to crash or stall.
func chaosRegistry() (*schema.Registry, error) {
	var stalled sync.Map // Keys this process has stalled on
	probe := schema.EventType{
		Name: "chaos.probe",
		Check: func(payload json.RawMessage) (schema.Enrichment, error) {
			var p chaosProbe
			if err := json.Unmarshal(payload, &p); err != nil {
				return nil, &schema.ValidationError{Errors: []schema.FieldError{{Field: "payload", Message: err.Error()}}}
			}
			if p.Crash {
				os.Exit(crashExitCode)
			}
			if d, err := time.ParseDuration(p.Stall); err == nil {
				if _, done := stalled.LoadOrStore(p.Key, true); !done {
					time.Sleep(d)
				}
			}
			return schema.Enrichment{}, nil
		},
	}
	return schema.NewRegistry(append(schema.BuiltinTypes(), probe)...)
}

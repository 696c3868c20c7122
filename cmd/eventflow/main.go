// Command eventflow runs the eventflow service and its tools; see
// `eventflow --help` and the README.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/eventflow/eventflow/app"
)

// gcPercent is the garbage collector's target unless GOGC is set. Go's
// default, 100, spent a sixth of eventflow's CPU on collection under load;
// eventflow's live heap is small (tens of MiB), so letting it grow four
// times over between collections costs little memory and buys throughput.
// GOMEMLIMIT, when set, still bounds the heap.
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "eventflow:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	return app.Execute(ctx, args, environ, stdout, os.Stderr)
}

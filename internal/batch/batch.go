// Package batch is group commit: concurrent callers hand in items, a
// committer runs one function over all the items that arrived together, and
// each caller gets its own result back.
//
// At most InFlight commits run at once. While they run, new items gather in
// the next batch, which starts as soon as a commit slot is free and the
// batch is ready: it holds MaxItems items, or its first item has waited
// Window (at once when Window is 0). So batches adapt to the load: a lone
// caller is committed at once (or after Window), and under load a batch
// carries everything that arrived during the commits before it, which is
// what makes one round trip (one multi-row statement, one pipelined
// publish) serve many callers.
package batch

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Func commits a batch and returns one result per item, in order, or an
// error for the whole batch.
type Func[T, R any] func(ctx context.Context, items []T) ([]R, error)

// Committer groups concurrent Do calls into batches for fn.
type Committer[T, R any] struct {
	fn       Func[T, R]
	window   time.Duration
	maxItems int
	inFlight int

	mu      sync.Mutex
	pending *pendingBatch[T, R]   // the batch new items join
	full    []*pendingBatch[T, R] // batches at MaxItems waiting for a slot
	running int
}

type pendingBatch[T, R any] struct {
	ctx     context.Context // of the caller that opened it, without cancellation
	items   []T
	ready   bool          // its window passed (or there is none)
	done    chan struct{} // closed when results or err are set
	results []R
	err     error
	timer   *time.Timer
}

// ErrResultCount is returned when fn returns another number of results
// than it was given items.
var ErrResultCount = errors.New("batch: the commit returned a result count unlike its item count")

// New returns a committer that calls fn for at most maxItems items at a
// time, at most inFlight calls at once, waiting at most window for a batch
// to fill.
func New[T, R any](window time.Duration, maxItems, inFlight int, fn Func[T, R]) *Committer[T, R] {
	return &Committer[T, R]{fn: fn, window: window, maxItems: max(maxItems, 1), inFlight: max(inFlight, 1)}
}

// Do adds item to the current batch and waits for the batch's commit.
//
// The commit runs on the context of the caller that opened the batch,
// detached from its cancellation: one caller giving up must not fail the
// others, so fn must bound its own work. A caller whose ctx ends before the
// commit stops waiting and gets ctx's error; its item is committed all the
// same, which callers must tolerate (eventflow's writes are idempotent).
func (c *Committer[T, R]) Do(ctx context.Context, item T) (R, error) {
	var zero R
	c.mu.Lock()
	b := c.pending
	if b == nil {
		b = &pendingBatch[T, R]{ctx: context.WithoutCancel(ctx), done: make(chan struct{}), ready: c.window <= 0}
		c.pending = b
		if !b.ready {
			b.timer = time.AfterFunc(c.window, func() { c.windowPassed(b) })
		}
	}
	i := len(b.items)
	b.items = append(b.items, item)
	if len(b.items) >= c.maxItems {
		c.pending = nil
		c.full = append(c.full, b)
	}
	c.dispatchLocked()
	c.mu.Unlock()
	select {
	case <-b.done:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	if b.err != nil {
		return zero, b.err
	}
	return b.results[i], nil
}

func (c *Committer[T, R]) windowPassed(b *pendingBatch[T, R]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b.ready = true
	c.dispatchLocked()
}

// dispatchLocked starts commits while slots are free: full batches first,
// in order, then the pending batch once it is ready.
func (c *Committer[T, R]) dispatchLocked() {
	for c.running < c.inFlight {
		var b *pendingBatch[T, R]
		switch {
		case len(c.full) > 0:
			b, c.full = c.full[0], c.full[1:]
		case c.pending != nil && c.pending.ready:
			b, c.pending = c.pending, nil
		default:
			return
		}
		if b.timer != nil {
			b.timer.Stop()
		}
		c.running++
		go c.commit(b)
	}
}

func (c *Committer[T, R]) commit(b *pendingBatch[T, R]) {
	results, err := c.fn(b.ctx, b.items)
	if err == nil && len(results) != len(b.items) {
		err = ErrResultCount
	}
	b.results, b.err = results, err
	close(b.done)
	c.mu.Lock()
	c.running--
	c.dispatchLocked()
	c.mu.Unlock()
}

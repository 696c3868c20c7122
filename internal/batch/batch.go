// Package batch is group commit: concurrent callers hand in items, a
// committer runs one function over all the items that arrived together, and
// each caller gets its own result back.
//
// A batch is flushed when it holds MaxItems items or when the first item
// has waited Window, whichever comes first. Under low load a caller waits
// at most Window; under high load batches fill up and one round trip (one
// multi-row statement, one pipelined publish) serves many callers.
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

	mu      sync.Mutex
	pending *pendingBatch[T, R]
}

type pendingBatch[T, R any] struct {
	items   []T
	done    chan struct{} // closed when results or err are set
	results []R
	err     error
	timer   *time.Timer
}

// ErrResultCount is returned when fn returns another number of results
// than it was given items.
var ErrResultCount = errors.New("batch: the commit returned a result count unlike its item count")

// New returns a committer that calls fn for at most maxItems items at a
// time, waiting at most window for a batch to fill.
func New[T, R any](window time.Duration, maxItems int, fn Func[T, R]) *Committer[T, R] {
	return &Committer[T, R]{fn: fn, window: window, maxItems: max(maxItems, 1)}
}

// Do adds item to the current batch and waits for the batch's commit.
//
// The commit runs on the context of the caller that opened (or filled) the
// batch, detached from its cancellation: one caller giving up must not fail
// the others, so fn must bound its own work. A caller whose ctx ends before
// the commit stops waiting and gets ctx's error; its item is committed all
// the same, which callers must tolerate (eventflow's writes are
// idempotent).
func (c *Committer[T, R]) Do(ctx context.Context, item T) (R, error) {
	var zero R
	c.mu.Lock()
	b := c.pending
	if b == nil {
		b = &pendingBatch[T, R]{done: make(chan struct{})}
		c.pending = b
		first := context.WithoutCancel(ctx)
		b.timer = time.AfterFunc(c.window, func() { c.flush(first, b) })
	}
	i := len(b.items)
	b.items = append(b.items, item)
	full := len(b.items) >= c.maxItems
	if full {
		c.pending = nil
		b.timer.Stop()
	}
	c.mu.Unlock()
	if full {
		go c.commit(context.WithoutCancel(ctx), b)
	}
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

// flush commits b if it is still the pending batch (it was not filled and
// handed over meanwhile).
func (c *Committer[T, R]) flush(ctx context.Context, b *pendingBatch[T, R]) {
	c.mu.Lock()
	if c.pending != b {
		c.mu.Unlock()
		return
	}
	c.pending = nil
	c.mu.Unlock()
	c.commit(ctx, b)
}

func (c *Committer[T, R]) commit(ctx context.Context, b *pendingBatch[T, R]) {
	defer close(b.done)
	results, err := c.fn(ctx, b.items)
	if err == nil && len(results) != len(b.items) {
		err = ErrResultCount
	}
	b.results, b.err = results, err
}

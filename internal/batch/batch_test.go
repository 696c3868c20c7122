package batch_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/eventflow/eventflow/internal/batch"
)

// Concurrent callers share commits, and each gets its own result.
func TestCommitterGroupsCallers(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		sizes []int
	)
	c := batch.New(20*time.Millisecond, 8, func(_ context.Context, items []int) ([]int, error) {
		mu.Lock()
		sizes = append(sizes, len(items))
		mu.Unlock()
		out := make([]int, len(items))
		for i, v := range items {
			out[i] = v * 10
		}
		return out, nil
	})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.Do(context.Background(), i)
			if err != nil || got != i*10 {
				t.Errorf("Do(%d) = %d, %v; want %d", i, got, err, i*10)
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range sizes {
		if n > 8 {
			t.Errorf("a batch of %d items, over the cap of 8", n)
		}
		total += n
	}
	if total != 20 || len(sizes) >= 20 {
		t.Errorf("batches %v: want 20 items in fewer than 20 commits", sizes)
	}
}

// A lone caller is committed after the window, not held forever.
func TestCommitterFlushesAfterTheWindow(t *testing.T) {
	t.Parallel()
	c := batch.New(10*time.Millisecond, 100, func(_ context.Context, items []string) ([]string, error) {
		return items, nil
	})
	got, err := c.Do(context.Background(), "alone")
	if err != nil || got != "alone" {
		t.Fatalf("Do = %q, %v", got, err)
	}
}

// A failed commit fails every caller of the batch; a wrong result count is
// an error too.
func TestCommitterErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("store down")
	failing := batch.New(time.Millisecond, 10, func(context.Context, []int) ([]int, error) { return nil, boom })
	if _, err := failing.Do(context.Background(), 1); !errors.Is(err, boom) {
		t.Errorf("failed commit: %v, want %v", err, boom)
	}
	short := batch.New(time.Millisecond, 10, func(context.Context, []int) ([]int, error) { return nil, nil })
	if _, err := short.Do(context.Background(), 1); !errors.Is(err, batch.ErrResultCount) {
		t.Errorf("no results: %v, want ErrResultCount", err)
	}
}

// A caller that gives up stops waiting; the others in its batch are served
// and the commit runs on a context that is not cancelled.
func TestCommitterCallerGivesUp(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	c := batch.New(5*time.Millisecond, 10, func(ctx context.Context, items []int) ([]int, error) {
		<-release
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return items, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { _, err := c.Do(ctx, 1); gaveUp <- err }()
	stayed := make(chan error, 1)
	go func() { _, err := c.Do(context.Background(), 2); stayed <- err }()
	time.Sleep(20 * time.Millisecond) // both joined one batch, now committing
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Errorf("the caller that gave up: %v", err)
	}
	close(release)
	if err := <-stayed; err != nil {
		t.Errorf("the caller that stayed: %v (the commit must not see the other's cancellation)", err)
	}
}

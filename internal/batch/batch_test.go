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
	c := batch.New(20*time.Millisecond, 8, 4, func(_ context.Context, items []int) ([]int, error) {
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
	c := batch.New(10*time.Millisecond, 100, 4, func(_ context.Context, items []string) ([]string, error) {
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
	failing := batch.New(time.Millisecond, 10, 4, func(context.Context, []int) ([]int, error) { return nil, boom })
	if _, err := failing.Do(context.Background(), 1); !errors.Is(err, boom) {
		t.Errorf("failed commit: %v, want %v", err, boom)
	}
	short := batch.New(time.Millisecond, 10, 4, func(context.Context, []int) ([]int, error) { return nil, nil })
	if _, err := short.Do(context.Background(), 1); !errors.Is(err, batch.ErrResultCount) {
		t.Errorf("no results: %v, want ErrResultCount", err)
	}
}

// A caller that gives up stops waiting; the others in its batch are served
// and the commit runs on a context that is not cancelled.
func TestCommitterCallerGivesUp(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	c := batch.New(5*time.Millisecond, 10, 4, func(ctx context.Context, items []int) ([]int, error) {
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

// With no window, a lone caller is committed at once; while the only commit
// slot is busy, later callers gather into one batch that starts when the
// slot frees. No more than inFlight commits ever run at once.
func TestCommitterBatchesWhileCommitsRun(t *testing.T) {
	t.Parallel()
	var (
		mu              sync.Mutex
		sizes           []int
		running, maxRun int
	)
	release := make(chan struct{})
	c := batch.New(0, 100, 1, func(_ context.Context, items []int) ([]int, error) {
		mu.Lock()
		sizes = append(sizes, len(items))
		running++
		maxRun = max(maxRun, running)
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			<-release
		}
		mu.Lock()
		running--
		mu.Unlock()
		return items, nil
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = c.Do(context.Background(), 0) }()
	for {
		mu.Lock()
		n := len(sizes)
		mu.Unlock()
		if n == 1 {
			break // the first commit runs alone and holds the slot
		}
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := c.Do(context.Background(), i); err != nil || got != i {
				t.Errorf("Do(%d) = %d, %v", i, got, err)
			}
		}()
	}
	time.Sleep(30 * time.Millisecond) // all 30 join the waiting batch
	close(release)
	wg.Wait()
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 30 {
		t.Errorf("batch sizes %v, want [1 30]: callers that arrive during a commit share the next one", sizes)
	}
	if maxRun != 1 {
		t.Errorf("%d commits ran at once, the limit is 1", maxRun)
	}
}

// Full batches queue for a commit slot instead of growing past MaxItems.
func TestCommitterQueuesFullBatches(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		sizes []int
	)
	gate := make(chan struct{})
	c := batch.New(time.Hour, 5, 2, func(_ context.Context, items []int) ([]int, error) {
		<-gate
		mu.Lock()
		sizes = append(sizes, len(items))
		mu.Unlock()
		return items, nil
	})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = c.Do(context.Background(), i) }()
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	if len(sizes) != 4 {
		t.Fatalf("batch sizes %v, want four full batches of 5", sizes)
	}
	for _, n := range sizes {
		if n != 5 {
			t.Errorf("batch sizes %v, want four full batches of 5", sizes)
			break
		}
	}
}

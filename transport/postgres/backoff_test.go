package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

func TestJitteredPolls(t *testing.T) {
	t.Parallel()
	const poll = 100 * time.Millisecond
	j := newJitteredPolls(poll)
	logger := watermill.NopLogger{}
	seen := map[time.Duration]bool{}
	for range 100 {
		d := j.HandleError(logger, true, nil)
		if d < poll/2 || d >= 3*poll/2 {
			t.Fatalf("wait after an empty poll %s, want within [%s, %s)", d, poll/2, 3*poll/2)
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Errorf("%d distinct waits in 100 empty polls: not spread", len(seen))
	}
	if d := j.HandleError(logger, false, nil); d != 0 {
		t.Errorf("wait after a poll that found messages %s, want 0", d)
	}
	if d := j.HandleError(logger, false, errors.New("connection refused")); d != retryInterval {
		t.Errorf("wait after a failed poll %s, want %s", d, retryInterval)
	}
}

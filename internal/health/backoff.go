package health

import (
	"context"
	"time"
)

// Default backoff between attempts: quick enough to catch a service that
// comes up in a second, patient enough not to hammer one that is starting.
const (
	DefaultBackoffInitial = 500 * time.Millisecond
	DefaultBackoffMax     = 5 * time.Second
)

// Backoff is the wait between attempts: Initial, doubling up to Max.
type Backoff struct {
	// Initial is the wait after the first attempt; zero means
	// DefaultBackoffInitial.
	Initial time.Duration
	// Max caps the wait; zero means DefaultBackoffMax.
	Max time.Duration
}

// Delay returns the wait after attempt (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.withDefaults()
	d := b.Initial
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	return b
}

// sleep waits d or until ctx ends, reporting whether the full wait passed.
// When ctx's deadline comes before the wait is over it returns at once:
// waiting only to give up helps nobody.
func sleep(ctx context.Context, d time.Duration) bool {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

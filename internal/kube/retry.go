package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Retry defaults, chosen so a briefly overloaded or restarting API server
// (a few seconds) does not fail a deployment, while a dead one fails it in
// well under a minute.
const (
	defaultRetryAttempts = 5
	defaultRetryInitial  = 200 * time.Millisecond
	defaultRetryMax      = 5 * time.Second
)

// RetryPolicy bounds how often and how long Retry tries again. Zero fields
// take the defaults.
type RetryPolicy struct {
	// Attempts is how many times the call is made in all, the first
	// included; default 5.
	Attempts int
	// Initial is the wait before the second attempt; default 200ms. Each
	// later wait doubles, up to Max.
	Initial time.Duration
	// Max bounds every wait, a server's Retry-After included; default 5s.
	Max time.Duration
}

// PatientRetry is for work that must happen once a run has changed the
// cluster — a rollback, releasing the lock: it keeps trying through an API
// outage of a couple of minutes, bounded by the caller's context.
var PatientRetry = RetryPolicy{Attempts: 60, Initial: 200 * time.Millisecond, Max: 2 * time.Second}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = defaultRetryAttempts
	}
	if p.Initial <= 0 {
		p.Initial = defaultRetryInitial
	}
	if p.Max <= 0 {
		p.Max = defaultRetryMax
	}
	if p.Initial > p.Max {
		p.Initial = p.Max
	}
	return p
}

// backoff is the wait after the given failed attempt (1 for the first),
// before jitter: Initial doubled per attempt, never more than Max.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// retryWait is the wait after the given failed attempt: the server's
// suggestion when it asks for longer than the backoff, else the backoff
// with jitter in [backoff/2, backoff] so concurrent runs spread out; never
// more than Max.
func (p RetryPolicy) retryWait(attempt int, suggested time.Duration, jitter func(time.Duration) time.Duration) time.Duration {
	d := p.backoff(attempt)
	if suggested >= d {
		return min(suggested, p.Max)
	}
	if half := d / 2; half > 0 {
		d = half + jitter(half)
	}
	return min(d, p.Max)
}

// Retryable reports whether err is worth another attempt, and the wait the
// server asked for (zero when it named none). Worth it: 429 Too Many
// Requests, any 5xx (server timeouts, internal errors, unavailable), and a
// connection reset, refused or cut short (EOF). Not worth it: any other 4xx
// (a 409 Conflict included: the caller must re-read the object, not repeat
// the same write), context cancellation and everything unrecognised.
func Retryable(err error) (bool, time.Duration) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false, 0
	}
	var delay time.Duration
	if seconds, ok := apierrors.SuggestsClientDelay(err); ok && seconds > 0 {
		delay = time.Duration(seconds) * time.Second
	}
	switch {
	case apierrors.IsTooManyRequests(err),
		apierrors.IsServerTimeout(err),
		apierrors.IsInternalError(err),
		apierrors.IsServiceUnavailable(err),
		apierrors.IsTimeout(err):
		return true, delay
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		// Any other status the server answered with: only its 5xx are
		// transient.
		if status.Status().Code >= http.StatusInternalServerError {
			return true, delay
		}
		return false, 0
	}
	switch {
	case errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF),
		utilnet.IsConnectionReset(err),
		utilnet.IsConnectionRefused(err),
		utilnet.IsProbableEOF(err),
		utilnet.IsHTTP2ConnectionLost(err):
		return true, 0
	}
	return false, 0
}

// Retry calls fn until it succeeds, returns an error Retryable rejects, or
// the policy's attempts are spent, waiting with exponential backoff (or the
// server's Retry-After) in between. fn must be safe to repeat: reads,
// server-side apply and writes guarded by a resourceVersion are. The error
// returned is fn's last, wrapped with the number of attempts when more than
// one was made; a cancelled ctx ends the waiting at once.
func Retry(ctx context.Context, policy RetryPolicy, fn func(ctx context.Context) error) error {
	p := policy.withDefaults()
	jitter := func(d time.Duration) time.Duration { return rand.N(d + 1) }
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		retry, suggested := Retryable(err)
		if !retry {
			return attemptsError(attempt, err)
		}
		if attempt >= p.Attempts {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		timer := time.NewTimer(p.retryWait(attempt, suggested, jitter))
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("stopped retrying after %d attempts (%w): %w", attempt, ctx.Err(), err)
		case <-timer.C:
		}
	}
}

func attemptsError(attempts int, err error) error {
	if attempts == 1 {
		return err
	}
	return fmt.Errorf("after %d attempts: %w", attempts, err)
}

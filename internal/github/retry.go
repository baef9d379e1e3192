package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// Retry limits for one API call.
const (
	// maxTries is how many times one call is sent at most.
	maxTries = 3
	// backoffInitial is the wait after the first failed try, doubled after
	// each further one, when GitHub does not say how long to wait.
	backoffInitial = time.Second
)

// next is what to do after a failed try.
type next int

const (
	// giveUp records a warning for this call; later calls still run.
	giveUp next = iota
	// retry tries again after the decision's wait, if the budget allows.
	retry
	// stopAll records one warning and skips every later call: the token
	// cannot do what the sink needs, so each further call would fail too.
	stopAll
)

// decision is classify's verdict on one failed try.
type decision struct {
	next next
	// wait is how long to wait before retrying.
	wait time.Duration
	// rateLimited is true when GitHub asked the client to slow down; giving
	// up then stops every later call too, since they would hit the same limit.
	rateLimited bool
	// reason says what went wrong, for a warning.
	reason string
}

// classify decides what to do after try (1-based) of a call failed with err
// at now. It is pure so that every GitHub answer can be tested as a value.
func classify(resp *gh.Response, err error, try int, now time.Time) decision {
	backoff := backoffInitial << (try - 1)

	var rle *gh.RateLimitError
	if errors.As(err, &rle) {
		return decision{next: retry, wait: max(rle.Rate.Reset.Sub(now), 0), rateLimited: true,
			reason: fmt.Sprintf("API rate limit exceeded until %s", rle.Rate.Reset.UTC().Format(time.RFC3339))}
	}
	var arle *gh.AbuseRateLimitError
	if errors.As(err, &arle) {
		wait := backoff
		if arle.RetryAfter != nil {
			wait = max(*arle.RetryAfter, 0)
		}
		return decision{next: retry, wait: wait, rateLimited: true, reason: "secondary API rate limit exceeded"}
	}
	var accepted *gh.AcceptedError
	if errors.As(err, &accepted) {
		return decision{next: giveUp, reason: "GitHub accepted the request for later processing (202) instead of doing it"}
	}

	var hr *http.Response
	if resp != nil {
		hr = resp.Response
	}
	if hr == nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return decision{next: retry, wait: backoff, reason: "the request timed out"}
		}
		return decision{next: retry, wait: backoff, reason: fmt.Sprintf("the request failed: %v", err)}
	}

	code := hr.StatusCode
	answer := fmt.Sprintf("GitHub answered %d %s", code, http.StatusText(code))
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Message != "" {
		answer += ": " + er.Message
	}
	retryAfter, hasRetryAfter := parseRetryAfter(hr.Header.Get("Retry-After"), now)
	switch {
	case code == http.StatusTooManyRequests || (code == http.StatusForbidden && hasRetryAfter):
		wait := backoff
		if reset, ok := rateLimitReset(hr.Header, now); ok {
			wait = reset
		}
		if hasRetryAfter {
			wait = retryAfter
		}
		return decision{next: retry, wait: wait, rateLimited: true, reason: answer}
	case code == http.StatusUnauthorized:
		return decision{next: stopAll, reason: answer + "; the token was rejected"}
	case code == http.StatusForbidden || code == http.StatusNotFound:
		return decision{next: stopAll, reason: answer + "; the token may not write commit statuses and deployments " +
			"(it needs statuses: write and deployments: write, and pull requests from forks only get a read-only token)"}
	case code >= 500:
		return decision{next: retry, wait: backoff, reason: answer}
	}
	return decision{next: giveUp, reason: answer}
}

// parseRetryAfter reads a Retry-After header in seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		return max(time.Duration(n)*time.Second, 0), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// rateLimitReset reads how long until an exhausted primary rate limit
// resets, from the X-RateLimit-* headers.
func rateLimitReset(h http.Header, now time.Time) (time.Duration, bool) {
	if h.Get("X-RateLimit-Remaining") != "0" {
		return 0, false
	}
	epoch, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil {
		return 0, false
	}
	return max(time.Unix(epoch, 0).Sub(now), 0), true
}

// sleep waits d or until ctx ends, reporting whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
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

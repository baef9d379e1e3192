package health

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// apiServerRetries is how often a probe through the service proxy is sent
// again after the API server's own failure, within the probe's timeout.
const apiServerRetries = 2

// apiServerRetryPause is the wait before such a retry when the API server
// gives no Retry-After; a Retry-After is honoured up to apiServerRetryCap.
const (
	apiServerRetryPause = 200 * time.Millisecond
	apiServerRetryCap   = time.Second
)

// APIServerFailure reports whether an answer that came through the API
// server's service proxy is the API server's own failure — throttling
// (429) or a 5xx Status of its own, such as a timeout or an etcd error —
// and so says nothing about the app. An answer of the app (any body that
// is not a Kubernetes Status) and the proxy's failures to reach a pod ("no
// endpoints available for service", "error trying to reach service") are
// the app's. Pure.
func APIServerFailure(code int, body []byte) (string, bool) {
	if code != http.StatusTooManyRequests && code < 500 {
		return "", false
	}
	msg, ok := apiServerStatus(body)
	if !ok || podUnreachable(msg) {
		return "", false
	}
	return fmt.Sprintf("the Kubernetes API server's own %d %s: %s", code, http.StatusText(code), clip(msg, 300)), true
}

// podUnreachable is the service proxy saying no pod could be reached: the
// app's failure, counted as any other.
func podUnreachable(msg string) bool {
	return strings.Contains(msg, "no endpoints available for service") ||
		strings.Contains(msg, "error trying to reach service")
}

// retryPause is how long to wait before asking the API server again:
// its Retry-After when it gave one, capped, else a short pause. Pure.
func retryPause(header http.Header) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(header.Get("Retry-After"))); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, apiServerRetryCap)
	}
	return apiServerRetryPause
}

// doJudged sends req and, through the service proxy, sends it again while
// the answer is the API server's own failure and the context allows;
// unjudged says why the last answer still is one ("" when it is the app's).
func (t Target) doJudged(ctx context.Context, req request) (resp response, unjudged string, err error) {
	for attempt := 0; ; attempt++ {
		resp, err = t.do(ctx, req)
		if err != nil || !t.proxied {
			return resp, "", err
		}
		why, own := APIServerFailure(resp.statusCode, resp.body)
		if !own {
			return resp, "", nil
		}
		if attempt == apiServerRetries || !sleep(ctx, retryPause(resp.header)) {
			return resp, why, nil
		}
	}
}

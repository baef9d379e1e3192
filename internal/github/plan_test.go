package github

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gh "github.com/google/go-github/v60/github"
	"github.com/stretchr/testify/assert"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/redact"
)

func TestTruncate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 200)
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "Deployed", 140, "Deployed"},
		{"exactly the limit", strings.Repeat("a", 140), 140, strings.Repeat("a", 140)},
		{"one over", strings.Repeat("a", 141), 140, strings.Repeat("a", 139) + "…"},
		{"long", long, 10, "aaaaaaaaa…"},
		{"multi-byte runes are not split", strings.Repeat("é", 141), 140, strings.Repeat("é", 139) + "…"},
		{"emoji", "🚀🚀🚀🚀🚀", 3, "🚀🚀…"},
		{"no space before the ellipsis", "rolled back to v1 because", 19, "rolled back to v1…"},
		{"zero", "abc", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := truncate(tt.in, tt.n)
			assert.Equal(t, tt.want, got)
			assert.True(t, utf8.ValidString(got))
			assert.LessOrEqual(t, utf8.RuneCountInString(got), max(tt.n, 0))
		})
	}
}

func TestDescription(t *testing.T) {
	t.Parallel()
	got := description("error rate\n31%  with token "+secretInMessage+" "+strings.Repeat("x", 200), []string{secretInMessage, "ab"})
	assert.True(t, strings.HasPrefix(got, "error rate 31% with token *** xxx"), got)
	assert.Equal(t, MaxDescription, utf8.RuneCountInString(got))
	assert.True(t, strings.HasSuffix(got, "…"))
}

func TestPublicURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://app.example.com/shop":                       "https://app.example.com/shop",
		"https://u:" + secretPassword + "@app.example.com/x": "https://app.example.com/x",
		"https://app.example.com/?token=" + secretQuery:      "https://app.example.com/",
		"https://app.example.com/#" + secretQuery:            "https://app.example.com/",
		"javascript:alert(1)":                                "",
		"app.example.com":                                    "",
		"":                                                   "",
	} {
		assert.Equal(t, want, redact.PublicURL(in), in)
	}
}

func TestCommitState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		outcome    event.Outcome
		wasPending bool
		want       string
		wantOK     bool
	}{
		{event.Succeeded, true, "success", true},
		{event.Failed, true, "failure", true},
		{event.Cancelled, true, "error", true},
		{event.Skipped, true, "success", true},
		{event.Skipped, false, "success", false},
		{event.Pending, true, "", false},
	}
	for _, tt := range tests {
		got, ok := commitState(tt.outcome, tt.wasPending)
		assert.Equal(t, tt.wantOK, ok, tt.outcome)
		if ok {
			assert.Equal(t, tt.want, got, tt.outcome)
		}
	}
}

func TestFinalDeployment(t *testing.T) {
	t.Parallel()
	run := testRun()
	tests := []struct {
		status    event.Status
		reason    string
		previous  string
		wantState string
		wantDesc  string
	}{
		{event.StatusSucceeded, "", "v1", "success", "Deployed ghcr.io/octo/app:v2"},
		{event.StatusRolledBack, "p95 above 3s", "ghcr.io/octo/app:v1", "failure", "Rolled back to ghcr.io/octo/app:v1: p95 above 3s"},
		{event.StatusRolledBack, "", "", "failure", "Rolled back to the previous version"},
		{event.StatusRollbackFailed, "undo timed out", "v1", "failure", "Rollback failed, needs attention: undo timed out"},
		{event.StatusFailed, "image pull failed", "v1", "failure", "Failed: image pull failed"},
		{"weird", "", "v1", "error", `Ended with status "weird"`},
	}
	for _, tt := range tests {
		run.PreviousImage = tt.previous
		state, desc := finalDeployment(run, event.Result{Status: tt.status, Reason: tt.reason})
		assert.Equal(t, tt.wantState, state, tt.status)
		assert.Equal(t, tt.wantDesc, desc, tt.status)
	}
}

func TestStatusContext(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "greenlight/staging/verify", StatusContext("staging", event.Verify))
	assert.Equal(t, "greenlight/verify", StatusContext("", event.Verify))
}

// apiError builds the error and response go-github returns for an answer.
func apiError(code int, header map[string]string, body string) (*gh.Response, error) {
	hr := &http.Response{
		StatusCode: code,
		Header:     http.Header{},
		Body:       io.NopCloser(bytes.NewBufferString(body)),
		Request:    &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/repos/o/r/statuses/x"}},
	}
	for k, v := range header {
		hr.Header.Set(k, v)
	}
	return &gh.Response{Response: hr}, gh.CheckResponse(hr)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	reset := now.Add(90 * time.Second).Unix()
	type input struct {
		resp *gh.Response
		err  error
	}
	answer := func(code int, header map[string]string, body string) input {
		r, err := apiError(code, header, body)
		return input{r, err}
	}
	tests := []struct {
		name string
		in   input
		try  int
		want decision
	}{
		{"401", answer(401, nil, `{"message":"Bad credentials"}`), 1,
			decision{next: stopAll, reason: "GitHub answered 401 Unauthorized: Bad credentials; the token was rejected"}},
		{"403 without rate-limit headers", answer(403, nil, `{"message":"Resource not accessible by integration"}`), 1,
			decision{next: stopAll, reason: "GitHub answered 403 Forbidden: Resource not accessible by integration; the token may not write commit statuses and deployments (it needs statuses: write and deployments: write, and pull requests from forks only get a read-only token)"}},
		{"404", answer(404, nil, `{"message":"Not Found"}`), 1,
			decision{next: stopAll, reason: "GitHub answered 404 Not Found: Not Found; the token may not write commit statuses and deployments (it needs statuses: write and deployments: write, and pull requests from forks only get a read-only token)"}},
		{"403 primary rate limit", answer(403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "5000", "X-RateLimit-Reset": itoa(reset)}, `{"message":"API rate limit exceeded"}`), 1,
			decision{}}, // wait depends on the wall clock: checked below
		{"403 secondary rate limit with Retry-After", answer(403, map[string]string{"Retry-After": "30"}, `{"message":"secondary","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`), 1,
			decision{next: retry, wait: 30 * time.Second, rateLimited: true, reason: "secondary API rate limit exceeded"}},
		{"403 with Retry-After only", answer(403, map[string]string{"Retry-After": "5"}, `{"message":"slow down"}`), 1,
			decision{next: retry, wait: 5 * time.Second, rateLimited: true, reason: "GitHub answered 403 Forbidden: slow down"}},
		{"429 with Retry-After", answer(429, map[string]string{"Retry-After": "3"}, `{"message":"too many"}`), 1,
			decision{next: retry, wait: 3 * time.Second, rateLimited: true, reason: "GitHub answered 429 Too Many Requests: too many"}},
		{"429 with an HTTP date", answer(429, map[string]string{"Retry-After": now.Add(4 * time.Second).Format(http.TimeFormat)}, ``), 1,
			decision{next: retry, wait: 4 * time.Second, rateLimited: true, reason: "GitHub answered 429 Too Many Requests"}},
		{"429 with a reset time", answer(429, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": itoa(reset)}, ``), 1,
			decision{next: retry, wait: 90 * time.Second, rateLimited: true, reason: "GitHub answered 429 Too Many Requests"}},
		{"429 without hints backs off", answer(429, nil, ``), 2,
			decision{next: retry, wait: 2 * time.Second, rateLimited: true, reason: "GitHub answered 429 Too Many Requests"}},
		{"502", answer(502, nil, `<html>bad gateway</html>`), 1,
			decision{next: retry, wait: time.Second, reason: "GitHub answered 502 Bad Gateway"}},
		{"500 second try", answer(500, nil, `{"message":"oops"}`), 2,
			decision{next: retry, wait: 2 * time.Second, reason: "GitHub answered 500 Internal Server Error: oops"}},
		{"409", answer(409, nil, `{"message":"Conflict"}`), 1,
			decision{next: giveUp, reason: "GitHub answered 409 Conflict: Conflict"}},
		{"422", answer(422, nil, `{"message":"Validation Failed"}`), 1,
			decision{next: giveUp, reason: "GitHub answered 422 Unprocessable Entity: Validation Failed"}},
		{"202", answer(202, nil, `{"message":"Auto-merged main into topic"}`), 1,
			decision{next: giveUp, reason: "GitHub accepted the request for later processing (202) instead of doing it"}},
		{"timeout", input{nil, context.DeadlineExceeded}, 1,
			decision{next: retry, wait: time.Second, reason: "the request timed out"}},
		{"connection refused", input{nil, errors.New("dial tcp 127.0.0.1:1: connect: connection refused")}, 1,
			decision{next: retry, wait: time.Second, reason: "the request failed: dial tcp 127.0.0.1:1: connect: connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := classify(tt.in.resp, tt.in.err, tt.try, now)
			if tt.name == "403 primary rate limit" {
				// go-github reads the reset as a wall-clock time.
				assert.Equal(t, retry, got.next)
				assert.True(t, got.rateLimited)
				assert.Contains(t, got.reason, "API rate limit exceeded until 2025-03-01T12:01:30Z")
				return
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// itoa formats a Unix time for a header.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

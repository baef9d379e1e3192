package github

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/goldenfile"
)

// statusesOf lists "context=state" of the commit statuses sent, in order.
func statusesOf(reqs []request) []string {
	var out []string
	for _, r := range reqs {
		if strings.Contains(r.Path, "/statuses/") {
			b := r.Body.(map[string]any)
			out = append(out, fmt.Sprintf("%v=%v", b["context"], b["state"]))
		}
	}
	return out
}

// deploymentStatesOf lists the deployment status states sent, in order.
func deploymentStatesOf(reqs []request) []string {
	var out []string
	for _, r := range reqs {
		if strings.Contains(r.Path, "/deployments/") {
			out = append(out, fmt.Sprint(r.Body.(map[string]any)["state"]))
		}
	}
	return out
}

// TestStatusSinkRuns checks every request of whole runs against golden
// files: method, path under the Enterprise prefix and JSON body.
func TestStatusSinkRuns(t *testing.T) {
	t.Parallel()
	// Events a sink must ignore, carrying secrets all the same.
	noise := []event.Event{
		{Kind: event.MonitorProgress, Time: t0, Message: "probe " + secretInMessage},
		{Kind: event.Warning, Time: t0, Findings: []event.Finding{{Kind: "pod", Message: secretInFinding}}},
	}
	tests := []struct {
		name           string
		events         []event.Event
		wantStatuses   []string
		wantDeployment []string
	}{
		{
			name: "succeeded",
			events: runEvents(testRun(), event.StatusSucceeded, "",
				stageEvents(event.Validate, event.Succeeded, "Manifests valid; token "+secretInMessage+" redacted"),
				stageEvents(event.Deploy, event.Succeeded, "Rolled out 3 of 3 replicas"),
				noise,
				stageEvents(event.Verify, event.Succeeded, ""),
				stageEvents(event.Monitor, event.Succeeded, "p95 120ms, error rate 0.0% over 5m"),
			),
			wantStatuses: []string{
				"greenlight/production/validate=pending", "greenlight/production/validate=success",
				"greenlight/production/deploy=pending", "greenlight/production/deploy=success",
				"greenlight/production/verify=pending", "greenlight/production/verify=success",
				"greenlight/production/monitor=pending", "greenlight/production/monitor=success",
			},
			wantDeployment: []string{"in_progress", "success"},
		},
		{
			name: "rolled-back",
			events: runEvents(testRun(), event.StatusRolledBack, "error rate 31.0% over the last 20 probes is above the rollback threshold 25%",
				stageEvents(event.Validate, event.Succeeded, ""),
				stageEvents(event.Deploy, event.Succeeded, ""),
				stageEvents(event.Verify, event.Succeeded, ""),
				stageEvents(event.Monitor, event.Failed, "error rate 31.0% over the last 20 probes is above the rollback threshold 25%"),
				stageEvents(event.Rollback, event.Succeeded, "Restored ghcr.io/octo/app:v1"),
			),
			wantStatuses: []string{
				"greenlight/production/validate=pending", "greenlight/production/validate=success",
				"greenlight/production/deploy=pending", "greenlight/production/deploy=success",
				"greenlight/production/verify=pending", "greenlight/production/verify=success",
				"greenlight/production/monitor=pending", "greenlight/production/monitor=failure",
				"greenlight/production/rollback=pending", "greenlight/production/rollback=success",
			},
			wantDeployment: []string{"in_progress", "failure"},
		},
		{
			// A cancelled stage is an error, and a stage that never finished
			// is not left pending, where it would block a merge forever.
			name: "cancelled",
			events: runEvents(testRun(), event.StatusFailed, "cancelled by SIGTERM; the previous version keeps serving",
				stageEvents(event.Validate, event.Succeeded, ""),
				stageEvents(event.Deploy, event.Cancelled, "Cancelled while 1 of 3 replicas were updated"),
				[]event.Event{{Kind: event.StageStarted, Time: t0, Stage: event.Rollback}},
				[]event.Event{{Kind: event.StageFinished, Time: t0, Stage: event.Verify, Outcome: event.Skipped}},
			),
			wantStatuses: []string{
				"greenlight/production/validate=pending", "greenlight/production/validate=success",
				"greenlight/production/deploy=pending", "greenlight/production/deploy=error",
				"greenlight/production/rollback=pending", "greenlight/production/rollback=error",
			},
			wantDeployment: []string{"in_progress", "failure"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(t, nil)
			s := api.sink(StatusOptions{Token: testToken, Secrets: []string{secretInMessage, secretInFinding}}, nil)
			warnings := play(t, s, tt.events)
			assert.Empty(t, warnings)

			reqs := api.requests()
			require.NotEmpty(t, reqs)
			assert.Equal(t, tt.wantStatuses, statusesOf(reqs))
			assert.Equal(t, tt.wantDeployment, deploymentStatesOf(reqs))
			for _, r := range reqs {
				assert.True(t, strings.HasPrefix(r.Path, apiPrefix+"repos/octo/app/"), r.Path)
				assert.Equal(t, http.MethodPost, r.Method)
			}
			assertNoSecrets(t, reqs)

			got, err := json.MarshalIndent(reqs, "", "  ")
			require.NoError(t, err)
			goldenfile.Assert(t, "run-"+tt.name+".json", append(got, '\n'))
		})
	}
}

// TestStatusSinkPullRequestHeadSHA follows the SHA from a pull_request
// event payload through Context into the status and deployment requests.
func TestStatusSinkPullRequestHeadSHA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	payload := writeFile(t, dir, "event.json", `{"pull_request":{"number":7,"head":{"sha":"`+headSHA+`","repo":{"full_name":"octo/app"}},"base":{"repo":{"full_name":"octo/app"}}}}`)
	api := newFakeAPI(t, nil)
	env := map[string]string{
		"GITHUB_REPOSITORY": "octo/app", "GITHUB_SHA": "ffffffffffffffffffffffffffffffffffffffff",
		"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": payload,
		"GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "99", "GITHUB_API_URL": api.url(),
	}
	gc, err := NewAction(mapEnv(env), &strings.Builder{}).Context()
	require.NoError(t, err)

	run := testRun()
	run.SHA, run.Repository, run.RunURL = gc.SHA, gc.Repository, gc.RunURL
	s := api.sink(StatusOptions{Token: testToken, APIURL: gc.APIURL}, nil)
	assert.Empty(t, play(t, s, runEvents(run, event.StatusSucceeded, "", stageEvents(event.Deploy, event.Succeeded, ""))))

	reqs := api.requests()
	require.Len(t, reqs, 5)
	assert.Equal(t, headSHA, reqs[0].Body.(map[string]any)["ref"], "deployment ref")
	for _, r := range reqs[2:4] {
		assert.Equal(t, apiPrefix+"repos/octo/app/statuses/"+headSHA, r.Path)
	}
}

// TestStatusSinkFailures covers how each kind of GitHub answer is handled.
func TestStatusSinkFailures(t *testing.T) {
	t.Parallel()
	oneStage := runEvents(testRun(), event.StatusSucceeded, "", stageEvents(event.Deploy, event.Succeeded, ""))
	isDeploymentCreate := func(r request) bool { return strings.HasSuffix(r.Path, "/deployments") }
	isStatus := func(r request) bool { return strings.Contains(r.Path, "/statuses/") }
	pastReset := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)

	tests := []struct {
		name    string
		respond func(n int, r request) (answer, bool)
		token   string
		// wantRequests is the number of requests sent.
		wantRequests int
		wantStatuses []string
		wantDeploy   []string
		// wantWarnings are substrings, one per expected warning.
		wantWarnings []string
		wantWaits    []time.Duration
	}{
		{
			name:         "no token",
			token:        "-",
			wantRequests: 0,
			wantWarnings: []string{"no GitHub token"},
		},
		{
			name: "401 stops everything with one warning",
			respond: func(n int, r request) (answer, bool) {
				return answer{code: 401, body: `{"message":"Bad credentials"}`}, true
			},
			wantRequests: 1,
			wantWarnings: []string{"401 Unauthorized: Bad credentials; the token was rejected"},
		},
		{
			name: "403 read-only fork token stops everything with one warning",
			respond: func(n int, r request) (answer, bool) {
				return answer{code: 403, body: `{"message":"Resource not accessible by integration"}`}, true
			},
			wantRequests: 1,
			wantWarnings: []string{"403 Forbidden: Resource not accessible by integration; the token may not write"},
		},
		{
			name: "409 on deployment skips deployment statuses only",
			respond: func(n int, r request) (answer, bool) {
				if isDeploymentCreate(r) {
					return answer{code: 409, body: `{"message":"Conflict: Commit status checks failed for main."}`}, true
				}
				return answer{}, false
			},
			wantRequests: 3,
			wantStatuses: []string{"greenlight/production/deploy=pending", "greenlight/production/deploy=success"},
			wantWarnings: []string{"create the GitHub deployment for production: GitHub answered 409 Conflict: Conflict: Commit status checks failed for main."},
		},
		{
			name: "5xx retried then accepted",
			respond: func(n int, r request) (answer, bool) {
				if n == 2 || n == 3 {
					return answer{code: 502, body: `{"message":"Server Error"}`}, true
				}
				return answer{}, false
			},
			wantRequests: 7,
			wantStatuses: []string{"greenlight/production/deploy=pending", "greenlight/production/deploy=pending", "greenlight/production/deploy=pending", "greenlight/production/deploy=success"},
			wantDeploy:   []string{"in_progress", "success"},
			wantWaits:    []time.Duration{time.Second, 2 * time.Second},
		},
		{
			name: "5xx three times gives up on that call only",
			respond: func(n int, r request) (answer, bool) {
				if isStatus(r) && r.Body.(map[string]any)["state"] == "pending" {
					return answer{code: 500, body: `{"message":"Server Error"}`}, true
				}
				return answer{}, false
			},
			wantRequests: 7,
			wantStatuses: []string{"greenlight/production/deploy=pending", "greenlight/production/deploy=pending", "greenlight/production/deploy=pending", "greenlight/production/deploy=success"},
			wantDeploy:   []string{"in_progress", "success"},
			wantWarnings: []string{"set commit status greenlight/production/deploy to pending: GitHub answered 500 Internal Server Error: Server Error (gave up after 3 tries)"},
			wantWaits:    []time.Duration{time.Second, 2 * time.Second},
		},
		{
			name: "primary rate limit past its reset is retried",
			respond: func(n int, r request) (answer, bool) {
				if n == 0 {
					return answer{code: 403, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": pastReset, "X-RateLimit-Limit": "1000"},
						body: `{"message":"API rate limit exceeded"}`}, true
				}
				return answer{}, false
			},
			wantRequests: 7, // the retry looks for a deployment the first try made
			wantStatuses: []string{"greenlight/production/deploy=pending", "greenlight/production/deploy=success"},
			wantDeploy:   []string{"in_progress", "success"},
			wantWaits:    []time.Duration{0},
		},
		{
			name: "429 Retry-After honoured",
			respond: func(n int, r request) (answer, bool) {
				if n == 0 {
					return answer{code: 429, header: map[string]string{"Retry-After": "2"}, body: `{"message":"slow down"}`}, true
				}
				return answer{}, false
			},
			wantRequests: 7, // the retry looks for a deployment the first try made
			wantStatuses: []string{"greenlight/production/deploy=pending", "greenlight/production/deploy=success"},
			wantDeploy:   []string{"in_progress", "success"},
			wantWaits:    []time.Duration{2 * time.Second},
		},
		{
			name: "Retry-After beyond the budget stops everything with one warning",
			respond: func(n int, r request) (answer, bool) {
				return answer{code: 403, header: map[string]string{"Retry-After": "60"},
					body: `{"message":"You have exceeded a secondary rate limit","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`}, true
			},
			wantRequests: 1,
			wantWarnings: []string{"secondary API rate limit exceeded"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(t, tt.respond)
			token := testToken
			if tt.token == "-" {
				token = ""
			}
			var waits []time.Duration
			s := api.sink(StatusOptions{Token: token}, &waits)
			warnings := play(t, s, oneStage)

			reqs := api.requests()
			assert.Len(t, reqs, tt.wantRequests)
			assert.Equal(t, tt.wantStatuses, statusesOf(reqs))
			assert.Equal(t, tt.wantDeploy, deploymentStatesOf(reqs))
			require.Len(t, warnings, len(tt.wantWarnings), "warnings: %q", warnings)
			for i, w := range tt.wantWarnings {
				assert.Contains(t, warnings[i], w)
			}
			assert.Equal(t, tt.wantWaits, waits)
			for _, w := range warnings {
				assert.NotContains(t, w, testToken)
			}
			if token != "" {
				assertNoSecrets(t, reqs)
			}
		})
	}
}

// TestStatusSinkDeploymentIdempotent: GitHub stores the deployment but its
// answer is lost (a 502 after the create); the retry finds that deployment
// by the run's key and uses it instead of creating a second one. Another
// run's deployment of the same commit and environment is not taken for it.
func TestStatusSinkDeploymentIdempotent(t *testing.T) {
	t.Parallel()
	creates := 0
	var mu sync.Mutex
	api := newFakeAPI(t, func(n int, r request) (answer, bool) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/deployments") {
			mu.Lock()
			defer mu.Unlock()
			if creates++; creates == 2 {
				return answer{code: http.StatusBadGateway, body: `{"message":"Server Error"}`, stored: true}, true
			}
		}
		return answer{}, false
	})
	// An earlier run (an earlier attempt of this job) deployed the same
	// commit to the same environment.
	earlier := testRun()
	earlier.StartedAt = t0.Add(-time.Hour)
	require.Empty(t, play(t, api.sink(StatusOptions{Token: testToken}, nil), runEvents(earlier, event.StatusFailed, "boom")))

	var waits []time.Duration
	warnings := play(t, api.sink(StatusOptions{Token: testToken}, &waits),
		runEvents(testRun(), event.StatusSucceeded, "", stageEvents(event.Deploy, event.Succeeded, "")))
	assert.Empty(t, warnings)
	assert.Equal(t, []time.Duration{time.Second}, waits, "one retry")

	deployments := api.created()
	require.Len(t, deployments, 2, "one deployment per run, none from the retry")
	var paths []string
	for _, r := range api.requests() {
		if strings.Contains(r.Path, "/deployments") {
			paths = append(paths, r.Method+" "+strings.TrimPrefix(r.Path, apiPrefix+"repos/octo/app"))
		}
	}
	assert.Equal(t, []string{
		"POST /deployments", "POST /deployments/4242/statuses", "POST /deployments/4242/statuses",
		"POST /deployments", "GET /deployments", "POST /deployments/4243/statuses", "POST /deployments/4243/statuses",
	}, paths, "the retry found deployment 4243, this run's, not 4242")
	assertNoSecrets(t, api.requests())
}

// TestStatusSinkDeploymentOff: github-deployment: off sets commit statuses
// and creates no deployment.
func TestStatusSinkDeploymentOff(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t, nil)
	warnings := play(t, api.sink(StatusOptions{Token: testToken, SkipDeployment: true}, nil),
		runEvents(testRun(), event.StatusSucceeded, "", stageEvents(event.Deploy, event.Succeeded, "")))
	assert.Empty(t, warnings)
	assert.Empty(t, api.created())
	for _, r := range api.requests() {
		assert.NotContains(t, r.Path, "/deployments")
	}
	assert.Equal(t, []string{"greenlight/production/deploy=pending", "greenlight/production/deploy=success"}, statusesOf(api.requests()))
}

// TestStatusSinkCloseBounded shows that an API that never answers cannot
// hold Close past its deadline; the cut is reported as a warning.
func TestStatusSinkCloseBounded(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t, nil)
	api.hold = make(chan struct{})
	t.Cleanup(func() { close(api.hold) })
	s := api.sink(StatusOptions{Token: testToken, CallTimeout: time.Hour, RetryBudget: time.Hour}, nil)
	for _, e := range runEvents(testRun(), event.StatusSucceeded, "", stageEvents(event.Deploy, event.Succeeded, "")) {
		s.Handle(e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	warnings := s.Close(ctx)
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "cut short when the deadline passed")
	// A second Close returns the same warnings.
	assert.Equal(t, warnings, s.Close(context.Background()))
}

// TestStatusSinkQueueFull drops events beyond the queue instead of blocking
// Handle, and says how many.
func TestStatusSinkQueueFull(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t, nil)
	api.hold = make(chan struct{})
	s := api.sink(StatusOptions{Token: testToken, QueueSize: 1}, nil)
	for _, e := range runEvents(testRun(), event.StatusSucceeded, "", stageEvents(event.Deploy, event.Succeeded, ""), stageEvents(event.Verify, event.Succeeded, "")) {
		s.Handle(e)
	}
	close(api.hold)
	warnings := s.Close(context.Background())
	require.NotEmpty(t, warnings)
	assert.Regexp(t, `^\d+ GitHub updates were dropped because the queue of 1 was full$`, warnings[len(warnings)-1])
}

// TestStatusSinkAfterClose ignores events sent after Close instead of
// panicking on a closed queue.
func TestStatusSinkAfterClose(t *testing.T) {
	t.Parallel()
	api := newFakeAPI(t, nil)
	s := api.sink(StatusOptions{Token: testToken}, nil)
	assert.Empty(t, s.Close(context.Background()))
	run := testRun()
	assert.NotPanics(t, func() { s.Handle(event.Event{Kind: event.RunStarted, Run: &run}) })
	assert.Empty(t, api.requests())
}

// TestStatusSinkBadRun stops with one warning when the run cannot be
// addressed on GitHub.
func TestStatusSinkBadRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*event.Run)
		want   string
	}{
		{"no repository", func(r *event.Run) { r.Repository = "" }, `the repository "" is not owner/name`},
		{"bad repository", func(r *event.Run) { r.Repository = "octo/app/extra" }, `the repository "octo/app/extra" is not owner/name`},
		{"no sha", func(r *event.Run) { r.SHA = "" }, "the commit SHA is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(t, nil)
			run := testRun()
			tt.modify(&run)
			warnings := play(t, api.sink(StatusOptions{Token: testToken}, nil),
				runEvents(run, event.StatusSucceeded, "", stageEvents(event.Deploy, event.Succeeded, "")))
			require.Len(t, warnings, 1)
			assert.Contains(t, warnings[0], tt.want)
			assert.Empty(t, api.requests())
		})
	}
}

// TestStatusSinkBadAPIURL does not print a URL's credentials when refusing it.
func TestStatusSinkBadAPIURL(t *testing.T) {
	t.Parallel()
	s := NewStatusSink(StatusOptions{Token: testToken, APIURL: "ftp://user:" + secretPassword + "@ghes.example.com/api/v3"})
	warnings := s.Close(context.Background())
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "is not an http(s) URL")
	assert.NotContains(t, warnings[0], secretPassword)
}

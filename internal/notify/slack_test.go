package notify

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/goldenfile"
	"github.com/ebeautything/greenlight/internal/monitor"
)

// TestSlackMessages sends whole runs through a Slack sink and compares the
// exact bodies received with golden files.
func TestSlackMessages(t *testing.T) {
	t.Parallel()
	start := func(run event.Run) event.Event { return event.Event{Kind: event.RunStarted, Time: t0, Run: &run} }
	alert := func(v monitor.Verdict) event.Event {
		return event.Event{Kind: event.AlertRaised, Time: t0.Add(2 * time.Minute),
			Alert: &monitor.AlertChange{State: monitor.AlertRaised, Rule: v.Rule, Time: t0.Add(2 * time.Minute), Verdict: v}}
	}
	finish := func(res event.Result) event.Event {
		res.FinishedAt = t0.Add(5*time.Minute + 12*time.Second)
		return event.Event{Kind: event.RunFinished, Time: res.FinishedAt, Result: &res}
	}
	ignored := []event.Event{
		{Kind: event.StageStarted, Stage: event.Deploy},
		{Kind: event.MonitorProgress, Snapshot: snapshot(time.Second, 0, 10)},
	}
	resolved := event.Event{Kind: event.AlertResolved, Time: t0.Add(3 * time.Minute),
		Alert: &monitor.AlertChange{State: monitor.AlertResolved, Rule: monitor.RuleResponseTime, Time: t0.Add(3 * time.Minute), Verdict: latencyVerdict()}}
	rollbackStarted := func(v *monitor.Verdict, msg string) event.Event {
		return event.Event{Kind: event.RollbackStarted, Time: t0.Add(4 * time.Minute), Stage: event.Rollback, Verdict: v, Message: msg}
	}
	errRate := errorRateVerdict()
	odd := testRun()
	odd.Environment = "qa <&> env"
	odd.Image = "registry.example.com/app:`tick`"
	odd.PreviousImage = ""
	odd.RunURL = "https://github.com/octo/app/actions/runs/99?x=1|<b>"
	odd.EnvironmentURL = ""

	tests := []struct {
		name   string
		events []event.Event
		want   int
	}{
		{"succeeded", append([]event.Event{start(testRun()), alert(latencyVerdict()), resolved}, append(ignored,
			finish(event.Result{Status: event.StatusSucceeded, Revision: "7", Monitor: snapshot(412*time.Millisecond, 1, 200)}))...), 4},
		{"rolled-back", []event.Event{start(testRun()), alert(errorRateVerdict()), rollbackStarted(&errRate, errRate.Message),
			finish(event.Result{Status: event.StatusRolledBack, RolledBack: true, Reason: errorRateVerdict().Message, Monitor: snapshot(1200*time.Millisecond, 62, 200)})}, 4},
		{"manual-rollback", []event.Event{start(testRun()), rollbackStarted(nil, "manual rollback requested by octocat: checkout errors after the release "+secretInMsg),
			finish(event.Result{Status: event.StatusRolledBack, RolledBack: true, Reason: "rolled back by hand"})}, 3},
		{"rollback-failed", []event.Event{start(testRun()),
			finish(event.Result{Status: event.StatusRollbackFailed, Reason: "undo did not become ready within 5m: ImagePullBackOff on app-7d9f",
				ManualCommand: "kubectl -n shop rollout undo deployment/app --to-revision=6"})}, 2},
		{"failed", []event.Event{start(testRun()),
			finish(event.Result{Status: event.StatusFailed, Reason: "health check failed: /health/ready answered 503 with token " + secretInMsg})}, 2},
		{"escaped", []event.Event{start(odd), alert(monitor.Verdict{Rule: monitor.RuleConsecutiveFailures, Action: monitor.Alert, Observed: 4, Threshold: 3, Unit: "probes", Samples: 4,
			Message: "4 consecutive probes failed, above the alert threshold 3 <see> & more"}),
			finish(event.Result{Status: event.StatusSucceeded})}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, nil)
			s := NewSlack(SlackOptions{WebhookURL: rc.url(), HTTPClient: rc.srv.Client(), Secrets: []string{secretInMsg}})
			for _, e := range tt.events {
				s.Handle(e)
			}
			assert.Empty(t, closeWithin(t, s.Close))
			got := rc.requests()
			require.Len(t, got, tt.want)
			for _, r := range got {
				assert.Equal(t, "application/json", r.header.Get("Content-Type"))
				assert.Equal(t, hookPath+"?"+hookQuery, r.path)
				for _, secret := range []string{secretInMsg, secretEnvPass} {
					assert.NotContains(t, string(r.body), secret)
				}
			}
			goldenfile.Assert(t, "slack-"+tt.name+".json", bodies(t, got))
		})
	}
}

// TestSlackRetries covers the answers Slack may give.
func TestSlackRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		answer       func(n int, w http.ResponseWriter, r *http.Request)
		wantRequests int
		wantWarning  string
	}{
		{"500 retried once then delivered", func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 0 {
				http.Error(w, "internal_error", http.StatusInternalServerError)
			}
		}, 2, ""},
		{"500 twice gives up", func(n int, w http.ResponseWriter, r *http.Request) {
			http.Error(w, "internal_error", http.StatusInternalServerError)
		}, 2, "Slack message for run start not delivered: the Slack webhook answered 500 Internal Server Error: internal_error"},
		{"429 with a short Retry-After retried", func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 0 {
				w.Header().Set("Retry-After", "0")
				http.Error(w, "rate_limited", http.StatusTooManyRequests)
			}
		}, 2, ""},
		{"429 with a long Retry-After not retried", func(n int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "60")
			http.Error(w, "rate_limited", http.StatusTooManyRequests)
		}, 1, "the Slack webhook answered 429 Too Many Requests: rate_limited"},
		{"404 not retried", func(n int, w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no_service", http.StatusNotFound)
		}, 1, "the Slack webhook answered 404 Not Found: no_service"},
		{"redirect not followed", func(n int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere"+hookPath, http.StatusFound)
		}, 1, "the Slack webhook answered 302 Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, tt.answer)
			s := NewSlack(SlackOptions{WebhookURL: rc.url(), HTTPClient: rc.srv.Client(), retryWait: time.Millisecond})
			run := testRun()
			s.Handle(event.Event{Kind: event.RunStarted, Run: &run})
			warnings := closeWithin(t, s.Close)
			got := rc.requests()
			assert.Len(t, got, tt.wantRequests)
			for _, r := range got[1:] {
				assert.Equal(t, got[0].body, r.body, "a retry sends the same body")
			}
			if tt.wantWarning == "" {
				assert.Empty(t, warnings)
				return
			}
			require.Len(t, warnings, 1)
			assert.Contains(t, warnings[0], tt.wantWarning)
			assertNoURL(t, warnings)
		})
	}
}

// assertNoURL checks that no warning holds a secret part of the URL.
func assertNoURL(t *testing.T, warnings []string) {
	t.Helper()
	for _, w := range warnings {
		for _, part := range urlSecretParts {
			assert.NotContains(t, w, part)
		}
	}
}

// TestSlackHangingReceiverBounded shows that Close returns within its
// deadline although Slack never answers: the per-POST timeout is a minute
// here, so only Close's bound can end the wait.
func TestSlackHangingReceiverBounded(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	rc.hold = make(chan struct{})
	t.Cleanup(func() { close(rc.hold) })
	s := NewSlack(SlackOptions{WebhookURL: rc.url(), HTTPClient: rc.srv.Client(), Timeout: time.Minute})
	run := testRun()
	s.Handle(event.Event{Kind: event.RunStarted, Run: &run})
	s.Handle(event.Event{Kind: event.RunFinished, Run: &run, Result: &event.Result{Status: event.StatusSucceeded}})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	warnings := s.Close(ctx)
	require.Len(t, warnings, 1)
	assert.Equal(t, "2 Slack messages not delivered: the Slack webhook did not answer before the deadline", warnings[0])
	assert.NotPanics(t, func() { s.Handle(event.Event{Kind: event.RunStarted, Run: &run}) }, "Handle after Close")
}

// TestWarningsNeverHoldTheURL provokes the transport errors whose text
// net/http builds around the URL.
func TestWarningsNeverHoldTheURL(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + ln.Addr().String() + hookPath + "?" + hookQuery
	require.NoError(t, ln.Close())

	slow := newReceiver(t, nil)
	slow.hold = make(chan struct{})
	t.Cleanup(func() { close(slow.hold) })

	echo := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unknown hook "+r.URL.String(), http.StatusBadRequest)
	})

	tests := []struct {
		name, url, want string
		timeout         time.Duration
	}{
		{"connection refused", refused, "post to %s: dial tcp " + ln.Addr().String() + ": connect: connection refused", time.Minute},
		{"timeout", slow.url(), "post to %s: no answer within 50ms", 50 * time.Millisecond},
		{"body echoing the URL", echo.url(), "%s answered 400 Bad Request: unknown hook %s", time.Minute},
		{"credentials in the URL", "ftp://user:" + signingSecret + "@example.com" + hookPath, "%s URL is not an http(s) URL", time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			run := testRun()
			events := []event.Event{
				{Kind: event.RunStarted, Run: &run},
				{Kind: event.AlertRaised, Time: t0, Alert: &monitor.AlertChange{State: monitor.AlertRaised, Rule: monitor.RuleErrorRate, Verdict: errorRateVerdict()}},
			}
			slack := NewSlack(SlackOptions{WebhookURL: tt.url, Timeout: tt.timeout, retryWait: time.Millisecond})
			hook := NewWebhook(WebhookOptions{URL: tt.url, Secret: signingSecret, Timeout: tt.timeout, retryWait: time.Millisecond})
			for _, e := range events {
				slack.Handle(e)
				hook.Handle(e)
			}
			for name, warnings := range map[string][]string{
				"the Slack webhook": closeWithin(t, slack.Close),
				"the alert webhook": closeWithin(t, hook.Close),
			} {
				require.NotEmpty(t, warnings, name)
				want := strings.ReplaceAll(tt.want, "%s", name)
				assert.Contains(t, strings.ToLower(warnings[0]), strings.ToLower(want), name)
				assertNoURL(t, warnings)
			}
		})
	}
}

// TestSlackQueueFull drops messages beyond the queue and says how many.
func TestSlackQueueFull(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	rc.hold = make(chan struct{})
	s := NewSlack(SlackOptions{WebhookURL: rc.url(), HTTPClient: rc.srv.Client(), QueueSize: 1})
	run := testRun()
	for range 5 {
		s.Handle(event.Event{Kind: event.RunStarted, Run: &run})
	}
	close(rc.hold)
	warnings := closeWithin(t, s.Close)
	require.Len(t, warnings, 1)
	assert.Regexp(t, `^[34] Slack messages dropped because the queue of 1 was full$`, warnings[0])
}

// TestSlackNotConfigured records one warning and sends nothing.
func TestSlackNotConfigured(t *testing.T) {
	t.Parallel()
	s := NewSlack(SlackOptions{})
	run := testRun()
	s.Handle(event.Event{Kind: event.RunStarted, Run: &run})
	assert.Equal(t, []string{"The Slack webhook is not configured; no Slack messages are sent"}, closeWithin(t, s.Close))
}

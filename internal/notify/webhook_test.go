package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/goldenfile"
	"github.com/ebeautything/greenlight/internal/monitor"
)

// referenceSignature is the receiver's side of the signature, computed
// here independently of Sign.
func referenceSignature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestWebhookRun sends a rolled-back run through the webhook and checks the
// exact bodies against a golden file, and every header and signature.
func TestWebhookRun(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	w := NewWebhook(WebhookOptions{URL: rc.url(), Secret: signingSecret, HTTPClient: rc.srv.Client(), Secrets: []string{secretInMsg}})
	run := testRun()
	latency, errRate := latencyVerdict(), errorRateVerdict()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	events := []event.Event{
		{Kind: event.RunStarted, Time: t0, Run: &run},
		{Kind: event.StageStarted, Time: t0, Stage: event.Monitor},
		{Kind: event.AlertRaised, Time: at(2), Alert: &monitor.AlertChange{State: monitor.AlertRaised, Rule: latency.Rule, Time: at(2), Verdict: latency}},
		{Kind: event.AlertResolved, Time: at(3), Alert: &monitor.AlertChange{State: monitor.AlertResolved, Rule: latency.Rule, Time: at(3), Verdict: latency}},
		{Kind: event.AlertRaised, Time: at(4), Alert: &monitor.AlertChange{State: monitor.AlertRaised, Rule: errRate.Rule, Time: at(4), Verdict: errRate}},
		{Kind: event.RollbackStarted, Time: at(4), Verdict: &errRate},
		{Kind: event.RollbackFinished, Time: at(5)},
		{Kind: event.RunFinished, Time: at(5), Result: &event.Result{Status: event.StatusRolledBack, RolledBack: true,
			Reason: "rolled back to ghcr.io/octo/app:v1 (token " + secretInMsg + ")", FinishedAt: at(5)}},
	}
	for _, e := range events {
		w.Handle(e)
	}
	assert.Empty(t, closeWithin(t, w.Close))

	got := rc.requests()
	require.Len(t, got, 5)
	wantTypes := []string{TypeAlertRaised, TypeAlertResolved, TypeAlertRaised, TypeRollbackStarted, TypeRunFinished}
	ids := map[string]bool{}
	for i, r := range got {
		var body map[string]any
		require.NoError(t, json.Unmarshal(r.body, &body))
		assert.Equal(t, wantTypes[i], body["type"])
		assert.Equal(t, wantTypes[i], r.header.Get(EventHeader))
		assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		assert.Regexp(t, uuidPattern, r.header.Get(DeliveryHeader))
		ids[r.header.Get(DeliveryHeader)] = true

		sig := r.header.Get(SignatureHeader)
		want := referenceSignature(signingSecret, r.body)
		assert.True(t, hmac.Equal([]byte(want), []byte(sig)), "signature of body %d: got %s want %s", i, sig, want)
		assert.False(t, hmac.Equal([]byte(referenceSignature("other-secret", r.body)), []byte(sig)))

		assert.Len(t, body, 14, "every key is always present")
		for _, secret := range []string{secretInMsg, secretEnvPass, signingSecret} {
			assert.NotContains(t, string(r.body), secret)
		}
	}
	assert.Len(t, ids, 5, "each delivery has its own id")
	goldenfile.Assert(t, "webhook-rolled-back.json", bodies(t, got))
}

// TestWebhookRetryKeepsDeliveryID retries a 500 once with the same id,
// body and signature.
func TestWebhookRetryKeepsDeliveryID(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	w := NewWebhook(WebhookOptions{URL: rc.url(), Secret: signingSecret, HTTPClient: rc.srv.Client(), retryWait: time.Millisecond})
	w.Handle(event.Event{Kind: event.RunFinished, Time: t0, Result: &event.Result{Status: event.StatusSucceeded}})
	assert.Empty(t, closeWithin(t, w.Close))
	got := rc.requests()
	require.Len(t, got, 2)
	assert.Equal(t, got[0].body, got[1].body)
	for _, h := range []string{DeliveryHeader, SignatureHeader, EventHeader} {
		assert.Equal(t, got[0].header.Get(h), got[1].header.Get(h), h)
	}
}

// TestWebhookUnsigned sends no signature header without a secret.
func TestWebhookUnsigned(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	w := NewWebhook(WebhookOptions{URL: rc.url(), HTTPClient: rc.srv.Client(), newID: func() string { return "fixed-id" }})
	w.Handle(event.Event{Kind: event.RunFinished, Time: t0, Result: &event.Result{Status: event.StatusSucceeded}})
	assert.Empty(t, closeWithin(t, w.Close))
	got := rc.requests()
	require.Len(t, got, 1)
	_, signed := got[0].header[SignatureHeader]
	assert.False(t, signed)
	assert.Equal(t, "fixed-id", got[0].header.Get(DeliveryHeader))
}

func TestSign(t *testing.T) {
	t.Parallel()
	// The example of GitHub's webhook documentation: secret "It's a Secret
	// to Everybody", payload "Hello, World!".
	assert.Equal(t, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		Sign("It's a Secret to Everybody", []byte("Hello, World!")))
}

func TestWebhookEvent(t *testing.T) {
	t.Parallel()
	run := testRun()
	v := errorRateVerdict()
	nan := v
	nan.Observed = math.NaN()
	tests := []struct {
		name   string
		e      event.Event
		want   string
		wantOK bool
	}{
		{"not a webhook event", event.Event{Kind: event.MonitorProgress}, "", false},
		{"alert without its change", event.Event{Kind: event.AlertRaised}, "", false},
		{"run end without its result", event.Event{Kind: event.RunFinished}, "", false},
		{"rollback after a stage failure", event.Event{Kind: event.RollbackStarted, Time: t0},
			`{"schema_version":1,"type":"rollback.started","environment":"production","deployment_id":"gl-20250301-1200","image":"ghcr.io/octo/app:v2","rule":null,"observed":null,"threshold":null,"unit":null,"action":"rollback","status":null,"message":"Rolling back to ghcr.io/octo/app:v1","run_url":"https://github.com/octo/app/actions/runs/99","time":"2025-03-01T12:00:00Z"}`, true},
		{"NaN figures become null", event.Event{Kind: event.AlertRaised, Time: t0.In(time.FixedZone("CET", 3600)), Alert: &monitor.AlertChange{Rule: v.Rule, Verdict: nan}},
			`{"schema_version":1,"type":"alert.raised","environment":"production","deployment_id":"gl-20250301-1200","image":"ghcr.io/octo/app:v2","rule":"error-rate","observed":null,"threshold":0.25,"unit":"ratio","action":"rollback","status":null,"message":"error rate 31.0% over the last 20 probes is above the rollback threshold 25%","run_url":"https://github.com/octo/app/actions/runs/99","time":"2025-03-01T12:00:00Z"}`, true},
		{"run end time from the result", event.Event{Kind: event.RunFinished, Result: &event.Result{Status: event.StatusSucceeded, FinishedAt: t0}},
			`{"schema_version":1,"type":"run.finished","environment":"production","deployment_id":"gl-20250301-1200","image":"ghcr.io/octo/app:v2","rule":null,"observed":null,"threshold":null,"unit":null,"action":null,"status":"succeeded","message":"Run succeeded","run_url":"https://github.com/octo/app/actions/runs/99","time":"2025-03-01T12:00:00Z"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			we, ok := webhookEvent(run, tt.e, nil)
			require.Equal(t, tt.wantOK, ok)
			if !ok {
				return
			}
			body, err := marshal(we)
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(body))
			assert.Equal(t, tt.want, string(body), "key order is part of the schema")
		})
	}
}

func TestDeliveryID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		id := deliveryID()
		assert.Regexp(t, uuidPattern, id)
		seen[id] = true
	}
	assert.Len(t, seen, 100, "ids repeat")
}

package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/monitor"
)

// Distinctive parts of webhook URLs and secrets that no warning may hold.
const (
	hookPath      = "/services/T0SECRET1/B0SECRET2/xoxTOKENdistinct42"
	hookQuery     = "key=QUERYSECRET99"
	signingSecret = "whsec_SIGNINGsecret77"
	secretInMsg   = "SECRETinMESSAGE55"
	secretEnvPass = "SECRETenvPASSWORD42"
)

// urlSecretParts lists what must not appear in a warning.
var urlSecretParts = []string{"T0SECRET1", "B0SECRET2", "xoxTOKENdistinct42", "QUERYSECRET99", signingSecret}

// t0 is a fixed origin so golden files are reproducible.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// received is one POST a receiver got.
type received struct {
	header http.Header
	body   []byte
	path   string
}

// receiver is a webhook endpoint on loopback that records every POST and
// answers with answer (200 "ok" when nil).
type receiver struct {
	srv *httptest.Server

	mu   sync.Mutex
	got  []received
	hold chan struct{}
	// answer writes the response to the n-th (0-based) request.
	answer func(n int, w http.ResponseWriter, r *http.Request)
}

// newReceiver starts a recording receiver.
func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	n := len(rc.got)
	rc.got = append(rc.got, received{header: r.Header.Clone(), body: body, path: r.URL.RequestURI()})
	hold := rc.hold
	rc.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if rc.answer != nil {
		rc.answer(n, w, r)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

// requests returns what the receiver got so far.
func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// url is the receiver's webhook URL, with a secret path and query.
func (rc *receiver) url() string { return rc.srv.URL + hookPath + "?" + hookQuery }

// bodies renders the received bodies as an indented JSON array for a
// golden file, keeping each body's key order.
func bodies(t *testing.T, got []received) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("[\n")
	for i, r := range got {
		require.True(t, json.Valid(r.body), "body %d is not JSON: %s", i, r.body)
		var ind bytes.Buffer
		require.NoError(t, json.Indent(&ind, r.body, "  ", "  "))
		b.WriteString("  ")
		b.Write(ind.Bytes())
		if i < len(got)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	return b.Bytes()
}

// closeWithin closes a sink with a generous deadline.
func closeWithin(t *testing.T, closeFn func(context.Context) []string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return closeFn(ctx)
}

// testRun is a production run; its environment URL carries a credential.
func testRun() event.Run {
	return event.Run{
		Environment:    "production",
		Strategy:       "rolling",
		Namespace:      "shop",
		Deployment:     "app",
		Image:          "ghcr.io/octo/app:v2",
		PreviousImage:  "ghcr.io/octo/app:v1",
		DeploymentID:   "gl-20250301-1200",
		SHA:            "b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0",
		Repository:     "octo/app",
		RunURL:         "https://github.com/octo/app/actions/runs/99",
		Actor:          "octocat",
		EnvironmentURL: "https://deployer:" + secretEnvPass + "@app.example.com/shop",
		Production:     true,
		StartedAt:      t0,
	}
}

// snapshot is the monitor figures of a run.
func snapshot(p95 time.Duration, errors, count int64) *monitor.Snapshot {
	return &monitor.Snapshot{
		Count: count, Errors: errors,
		ErrorRate:    float64(errors) / float64(count),
		Availability: float64(count-errors) / float64(count),
		Latency:      monitor.Latency{P95: p95},
	}
}

// errorRateVerdict is a rollback verdict of the error-rate rule.
func errorRateVerdict() monitor.Verdict {
	return monitor.Verdict{
		Rule: monitor.RuleErrorRate, Action: monitor.Rollback, Observed: 0.31, Threshold: 0.25, Unit: "ratio", Samples: 20,
		Message: "error rate 31.0% over the last 20 probes is above the rollback threshold 25%",
	}
}

// latencyVerdict is an alert verdict of the response-time rule.
func latencyVerdict() monitor.Verdict {
	return monitor.Verdict{
		Rule: monitor.RuleResponseTime, Action: monitor.Alert, Observed: 3.412, Threshold: 3, Unit: "seconds", Samples: 20,
		Message: "p95 response time 3.412s over the last 20 probes is above the alert threshold 3s",
	}
}

package notify

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/monitor"
	"github.com/ebeautything/greenlight/internal/redact"
)

// SchemaVersion is the version of WebhookEvent; it changes only when a
// field is removed or changes meaning, never when one is added.
const SchemaVersion = 1

// Webhook event types, the "type" field and the X-Greenlight-Event header.
const (
	// TypeAlertRaised is sent when a threshold rule starts firing.
	TypeAlertRaised = "alert.raised"
	// TypeAlertResolved is sent when a rule that fired stops firing.
	TypeAlertResolved = "alert.resolved"
	// TypeRollbackStarted is sent when greenlight starts restoring the
	// previous version.
	TypeRollbackStarted = "rollback.started"
	// TypeRunFinished is sent once when the run ends, whatever the outcome.
	TypeRunFinished = "run.finished"
)

// Headers of every webhook delivery.
const (
	// SignatureHeader carries "sha256=" and the lowercase hex HMAC-SHA256 of
	// the exact body bytes under the shared secret, like GitHub's
	// X-Hub-Signature-256. It is absent when no secret is configured.
	SignatureHeader = "X-Greenlight-Signature-256"
	// EventHeader carries the event type.
	EventHeader = "X-Greenlight-Event"
	// DeliveryHeader carries a random id, the same on a retry, so that a
	// receiver can drop a delivery it has already seen.
	DeliveryHeader = "X-Greenlight-Delivery"
)

// WebhookEvent is the JSON body the alert webhook receives. The schema is
// stable: every key below is always present, in this order, with null
// where it does not apply to the type.
//
//	{
//	  "schema_version": 1,
//	  "type": "alert.raised",
//	  "environment": "production",
//	  "deployment_id": "gl-20250301-1200",
//	  "image": "ghcr.io/octo/app:v2",
//	  "rule": "error-rate",
//	  "observed": 0.31,
//	  "threshold": 0.25,
//	  "unit": "ratio",
//	  "action": "rollback",
//	  "status": null,
//	  "message": "error rate 31.0% over the last 20 probes is above the rollback threshold 25%",
//	  "run_url": "https://github.com/octo/app/actions/runs/99",
//	  "time": "2025-03-01T12:03:00Z"
//	}
//
// Types:
//
//   - alert.raised: a threshold rule started firing. rule, observed,
//     threshold, unit and action (the verdict: "alert" or "rollback") are set.
//   - alert.resolved: a rule stopped firing. rule, observed, threshold, unit
//     and action hold the last verdict seen while it fired.
//   - rollback.started: greenlight is restoring the previous version. action
//     is "rollback"; rule, observed, threshold and unit are set when a
//     threshold rule caused it, null when a stage failure did.
//   - run.finished: the run ended. status is "succeeded", "failed",
//     "rolled-back" or "rollback-failed"; the rule fields and action are null.
//
// Fields: observed and threshold are numbers in unit, which is "seconds",
// "ratio" (a fraction in 0..1) or "probes" (consecutive failed probes).
// run_url links the workflow run and is "" when unknown. time is when the
// event happened, RFC 3339 in UTC.
//
// Every POST carries Content-Type: application/json, X-Greenlight-Event
// (the type), X-Greenlight-Delivery (an id kept across the one retry) and,
// when a secret is set, X-Greenlight-Signature-256: sha256=<hex>, the
// HMAC-SHA256 of the body bytes as received; verify it with a
// constant-time comparison before trusting the body.
type WebhookEvent struct {
	SchemaVersion int      `json:"schema_version"`
	Type          string   `json:"type"`
	Environment   string   `json:"environment"`
	DeploymentID  string   `json:"deployment_id"`
	Image         string   `json:"image"`
	Rule          *string  `json:"rule"`
	Observed      *float64 `json:"observed"`
	Threshold     *float64 `json:"threshold"`
	Unit          *string  `json:"unit"`
	Action        *string  `json:"action"`
	Status        *string  `json:"status"`
	Message       string   `json:"message"`
	RunURL        string   `json:"run_url"`
	Time          string   `json:"time"`
}

// Sign returns the SignatureHeader value for body under secret:
// "sha256=" and the lowercase hex HMAC-SHA256.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// WebhookOptions configures an alert webhook sink.
type WebhookOptions struct {
	// URL receives the events. It may hold a credential, so it appears in
	// no warning.
	URL string
	// Secret signs every body; empty sends them unsigned.
	Secret string
	// HTTPClient sends the events; nil means a new client with the default
	// transport. Redirects are never followed.
	HTTPClient *http.Client
	// Timeout bounds each POST; zero means DefaultTimeout.
	Timeout time.Duration
	// QueueSize bounds the events waiting for delivery; zero means
	// DefaultQueueSize.
	QueueSize int
	// Secrets are replaced by "***" in every message.
	Secrets []string

	// retryWait replaces the pause before a second try; tests shorten it.
	retryWait time.Duration
	// newID replaces the delivery id generator; tests fix it.
	newID func() string
}

// Webhook posts signed WebhookEvent bodies for raised and resolved alerts,
// rollbacks and the end of a run. Handle never blocks; Close waits for
// delivery within a deadline.
type Webhook struct {
	sender  *sender
	secret  string
	secrets []string
	newID   func() string

	runs runMemory
}

// NewWebhook starts an alert webhook sink. Close must be called to stop it.
func NewWebhook(opts WebhookOptions) *Webhook {
	secrets := slices.Clone(opts.Secrets)
	if opts.Secret != "" {
		secrets = append(secrets, opts.Secret)
	}
	newID := opts.newID
	if newID == nil {
		newID = deliveryID
	}
	return &Webhook{
		secret:  opts.Secret,
		secrets: secrets,
		newID:   newID,
		sender: newSender(senderConfig{
			name: "the alert webhook", noun: "alert webhook event",
			url: opts.URL, client: opts.HTTPClient, timeout: opts.Timeout,
			retryWait: opts.retryWait, queueSize: opts.QueueSize, secrets: secrets,
		}),
	}
}

// Handle renders, signs and queues the events the webhook receives,
// without blocking.
func (w *Webhook) Handle(e event.Event) {
	defer func() {
		if r := recover(); r != nil {
			w.sender.warn(fmt.Sprintf("Alert webhook event for %s not sent: rendering failed: %v", e.Kind, r))
		}
	}()
	run := w.runs.observe(e)

	we, ok := webhookEvent(run, e, w.secrets)
	if !ok {
		return
	}
	if we.Time == "" {
		we.Time = time.Now().UTC().Format(time.RFC3339)
	}
	body, err := marshal(we)
	if err != nil {
		w.sender.warn(fmt.Sprintf("Alert webhook event %s not sent: %v", we.Type, err))
		return
	}
	h := http.Header{
		"Content-Type": {"application/json"},
		"User-Agent":   {userAgent},
		EventHeader:    {we.Type},
		DeliveryHeader: {w.newID()},
	}
	if w.secret != "" {
		h.Set(SignatureHeader, Sign(w.secret, body))
	}
	w.sender.enqueue(delivery{what: we.Type, body: body, header: h})
}

// Close stops accepting events, waits until the queued ones are delivered
// or ctx ends, and returns the warnings collected.
func (w *Webhook) Close(ctx context.Context) []string { return w.sender.close(ctx) }

// webhookEvent maps an event to the webhook body, reporting false for
// events the webhook does not receive. Time is left empty for a zero
// event time.
func webhookEvent(run event.Run, e event.Event, secrets []string) (WebhookEvent, bool) {
	we := WebhookEvent{
		SchemaVersion: SchemaVersion,
		Environment:   run.Environment,
		DeploymentID:  run.DeploymentID,
		Image:         redact.Secrets(run.Image, secrets),
		RunURL:        redact.PublicURL(run.RunURL),
		Message:       strings.TrimSpace(e.Message),
	}
	if !e.Time.IsZero() {
		we.Time = e.Time.UTC().Format(time.RFC3339)
	}
	switch e.Kind {
	case event.AlertRaised, event.AlertResolved:
		if e.Alert == nil {
			return WebhookEvent{}, false
		}
		we.Type = TypeAlertRaised
		if e.Kind == event.AlertResolved {
			we.Type = TypeAlertResolved
		}
		we.setVerdict(e.Alert.Verdict)
		we.Action = ptr(string(e.Alert.Verdict.Action))
		if we.Message == "" {
			we.Message = e.Alert.Verdict.Message
			if e.Kind == event.AlertResolved {
				we.Message = fmt.Sprintf("%s no longer fires; last seen: %s", e.Alert.Rule, e.Alert.Verdict.Message)
			}
		}
		if e.Time.IsZero() && !e.Alert.Time.IsZero() {
			we.Time = e.Alert.Time.UTC().Format(time.RFC3339)
		}
	case event.RollbackStarted:
		we.Type = TypeRollbackStarted
		we.Action = ptr(string(monitor.Rollback))
		if e.Verdict != nil {
			we.setVerdict(*e.Verdict)
			if we.Message == "" {
				we.Message = e.Verdict.Message
			}
		}
		if we.Message == "" {
			we.Message = "Rolling back to " + orDefault(run.PreviousImage, "the previous version")
		}
	case event.RunFinished:
		if e.Result == nil {
			return WebhookEvent{}, false
		}
		we.Type = TypeRunFinished
		we.Status = ptr(string(e.Result.Status))
		if r := strings.TrimSpace(e.Result.Reason); r != "" {
			we.Message = r
		}
		if we.Message == "" {
			we.Message = fmt.Sprintf("Run %s", e.Result.Status)
		}
		if e.Time.IsZero() && !e.Result.FinishedAt.IsZero() {
			we.Time = e.Result.FinishedAt.UTC().Format(time.RFC3339)
		}
	default:
		return WebhookEvent{}, false
	}
	we.Message = redact.Secrets(we.Message, secrets)
	return we, true
}

// setVerdict copies a verdict's rule and figures.
func (we *WebhookEvent) setVerdict(v monitor.Verdict) {
	we.Rule = ptr(string(v.Rule))
	we.Observed = finite(v.Observed)
	we.Threshold = finite(v.Threshold)
	we.Unit = ptr(v.Unit)
}

// finite returns a pointer to f, or nil (JSON null) for NaN and infinities,
// which JSON cannot carry.
func finite(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// deliveryID returns a random UUID (version 4).
func deliveryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

package notify

import (
	"testing"
	"time"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/monitor"
)

// BenchmarkSlackHandle measures what Handle costs the pipeline for a run's
// end message: rendering and queueing, without the network.
func BenchmarkSlackHandle(b *testing.B) {
	s := NewSlack(SlackOptions{})
	run := testRun()
	e := event.Event{Kind: event.RunFinished, Run: &run, Result: &event.Result{
		Status: event.StatusRolledBack, Reason: errorRateVerdict().Message, FinishedAt: t0.Add(5 * time.Minute),
		Monitor: snapshot(time.Second, 62, 200)}}
	b.ReportAllocs()
	for b.Loop() {
		s.Handle(e)
	}
}

// BenchmarkWebhookHandle measures rendering, signing and queueing one alert.
func BenchmarkWebhookHandle(b *testing.B) {
	w := NewWebhook(WebhookOptions{Secret: signingSecret})
	run := testRun()
	v := errorRateVerdict()
	e := event.Event{Kind: event.AlertRaised, Time: t0, Run: &run, Alert: &monitor.AlertChange{Rule: v.Rule, Verdict: v}}
	b.ReportAllocs()
	for b.Loop() {
		w.Handle(e)
	}
}

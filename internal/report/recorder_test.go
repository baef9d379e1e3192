package report

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/monitor"
)

var t0 = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

func series(n int, start time.Time) []monitor.SeriesPoint {
	out := make([]monitor.SeriesPoint, n)
	for i := range out {
		out[i] = monitor.SeriesPoint{Start: start.Add(time.Duration(i) * 10 * time.Second), Width: 10 * time.Second, Count: 2, Avg: 40 * time.Millisecond}
	}
	return out
}

func TestRecorderStages(t *testing.T) {
	t.Parallel()
	rec := NewRecorder()
	run := event.Run{Environment: "staging", Deployment: "app", StartedAt: t0}
	rec.Handle(event.Event{Kind: event.RunStarted, Time: t0, Run: &run})
	rec.Handle(event.Event{Kind: event.StageStarted, Time: t0, Stage: event.Validate})
	rec.Handle(event.Event{Kind: event.StageFinished, Time: t0.Add(2 * time.Second), Stage: event.Validate, Outcome: event.Succeeded, Message: "fine"})
	rec.Handle(event.Event{Kind: event.StageStarted, Time: t0.Add(2 * time.Second), Stage: event.Deploy})
	doc := rec.Document()

	require.Len(t, doc.Stages, 2)
	assert.Equal(t, Stage{Name: event.Validate, Outcome: event.Succeeded, Start: t0, End: t0.Add(2 * time.Second), Duration: 2 * time.Second, Finding: "fine"}, doc.Stages[0])
	assert.Equal(t, event.Pending, doc.Stages[1].Outcome, "a started stage is pending until it finishes")
	assert.Equal(t, event.Status(""), doc.Status())
	assert.Zero(t, doc.Duration)

	// The finished run may repeat the identity with what it learned.
	later := event.Run{Environment: "staging", Deployment: "app", PreviousImage: "app:1"}
	rec.Handle(event.Event{Kind: event.RunFinished, Time: t0.Add(time.Minute), Run: &later, Result: &event.Result{Status: event.StatusFailed, FinishedAt: t0.Add(time.Minute)}})
	doc = rec.Document()
	assert.Equal(t, event.StatusFailed, doc.Status())
	assert.Equal(t, time.Minute, doc.Duration)
	assert.Equal(t, "app:1", doc.Run.PreviousImage)
	assert.Equal(t, t0, doc.Run.StartedAt, "the start time is kept")
}

func TestRecorderKeepsLatestMonitoringFigures(t *testing.T) {
	t.Parallel()
	rec := NewRecorder()
	for i := range 1000 {
		snap := monitor.Snapshot{Count: int64(i + 1)}
		rec.Handle(event.Event{Kind: event.MonitorProgress, Stage: event.Monitor, Snapshot: &snap, Series: series(min(i+1, 130), t0)})
	}
	doc := rec.Document()
	require.NotNil(t, doc.Monitoring)
	assert.Equal(t, int64(1000), doc.Monitoring.Snapshot.Count)
	assert.Len(t, doc.Monitoring.Series, monitor.MaxSeriesPoints, "series is bounded to the newest points")
	assert.Equal(t, t0.Add(10*10*time.Second), doc.Monitoring.Series[0].Start)

	// Progress without a series keeps the last one.
	snap := monitor.Snapshot{Count: 1001}
	rec.Handle(event.Event{Kind: event.MonitorProgress, Snapshot: &snap})
	assert.Len(t, rec.Document().Monitoring.Series, monitor.MaxSeriesPoints)
}

func TestRecorderBounds(t *testing.T) {
	t.Parallel()
	rec := NewRecorder()
	for range 1000 {
		a := monitor.AlertChange{State: monitor.AlertRaised, Rule: monitor.RuleErrorRate, Time: t0}
		rec.Handle(event.Event{Kind: event.AlertRaised, Alert: &a})
		rec.Handle(event.Event{Kind: event.Warning, Message: "again"})
		rec.Handle(event.Event{Kind: event.StageFinished, Stage: event.Deploy, Outcome: event.Failed, Findings: []event.Finding{{Kind: "pod", Message: "x"}}})
	}
	huge := strings.Repeat("é", 10000)
	rec.Handle(event.Event{Kind: event.RollbackStarted, Message: huge})
	h := health.Result{Mode: health.ModePostDeployment, Target: "t", Endpoints: []health.EndpointResult{{Detailed: &health.Detailed{Components: make([]health.Component, 500)}}}}
	rec.Handle(event.Event{Kind: event.HealthChecked, Health: &h})

	doc := rec.Document()
	assert.Len(t, doc.Monitoring.Alerts, maxAlerts)
	assert.Equal(t, 1000-maxAlerts, doc.Monitoring.AlertsDropped)
	assert.Len(t, doc.Warnings, maxWarnings)
	st, _ := doc.Stage(event.Deploy)
	assert.Len(t, st.Findings, maxFindings)
	assert.Len(t, doc.Health[0].Endpoints[0].Detailed.Components, maxComponents)
	assert.Equal(t, (1000-maxAlerts)+(1000-maxWarnings)+(1000-maxFindings)+(500-maxComponents), doc.Dropped)
	assert.LessOrEqual(t, len(doc.Rollback.Reason), maxTextBytes+len("…"))
	assert.True(t, strings.HasSuffix(doc.Rollback.Reason, "é…"), "cut on a rune boundary")
	assert.Len(t, h.Endpoints[0].Detailed.Components, 500, "the caller's result is not changed")
}

func TestRecorderUpsertsResultsByModeAndTarget(t *testing.T) {
	t.Parallel()
	rec := NewRecorder()
	for _, h := range []health.Result{
		{Mode: health.ModePostDeployment, Target: "a", Attempts: 1},
		{Mode: health.ModePostDeployment, Target: "a", Attempts: 2},
		{Mode: health.ModeVerifyRollback, Target: "a", Attempts: 3},
	} {
		rec.Handle(event.Event{Kind: event.HealthChecked, Health: &h})
	}
	for _, tr := range []health.TrafficResult{
		{Mode: health.ModeVerifyTraffic, Target: "a", Attempts: 1},
		{Mode: health.ModeVerifyTraffic, Target: "a", Attempts: 4},
	} {
		rec.Handle(event.Event{Kind: event.TrafficVerified, Traffic: &tr})
	}
	doc := rec.Document()
	require.Len(t, doc.Health, 2)
	assert.Equal(t, 2, doc.Health[0].Attempts)
	assert.Equal(t, 3, doc.Health[1].Attempts)
	require.Len(t, doc.Traffic, 1)
	assert.Equal(t, 4, doc.Traffic[0].Attempts)
}

func TestRecorderThresholds(t *testing.T) {
	t.Parallel()
	alert := monitor.AlertChange{State: monitor.AlertRaised, Rule: monitor.RuleResponseTime, Verdict: monitor.Verdict{Rule: monitor.RuleResponseTime, Action: monitor.Alert, Threshold: 0.75, Unit: "seconds"}}
	tests := []struct {
		name      string
		opts      []Option
		events    []event.Event
		wantAlert time.Duration
	}{
		{"unknown", nil, []event.Event{{Kind: event.MonitorProgress, Snapshot: &monitor.Snapshot{}}}, 0},
		{"from rules", []Option{WithRules(monitor.Rules{AlertResponseTime: 300 * time.Millisecond})}, []event.Event{{Kind: event.MonitorProgress, Snapshot: &monitor.Snapshot{}}}, 300 * time.Millisecond},
		{"learned from an alert", nil, []event.Event{{Kind: event.AlertRaised, Alert: &alert}}, 750 * time.Millisecond},
		{"rules win", []Option{WithRules(monitor.Rules{AlertResponseTime: 300 * time.Millisecond})}, []event.Event{{Kind: event.AlertRaised, Alert: &alert}}, 300 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := NewRecorder(tc.opts...)
			for _, e := range tc.events {
				rec.Handle(e)
			}
			require.NotNil(t, rec.Document().Monitoring)
			assert.Equal(t, tc.wantAlert, rec.Document().Monitoring.AlertThreshold)
		})
	}
}

func TestRecorderRollbackVerdictWins(t *testing.T) {
	t.Parallel()
	rec := NewRecorder()
	alert := monitor.Verdict{Rule: monitor.RuleErrorRate, Action: monitor.Alert}
	rollback := monitor.Verdict{Rule: monitor.RuleConsecutiveFailures, Action: monitor.Rollback}
	rec.Handle(event.Event{Kind: event.RollbackStarted, Verdict: &rollback, Evidence: []monitor.Sample{{Endpoint: "/health"}}})
	rec.Handle(event.Event{Kind: event.MonitorProgress, Verdict: &alert})
	doc := rec.Document()
	assert.Equal(t, rollback, *doc.Monitoring.Verdict)
	assert.Len(t, doc.Monitoring.Evidence, 1)
}

func TestRecorderDocumentIsACopy(t *testing.T) {
	t.Parallel()
	rec := NewRecorder()
	h := health.Result{Target: "a", Endpoints: []health.EndpointResult{{Path: "/health", Detailed: &health.Detailed{Components: []health.Component{{Name: "db"}}}}}}
	rec.Handle(event.Event{Kind: event.HealthChecked, Health: &h})
	rec.Handle(event.Event{Kind: event.MonitorProgress, Series: series(3, t0)})
	rec.Handle(event.Event{Kind: event.StageFinished, Stage: event.Deploy, Findings: []event.Finding{{Kind: "pod"}}})

	// Neither the emitter's values nor a caller's copy reach back in.
	h.Endpoints[0].Detailed.Components[0].Name = "changed by emitter"
	doc := rec.Document()
	doc.Health[0].Endpoints[0].Detailed.Components[0].Name = "changed by caller"
	doc.Monitoring.Series[0].Count = 99
	doc.Stages[0].Findings[0].Kind = "changed"

	again := rec.Document()
	assert.Equal(t, "db", again.Health[0].Endpoints[0].Detailed.Components[0].Name)
	assert.Equal(t, int64(2), again.Monitoring.Series[0].Count)
	assert.Equal(t, "pod", again.Stages[0].Findings[0].Kind)
}

// TestRecorderConcurrent is meant for -race: sinks may be called from
// several goroutines while the report is read.
func TestRecorderConcurrent(t *testing.T) {
	t.Parallel()
	rec := NewRecorder()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				snap := monitor.Snapshot{Count: int64(i)}
				rec.Handle(event.Event{Kind: event.MonitorProgress, Snapshot: &snap, Series: series(5, t0)})
				rec.Handle(event.Event{Kind: event.Warning, Message: "w"})
				rec.Handle(event.Event{Kind: event.StageFinished, Stage: event.Stages()[g%5], Outcome: event.Succeeded})
				_ = Markdown(rec.Document())
			}
		})
	}
	wg.Wait()
	doc := rec.Document()
	assert.Len(t, doc.Warnings, maxWarnings)
	assert.Len(t, doc.Stages, 5)
}

func TestReadJSON(t *testing.T) {
	t.Parallel()
	doc := recordStream(t, "podinfo-rollback-monitor")
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, doc))
	back, err := ReadJSON(&buf)
	require.NoError(t, err)
	assert.Equal(t, doc, back)

	_, err = ReadJSON(strings.NewReader(`{"schema_version": 2}`))
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrSchemaVersion))
	_, err = ReadJSON(strings.NewReader(`{"schema_version":`))
	require.ErrorContains(t, err, "read JSON report")
}

func TestDecodeStream(t *testing.T) {
	t.Parallel()
	rec := NewRecorder()
	in := `{"kind":"run-started","time":"2026-03-14T09:30:00Z","run":{"environment":"qa","image":"a:1","deployment_id":"x","started_at":"2026-03-14T09:30:00Z"}}

{"kind":"warning","message":"w"}
`
	require.NoError(t, DecodeStream(strings.NewReader(in), rec))
	doc := rec.Document()
	assert.Equal(t, "qa", doc.Run.Environment)
	assert.Len(t, doc.Warnings, 1)

	err := DecodeStream(strings.NewReader(in+"not json\n"), NewRecorder())
	require.ErrorContains(t, err, "line 4")
}

// TestNoCredentialsInRenderings feeds URLs with credentials, as a
// misconfigured input could carry, and checks no rendering shows them.
func TestNoCredentialsInRenderings(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-s3cret"
	run := event.Run{
		Environment: "production", Image: "a:1", DeploymentID: "d", StartedAt: t0,
		ServerURL: "https://bot:" + secret + "@github.example", Repository: "acme/app", SHA: "4f2a9c1e8b7d",
		RunURL: "https://x:" + secret + "@github.example/acme/app/actions/runs/1", EnvironmentURL: "https://u:" + secret + "@app.example",
	}
	rec := NewRecorder()
	rec.Handle(event.Event{Kind: event.RunStarted, Run: &run})
	rec.Handle(event.Event{Kind: event.RunFinished, Result: &event.Result{Status: event.StatusSucceeded, FinishedAt: t0.Add(time.Minute)}})
	doc := rec.Document()
	md, txt := Markdown(doc), Text(doc)
	assert.NotContains(t, md, secret)
	assert.NotContains(t, txt, secret)
	assert.Contains(t, md, "(https://github.example/acme/app/commit/4f2a9c1e8b7d)")
	assert.Contains(t, md, "(https://app.example)")
}

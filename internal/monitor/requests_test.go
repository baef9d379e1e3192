package monitor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// win is a window of n requests, errs of them 5xx, with p95 p, ending i
// seconds after t0 and starting 10s earlier.
func win(i int, n, errs float64, p time.Duration) RequestWindow {
	end := t0.Add(time.Duration(i) * time.Second)
	return RequestWindow{Start: end.Add(-10 * time.Second), End: end, Pods: 2, Requests: n, Errors: errs, P95: p, HasLatency: p > 0}
}

func TestMetricsEvaluateRequests(t *testing.T) {
	t.Parallel()
	rules := DefaultRules()
	for _, tc := range []struct {
		name     string
		w        RequestWindow
		want     []RuleID
		action   Action
		noteHas  string
		observed float64
	}{
		{name: "baseline is not judged", w: RequestWindow{Baseline: true}, noteHas: "baseline"},
		{name: "too little traffic, all failing", w: win(10, 19, 19, 10*time.Second), noteHas: "too little traffic to judge: 19 requests in the last 10s, 20 needed"},
		{name: "no traffic at all", w: win(10, 0, 0, 0), noteHas: "too little traffic to judge: 0 requests"},
		{name: "healthy", w: win(10, 200, 2, 100*time.Millisecond)},
		{name: "10% exactly does not alert", w: win(10, 100, 10, 0)},
		{name: "just above 10% alerts", w: win(10, 1000, 101, 0), want: []RuleID{RuleErrorRate}, action: Alert, observed: 0.101},
		{name: "25% exactly alerts only", w: win(10, 100, 25, 0), want: []RuleID{RuleErrorRate}, action: Alert, observed: 0.25},
		{name: "just above 25% rolls back", w: win(10, 1000, 251, 0), want: []RuleID{RuleErrorRate}, action: Rollback, observed: 0.251},
		{name: "3s p95 exactly does not alert", w: win(10, 50, 0, 3*time.Second)},
		{name: "p95 above 3s alerts", w: win(10, 50, 0, 3*time.Second+time.Millisecond), want: []RuleID{RuleResponseTime}, action: Alert, observed: 3.001},
		{name: "no histogram, no latency rule", w: win(10, 50, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vs, note := EvaluateRequests(tc.w, SourcePodMetrics, rules)
			if tc.noteHas != "" {
				assert.Contains(t, note, tc.noteHas)
				assert.Empty(t, vs, "an unjudged window neither passes nor fails")
				return
			}
			assert.Empty(t, note)
			var got []RuleID
			for _, v := range vs {
				got = append(got, v.Rule)
				assert.Equal(t, SourcePodMetrics, v.Source, "the verdict names its source")
				assert.Equal(t, tc.action, v.Action)
				assert.InDelta(t, tc.observed, v.Observed, 1e-9)
				assert.Contains(t, v.Message, "(pod metrics)")
			}
			assert.Equal(t, tc.want, got)
		})
	}

	vs, note := EvaluateRequests(win(10, 5, 5, 0), SourcePodMetrics, Rules{MinRequests: 5, RollbackErrorRate: 0.25})
	assert.Empty(t, note, "min requests is configurable")
	require.Len(t, vs, 1)
	assert.Equal(t, Rollback, vs[0].Action)
}

func TestMetricsProbeVerdictsNameProbes(t *testing.T) {
	t.Parallel()
	vs := Evaluate(Snapshot{Count: 20, Availability: 0.5, Window: WindowStats{Count: 20, ErrorRate: 0.5}}, DefaultRules())
	require.NotEmpty(t, vs)
	for _, v := range vs {
		assert.Equal(t, SourceProbes, v.Source)
	}
}

// sliceSource hands out windows in order, then baselines.
func sliceSource(ws ...RequestWindow) RequestSource {
	var mu sync.Mutex
	i := 0
	return func(context.Context) RequestWindow {
		mu.Lock()
		defer mu.Unlock()
		if i >= len(ws) {
			return RequestWindow{Baseline: true}
		}
		i++
		return ws[i-1]
	}
}

// runWithRequests runs under a manual clock that ticks once the round's
// probe and its request window were both recorded.
func runWithRequests(t *testing.T, opts Options, probe Prober) (Result, *recorder) {
	t.Helper()
	clk := newManualClock()
	opts.Clock = clk
	rec := newRecorder()
	done := make(chan struct{})
	on := func(e Event) {
		rec.on(e)
		if e.Kind == EventRequests {
			rec.samples <- struct{}{}
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { clk.drive(opts.Interval, 1+len(opts.Sources), rec.samples, done) })
	res := Run(t.Context(), opts, probe, on)
	close(done)
	wg.Wait()
	return res, rec
}

func TestMetricsRollBackBeforeProbesReachMinSamples(t *testing.T) {
	t.Parallel()
	opts := Options{
		Endpoints: []string{"/healthz"}, Interval: 10 * time.Second, Duration: time.Hour, Rules: DefaultRules(),
		Sources: []NamedSource{{Name: SourcePodMetrics, Read: sliceSource(RequestWindow{Baseline: true}, win(10, 300, 20, 50*time.Millisecond), win(20, 300, 90, 50*time.Millisecond))}},
	}
	res, rec := runWithRequests(t, opts, patternProber(func(int) bool { return false }))
	require.NotNil(t, res.Rollback)
	assert.Equal(t, SourcePodMetrics, res.Rollback.Source)
	assert.Equal(t, RuleErrorRate, res.Rollback.Rule)
	assert.InDelta(t, 0.3, res.Rollback.Observed, 1e-9)
	assert.Less(t, res.Snapshot.Count, int64(opts.Rules.MinSamples), "the probes had not reached min-samples")
	assert.Empty(t, res.Evidence, "probe samples are no evidence for a metrics verdict")
	assert.True(t, res.StoppedEarly)

	require.NotNil(t, res.Traffic)
	assert.Equal(t, 2, res.Traffic.Windows)
	assert.Equal(t, 600.0, res.Traffic.Requests)
	assert.InDelta(t, 110.0/600, res.Traffic.ErrorRate, 1e-9)
	assert.InDelta(t, 30.0, res.Traffic.Throughput, 1e-9)
	assert.Equal(t, 50*time.Millisecond, res.Traffic.P95)
	require.NotNil(t, res.Snapshot.Traffic, "the snapshot carries the traffic figures beside the probes'")

	// The alert at 6.7% never fired; the 30% window raised a rollback episode.
	var raised []Verdict
	rec.mu.Lock()
	for _, e := range rec.events {
		if e.Kind == EventAlertRaised {
			raised = append(raised, e.Alert.Verdict)
		}
	}
	rec.mu.Unlock()
	require.Len(t, raised, 1)
	assert.Equal(t, SourcePodMetrics, raised[0].Source)
}

func TestMetricsTooLittleTrafficIsReportedNotJudged(t *testing.T) {
	t.Parallel()
	quiet := win(10, 3, 3, 5*time.Second) // every request failed, but only three
	quiet.Findings = []string{"pod a: its metrics endpoint has not answered 3 scrapes in a row"}
	opts := Options{
		Endpoints: []string{"/healthz"}, Interval: 10 * time.Second, Duration: 40 * time.Second, Rules: DefaultRules(),
		Sources: []NamedSource{{Name: SourcePodMetrics, Read: sliceSource(RequestWindow{Baseline: true}, quiet, win(20, 2, 2, 0), win(30, 0, 0, 0))}},
	}
	res, rec := runWithRequests(t, opts, patternProber(func(int) bool { return false }))
	assert.Nil(t, res.Rollback)
	assert.Empty(t, res.Verdicts)
	require.NotNil(t, res.Traffic)
	assert.Zero(t, res.Traffic.Judged)
	assert.Equal(t, 3, res.Traffic.TooLittle)
	assert.Contains(t, res.Traffic.LastNote, "too little traffic to judge")
	assert.Equal(t, []string{"pod metrics: pod a: its metrics endpoint has not answered 3 scrapes in a row"}, res.Findings)
	notes := 0
	rec.mu.Lock()
	for _, e := range rec.events {
		if e.Kind == EventRequests && e.Note != "" {
			notes++
		}
	}
	rec.mu.Unlock()
	assert.Equal(t, 4, notes, "the baseline and three quiet windows each say why they were not judged")
}

func TestMetricsSameRuleTwoSourcesAreTwoEpisodes(t *testing.T) {
	t.Parallel()
	var tr Tracker
	p := Verdict{Rule: RuleErrorRate, Source: SourceProbes, Action: Alert}
	m := Verdict{Rule: RuleErrorRate, Source: SourcePodMetrics, Action: Alert}
	assert.Len(t, tr.Update(t0, []Verdict{p}), 1)
	ch := tr.Update(t0, []Verdict{p, m})
	require.Len(t, ch, 1)
	assert.Equal(t, SourcePodMetrics, ch[0].Verdict.Source)
	ch = tr.Update(t0, []Verdict{m})
	require.Len(t, ch, 1)
	assert.Equal(t, AlertResolved, ch[0].State)
	assert.Equal(t, SourceProbes, ch[0].Verdict.Source)
}

func TestPrometheusAndPodMetricsAreJudgedBySameRulesEachNamed(t *testing.T) {
	t.Parallel()
	unread := RequestWindow{Unread: true, Findings: []string{"unreachable at http://127.0.0.1:9: connection refused"}}
	opts := Options{
		Endpoints: []string{"/healthz"}, Interval: 10 * time.Second, Duration: time.Hour, Rules: DefaultRules(),
		Sources: []NamedSource{
			{Name: SourcePodMetrics, Read: sliceSource(RequestWindow{Baseline: true}, win(10, 300, 3, 50*time.Millisecond), win(20, 300, 3, 50*time.Millisecond), win(30, 300, 3, 50*time.Millisecond))},
			{Name: SourcePrometheus, Read: sliceSource(unread, win(10, 300, 3, 50*time.Millisecond), win(20, 300, 90, 60*time.Millisecond))},
		},
	}
	res, rec := runWithRequests(t, opts, patternProber(func(int) bool { return false }))
	require.NotNil(t, res.Rollback)
	assert.Equal(t, SourcePrometheus, res.Rollback.Source, "the verdict names the source that tripped it")
	assert.Equal(t, RuleErrorRate, res.Rollback.Rule)
	assert.Contains(t, res.Rollback.Message, "(prometheus) is above the rollback threshold 25%")

	require.Len(t, res.Sources, 2)
	assert.Equal(t, SourcePodMetrics, res.Traffic.Source, "the first source is the primary one")
	assert.Equal(t, SourcePodMetrics, res.Sources[0].Source)
	assert.Equal(t, SourcePrometheus, res.Sources[1].Source)
	assert.Equal(t, 1, res.Sources[1].Unread, "an unread window is counted as such")
	assert.Equal(t, 2, res.Sources[1].Windows, "an unread window is not a window of traffic")
	assert.Zero(t, res.Sources[1].TooLittle, "an unread window is not a quiet one")
	assert.Contains(t, res.Findings, "prometheus: unreachable at http://127.0.0.1:9: connection refused", "a finding names its source")
	require.NotNil(t, res.Snapshot.Traffic)
	assert.Len(t, res.Snapshot.Sources, 2)

	var notes []string
	rec.mu.Lock()
	for _, e := range rec.events {
		if e.Kind == EventRequests && e.Window.Source == SourcePrometheus && e.Note != "" {
			notes = append(notes, e.Note)
		}
	}
	rec.mu.Unlock()
	assert.Equal(t, []string{"prometheus could not be read: nothing to judge in this window"}, notes)
}

func TestPrometheusUnreachableIsAFindingNeverAFailure(t *testing.T) {
	t.Parallel()
	unread := RequestWindow{Unread: true, Findings: []string{"unreachable"}}
	opts := Options{
		Endpoints: []string{"/healthz"}, Interval: 10 * time.Second, Duration: 60 * time.Second, Rules: DefaultRules(),
		Sources: []NamedSource{{Name: SourcePrometheus, Read: sliceSource(unread, unread, unread, unread, unread, unread, unread)}},
	}
	res, _ := runWithRequests(t, opts, patternProber(func(int) bool { return false }))
	assert.Nil(t, res.Rollback)
	assert.Empty(t, res.Verdicts)
	require.NotNil(t, res.Traffic)
	assert.Equal(t, SourcePrometheus, res.Traffic.Source)
	assert.Zero(t, res.Traffic.Windows)
	assert.GreaterOrEqual(t, res.Traffic.Unread, 5)
	assert.Contains(t, res.Findings, "prometheus: unreachable")
}

func TestPrometheusOverlappingWindowsCountEachSecondOnce(t *testing.T) {
	t.Parallel()
	var tr Traffic
	w1 := RequestWindow{Start: t0, End: t0.Add(60 * time.Second), Requests: 600, Errors: 60}
	w2 := RequestWindow{Start: t0.Add(time.Second), End: t0.Add(61 * time.Second), Requests: 600, Errors: 60}
	tr.add(w1, "")
	tr.add(w2, "")
	assert.Equal(t, 2, tr.Windows)
	assert.InDelta(t, 610.0, tr.Requests, 1e-9, "the second window adds only its last second")
	assert.InDelta(t, 61.0, tr.Seconds, 1e-9)
	assert.InDelta(t, 10.0, tr.Throughput, 1e-9)
	assert.InDelta(t, 0.1, tr.ErrorRate, 1e-9)
}

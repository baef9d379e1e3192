package podmetrics

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetricsParseSumsCounterAndHistogramOverLabels(t *testing.T) {
	t.Parallel()
	a := newApp(3)
	a.serve(90, "200", 20*time.Millisecond)
	a.serve(7, "500", 300*time.Millisecond)
	a.serve(3, "404", time.Millisecond)
	r := a.read(t)
	assert.Equal(t, 100.0, r.Requests)
	assert.Equal(t, 7.0, r.Errors, "only 5xx counts as an error; 404 does not")
	assert.True(t, r.HasDuration)
	assert.InDelta(t, 100.0, r.Observations, 1e-9)
	require.Len(t, r.Buckets, len(bounds)+1, "buckets summed over series, one per bound")
	assert.True(t, math.IsInf(r.Buckets[len(r.Buckets)-1].UpperBound, 1))
	assert.InDelta(t, 100.0, r.Buckets[len(r.Buckets)-1].Count, 1e-9)
}

func TestMetricsParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, text string }{
		{"html", "<html>oops</html>\n"},
		{"status page", "404 page not found\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Reading
			err := Parse(strings.NewReader(tc.text), DefaultNames(), &r)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "parse the exposition")
		})
	}
	var r Reading
	require.NoError(t, Parse(strings.NewReader("# TYPE go_goroutines gauge\ngo_goroutines 3\n"), DefaultNames(), &r))
	assert.False(t, r.HasRequests, "an absent counter reads as zero")
}

func TestMetricsQuantileInterpolatesLikePrometheus(t *testing.T) {
	t.Parallel()
	bs := []Bucket{{0.1, 50}, {0.5, 90}, {1, 100}, {math.Inf(1), 100}}
	for _, tc := range []struct {
		q, want float64
	}{
		{0.5, 0.1},   // rank 50 is the first bucket's top
		{0.25, 0.05}, // halfway into [0, 0.1]
		{0.95, 0.75}, // rank 95: halfway into (0.5, 1]
		{0.7, 0.3},   // rank 70: halfway into (0.1, 0.5]
		{1.0, 1},     // the top finite bucket
	} {
		got, ok := Quantile(tc.q, bs)
		require.True(t, ok)
		assert.InDelta(t, tc.want, got, 1e-9, "q=%v", tc.q)
	}
	got, ok := Quantile(0.99, []Bucket{{1, 10}, {math.Inf(1), 100}})
	require.True(t, ok)
	assert.Equal(t, 1.0, got, "a rank in +Inf reads as the largest finite bound")
	_, ok = Quantile(0.95, []Bucket{{1, 0}, {math.Inf(1), 0}})
	assert.False(t, ok, "no observations, no latency")
}

func TestMetricsWindowDiffsBetweenScrapes(t *testing.T) {
	t.Parallel()
	a, b := newApp(2), newApp(2)
	a.serve(1000, "200", 10*time.Millisecond) // before the watch: never counted
	b.serve(1, "200", 10*time.Millisecond)
	var tr Tracker
	w := tr.Observe(at(0), []PodScrape{{Pod: "a", UID: "1", Reading: a.read(t)}, {Pod: "b", UID: "2", Reading: b.read(t)}})
	assert.True(t, w.Baseline)
	assert.Zero(t, w.Requests)
	assert.Empty(t, w.Findings, "pods of the first round are no news")

	a.serve(60, "200", 20*time.Millisecond)
	a.serve(20, "503", 20*time.Millisecond)
	b.serve(100, "200", 700*time.Millisecond)
	b.serve(20, "500", 700*time.Millisecond)
	w = tr.Observe(at(10), []PodScrape{{Pod: "a", UID: "1", Reading: a.read(t)}, {Pod: "b", UID: "2", Reading: b.read(t)}})
	assert.False(t, w.Baseline)
	assert.Equal(t, 2, w.Pods)
	assert.Equal(t, 200.0, w.Requests)
	assert.Equal(t, 40.0, w.Errors)
	assert.InDelta(t, 20.0, w.Throughput(), 1e-9)
	require.True(t, w.HasLatency)
	// 80 requests ≤ 25ms, 120 in (0.5s, 1s]: rank 190 is 110/120 into that bucket.
	assert.InDelta(t, 0.5+0.5*110.0/120, w.P95.Seconds(), 1e-6)
}

func TestMetricsCounterResetCountsTheNewValue(t *testing.T) {
	t.Parallel()
	a := newApp(1)
	a.serve(500, "200", time.Millisecond)
	var tr Tracker
	tr.Observe(at(0), []PodScrape{{Pod: "a", UID: "1", Reading: a.read(t)}})
	restarted := newApp(1) // the container restarted: counters start over
	restarted.serve(30, "200", time.Millisecond)
	restarted.serve(10, "500", time.Millisecond)
	w := tr.Observe(at(5), []PodScrape{{Pod: "a", UID: "1", Reading: restarted.read(t)}})
	assert.Equal(t, 40.0, w.Requests, "after a reset the new value is the delta, never a negative one")
	assert.Equal(t, 10.0, w.Errors)
	require.Len(t, w.Findings, 1)
	assert.Equal(t, FindingReset, w.Findings[0].Kind)
	assert.Contains(t, w.Findings[0].Message, "restarted")

	restarted.serve(5, "200", time.Millisecond)
	w = tr.Observe(at(10), []PodScrape{{Pod: "a", UID: "1", Reading: restarted.read(t)}})
	assert.Equal(t, 5.0, w.Requests, "the reading after a reset is the next baseline")
	assert.Empty(t, w.Findings)
}

func TestMetricsPodChurnDuringRollingUpdate(t *testing.T) {
	t.Parallel()
	old, young := newApp(1), newApp(1)
	old.serve(100, "200", time.Millisecond)
	var tr Tracker
	tr.Observe(at(0), []PodScrape{{Pod: "old", UID: "1", Reading: old.read(t)}})

	// A new pod appears with traffic it served before its first scrape: a
	// baseline only, so those requests are not put into this window.
	old.serve(10, "200", time.Millisecond)
	young.serve(50, "500", time.Millisecond)
	w := tr.Observe(at(5), []PodScrape{{Pod: "old", UID: "1", Reading: old.read(t)}, {Pod: "young", UID: "2", Reading: young.read(t)}})
	assert.Equal(t, 10.0, w.Requests)
	assert.Zero(t, w.Errors)
	assert.Equal(t, 1, w.Pods)
	require.Len(t, w.Findings, 1)
	assert.Equal(t, FindingNewPod, w.Findings[0].Kind)
	assert.Equal(t, "young", w.Findings[0].Pod)

	// The old pod goes: dropped, and its state with it.
	young.serve(7, "200", time.Millisecond)
	w = tr.Observe(at(10), []PodScrape{{Pod: "young", UID: "2", Reading: young.read(t)}})
	assert.Equal(t, 7.0, w.Requests)
	require.Len(t, w.Findings, 1)
	assert.Equal(t, FindingGonePod, w.Findings[0].Kind)
	assert.Equal(t, "old", w.Findings[0].Pod)
	assert.Equal(t, 1, tr.Pods())

	// A replacement under the same name (new UID) starts over.
	again := newApp(1)
	again.serve(3, "200", time.Millisecond)
	w = tr.Observe(at(15), []PodScrape{{Pod: "young", UID: "3", Reading: again.read(t)}})
	assert.Zero(t, w.Requests)
	require.Len(t, w.Findings, 1)
	assert.Equal(t, FindingNewPod, w.Findings[0].Kind)
}

func TestMetricsDeadEndpointIsItsOwnFinding(t *testing.T) {
	t.Parallel()
	a, b := newApp(1), newApp(1)
	var tr Tracker
	tr.Observe(at(0), []PodScrape{{Pod: "a", UID: "1", Reading: a.read(t)}, {Pod: "b", UID: "2", Reading: b.read(t)}})
	refused := errors.New("dial tcp 198.51.100.7:9797: connect: connection refused")
	var findings []Finding
	for i := 1; i <= 5; i++ {
		a.serve(10, "200", time.Millisecond)
		b.serve(10, "500", time.Millisecond) // served, but nobody can read it
		w := tr.Observe(at(i), []PodScrape{{Pod: "a", UID: "1", Reading: a.read(t)}, {Pod: "b", UID: "2", Err: refused}})
		assert.Equal(t, 10.0, w.Requests, "round %d: only the answering pod counts", i)
		assert.Zero(t, w.Errors, "round %d: a silent endpoint is never an app failure", i)
		assert.Equal(t, 1, w.Pods)
		findings = append(findings, w.Findings...)
		if i < DefaultDeadAfter {
			assert.Empty(t, w.Findings, "round %d: a miss or two is not news yet", i)
		}
	}
	require.Len(t, findings, 1, "reported once per streak")
	assert.Equal(t, FindingSilent, findings[0].Kind)
	assert.Equal(t, "b", findings[0].Pod)
	assert.Contains(t, findings[0].Message, "3 scrapes in a row")
	assert.Contains(t, findings[0].Message, "connection refused")

	// It answers again: what it served meanwhile is counted once.
	w := tr.Observe(at(6), []PodScrape{{Pod: "a", UID: "1", Reading: a.read(t)}, {Pod: "b", UID: "2", Reading: b.read(t)}})
	assert.Equal(t, 50.0, w.Requests)
	assert.Equal(t, 50.0, w.Errors)
}

func TestMetricsMissingCounterIsReported(t *testing.T) {
	t.Parallel()
	tr := Tracker{Requests: "checkout_requests_total"}
	tr.Observe(at(0), nil)
	empty := &Reading{}
	w := tr.Observe(at(1), []PodScrape{{Pod: "a", UID: "1", Reading: empty}})
	require.Len(t, w.Findings, 2)
	assert.Equal(t, FindingMissing, w.Findings[0].Kind)
	assert.Equal(t, FindingNewPod, w.Findings[1].Kind)
	assert.Contains(t, w.Findings[0].Message, "no checkout_requests_total")
	w = tr.Observe(at(2), []PodScrape{{Pod: "a", UID: "1", Reading: empty}})
	assert.Empty(t, w.Findings, "told once per pod")
	// The counter appears with its first requests: all of them are new.
	w = tr.Observe(at(3), []PodScrape{{Pod: "a", UID: "1", Reading: &Reading{HasRequests: true, Requests: 4}}})
	assert.Equal(t, 4.0, w.Requests)
}

package monitor

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFailureTally(t *testing.T) {
	t.Parallel()
	timeout := Sample{Err: "context deadline exceeded"}
	bad := Sample{StatusCode: 502}
	tests := []struct {
		name      string
		samples   []Sample
		want      []FailureCount
		wantOther int
	}{
		{"none", nil, []FailureCount{}, 0},
		{"an error names itself", []Sample{timeout}, []FailureCount{{"context deadline exceeded", 1}}, 0},
		{"a status without an error", []Sample{bad, bad}, []FailureCount{{"HTTP 502", 2}}, 0},
		{"neither", []Sample{{}}, []FailureCount{{"no answer", 1}}, 0},
		{"the commonest first, first seen first among equals",
			[]Sample{timeout, bad, bad, {Err: "EOF"}, {Err: "reset"}, {Err: "reset"}},
			[]FailureCount{{"HTTP 502", 2}, {"reset", 2}, {"context deadline exceeded", 1}, {"EOF", 1}}, 0},
		{"past the bound, the rest counted together",
			[]Sample{{Err: "a"}, {Err: "b"}, {Err: "c"}, {Err: "d"}, {Err: "e"}, {Err: "f"}, {Err: "g"}, {Err: "a"}},
			[]FailureCount{{"a", 2}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var tally failureTally
			for _, s := range tc.samples {
				tally.add(s)
			}
			got, other := tally.counts()
			if got == nil {
				got = []FailureCount{}
			}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantOther, other)
		})
	}
}

// TestRunSaysWhyProbesFailed: a run whose few failures trip no rule still
// reports what they were, and unjudged probes are not among them.
func TestRunSaysWhyProbesFailed(t *testing.T) {
	t.Parallel()
	opts := Options{Endpoints: []string{"/health"}, Interval: time.Second, Duration: 30 * time.Second, Rules: DefaultRules()}
	var calls atomic.Int64
	res, _ := runDriven(t, opts, 1, func(_ context.Context, _ string) Sample {
		switch n := calls.Add(1); {
		case n%10 == 3:
			return Sample{Latency: time.Second, Err: fmt.Sprintf("Get %q: context deadline exceeded", "http://127.0.0.1/health")}
		case n == 7:
			return Sample{Latency: time.Millisecond, StatusCode: 503}
		case n == 8:
			return Sample{Latency: time.Millisecond, StatusCode: 429, Err: "the Kubernetes API server's own 429", Unjudged: true}
		}
		return Sample{Latency: time.Millisecond, StatusCode: 200, OK: true}
	})
	assert.Nil(t, res.Rollback)
	assert.Equal(t, []FailureCount{
		{`Get "http://127.0.0.1/health": context deadline exceeded`, 3},
		{"HTTP 503", 1},
	}, res.Failures)
	assert.Equal(t, res.Snapshot.Errors, int64(4), "every failure is counted once")
	assert.Zero(t, res.FailuresOther)
}

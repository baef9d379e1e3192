package monitor

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ebeautything/greenlight/internal/goldenfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatsWindowSlides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		window  int
		pattern string // one letter per sample: o succeeded, x failed
		want    WindowStats
		total   int64
		errors  int64
		current int
		longest int
	}{
		{"empty", 20, "", WindowStats{Size: 20}, 0, 0, 0, 0},
		{"filling", 20, "xxxxx", WindowStats{Size: 20, Count: 5, Errors: 5, ErrorRate: 1}, 5, 5, 5, 5},
		{"early failures slide out", 20, "xxxxx" + rep("o", 20), WindowStats{Size: 20, Count: 20, Availability: 1}, 25, 5, 0, 5},
		{"last failures stay", 20, rep("o", 20) + "xxx", WindowStats{Size: 20, Count: 20, Errors: 3, ErrorRate: 0.15, Availability: 0.85}, 23, 3, 3, 3},
		{"small window", 4, "xxooo", WindowStats{Size: 4, Count: 4, Errors: 1, ErrorRate: 0.25, Availability: 0.75}, 5, 2, 0, 2},
		{"exactly full", 4, "oxox", WindowStats{Size: 4, Count: 4, Errors: 2, ErrorRate: 0.5, Availability: 0.5}, 4, 2, 1, 1},
		{"wrapped many times", 3, rep("oox", 10) + "xx", WindowStats{Size: 3, Count: 3, Errors: 3, ErrorRate: 1}, 32, 12, 3, 3},
		{"default window", 0, "o", WindowStats{Size: DefaultWindow, Count: 1, Availability: 1}, 1, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewStats(tt.window, time.Second)
			for i, c := range tt.pattern {
				sm := okSample(i, 10*time.Millisecond)
				if c == 'x' {
					sm = failSample(i, 10*time.Millisecond)
				}
				sm.Endpoint = fmt.Sprint(i)
				s.Add(sm)
			}
			snap := s.Snapshot()
			tt.want.P95 = snap.Window.P95 // checked separately
			assert.Equal(t, tt.want, snap.Window)
			assert.Equal(t, tt.total, snap.Count)
			assert.Equal(t, tt.errors, snap.Errors)
			assert.Equal(t, tt.current, snap.ConsecutiveFailures)
			assert.Equal(t, tt.longest, snap.MaxConsecutiveFailures)

			window := s.Window()
			require.Len(t, window, tt.want.Count)
			for j, sm := range window {
				assert.Equal(t, fmt.Sprint(len(tt.pattern)-tt.want.Count+j), sm.Endpoint, "window must hold the latest samples, oldest first")
			}
		})
	}
}

func TestStatsWindowP95IsExact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		latencies []time.Duration // in order of arrival
		want      time.Duration
	}{
		{"one sample", []time.Duration{7 * time.Millisecond}, 7 * time.Millisecond},
		// Nearest rank of 95% among 20 is the 19th smallest.
		{"one slow of twenty", append(reps(19, 100*time.Millisecond), 9*time.Second), 100 * time.Millisecond},
		{"two slow of twenty", append(reps(18, 100*time.Millisecond), 9*time.Second, 8*time.Second), 8 * time.Second},
		{"slow samples slid out", append([]time.Duration{9 * time.Second, 9 * time.Second}, reps(20, time.Millisecond)...), time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewStats(20, time.Second)
			for i, d := range tt.latencies {
				s.Add(okSample(i, d))
			}
			assert.Equal(t, tt.want, s.Snapshot().Window.P95)
		})
	}
}

func TestStatsAddDoesNotAllocate(t *testing.T) {
	s := NewStats(DefaultWindow, time.Second)
	i := 0
	allocs := testing.AllocsPerRun(10_000, func() {
		s.Add(failSample(i, time.Duration(i)*time.Millisecond))
		i += 7
	})
	assert.Zero(t, allocs)
}

func TestStatsSnapshotGolden(t *testing.T) {
	t.Parallel()
	s := NewStats(10, time.Second)
	for i := range 50 {
		lat := time.Duration(20+i*i) * time.Millisecond
		if i%7 == 3 || i >= 47 {
			s.Add(failSample(i, lat))
		} else {
			s.Add(okSample(i, lat))
		}
	}
	out, err := json.MarshalIndent(s.Snapshot(), "", "  ")
	require.NoError(t, err)
	goldenfile.Assert(t, "snapshot.golden.json", append(out, '\n'))
}

func TestStatsEmptySnapshot(t *testing.T) {
	t.Parallel()
	snap := NewStats(5, 0).Snapshot()
	assert.Equal(t, Snapshot{Window: WindowStats{Size: 5}}, snap)
	assert.Empty(t, Evaluate(snap, DefaultRules()), "no samples is no evidence of anything")
}

func rep(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func reps(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

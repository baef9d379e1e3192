package monitor

import (
	"math/bits"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeriesDownsampling(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		samples    int
		spacing    time.Duration
		resolution time.Duration
		wantWidth  time.Duration
	}{
		{"single sample", 1, time.Second, time.Second, time.Second},
		{"fits without merging", 120, time.Second, time.Second, time.Second},
		{"one merge", 121, time.Second, time.Second, 2 * time.Second},
		{"several per bucket", 1000, 100 * time.Millisecond, time.Second, time.Second},
		{"a day at 10s", 8640, 10 * time.Second, 10 * time.Second, 1280 * time.Second},
		{"a million samples", 1_000_000, time.Second, time.Second, 16384 * time.Second},
		{"fine resolution", 5000, 7 * time.Millisecond, time.Millisecond, 512 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewStats(DefaultWindow, tt.resolution)
			var errs int64
			for i := range tt.samples {
				lat := time.Duration(1+i%97) * time.Millisecond
				sm := Sample{Time: t0.Add(time.Duration(i) * tt.spacing), Latency: lat, OK: i%5 != 0}
				if !sm.OK {
					errs++
				}
				s.Add(sm)
			}
			pts := s.Series()
			require.NotEmpty(t, pts)
			assert.LessOrEqual(t, len(pts), MaxSeriesPoints)

			var count, gotErrs int64
			minLat, maxLat := time.Duration(1<<62), time.Duration(0)
			for i, p := range pts {
				count += p.Count
				gotErrs += p.Errors
				assert.Equal(t, tt.wantWidth, p.Width)
				assert.True(t, p.Min <= p.Avg && p.Avg <= p.Max, "point %d: min %s avg %s max %s", i, p.Min, p.Avg, p.Max)
				minLat, maxLat = min(minLat, p.Min), max(maxLat, p.Max)
				if i > 0 {
					assert.True(t, p.Start.After(pts[i-1].Start), "points must be in time order")
				}
				assert.Zero(t, (p.Start.Sub(t0)+tt.resolution/2)%p.Width, "buckets are aligned half a resolution before the first sample")
			}
			assert.Equal(t, int64(tt.samples), count, "counts are conserved")
			assert.Equal(t, errs, gotErrs, "errors are conserved")
			snap := s.Snapshot()
			assert.Equal(t, snap.Latency.Min, minLat)
			assert.Equal(t, snap.Latency.Max, maxLat)
			ratio := uint64(tt.wantWidth / tt.resolution)
			assert.Equal(t, 1, bits.OnesCount64(ratio), "width doubles from the resolution")
		})
	}
}

// TestSeriesOneSamplePerIntervalDespiteJitter: probes one interval apart,
// each recorded a little late or early (its time includes its latency),
// fill one bucket each, so a chart's time axis has no holes.
func TestSeriesOneSamplePerIntervalDespiteJitter(t *testing.T) {
	t.Parallel()
	const interval = 500 * time.Millisecond
	s := NewStats(DefaultWindow, interval)
	jitter := []time.Duration{8 * time.Millisecond, 3 * time.Millisecond, 140 * time.Millisecond, -20 * time.Millisecond, 0, 224 * time.Millisecond, 2 * time.Millisecond}
	for i := range 60 {
		sm := okSample(0, time.Millisecond)
		sm.Time = t0.Add(time.Duration(i)*interval + jitter[i%len(jitter)])
		s.Add(sm)
	}
	pts := s.Series()
	require.Len(t, pts, 60)
	for i, p := range pts {
		assert.Equal(t, int64(1), p.Count, "bucket %d", i)
		if i > 0 {
			assert.Equal(t, interval, p.Start.Sub(pts[i-1].Start), "no hole before bucket %d", i)
		}
	}
}

func TestSeriesSampleBeforeOrigin(t *testing.T) {
	t.Parallel()
	s := NewStats(DefaultWindow, time.Second)
	s.Add(okSample(10, time.Millisecond))
	s.Add(okSample(5, 3*time.Millisecond)) // landed late, started earlier
	pts := s.Series()
	require.Len(t, pts, 1)
	assert.Equal(t, int64(2), pts[0].Count)
	assert.Equal(t, okSample(5, 0).Time, s.Snapshot().FirstSampleAt)
}

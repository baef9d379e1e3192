package monitor

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHistogramLayout(t *testing.T) {
	t.Parallel()
	require.Equal(t, bits.Len64(histMaxMicros)-1-histSubBits, histMaxShift, "histMaxShift must match histMaxMicros")
	top := bucketOf(time.Duration(histMaxMicros) * time.Microsecond)
	require.Less(t, top, histBuckets)
	assert.Equal(t, top, bucketOf(100*time.Hour), "values past the range share the top bucket")
	assert.Equal(t, 0, bucketOf(-time.Second))

	// Every value lands in a bucket that contains it and is at most 1/128 of
	// its lower bound wide.
	prev := -1
	for us := uint64(0); us < histMaxMicros; us = us*17/16 + 1 {
		i := bucketOf(time.Duration(us) * time.Microsecond)
		low, width := bucketBounds(i)
		require.True(t, low <= us && us < low+width, "value %dµs outside bucket %d [%d,+%d)", us, i, low, width)
		if low >= histSub {
			require.LessOrEqual(t, float64(width)/float64(low), 1.0/histSub)
		}
		require.GreaterOrEqual(t, i, prev, "bucket index must grow with the value")
		prev = i
	}
}

func TestPercentileAccuracy(t *testing.T) {
	t.Parallel()
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	tests := []struct {
		name string
		draw func(r *rand.Rand) time.Duration
	}{
		{"uniform 1ms-2s", func(r *rand.Rand) time.Duration { return ms(1 + r.Float64()*1999) }},
		{"exponential mean 200ms", func(r *rand.Rand) time.Duration { return ms(r.ExpFloat64() * 200) }},
		{"lognormal median 80ms", func(r *rand.Rand) time.Duration { return ms(80 * math.Exp(1.2*r.NormFloat64())) }},
		{"bimodal 30ms and 2.5s", func(r *rand.Rand) time.Duration {
			if r.IntN(10) == 0 {
				return ms(math.Abs(2500 + 300*r.NormFloat64()))
			}
			return ms(math.Abs(30 + 5*r.NormFloat64()))
		}},
		{"pareto heavy tail", func(r *rand.Rand) time.Duration {
			return min(ms(10*math.Pow(1-r.Float64(), -1/1.5)), time.Hour)
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(42, uint64(i)))
			const n = 100_000
			s := NewStats(DefaultWindow, time.Second)
			exact := make([]time.Duration, n)
			var sum float64
			for j := range exact {
				d := tt.draw(r)
				exact[j] = d
				sum += float64(d)
				s.Add(okSample(j, d))
			}
			slices.Sort(exact)
			nearest := func(q float64) time.Duration { return exact[int(math.Ceil(q*n))-1] }

			got := s.Snapshot().Latency
			for _, p := range []struct {
				name string
				q    float64
				got  time.Duration
			}{{"p50", 0.50, got.P50}, {"p95", 0.95, got.P95}, {"p99", 0.99, got.P99}} {
				want := nearest(p.q)
				relErr := math.Abs(float64(p.got-want)) / float64(want)
				assert.LessOrEqual(t, relErr, 0.01, "%s: got %s, exact %s", p.name, p.got, want)
				t.Logf("%s: histogram %s, exact %s, relative error %.3f%%", p.name, p.got, want, relErr*100)
			}
			assert.Equal(t, exact[0], got.Min)
			assert.Equal(t, exact[n-1], got.Max)
			assert.InDelta(t, sum/n, float64(got.Mean), 1e-6*sum/n)
		})
	}
}

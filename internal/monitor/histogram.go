package monitor

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear, as in HDR histograms: values are counted in
// whole microseconds, every power-of-two range is cut into histSub equal
// buckets, and values below histSub microseconds get one bucket each. A
// bucket is then never wider than 1/histSub of its lower bound, so reporting
// its midpoint is within 1/(2*histSub) ≈ 0.4% of any value in it, and the
// whole range 1µs..1h fits in a fixed array.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	// histMaxMicros is the largest value told apart; slower samples count
	// in the top bucket (the exact maximum is tracked separately).
	histMaxMicros = uint64(time.Hour / time.Microsecond)
	// histMaxShift is bits.Len64(histMaxMicros) - 1 - histSubBits, spelled
	// out because array sizes must be constant; a test checks it.
	histMaxShift = 24
	histBuckets  = (histMaxShift + 2) * histSub
)

// histogram counts latencies in fixed log-linear buckets.
type histogram struct {
	counts [histBuckets]uint64
	total  uint64
}

// bucketOf returns the bucket index that counts d.
func bucketOf(d time.Duration) int {
	var us uint64
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	if us > histMaxMicros {
		us = histMaxMicros
	}
	if us < histSub {
		return int(us)
	}
	shift := bits.Len64(us) - 1 - histSubBits
	return (shift+1)*histSub + int(us>>uint(shift)) - histSub
}

// bucketBounds returns the lower bound and width of bucket i in microseconds.
func bucketBounds(i int) (low, width uint64) {
	if i < histSub {
		return uint64(i), 1
	}
	shift := uint(i/histSub - 1)
	sub := uint64(i % histSub)
	return (histSub + sub) << shift, 1 << shift
}

// bucketMid returns the value that stands for every sample in bucket i.
func bucketMid(i int) time.Duration {
	low, width := bucketBounds(i)
	return time.Duration(low)*time.Microsecond + time.Duration(width)*time.Microsecond/2
}

// add counts one latency.
func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.total++
}

// quantiles returns the nearest-rank value of each q in qs (ascending, in
// 0..1) in one pass over the buckets, writing them into out.
func (h *histogram) quantiles(qs []float64, out []time.Duration) {
	if h.total == 0 {
		clear(out)
		return
	}
	var cum uint64
	next := 0
	for i := range h.counts {
		cum += h.counts[i]
		for next < len(qs) && cum >= rankOf(qs[next], h.total) {
			out[next] = bucketMid(i)
			next++
		}
		if next == len(qs) {
			return
		}
	}
}

// rankOf is the 1-based nearest rank of quantile q among n values.
func rankOf(q float64, n uint64) uint64 {
	r := uint64(math.Ceil(q * float64(n)))
	return max(r, 1)
}

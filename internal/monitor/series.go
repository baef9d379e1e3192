package monitor

import "time"

// MaxSeriesPoints bounds the chart series however long a run lasts.
const MaxSeriesPoints = 120

// SeriesPoint summarises the samples that fell into one time bucket of the
// chart series.
type SeriesPoint struct {
	// Start is where the bucket begins; it covers [Start, Start+Width).
	Start time.Time `json:"start"`
	// Width is the bucket length, the same for every point of a series.
	Width time.Duration `json:"width_ns"`
	// Count is how many samples fell into the bucket.
	Count int64 `json:"count"`
	// Errors is how many of them failed.
	Errors int64 `json:"errors"`
	// Min, Avg and Max describe their latencies.
	Min time.Duration `json:"min_ns"`
	Avg time.Duration `json:"avg_ns"`
	Max time.Duration `json:"max_ns"`
}

// seriesBucket is the mergeable state behind one SeriesPoint.
type seriesBucket struct {
	count, errors int64
	sum           float64
	min, max      time.Duration
}

// merge combines two adjacent buckets into one.
func (b seriesBucket) merge(o seriesBucket) seriesBucket {
	switch {
	case o.count == 0:
		return b
	case b.count == 0:
		return o
	}
	return seriesBucket{
		count:  b.count + o.count,
		errors: b.errors + o.errors,
		sum:    b.sum + o.sum,
		min:    min(b.min, o.min),
		max:    max(b.max, o.max),
	}
}

// series is a down-sampling time series: when a sample falls past the last
// bucket, adjacent pairs are merged and the bucket width doubles, so memory
// stays fixed and old data is kept at a coarser grain instead of dropped.
type series struct {
	buckets [MaxSeriesPoints]seriesBucket
	origin  time.Time
	width   time.Duration
	started bool
}

// add places one sample into its bucket, coarsening the series if needed.
func (s *series) add(t time.Time, latency time.Duration, failed bool) {
	if !s.started {
		// The first sample sits mid-bucket: samples one interval apart
		// then land one per bucket though each is taken a little late or
		// early (a probe's time includes its latency), instead of two in
		// one bucket and none in the next.
		s.origin, s.started = t.Add(-s.width/2), true
	}
	offset := max(t.Sub(s.origin), 0)
	idx := offset / s.width
	for idx >= MaxSeriesPoints {
		s.compact()
		idx = offset / s.width
	}
	b := &s.buckets[idx]
	if b.count == 0 || latency < b.min {
		b.min = latency
	}
	b.max = max(b.max, latency)
	b.count++
	b.sum += float64(latency)
	if failed {
		b.errors++
	}
}

// compact merges adjacent pairs of buckets and doubles the width.
func (s *series) compact() {
	const half = MaxSeriesPoints / 2
	for i := range half {
		s.buckets[i] = s.buckets[2*i].merge(s.buckets[2*i+1])
	}
	clear(s.buckets[half:])
	s.width *= 2
}

// points returns the non-empty buckets in time order.
func (s *series) points() []SeriesPoint {
	var out []SeriesPoint
	for i, b := range s.buckets {
		if b.count == 0 {
			continue
		}
		out = append(out, SeriesPoint{
			Start:  s.origin.Add(time.Duration(i) * s.width),
			Width:  s.width,
			Count:  b.count,
			Errors: b.errors,
			Min:    b.min,
			Avg:    time.Duration(b.sum / float64(b.count)),
			Max:    b.max,
		})
	}
	return out
}

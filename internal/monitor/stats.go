package monitor

import (
	"slices"
	"time"
)

// DefaultWindow is how many recent samples the windowed figures cover.
const DefaultWindow = 20

// DefaultResolution is the initial width of a chart series bucket when none
// is given.
const DefaultResolution = time.Second

// Stats folds samples into streaming statistics whose memory does not grow
// with the number of samples: a fixed histogram for percentiles, a ring of
// the last few samples for windowed rates, and a down-sampling chart series.
// A Stats is not safe for concurrent use; Run feeds it from one goroutine.
type Stats struct {
	hist   histogram
	series series

	count, errors  int64
	sumNanos       float64
	minLat, maxLat time.Duration
	first, last    time.Time
	curFail        int
	maxFail        int

	// window is a ring of the last len(window) samples; next is where the
	// following sample goes and filled how many slots hold one.
	window        []Sample
	next, filled  int
	windowErrors  int
	windowLatency []time.Duration
}

// NewStats returns empty statistics with a sliding window of the given size
// (DefaultWindow when not positive) and a chart series whose buckets start
// resolution wide (DefaultResolution when not positive).
func NewStats(window int, resolution time.Duration) *Stats {
	if window <= 0 {
		window = DefaultWindow
	}
	if resolution <= 0 {
		resolution = DefaultResolution
	}
	return &Stats{
		series:        series{width: resolution},
		window:        make([]Sample, window),
		windowLatency: make([]time.Duration, window),
	}
}

// Add records one sample. It does not allocate.
func (s *Stats) Add(sm Sample) {
	lat := max(sm.Latency, 0)
	failed := !sm.OK

	s.count++
	if failed {
		s.errors++
		s.curFail++
		s.maxFail = max(s.maxFail, s.curFail)
	} else {
		s.curFail = 0
	}
	s.sumNanos += float64(lat)
	if s.count == 1 || lat < s.minLat {
		s.minLat = lat
	}
	s.maxLat = max(s.maxLat, lat)
	if s.count == 1 || sm.Time.Before(s.first) {
		s.first = sm.Time
	}
	if sm.Time.After(s.last) {
		s.last = sm.Time
	}
	s.hist.add(lat)
	s.series.add(sm.Time, lat, failed)

	if s.filled == len(s.window) && !s.window[s.next].OK {
		s.windowErrors--
	}
	s.window[s.next] = sm
	if failed {
		s.windowErrors++
	}
	s.next = (s.next + 1) % len(s.window)
	s.filled = min(s.filled+1, len(s.window))
}

// Count returns how many samples have been recorded.
func (s *Stats) Count() int64 { return s.count }

// Window returns a copy of the samples in the sliding window, oldest first.
func (s *Stats) Window() []Sample {
	out := make([]Sample, 0, s.filled)
	start := (s.next - s.filled + len(s.window)) % len(s.window)
	for i := range s.filled {
		out = append(out, s.window[(start+i)%len(s.window)])
	}
	return out
}

// Series returns the chart series: at most MaxSeriesPoints non-empty points
// in time order whose counts add up to Count.
func (s *Stats) Series() []SeriesPoint { return s.series.points() }

// Snapshot returns every figure as a plain value.
func (s *Stats) Snapshot() Snapshot {
	snap := Snapshot{
		Count:                  s.count,
		Errors:                 s.errors,
		ConsecutiveFailures:    s.curFail,
		MaxConsecutiveFailures: s.maxFail,
		Window: WindowStats{
			Size:   len(s.window),
			Count:  s.filled,
			Errors: s.windowErrors,
		},
	}
	if s.count > 0 {
		snap.FirstSampleAt, snap.LastSampleAt = s.first, s.last
		snap.ErrorRate = float64(s.errors) / float64(s.count)
		snap.Availability = float64(s.count-s.errors) / float64(s.count)
		var ps [3]time.Duration
		s.hist.quantiles([]float64{0.50, 0.95, 0.99}, ps[:])
		clamp := func(d time.Duration) time.Duration { return min(max(d, s.minLat), s.maxLat) }
		snap.Latency = Latency{
			Min:  s.minLat,
			Mean: time.Duration(s.sumNanos / float64(s.count)),
			P50:  clamp(ps[0]),
			P95:  clamp(ps[1]),
			P99:  clamp(ps[2]),
			Max:  s.maxLat,
		}
	}
	if s.filled > 0 {
		snap.Window.ErrorRate = float64(s.windowErrors) / float64(s.filled)
		snap.Window.Availability = float64(s.filled-s.windowErrors) / float64(s.filled)
		snap.Window.P95 = s.windowPercentile(0.95)
	}
	return snap
}

// windowPercentile is the exact nearest-rank percentile of the window's
// latencies; the window is small, so sorting a preallocated copy is cheap.
func (s *Stats) windowPercentile(q float64) time.Duration {
	lat := s.windowLatency[:s.filled]
	for i := range lat {
		lat[i] = max(s.window[i].Latency, 0)
	}
	slices.Sort(lat)
	return lat[rankOf(q, uint64(len(lat)))-1]
}

// Snapshot is every figure of a Stats at one moment, ready for rules and
// reports. Rates are fractions in 0..1; durations are nanoseconds in JSON.
type Snapshot struct {
	// FirstSampleAt and LastSampleAt span the recorded samples.
	FirstSampleAt time.Time `json:"first_sample_at,omitzero"`
	LastSampleAt  time.Time `json:"last_sample_at,omitzero"`
	// Count is the number of samples and Errors how many of them failed.
	Count  int64 `json:"count"`
	Errors int64 `json:"errors"`
	// ErrorRate is Errors/Count over the whole run.
	ErrorRate float64 `json:"error_rate"`
	// Availability is the share of successful samples over the whole run.
	Availability float64 `json:"availability"`
	// ConsecutiveFailures is the current run of failed samples, across all
	// endpoints in the order they were recorded.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// MaxConsecutiveFailures is the longest such run seen.
	MaxConsecutiveFailures int `json:"max_consecutive_failures"`
	// Latency summarises every sample's latency.
	Latency Latency `json:"latency"`
	// Window holds the figures over the most recent samples.
	Window WindowStats `json:"window"`
	// Traffic holds the primary request source's figures beside the
	// probes', when a request source is on; Sources holds every source's.
	Traffic *Traffic  `json:"traffic,omitempty"`
	Sources []Traffic `json:"sources,omitempty"`
}

// Latency summarises a latency distribution. Percentiles come from the
// histogram and are within 0.4% of the exact nearest-rank values (for values
// of at least 128µs; below that, within 1µs); Min, Max and Mean are exact.
type Latency struct {
	Min  time.Duration `json:"min_ns"`
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P95  time.Duration `json:"p95_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
}

// WindowStats are the figures over the sliding window of recent samples, so
// that an early failure stops counting once the version has recovered.
type WindowStats struct {
	// Size is the configured window length and Count how many samples it
	// holds so far.
	Size  int `json:"size"`
	Count int `json:"count"`
	// Errors is how many of those samples failed.
	Errors int `json:"errors"`
	// ErrorRate and Availability are Errors/Count and its complement.
	ErrorRate    float64 `json:"error_rate"`
	Availability float64 `json:"availability"`
	// P95 is the exact nearest-rank 95th percentile latency of the window.
	P95 time.Duration `json:"p95_ns"`
}

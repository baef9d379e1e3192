package podmetrics

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The conventions podinfo and most Go services follow (the RED method).
const (
	DefaultRequests    = "http_requests_total"
	DefaultDuration    = "http_request_duration_seconds"
	DefaultStatusLabel = "status"
)

// Names are the metric and label names a source reads.
type Names struct {
	// Requests is a counter of served requests; its StatusLabel tells the
	// answer's HTTP status.
	Requests string
	// Duration is a histogram of request latencies in seconds; empty leaves
	// latency out.
	Duration string
	// StatusLabel is the label on Requests holding the HTTP status code.
	StatusLabel string
}

// DefaultNames returns podinfo's names, which are Prometheus' own examples.
func DefaultNames() Names {
	return Names{Requests: DefaultRequests, Duration: DefaultDuration, StatusLabel: DefaultStatusLabel}
}

// metricName and labelName are the classic Prometheus name rules; names
// outside them would need quoting that few exporters produce.
var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// ValidMetricName says whether s is a metric name Parse can look for. Pure.
func ValidMetricName(s string) bool { return metricName.MatchString(s) }

// ValidLabelName says whether s is a label name Parse can look for. Pure.
func ValidLabelName(s string) bool {
	return labelName.MatchString(s) && !strings.HasPrefix(s, "__")
}

// Bucket is one cumulative histogram bucket: Count observations were at
// most UpperBound seconds.
type Bucket struct {
	UpperBound float64
	Count      float64
}

// Reading is what one exposition says, summed over every label set, so its
// size depends on the histogram's bucket layout and not on how many paths,
// methods or statuses the app has seen.
type Reading struct {
	// HasRequests reports whether the request counter was found; an app
	// exposes no series of it before its first request.
	HasRequests bool
	// Requests is the sum of the request counter over all its series.
	Requests float64
	// Errors is the part of Requests whose status label is 5xx.
	Errors float64
	// Buckets is the latency histogram summed over its series, ascending by
	// UpperBound, the +Inf bucket last; Observations is its count.
	Buckets      []Bucket
	Observations float64
	// HasDuration reports whether the histogram was found.
	HasDuration bool
}

// Parse reads a Prometheus text exposition and sums the request counter
// and the latency histogram named by n into r, reusing r's bucket slice so
// that a source reading every few seconds allocates no more as it runs.
// Pure apart from reading in.
func Parse(in io.Reader, n Names, r *Reading) error {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(in)
	if err != nil {
		return fmt.Errorf("parse the exposition: %w", err)
	}
	r.HasRequests, r.Requests, r.Errors, r.Observations, r.HasDuration = false, 0, 0, 0, false
	r.Buckets = r.Buckets[:0]

	// A counter vector exposes nothing before its first request: absent
	// reads as zero, and the tracker reports it.
	mf, ok := families[n.Requests]
	r.HasRequests = ok
	for _, m := range mf.GetMetric() {
		v, ok := counterValue(mf.GetType(), m)
		if !ok {
			continue
		}
		r.Requests += v
		if serverError(m, n.StatusLabel) {
			r.Errors += v
		}
	}
	if n.Duration == "" {
		return nil
	}
	hf, ok := families[n.Duration]
	if !ok || hf.GetType() != dto.MetricType_HISTOGRAM {
		return nil
	}
	r.HasDuration = true
	for _, m := range hf.GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		r.Observations += float64(h.GetSampleCount())
		for _, b := range h.GetBucket() {
			r.Buckets = addBucket(r.Buckets, b.GetUpperBound(), float64(b.GetCumulativeCount()))
		}
	}
	// The text format lists +Inf as a bucket; where an exporter left it
	// out, the count stands for it.
	if len(r.Buckets) == 0 || !math.IsInf(r.Buckets[len(r.Buckets)-1].UpperBound, 1) {
		r.Buckets = append(r.Buckets, Bucket{UpperBound: math.Inf(1), Count: r.Observations})
	}
	return nil
}

// counterValue reads a counter, or an untyped series of the same name
// (exporters that skip the TYPE line).
func counterValue(t dto.MetricType, m *dto.Metric) (float64, bool) {
	switch {
	case t == dto.MetricType_COUNTER && m.GetCounter() != nil:
		return m.GetCounter().GetValue(), true
	case t == dto.MetricType_UNTYPED && m.GetUntyped() != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

// serverError says whether the series' status label is a 5xx code.
func serverError(m *dto.Metric, label string) bool {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == label {
			v := lp.GetValue()
			return len(v) == 3 && v[0] == '5' && v[1] >= '0' && v[1] <= '9' && v[2] >= '0' && v[2] <= '9'
		}
	}
	return false
}

// addBucket adds count to the bucket with upper bound ub, keeping bs sorted.
func addBucket(bs []Bucket, ub, count float64) []Bucket {
	i, found := slices.BinarySearchFunc(bs, ub, func(b Bucket, ub float64) int {
		switch {
		case b.UpperBound < ub:
			return -1
		case b.UpperBound > ub:
			return 1
		}
		return 0
	})
	if found {
		bs[i].Count += count
		return bs
	}
	return slices.Insert(bs, i, Bucket{UpperBound: ub, Count: count})
}

// Quantile estimates the q-quantile (0..1) of cumulative buckets the way
// Prometheus' histogram_quantile does: linear interpolation inside the
// bucket that holds the rank, the lowest bucket starting at zero, and the
// largest finite bound when the rank falls in +Inf. ok is false without
// observations. Pure.
func Quantile(q float64, bs []Bucket) (seconds float64, ok bool) {
	if len(bs) == 0 {
		return 0, false
	}
	total := bs[len(bs)-1].Count
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	lowBound, lowCount := 0.0, 0.0
	for i, b := range bs {
		if b.Count >= rank {
			if math.IsInf(b.UpperBound, 1) {
				if i == 0 {
					return 0, true
				}
				return bs[i-1].UpperBound, true
			}
			if b.Count == lowCount {
				return b.UpperBound, true
			}
			return lowBound + (b.UpperBound-lowBound)*(rank-lowCount)/(b.Count-lowCount), true
		}
		lowBound, lowCount = b.UpperBound, b.Count
	}
	return bs[len(bs)-1].UpperBound, true
}

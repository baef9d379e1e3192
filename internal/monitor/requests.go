package monitor

import (
	"context"
	"fmt"
	"time"
)

// Source names where a verdict's figures came from.
type Source string

const (
	// SourceProbes is greenlight's own probes of the health path.
	SourceProbes Source = "probes"
	// SourcePodMetrics is the serving pods' own request metrics.
	SourcePodMetrics Source = "pod metrics"
	// SourcePrometheus is the team's Prometheus, queried for the new
	// version's pods.
	SourcePrometheus Source = "prometheus"
)

// DefaultMinRequests is how many requests a window needs before the
// request rules judge it.
const DefaultMinRequests = 20

// RequestWindow is what the serving pods say about the requests they
// served between two readings: a second source of figures beside the
// probes, read by an edge package that the monitor never sees.
type RequestWindow struct {
	// Source names where the window came from; Run fills it in.
	Source Source `json:"source,omitempty"`
	// Start and End bound the window.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Pods is how many pods' requests are counted.
	Pods int `json:"pods"`
	// Requests is how many requests they served, Errors how many of those
	// answered 5xx.
	Requests float64 `json:"requests"`
	Errors   float64 `json:"errors"`
	// P95 is their 95th percentile latency when HasLatency is set.
	P95        time.Duration `json:"p95_ns"`
	HasLatency bool          `json:"has_latency"`
	// Baseline marks a first reading: there is no window to judge yet.
	Baseline bool `json:"baseline,omitempty"`
	// Unread marks a window the source could not read at all (its
	// Findings say why): nothing is known about the app in it.
	Unread bool `json:"unread,omitempty"`
	// Findings are the source's news about itself (a pod's metrics
	// endpoint silent, a counter reset, pods coming and going); none of
	// them counts for or against the app.
	Findings []string `json:"findings,omitempty"`
}

// Throughput is the window's requests per second.
func (w RequestWindow) Throughput() float64 {
	if s := w.End.Sub(w.Start).Seconds(); s > 0 {
		return w.Requests / s
	}
	return 0
}

// RequestSource reads the next window; it must honour ctx and report its
// own trouble in Findings rather than fail.
type RequestSource func(ctx context.Context) RequestWindow

// NamedSource is one request source and the name its verdicts carry.
// Every source is judged by the same rules.
type NamedSource struct {
	Name Source
	Read RequestSource
}

// Traffic is the request source's figures so far, beside the probes'.
type Traffic struct {
	// Source names whose figures these are.
	Source Source `json:"source,omitempty"`
	// Windows counts the windows read after the baseline; Judged how many
	// had enough requests for the rules, TooLittle how many did not.
	Windows   int `json:"windows"`
	Judged    int `json:"judged"`
	TooLittle int `json:"too_little"`
	// Unread counts the windows the source could not read.
	Unread int `json:"unread,omitempty"`
	// Requests, Errors and Seconds add up every window.
	Requests float64 `json:"requests"`
	Errors   float64 `json:"errors"`
	Seconds  float64 `json:"seconds"`
	// Throughput, ErrorRate are over the whole run.
	Throughput float64 `json:"throughput_rps"`
	ErrorRate  float64 `json:"error_rate"`
	// P95 is the p95 of the last judged window (HasLatency when known);
	// MaxP95 the worst judged window's.
	P95        time.Duration `json:"p95_ns"`
	MaxP95     time.Duration `json:"max_p95_ns"`
	HasLatency bool          `json:"has_latency"`
	// Last is the latest window's figures and LastNote says why it was not
	// judged, if it was not.
	Last     RequestWindow `json:"last"`
	LastNote string        `json:"last_note,omitempty"`

	// counted is the end of the time the totals already cover.
	counted time.Time
}

// add folds in one window and its judgement.
func (t *Traffic) add(w RequestWindow, note string) {
	w.Findings = nil
	t.Last, t.LastNote = w, note
	if w.Baseline {
		return
	}
	if w.Unread {
		t.Unread++
		return
	}
	t.Windows++
	// A window that overlaps the last one (a Prometheus range longer than
	// the interval) adds only its new part, pro rata, so the totals count
	// each second once.
	span := w.End.Sub(w.Start)
	fresh := w.End.Sub(later(w.Start, t.counted))
	share := 1.0
	if span > 0 && fresh < span {
		share = max(fresh.Seconds(), 0) / span.Seconds()
	}
	t.counted = later(t.counted, w.End)
	t.Requests += w.Requests * share
	t.Errors += w.Errors * share
	t.Seconds += max(span.Seconds(), 0) * share
	if t.Seconds > 0 {
		t.Throughput = t.Requests / t.Seconds
	}
	if t.Requests > 0 {
		t.ErrorRate = t.Errors / t.Requests
	}
	if note != "" {
		t.TooLittle++
		return
	}
	t.Judged++
	if w.HasLatency {
		t.P95, t.HasLatency = w.P95, true
		t.MaxP95 = max(t.MaxP95, w.P95)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// EvaluateRequests applies the response-time and error-rate rules to one
// window of requests from source src, and every verdict names src. A
// baseline, an unread window or a window with fewer than MinRequests
// requests is not judged: note says so and no verdict comes back, so a
// quiet minute or a source in trouble neither passes nor fails a release.
// Pure.
func EvaluateRequests(w RequestWindow, src Source, r Rules) (verdicts []Verdict, note string) {
	if w.Baseline {
		return nil, fmt.Sprintf("first reading (%s): a baseline, nothing to judge yet", src)
	}
	if w.Unread {
		return nil, fmt.Sprintf("%s could not be read: nothing to judge in this window", src)
	}
	need := r.MinRequests
	if need <= 0 {
		need = DefaultMinRequests
	}
	if w.Requests < float64(need) {
		return nil, fmt.Sprintf("too little traffic to judge: %.0f requests in the last %s, %d needed (%s)", w.Requests, roundDuration(w.End.Sub(w.Start)), need, src)
	}
	n := int(w.Requests)
	span := roundDuration(w.End.Sub(w.Start))
	if w.HasLatency {
		if a, thr, ok := aboveDuration(w.P95, r.AlertResponseTime, r.RollbackResponseTime); ok {
			verdicts = append(verdicts, Verdict{
				Rule: RuleResponseTime, Source: src, Action: a,
				Observed: w.P95.Seconds(), Threshold: thr.Seconds(), Unit: "seconds", Samples: n,
				Message: fmt.Sprintf("p95 response time %s of the %d requests the pods served in the last %s (%s) is above the %s threshold %s",
					readableAbove(w.P95, thr), n, span, src, a, roundDuration(thr)),
			})
		}
	}
	rate := w.Errors / w.Requests
	if a, thr, ok := aboveFloat(rate, r.AlertErrorRate, r.RollbackErrorRate); ok {
		verdicts = append(verdicts, Verdict{
			Rule: RuleErrorRate, Source: src, Action: a,
			Observed: rate, Threshold: thr, Unit: "ratio", Samples: n,
			Message: fmt.Sprintf("5xx share %s of the %d requests the pods served in the last %s (%s) is above the %s threshold %s",
				observedPercent(rate, thr), n, span, src, a, percent(thr)),
		})
	}
	return verdicts, ""
}

package podmetrics

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// DefaultDeadAfter is how many scrapes in a row a pod's metrics endpoint
// may miss before that is reported; one miss is often a pod being replaced.
const DefaultDeadAfter = 3

// PodScrape is one pod's answer in a round: a parsed Reading or why there
// is none.
type PodScrape struct {
	// Pod names the pod; UID tells a pod from a later one of the same name.
	Pod string
	UID string
	// Reading is set when Err is nil.
	Reading *Reading
	// Err is why the pod's exposition could not be read or parsed.
	Err error
}

// FindingKind says what a Finding reports.
type FindingKind string

const (
	// FindingNewPod: a pod's first reading, taken as its baseline only.
	FindingNewPod FindingKind = "new-pod"
	// FindingGonePod: a pod no longer serves; its state was dropped.
	FindingGonePod FindingKind = "gone-pod"
	// FindingReset: a counter went down (the container restarted); the new
	// value was counted as the pod's requests since.
	FindingReset FindingKind = "counter-reset"
	// FindingSilent: the pod's metrics endpoint did not answer DeadAfter
	// scrapes in a row. This is the endpoint's failure, never the app's.
	FindingSilent FindingKind = "metrics-unreachable"
	// FindingMissing: the pod answered without the request counter (once
	// per pod): a wrong metrics-requests, or no request served yet.
	FindingMissing FindingKind = "metric-missing"
	// FindingList: the serving pods could not be listed this round.
	FindingList FindingKind = "list-failed"
)

// Finding is something about the source itself, for the report: none of
// them counts for or against the app.
type Finding struct {
	Kind    FindingKind `json:"kind"`
	Pod     string      `json:"pod,omitempty"`
	Message string      `json:"message"`
}

// Window is what the serving pods did between two rounds, summed over the
// pods that answered both.
type Window struct {
	// Start and End bound the window: the previous round and this one.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Pods is how many pods' requests are counted; Scraped how many were
	// asked.
	Pods    int `json:"pods"`
	Scraped int `json:"scraped"`
	// Requests and Errors (5xx) are the requests the pods served in it.
	Requests float64 `json:"requests"`
	Errors   float64 `json:"errors"`
	// P95 is the latency estimated from the histogram's buckets; HasLatency
	// is false when no pod had the histogram or nothing was observed.
	P95        time.Duration `json:"p95_ns"`
	HasLatency bool          `json:"has_latency"`
	// Baseline is true for a round that had no earlier reading to diff
	// against: nothing is known about the window yet.
	Baseline bool `json:"baseline,omitempty"`
	// Findings are this round's news about the source, in pod order.
	Findings []Finding `json:"findings,omitempty"`
}

// Throughput is the window's requests per second.
func (w Window) Throughput() float64 {
	span := w.End.Sub(w.Start).Seconds()
	if span <= 0 {
		return 0
	}
	return w.Requests / span
}

// podState is all a Tracker keeps of a pod: its last reading and how many
// scrapes it missed since, so memory per pod never grows.
type podState struct {
	uid    string
	last   Reading
	has    bool
	misses int
	// missingTold is set once the absent counter was reported.
	missingTold bool
	// silent is set once the miss streak was reported, so it is reported
	// once per streak.
	silent bool
}

// Tracker diffs successive rounds of pod readings. It is a plain state
// machine: no clock, no I/O; memory is one reading per serving pod plus one
// window's buckets.
type Tracker struct {
	// Requests names the request counter in findings (DefaultRequests
	// when empty).
	Requests string
	// DeadAfter is how many consecutive misses make a silent endpoint a
	// finding (DefaultDeadAfter when not positive).
	DeadAfter int

	pods    map[string]*podState
	last    time.Time
	buckets []Bucket
	spare   Reading
}

// Observe takes one round of scrapes, made at at, and returns the window
// since the previous round. A pod seen for the first time is a baseline
// only; a pod missing from the round is dropped; a pod that answered
// nothing keeps its last reading, so the requests it served meanwhile are
// counted once it answers again.
func (t *Tracker) Observe(at time.Time, round []PodScrape) Window {
	if t.pods == nil {
		t.pods = map[string]*podState{}
	}
	deadAfter := t.DeadAfter
	if deadAfter <= 0 {
		deadAfter = DefaultDeadAfter
	}
	w := Window{Start: t.last, End: at, Scraped: len(round), Baseline: t.last.IsZero()}
	t.last = at
	t.buckets = t.buckets[:0]
	var observations float64

	present := make(map[string]bool, len(round))
	for _, s := range round {
		present[s.Pod] = true
		st, ok := t.pods[s.Pod]
		if !ok || st.uid != s.UID {
			// A new pod, or a new one under an old name (a StatefulSet's
			// replacement): its counters have nothing to do with the old.
			st = &podState{uid: s.UID}
			t.pods[s.Pod] = st
		}
		if s.Err != nil {
			st.misses++
			if st.misses >= deadAfter && !st.silent {
				st.silent = true
				w.Findings = append(w.Findings, Finding{Kind: FindingSilent, Pod: s.Pod,
					Message: fmt.Sprintf("pod %s: its metrics endpoint has not answered %d scrapes in a row (last: %v); its requests are not counted meanwhile", s.Pod, st.misses, s.Err)})
			}
			continue
		}
		if !s.Reading.HasRequests && !st.missingTold {
			st.missingTold = true
			w.Findings = append(w.Findings, Finding{Kind: FindingMissing, Pod: s.Pod,
				Message: fmt.Sprintf("pod %s: its exposition has no %s yet (a different metric name, or no request served so far); read as zero", s.Pod, t.requestsName())})
		}
		if !st.has {
			copyReading(&st.last, s.Reading)
			st.has, st.misses, st.silent = true, 0, false
			if !w.Baseline {
				w.Findings = append(w.Findings, Finding{Kind: FindingNewPod, Pod: s.Pod,
					Message: fmt.Sprintf("pod %s: first reading (%.0f requests so far) taken as its baseline", s.Pod, s.Reading.Requests)})
			}
			continue
		}
		reset := diffInto(&t.spare, &st.last, s.Reading)
		if reset {
			w.Findings = append(w.Findings, Finding{Kind: FindingReset, Pod: s.Pod,
				Message: fmt.Sprintf("pod %s: its counters went down (the container restarted); its %.0f requests since count as this window's", s.Pod, s.Reading.Requests)})
		}
		w.Pods++
		w.Requests += t.spare.Requests
		w.Errors += t.spare.Errors
		if t.spare.HasDuration {
			observations += t.spare.Observations
			for _, b := range t.spare.Buckets {
				t.buckets = addBucket(t.buckets, b.UpperBound, b.Count)
			}
		}
		copyReading(&st.last, s.Reading)
		st.misses, st.silent = 0, false
	}
	for _, name := range slices.Sorted(maps.Keys(t.pods)) {
		if !present[name] {
			delete(t.pods, name)
			w.Findings = append(w.Findings, Finding{Kind: FindingGonePod, Pod: name,
				Message: fmt.Sprintf("pod %s no longer serves; its readings were dropped", name)})
		}
	}
	if observations > 0 {
		if p95, ok := Quantile(0.95, t.buckets); ok {
			w.P95, w.HasLatency = time.Duration(p95*float64(time.Second)), true
		}
	}
	return w
}

func (t *Tracker) requestsName() string {
	if t.Requests == "" {
		return DefaultRequests
	}
	return t.Requests
}

// Pods is how many pods the tracker holds state for.
func (t *Tracker) Pods() int { return len(t.pods) }

// diffInto writes cur minus prev into d and reports a counter reset: when
// the request counter, the observation count or any bucket went down, the
// pod restarted and cur itself is what it served since.
func diffInto(d, prev, cur *Reading) (reset bool) {
	reset = cur.Requests < prev.Requests || cur.Errors < prev.Errors || cur.Observations < prev.Observations
	if !reset {
		for _, b := range cur.Buckets {
			if pb, ok := bucketAt(prev.Buckets, b.UpperBound); ok && b.Count < pb {
				reset = true
				break
			}
		}
	}
	copyReading(d, cur)
	if reset {
		return true
	}
	d.Requests -= prev.Requests
	d.Errors -= prev.Errors
	d.Observations -= prev.Observations
	for i := range d.Buckets {
		if pb, ok := bucketAt(prev.Buckets, d.Buckets[i].UpperBound); ok {
			d.Buckets[i].Count -= pb
		}
	}
	return false
}

// bucketAt finds the count of the bucket with upper bound ub.
func bucketAt(bs []Bucket, ub float64) (float64, bool) {
	for _, b := range bs {
		if b.UpperBound == ub {
			return b.Count, true
		}
	}
	return 0, false
}

// copyReading copies src into dst, reusing dst's bucket slice.
func copyReading(dst, src *Reading) {
	buckets := append(dst.Buckets[:0], src.Buckets...)
	*dst = *src
	dst.Buckets = buckets
}

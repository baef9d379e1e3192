package podmetrics

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// t0 is a fixed origin so windows are reproducible.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// bounds are client_golang's DefBuckets, which podinfo uses.
var bounds = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// app is what one pod has served so far: requests by status, and per
// status the cumulative latency buckets (len(bounds)+1, +Inf last).
type app struct {
	paths    int
	requests map[string]float64
	buckets  map[string][]float64
}

func newApp(paths int) *app {
	return &app{paths: paths, requests: map[string]float64{}, buckets: map[string][]float64{}}
}

// serve records n requests answered with status in latency d.
func (a *app) serve(n int, status string, d time.Duration) {
	a.requests[status] += float64(n)
	b := a.buckets[status]
	if b == nil {
		b = make([]float64, len(bounds)+1)
		a.buckets[status] = b
	}
	for i := range b {
		if i == len(bounds) || d.Seconds() <= bounds[i] {
			b[i] += float64(n)
		}
	}
}

// exposition writes what podinfo's middleware would: the counter by status
// and the histogram by method, path and status, the app's requests spread
// evenly over paths; plus some unrelated series.
func (a *app) exposition() string {
	var sb strings.Builder
	sb.WriteString("# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 12\n")
	sb.WriteString("# HELP http_requests_total The total number of HTTP requests.\n# TYPE http_requests_total counter\n")
	for st, n := range a.requests {
		fmt.Fprintf(&sb, "http_requests_total{status=%q} %g\n", st, n)
	}
	sb.WriteString("# HELP http_request_duration_seconds Seconds spent serving HTTP requests.\n# TYPE http_request_duration_seconds histogram\n")
	for st, b := range a.buckets {
		for p := range a.paths {
			share := func(v float64) float64 {
				per := math.Floor(v / float64(a.paths))
				if p == 0 {
					return v - per*float64(a.paths-1)
				}
				return per
			}
			for i, ub := range bounds {
				fmt.Fprintf(&sb, "http_request_duration_seconds_bucket{method=\"GET\",path=\"p%d\",status=%q,le=\"%g\"} %g\n", p, st, ub, share(b[i]))
			}
			fmt.Fprintf(&sb, "http_request_duration_seconds_bucket{method=\"GET\",path=\"p%d\",status=%q,le=\"+Inf\"} %g\n", p, st, share(b[len(bounds)]))
			fmt.Fprintf(&sb, "http_request_duration_seconds_sum{method=\"GET\",path=\"p%d\",status=%q} 1\n", p, st)
			fmt.Fprintf(&sb, "http_request_duration_seconds_count{method=\"GET\",path=\"p%d\",status=%q} %g\n", p, st, share(b[len(bounds)]))
		}
	}
	return sb.String()
}

// read parses a's exposition.
func (a *app) read(t testing.TB) *Reading {
	t.Helper()
	var r Reading
	if err := Parse(strings.NewReader(a.exposition()), DefaultNames(), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// at is i seconds after t0.
func at(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }

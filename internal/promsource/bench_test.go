package promsource

import (
	"context"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ebeautything/greenlight/internal/testcluster"
)

// countingTransport counts the requests sent and the response body bytes
// read through it.
type countingTransport struct {
	requests, bytes atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.requests.Add(1)
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.bytes}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// BenchmarkPrometheusSourcePerInterval measures what one interval of the
// Prometheus source costs the team's Prometheus: API requests and response
// body bytes, counted at a real Prometheus server on loopback (the tests'
// build) that scrapes its own /metrics every second under a static pod
// label, so all three default queries (over its own request counter and
// latency histogram) answer with real data. Excludes HTTP headers and the
// query evaluation inside Prometheus.
func BenchmarkPrometheusSourcePerInterval(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and runs a Prometheus server; skipped with -short")
	}
	bin, err := testcluster.EnsurePrometheus("", os.Stderr)
	if err != nil {
		b.Fatal(err)
	}
	prom := testcluster.RunPrometheus(b, bin, `global:
  scrape_interval: 1s
scrape_configs:
- job_name: self
  static_configs:
  - targets: ["{{addr}}"]
    labels:
      pod: bench-pod-0
`)
	counter := &countingTransport{}
	s := &Source{
		URL: prom.URL, Window: time.Minute, Timeout: 10 * time.Second, Now: time.Now,
		Queries: DefaultQueries("prometheus_http_requests_total", "code", "prometheus_http_request_duration_seconds"),
		Pods:    func(context.Context) ([]Pod, error) { return []Pod{{Name: "bench-pod-0"}}, nil },
		Client:  &http.Client{Transport: counter},
	}
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		w := s.Next(ctx)
		if !w.Unread && w.Requests > 0 && w.HasLatency {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("Prometheus has no data about itself after 30s: %v\n%s", w.Findings, prom.LogTail())
		}
		time.Sleep(500 * time.Millisecond)
	}
	counter.requests.Store(0)
	counter.bytes.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if w := s.Next(ctx); w.Unread {
			b.Fatalf("unread window: %v", w.Findings)
		}
	}
	b.ReportMetric(float64(counter.requests.Load())/float64(b.N), "requests/interval")
	b.ReportMetric(float64(counter.bytes.Load())/float64(b.N), "response-bytes/interval")
}

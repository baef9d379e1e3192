package health

import (
	"context"
	"net/http"
	"time"
)

// ProbeResult is one timed GET, the sample a monitoring loop aggregates.
type ProbeResult struct {
	// Time is when the request started.
	Time time.Time `json:"time"`
	// Path is the request path without its query.
	Path string `json:"path"`
	// StatusCode is zero when no answer arrived.
	StatusCode int `json:"statusCode,omitempty"`
	// Latency is the whole exchange, body included, or the time until the
	// request failed.
	Latency time.Duration `json:"latency"`
	// Timing splits Latency into phases.
	Timing Timing `json:"timing"`
	// Err is the transport error, redacted; empty when an answer arrived.
	Err string `json:"err,omitempty"`
	// OK is a 2xx answer without transport error.
	OK bool `json:"ok"`
	// Version is the served version the answer reported, if any.
	Version string `json:"version,omitempty"`
	// Unjudged says why the answer says nothing about the app: through the
	// service proxy, the API server's own failure (throttling, a timeout,
	// etcd) still came back after the retries. Such a probe is not OK and
	// must not be counted for or against the app.
	Unjudged string `json:"unjudged,omitempty"`
}

// Probe sends one GET to path and reports what came back. timeout bounds
// the request; zero means DefaultRequestTimeout. It never retries an
// answer of the app: a monitor wants every failure counted. Through the
// API server's service proxy, the API server's own failures are sent again
// a couple of times within the probe's context, and reported as Unjudged
// if they persist.
func Probe(ctx context.Context, target Target, path string, timeout time.Duration) ProbeResult {
	return probe(ctx, target, path, timeout, VersionSource{})
}

// probe is Probe reading the served version from src.
func probe(ctx context.Context, target Target, path string, timeout time.Duration, src VersionSource) ProbeResult {
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	res := ProbeResult{Time: time.Now(), Path: redactPath(path)}
	resp, unjudged, err := target.doJudged(ctx, request{method: http.MethodGet, path: path, timeout: timeout, limit: healthBodyLimit})
	res.StatusCode = resp.statusCode
	res.Timing = resp.timing
	res.Latency = resp.timing.Total
	if err != nil {
		res.Err = scrub(err.Error(), target.secrets)
		return res
	}
	if unjudged != "" {
		res.Unjudged = scrub(unjudged, target.secrets)
		res.Err = res.Unjudged
		return res
	}
	res.Version = src.Read(resp.header, resp.body)
	res.OK = resp.statusCode >= 200 && resp.statusCode <= 299
	return res
}

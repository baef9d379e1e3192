package monitor

import (
	"context"
	"time"
)

// Sample is the outcome of one probe of one endpoint.
type Sample struct {
	// Time is when the probe started.
	Time time.Time `json:"time"`
	// Endpoint names what was probed; credentials are never kept in it.
	Endpoint string `json:"endpoint"`
	// Latency is how long the probe took, including failed ones, so that
	// timeouts show up as slowness.
	Latency time.Duration `json:"latency_ns"`
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int `json:"status_code,omitempty"`
	// OK reports whether the probe counts as a success.
	OK bool `json:"ok"`
	// Err describes the failure when OK is false.
	Err string `json:"error,omitempty"`
	// Unjudged marks a probe whose answer says nothing about the app (the
	// API server's own failure in front of it): it is neither a success
	// nor a failure, and no rule sees it.
	Unjudged bool `json:"unjudged,omitempty"`
}

// Prober probes one endpoint once and reports the outcome. It must honour
// ctx, which carries the per-probe timeout and the end of the run; failures
// are reported in the returned Sample rather than as an error so that a
// broken endpoint is data, not an abort.
type Prober func(ctx context.Context, endpoint string) Sample

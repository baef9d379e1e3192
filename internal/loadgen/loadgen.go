// Package loadgen sends a bounded stream of HTTP requests at a set rate and
// mix of paths, so a demo or a test can show real traffic being judged. It
// only ever targets loopback, the sandbox's own address block or a
// cluster's Service names: it is not a tool to load anyone else's server.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Bounds every run stays inside, however it is configured.
const (
	MaxCount    = 1_000_000
	MaxDuration = time.Hour
	MaxRate     = 10_000
	// maxInFlight bounds concurrent requests, so a slow target cannot make
	// the generator open connections without end.
	maxInFlight = 64
)

// Options configures a run. Count, Duration and Rate are all required: a
// run ends at whichever bound comes first.
type Options struct {
	// BaseURL is the target: http or https on loopback, on 198.51.100.0/24
	// (the sandbox's pods and Services), or a *.svc Service name.
	BaseURL string
	// Paths are requested in turn; repeating a path weighs the mix.
	Paths []string
	// Rate is the requests per second sent.
	Rate float64
	// Count bounds the requests sent; Duration bounds the run.
	Count    int
	Duration time.Duration
	// Timeout bounds each request (5s when not positive).
	Timeout time.Duration
	// Client sends the requests (a fresh one when nil).
	Client *http.Client
}

// Result counts what the run sent and what came back.
type Result struct {
	Sent int `json:"sent"`
	// OK counts 2xx and 3xx answers, Failed the others, TransportErrors
	// the requests that got no answer.
	OK              int `json:"ok"`
	Failed          int `json:"failed"`
	TransportErrors int `json:"transport_errors"`
	// ByStatus counts answers by HTTP status class, "2xx" to "5xx".
	ByStatus map[string]int `json:"by_status"`
	// LastError is the last transport error, if any.
	LastError string        `json:"last_error,omitempty"`
	Elapsed   time.Duration `json:"elapsed_ns"`
}

// Validate reports every option that is missing, out of bounds, or a
// target the generator refuses.
func (o Options) Validate() error {
	var errs []error
	if err := checkTarget(o.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if len(o.Paths) == 0 {
		errs = append(errs, errors.New("paths: at least one path is needed"))
	}
	for _, p := range o.Paths {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("path %q does not start with /", p))
		}
	}
	if !(o.Rate > 0 && o.Rate <= MaxRate) {
		errs = append(errs, fmt.Errorf("rate must be above 0 and at most %d requests per second, got %v", MaxRate, o.Rate))
	}
	if o.Count < 1 || o.Count > MaxCount {
		errs = append(errs, fmt.Errorf("count must be from 1 to %d, got %d", MaxCount, o.Count))
	}
	if o.Duration <= 0 || o.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("duration must be above 0 and at most %s, got %s", MaxDuration, o.Duration))
	}
	return errors.Join(errs...)
}

// checkTarget accepts loopback, the sandbox block and Service names only.
func checkTarget(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("target %q is not an http:// or https:// URL", raw)
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		// 198.51.100.0/24 is the block the sandbox's pods and Services use.
		if ip.IsLoopback() || netip.MustParsePrefix("198.51.100.0/24").Contains(ip.Unmap()) {
			return nil
		}
		return fmt.Errorf("target %s is neither loopback nor in the sandbox's 198.51.100.0/24", host)
	}
	if host == "localhost" || strings.HasSuffix(host, ".svc") || strings.HasSuffix(host, ".svc.cluster.local") {
		return nil
	}
	return fmt.Errorf("target %s is not loopback, the sandbox's addresses or a cluster Service name (*.svc)", host)
}

// Run sends requests until Count were sent, Duration passed or ctx ended,
// paced at Rate from the start (a late tick is not made up with a burst),
// and waits for the answers in flight.
func Run(ctx context.Context, o Options) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, fmt.Errorf("load generator: %w", err)
	}
	client := o.Client
	if client == nil {
		client = &http.Client{}
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	base := strings.TrimSuffix(o.BaseURL, "/")
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()

	var (
		mu  sync.Mutex
		res = Result{ByStatus: map[string]int{}}
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, maxInFlight)
	interval := time.Duration(float64(time.Second) / o.Rate)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	start := time.Now()
loop:
	for i := 0; i < o.Count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				break loop
			case <-ticker.C:
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		res.Sent++
		path := o.Paths[i%len(o.Paths)]
		wg.Go(func() {
			defer func() { <-sem }()
			code, err := get(ctx, client, base+path, timeout)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.TransportErrors++
				res.LastError = err.Error()
			case code < 400:
				res.OK++
				res.ByStatus[fmt.Sprintf("%dxx", code/100)]++
			default:
				res.Failed++
				res.ByStatus[fmt.Sprintf("%dxx", code/100)]++
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res, nil
}

// get sends one GET and reads the body, so the connection is reused.
func get(ctx context.Context, client *http.Client, target string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

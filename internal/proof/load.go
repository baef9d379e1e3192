package proof

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Shot is one request of a load run and what came back.
type Shot struct {
	// Start is when the request was sent.
	Start time.Time
	// Latency is the whole exchange, body included.
	Latency time.Duration
	// Status is the HTTP status, zero when no answer arrived.
	Status int
	// Version is the X-App-Version the answer carried.
	Version string
	// Err is the transport error, if any.
	Err string
}

// OK reports a 2xx answer.
func (s Shot) OK() bool { return s.Err == "" && s.Status >= 200 && s.Status <= 299 }

// LoadOptions describe a bounded load run.
type LoadOptions struct {
	// URL is requested with GET; it must be on a loopback address.
	URL string
	// Requests is how many are sent at most; the run ends earlier only if
	// ctx is cancelled.
	Requests int
	// Rate is the requests per second the schedule aims at.
	Rate float64
	// Concurrency bounds the requests in flight; a request that would
	// exceed it waits for a slot and is sent late. Default 1.
	Concurrency int
	// Client sends the requests; default a client of its own with a 5 s
	// timeout that keeps connections alive, as a browser or SDK would.
	Client *http.Client
}

// Load sends opts.Requests GETs on a fixed schedule of opts.Rate per second
// and returns every one, ordered by start. Cancelling ctx stops sending;
// requests in flight still finish, bounded by the client's timeout, so the
// last answers are not mistaken for failures. It refuses a URL that is not
// on the loopback interface: a load generator must not leave the machine.
func Load(ctx context.Context, opts LoadOptions) ([]Shot, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		// url.Parse's message quotes the whole URL, credentials included.
		return nil, errors.New("load: the URL does not parse")
	}
	if !loopback(u.Hostname()) {
		return nil, fmt.Errorf("load: host %q is not a loopback address; load stays on this machine", u.Hostname())
	}
	if opts.Requests <= 0 || opts.Rate <= 0 {
		return nil, errors.New("load: requests and rate must be positive")
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: max(opts.Concurrency, 1),
			IdleConnTimeout:     30 * time.Second,
		}}
		defer client.CloseIdleConnections()
	}
	inFlight := context.WithoutCancel(ctx)
	slots := make(chan struct{}, max(opts.Concurrency, 1))
	shots := make([]Shot, opts.Requests)
	sent := 0
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / opts.Rate)
schedule:
	for i := range opts.Requests {
		if ctx.Err() != nil {
			break
		}
		timer := time.NewTimer(time.Until(start.Add(time.Duration(i) * interval)))
		select {
		case <-ctx.Done():
			timer.Stop()
			break schedule
		case <-timer.C:
		}
		select {
		case <-ctx.Done():
			break schedule
		case slots <- struct{}{}:
		}
		sent++
		wg.Go(func() {
			defer func() { <-slots }()
			shots[i] = shoot(inFlight, client, opts.URL)
		})
	}
	wg.Wait()
	out := shots[:sent]
	slices.SortStableFunc(out, func(a, b Shot) int { return a.Start.Compare(b.Start) })
	return out, nil
}

func shoot(ctx context.Context, client *http.Client, target string) Shot {
	s := Shot{Start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		s.Err = err.Error()
		return s
	}
	resp, err := client.Do(req)
	if err != nil {
		s.Latency = time.Since(s.Start)
		s.Err = err.Error()
		return s
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	s.Latency = time.Since(s.Start)
	s.Status = resp.StatusCode
	s.Version = resp.Header.Get("X-App-Version")
	if err != nil {
		s.Err = "read body: " + err.Error()
	}
	return s
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Summary describes the shots of one time window.
type Summary struct {
	// Count is how many shots started in the window; Failed how many of
	// them got no 2xx answer.
	Count, Failed int
	// P50, P95 and P99 are latency percentiles in milliseconds, NaN for an
	// empty window.
	P50, P95, P99 float64
}

// Summarize describes the shots that started in [from, to).
func Summarize(shots []Shot, from, to time.Time) Summary {
	var s Summary
	var lat []float64
	for _, sh := range shots {
		if sh.Start.Before(from) || !sh.Start.Before(to) {
			continue
		}
		s.Count++
		if !sh.OK() {
			s.Failed++
		}
		lat = append(lat, float64(sh.Latency)/float64(time.Millisecond))
	}
	s.P50, s.P95, s.P99 = Percentile(lat, 0.50), Percentile(lat, 0.95), Percentile(lat, 0.99)
	return s
}

// Safety is what a poller saw while a failing version was replaced.
type Safety struct {
	// FailedAt is when the first request failed after the new version
	// first answered: the moment users started to notice.
	FailedAt time.Time
	// SafeAt starts the final run of answers that all came, healthy, from
	// the old version: from then on only the old version served.
	SafeAt time.Time
	// Streak is how many answers that final run holds.
	Streak int
}

// TimeToSafety finds, in shots ordered by start, when the new version
// first failed and from when only the old version answered again, healthy.
// The final run must hold at least minStreak answers, or the poller did not
// watch long enough to tell.
func TimeToSafety(shots []Shot, newVersion, oldVersion string, minStreak int) (Safety, error) {
	seenNew := -1
	for i, s := range shots {
		if s.Version == newVersion {
			seenNew = i
			break
		}
	}
	if seenNew < 0 {
		return Safety{}, fmt.Errorf("the new version %s never answered", newVersion)
	}
	failed := -1
	for i := seenNew; i < len(shots); i++ {
		if !shots[i].OK() {
			failed = i
			break
		}
	}
	if failed < 0 {
		return Safety{}, fmt.Errorf("no request failed after %s first answered", newVersion)
	}
	safe := len(shots)
	for i := len(shots) - 1; i > failed; i-- {
		if !shots[i].OK() || shots[i].Version != oldVersion {
			break
		}
		safe = i
	}
	streak := len(shots) - safe
	if streak < minStreak {
		return Safety{}, fmt.Errorf("only %d answers in a row from %s at the end (want %d): the old version was not serving alone", streak, oldVersion, minStreak)
	}
	return Safety{FailedAt: shots[failed].Start, SafeAt: shots[safe].Start, Streak: streak}, nil
}

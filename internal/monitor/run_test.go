package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder collects events and notices if onEvent is ever entered twice at once.
type recorder struct {
	busy     atomic.Bool
	overlaps atomic.Int32
	mu       sync.Mutex
	events   []Event
	samples  chan struct{}
}

func newRecorder() *recorder { return &recorder{samples: make(chan struct{}, 10_000)} }

func (r *recorder) on(e Event) {
	if !r.busy.CompareAndSwap(false, true) {
		r.overlaps.Add(1)
	}
	defer r.busy.Store(false)
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if e.Kind == EventSample {
		r.samples <- struct{}{}
	}
}

func (r *recorder) count(kind EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// manualClock ticks only when driven, so tests count rounds instead of time.
type manualClock struct {
	mu    sync.Mutex
	now   time.Time
	ticks chan time.Time
}

func newManualClock() *manualClock { return &manualClock{now: t0, ticks: make(chan time.Time)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) NewTicker(time.Duration) Ticker { return manualTicker{c.ticks} }

type manualTicker struct{ c chan time.Time }

func (t manualTicker) C() <-chan time.Time { return t.c }
func (manualTicker) Stop()                 {}

// drive waits for perRound samples of each round and then delivers the next
// tick, until done is closed.
func (c *manualClock) drive(interval time.Duration, perRound int, samples <-chan struct{}, done <-chan struct{}) {
	for i := 1; ; i++ {
		for range perRound {
			select {
			case <-samples:
			case <-done:
				return
			}
		}
		at := t0.Add(time.Duration(i) * interval)
		c.mu.Lock()
		c.now = at
		c.mu.Unlock()
		select {
		case c.ticks <- at:
		case <-done:
			return
		}
	}
}

// runDriven runs Run under a manual clock, one tick per perRound samples.
func runDriven(t *testing.T, opts Options, perRound int, probe Prober) (Result, *recorder) {
	t.Helper()
	clk := newManualClock()
	opts.Clock = clk
	rec := newRecorder()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { clk.drive(opts.Interval, perRound, rec.samples, done) })
	res := Run(t.Context(), opts, probe, rec.on)
	close(done)
	wg.Wait()
	assert.Zero(t, rec.overlaps.Load(), "onEvent must never run concurrently")
	return res, rec
}

// patternProber fails the n-th call (from 1) when fail(n) is true.
func patternProber(fail func(n int) bool) Prober {
	var calls atomic.Int64
	return func(_ context.Context, endpoint string) Sample {
		n := int(calls.Add(1))
		if fail(n) {
			return Sample{Latency: 5 * time.Millisecond, StatusCode: 500, Err: "status 500"}
		}
		return Sample{Latency: 2 * time.Millisecond, StatusCode: 200, OK: true}
	}
}

// fortyPercent fails calls 1, 3, 6, 8, …: 40% errors, never two in a row.
func fortyPercent(n int) bool { return n%5 == 1 || n%5 == 3 }

func TestRunDecides(t *testing.T) {
	t.Parallel()
	rules := DefaultRules()
	tests := []struct {
		name      string
		fail      func(n int) bool
		duration  time.Duration // in intervals
		wantRule  RuleID        // empty: no rollback
		wantTicks int
		wantCount int64
		wantRaise []RuleID
		// wantResolve lists the episodes that ended, in order.
		wantResolve []RuleID
		// wantNotJudged lists the rules the run had too few samples for.
		wantNotJudged []RuleID
	}{
		{
			name: "40% errors roll back by error rate once MinSamples are in",
			fail: fortyPercent, duration: 1000,
			wantRule: RuleErrorRate, wantTicks: rules.MinSamples, wantCount: int64(rules.MinSamples),
			wantRaise: []RuleID{RuleErrorRate, RuleAvailability},
		},
		{
			name: "a dead version rolls back by consecutive failures",
			fail: func(int) bool { return true }, duration: 1000,
			wantRule: RuleConsecutiveFailures, wantTicks: rules.RollbackConsecutiveFailures + 1, wantCount: int64(rules.RollbackConsecutiveFailures + 1),
			wantRaise:     []RuleID{RuleConsecutiveFailures},
			wantNotJudged: []RuleID{RuleResponseTime, RuleErrorRate, RuleAvailability},
		},
		{
			name: "failures after a healthy start",
			fail: func(n int) bool { return n > 30 }, duration: 1000,
			// Availability (whole run) dips below 95% at the 2nd failure, the window's
			// error rate passes 10% at the 3rd, the streak passes 3 at the 4th, and
			// at the 6th both the error rate (30%) and the streak cross rollback.
			wantRule: RuleErrorRate, wantTicks: 36, wantCount: 36,
			wantRaise: []RuleID{RuleAvailability, RuleErrorRate, RuleConsecutiveFailures},
		},
		{
			name: "a healthy version is watched for the whole duration",
			fail: func(int) bool { return false }, duration: 25,
			wantTicks: 25, wantCount: 25,
		},
		{
			name: "a short blip alerts and resolves without rollback",
			// Three failures: availability alerts at the 2nd (20/22) and resolves at
			// 57/60 = 95%; the window's error rate alerts at 3/20 and resolves when
			// the window is back to 2/20 = 10%.
			fail: func(n int) bool { return n >= 21 && n <= 23 }, duration: 70,
			wantTicks: 70, wantCount: 70,
			wantRaise:   []RuleID{RuleAvailability, RuleErrorRate},
			wantResolve: []RuleID{RuleErrorRate, RuleAvailability},
		},
		{
			name: "a run too short for the minimum fails half its probes and judges no rate",
			fail: func(n int) bool { return n%2 == 0 }, duration: time.Duration(rules.MinSamples - 1),
			wantTicks: rules.MinSamples - 1, wantCount: int64(rules.MinSamples - 1),
			wantNotJudged: []RuleID{RuleResponseTime, RuleErrorRate, RuleAvailability},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const interval = 10 * time.Millisecond
			opts := Options{Endpoints: []string{"https://app.example.test/health"}, Interval: interval, Duration: tt.duration * interval}
			res, rec := runDriven(t, opts, 1, patternProber(tt.fail))

			assert.Equal(t, tt.wantTicks, res.Ticks)
			assert.Equal(t, tt.wantCount, res.Snapshot.Count)
			assert.Equal(t, res.Ticks, rec.count(EventProgress), "one progress event per tick")
			assert.Equal(t, int(res.Snapshot.Count), rec.count(EventSample))
			var raised, resolved []RuleID
			for _, a := range res.Alerts {
				if a.State == AlertRaised {
					raised = append(raised, a.Rule)
				} else {
					resolved = append(resolved, a.Rule)
				}
			}
			assert.Equal(t, tt.wantRaise, raised)
			assert.Equal(t, tt.wantResolve, resolved)
			assert.Equal(t, len(raised), rec.count(EventAlertRaised))
			assert.Equal(t, len(resolved), rec.count(EventAlertResolved))

			assert.Equal(t, tt.wantNotJudged, res.NotJudged)
			assert.Equal(t, rules.MinSamples, res.MinSamples)
			if tt.wantRule == "" {
				assert.Nil(t, res.Rollback)
				assert.False(t, res.StoppedEarly)
				assert.Equal(t, tt.duration*interval, res.Duration)
				return
			}
			require.NotNil(t, res.Rollback)
			assert.Equal(t, tt.wantRule, res.Rollback.Rule)
			assert.Equal(t, Rollback, res.Rollback.Action)
			assert.True(t, res.StoppedEarly)
			assert.Contains(t, res.Verdicts, *res.Rollback)
			require.NotEmpty(t, res.Evidence)
			assert.True(t, slices.ContainsFunc(res.Evidence, func(s Sample) bool { return !s.OK }), "evidence shows failures")
		})
	}
}

func TestRunEvidence(t *testing.T) {
	t.Parallel()
	opts := Options{Endpoints: []string{"a"}, Interval: time.Millisecond, Duration: time.Hour}

	res, _ := runDriven(t, opts, 1, patternProber(fortyPercent))
	require.NotNil(t, res.Rollback)
	assert.Equal(t, "error rate 40.0% over the last 10 probes is above the rollback threshold 25%", res.Rollback.Message)
	require.Len(t, res.Evidence, 10, "a rate rule's evidence is its window")
	failed := 0
	for _, s := range res.Evidence {
		if !s.OK {
			failed++
		}
	}
	assert.Equal(t, 4, failed)

	res, _ = runDriven(t, opts, 1, patternProber(func(n int) bool { return n > 3 }))
	require.NotNil(t, res.Rollback)
	assert.Equal(t, RuleConsecutiveFailures, res.Rollback.Rule)
	require.Len(t, res.Evidence, 6, "a streak's evidence is the failing streak")
	for _, s := range res.Evidence {
		assert.False(t, s.OK)
	}
}

func TestRunRealClock(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	opts := Options{Endpoints: []string{"https://app.example.test/health"}, Interval: 10 * time.Millisecond, Duration: time.Minute}
	res := Run(t.Context(), opts, patternProber(fortyPercent), rec.on)

	require.NotNil(t, res.Rollback)
	assert.Equal(t, RuleErrorRate, res.Rollback.Rule)
	assert.Equal(t, int64(DefaultRules().MinSamples), res.Snapshot.Count, "rollback on the sample that reached MinSamples")
	assert.GreaterOrEqual(t, res.Ticks, int(res.Snapshot.Count), "a tick skips an endpoint still in flight, never probes it twice")
	assert.Zero(t, rec.overlaps.Load())
	assert.LessOrEqual(t, len(res.Series), MaxSeriesPoints)
}

func TestRunHonoursCancel(t *testing.T) {
	t.Parallel()
	t.Run("while probes hang", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		started := make(chan struct{}, 1)
		hang := func(ctx context.Context, _ string) Sample {
			select {
			case started <- struct{}{}:
			default:
			}
			<-ctx.Done()
			return Sample{Err: ctx.Err().Error()}
		}
		go func() { <-started; cancel() }()
		res := Run(ctx, Options{Endpoints: []string{"a", "b"}, Interval: 5 * time.Millisecond, Duration: time.Hour, Timeout: time.Hour}, hang, nil)
		assert.True(t, res.StoppedEarly)
		assert.Nil(t, res.Rollback)
	})
	t.Run("between probes", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		rec := newRecorder()
		onEvent := func(e Event) {
			rec.on(e)
			if e.Kind == EventSample && rec.count(EventSample) == 3 {
				cancel()
			}
		}
		res := Run(ctx, Options{Endpoints: []string{"a"}, Interval: 5 * time.Millisecond, Duration: time.Hour}, patternProber(func(int) bool { return false }), onEvent)
		assert.True(t, res.StoppedEarly)
		assert.Equal(t, int64(3), res.Snapshot.Count, "the run ends with what it has")
		assert.Nil(t, res.Rollback)
	})
	t.Run("already cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		res := Run(ctx, Options{Endpoints: []string{"a"}, Interval: time.Hour, Duration: time.Hour}, func(ctx context.Context, _ string) Sample {
			<-ctx.Done()
			return Sample{}
		}, nil)
		assert.True(t, res.StoppedEarly)
	})
}

func TestRunOff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
	}{
		{"zero duration", Options{Endpoints: []string{"a"}, Interval: time.Millisecond}},
		{"negative duration", Options{Endpoints: []string{"a"}, Duration: -time.Second}},
		{"no endpoints", Options{Duration: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			rec := newRecorder()
			res := Run(t.Context(), tt.opts, func(context.Context, string) Sample { calls.Add(1); return Sample{} }, rec.on)
			assert.Equal(t, Result{}, res)
			assert.Zero(t, calls.Load())
			assert.Empty(t, rec.events)
		})
	}
}

func TestRunOneProbePerEndpoint(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	inflight, most, calls := map[string]int{}, map[string]int{}, map[string]int{}
	probe := func(ctx context.Context, ep string) Sample {
		mu.Lock()
		inflight[ep]++
		most[ep] = max(most[ep], inflight[ep])
		calls[ep]++
		mu.Unlock()
		defer func() { mu.Lock(); inflight[ep]--; mu.Unlock() }()
		if ep == "slow" {
			<-ctx.Done() // hangs until the run ends
			return Sample{Err: ctx.Err().Error()}
		}
		return Sample{OK: true, Latency: time.Millisecond}
	}
	const interval = 10 * time.Millisecond
	opts := Options{Endpoints: []string{"fast", "slow", "fast"}, Interval: interval, Duration: 8 * interval, Timeout: time.Hour}
	res, _ := runDriven(t, opts, 1, probe)

	assert.Equal(t, 8, res.Ticks)
	assert.Equal(t, map[string]int{"fast": 8, "slow": 1}, calls, "duplicates are probed once; a hung endpoint is not probed again")
	assert.Equal(t, map[string]int{"fast": 1, "slow": 1}, most)
	assert.Equal(t, map[string]int{"fast": 0, "slow": 0}, inflight, "Run returns only after its probes have")
	assert.Equal(t, int64(8), res.Snapshot.Count)
}

func TestRunProbeTimeout(t *testing.T) {
	t.Parallel()
	hang := func(ctx context.Context, _ string) Sample {
		<-ctx.Done()
		return Sample{Err: ctx.Err().Error()}
	}
	opts := Options{Endpoints: []string{"a"}, Interval: time.Hour, Duration: 3 * time.Hour, Timeout: 5 * time.Millisecond}
	res, rec := runDriven(t, opts, 1, hang)
	assert.Equal(t, int64(3), res.Snapshot.Count)
	assert.Equal(t, int64(3), res.Snapshot.Errors)
	for _, e := range rec.events {
		if e.Kind == EventSample {
			assert.Equal(t, context.DeadlineExceeded.Error(), e.Sample.Err)
			assert.Equal(t, "a", e.Sample.Endpoint)
			assert.False(t, e.Sample.Time.IsZero(), "an unstamped sample gets its round's time")
		}
	}
}

// httpProber is a minimal prober over real HTTP, quoting the URL it probed in
// its errors as careless probers do.
func httpProber(client *http.Client) Prober {
	return func(ctx context.Context, endpoint string) Sample {
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		if err != nil {
			return Sample{Err: err.Error()}
		}
		resp, err := client.Do(req)
		s := Sample{Latency: time.Since(start)}
		if err != nil {
			s.Err = err.Error()
			return s
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		s.StatusCode, s.OK = resp.StatusCode, resp.StatusCode < 400
		if !s.OK {
			s.Err = fmt.Sprintf("GET %s: status %d", endpoint, resp.StatusCode)
		}
		return s
	}
}

func TestRunKeepsCredentialsOut(t *testing.T) {
	t.Parallel()
	const user, password = "deployer", "s3cret-t0ken"
	var authorised atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		authorised.Add(1)
		if r.URL.Path == "/broken" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	healthy := "http://" + user + ":" + password + "@" + host + "/health"
	broken := "http://" + user + ":" + password + "@" + host + "/broken"

	// The manual clock paces the rounds; a generous timeout keeps a slow
	// machine from turning responses into timeouts.
	opts := Options{Endpoints: []string{healthy, broken}, Interval: 10 * time.Millisecond, Duration: 12 * 10 * time.Millisecond, Timeout: time.Minute}
	rules := DefaultRules()
	rules.RollbackErrorRate = 0 // keep watching so every kind of output is produced
	opts.Rules = rules
	res, rec := runDriven(t, opts, 2, httpProber(srv.Client()))

	assert.Equal(t, int32(24), authorised.Load(), "the prober gets the endpoint with its credentials")
	assert.Equal(t, int64(12), res.Snapshot.Errors)
	require.NotEmpty(t, res.Alerts)
	assert.Nil(t, res.Rollback)

	out, err := json.Marshal(struct {
		Result Result
		Events []Event
	}{res, rec.events})
	require.NoError(t, err)
	assert.NotContains(t, string(out), password)
	assert.NotContains(t, string(out), user)
	assert.Contains(t, string(out), "http://xxxxx@"+host+"/broken: status 503")
	for _, e := range rec.events {
		if e.Kind == EventSample {
			assert.Contains(t, []string{"http://xxxxx@" + host + "/health", "http://xxxxx@" + host + "/broken"}, e.Sample.Endpoint)
		}
	}
}

func TestRedactEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, shown, text, scrubbed string
	}{
		{"https://app.example.test/health", "https://app.example.test/health", "boom", "boom"},
		{"https://tok@app.example.test/h", "https://xxxxx@app.example.test/h", `Get "https://tok@app.example.test/h": EOF`, `Get "https://xxxxx@app.example.test/h": EOF`},
		{"https://u:p%40ss@app.example.test/h", "https://xxxxx@app.example.test/h", "p@ss and p%40ss and u", "xxxxx and xxxxx and xxxxx"},
		{"not a url \x7f", "not a url \x7f", "x", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.shown, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(tt.raw)
			assert.Equal(t, tt.shown, tg.shown)
			assert.Equal(t, tt.scrubbed, tg.scrub(tt.text))
		})
	}
}

// TestRunLeavesUnjudgedProbesOut: probes whose answers said nothing about
// the app (the API server's own failures) neither fail a rule nor count as
// successes; they are counted apart.
func TestRunLeavesUnjudgedProbesOut(t *testing.T) {
	t.Parallel()
	rules := DefaultRules()
	rules.MinSamples = 1
	opts := Options{Endpoints: []string{"/health"}, Interval: time.Second, Duration: 40 * time.Second, Rules: rules}
	var calls atomic.Int64
	res, _ := runDriven(t, opts, 1, func(_ context.Context, _ string) Sample {
		if n := calls.Add(1); n%4 != 0 {
			return Sample{Latency: 5 * time.Millisecond, StatusCode: 429, Err: "the Kubernetes API server's own 429", Unjudged: true}
		}
		return Sample{Latency: 2 * time.Millisecond, StatusCode: 200, OK: true}
	})
	assert.Nil(t, res.Rollback, "three unjudged probes in four must not roll back a healthy app")
	assert.Positive(t, res.Unjudged)
	assert.Equal(t, int64(res.Ticks-res.Unjudged), res.Snapshot.Count, "only judged probes are counted")
	assert.Zero(t, res.Snapshot.Errors)
	assert.Contains(t, res.LastUnjudged, "429")
}

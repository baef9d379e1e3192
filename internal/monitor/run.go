package monitor

import (
	"context"
	"slices"
	"sync"
	"time"
)

// DefaultInterval is how often endpoints are probed when none is given.
const DefaultInterval = 10 * time.Second

// maxAlertHistory bounds Result.Alerts for a rule that flaps all day; every
// change is still delivered as an event.
const maxAlertHistory = 1000

// Clock is the time source of Run, injectable so tests can drive ticks.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTicker returns a ticker that delivers the time every d.
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks until stopped.
type Ticker interface {
	// C returns the channel the ticks arrive on.
	C() <-chan time.Time
	// Stop releases the ticker.
	Stop()
}

// SystemClock is the Clock backed by package time.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTicker wraps time.NewTicker.
func (SystemClock) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

type systemTicker struct{ t *time.Ticker }

func (t systemTicker) C() <-chan time.Time { return t.t.C }
func (t systemTicker) Stop()               { t.t.Stop() }

// Options configures Run.
type Options struct {
	// Endpoints are probed every Interval; duplicates are probed once.
	Endpoints []string
	// Interval is the time between probe rounds (DefaultInterval when not
	// positive).
	Interval time.Duration
	// Duration is how long to watch; zero or less turns monitoring off.
	Duration time.Duration
	// Timeout bounds each probe (Interval when not positive), so a hung
	// endpoint cannot hold up its own next round for long.
	Timeout time.Duration
	// Rules are the thresholds (DefaultRules when zero; a non-positive
	// Window becomes DefaultWindow and MinSamples is capped at Window).
	Rules Rules
	// Clock is the time source (SystemClock when nil).
	Clock Clock
	// Sources are read once per round each, beside the probes: figures of
	// the requests users sent (the pods' own metrics, the team's
	// Prometheus), each judged by the same response-time and error-rate
	// thresholds and named in its verdicts. At most one read per source is
	// in flight. The first is the primary source: Result.Traffic and
	// Snapshot.Traffic are its figures.
	Sources []NamedSource
}

// withDefaults fills what the caller left out.
func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = o.Interval
	}
	if o.Rules == (Rules{}) {
		o.Rules = DefaultRules()
	}
	if o.Rules.Window <= 0 {
		o.Rules.Window = DefaultWindow
	}
	// A minimum the window can never reach would silently disable the rate rules.
	o.Rules.MinSamples = min(o.Rules.MinSamples, o.Rules.Window)
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	return o
}

// EventKind says what an Event reports.
type EventKind string

const (
	// EventSample reports one probe sample, an Unjudged one included
	// (which no figure or rule counts).
	EventSample EventKind = "sample"
	// EventAlertRaised reports the start of an alert episode.
	EventAlertRaised EventKind = "alert-raised"
	// EventAlertResolved reports the end of an alert episode.
	EventAlertResolved EventKind = "alert-resolved"
	// EventProgress reports the figures so far, once per tick.
	EventProgress EventKind = "progress"
	// EventRequests reports one window of the request source, and why it
	// was not judged when it was not.
	EventRequests EventKind = "requests"
)

// Event is something Run observed, delivered to its onEvent callback.
type Event struct {
	// Kind says which of the optional fields is set.
	Kind EventKind `json:"kind"`
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Tick is the number of the probe round in progress, from 1.
	Tick int `json:"tick"`
	// Sample is set for EventSample.
	Sample *Sample `json:"sample,omitempty"`
	// Alert is set for EventAlertRaised and EventAlertResolved.
	Alert *AlertChange `json:"alert,omitempty"`
	// Snapshot and Verdicts are set for EventProgress: the figures so far
	// and the verdicts currently firing.
	Snapshot *Snapshot `json:"snapshot,omitempty"`
	Verdicts []Verdict `json:"verdicts,omitempty"`
	// Window and Note are set for EventRequests; Window.Source names
	// where it came from.
	Window *RequestWindow `json:"window,omitempty"`
	Note   string         `json:"note,omitempty"`
}

// Result is everything Run learned, for the pipeline's decision and report.
type Result struct {
	// Snapshot holds the final figures.
	Snapshot Snapshot `json:"snapshot"`
	// Verdicts are those of the last evaluation.
	Verdicts []Verdict `json:"verdicts,omitempty"`
	// Rollback is the verdict that stopped the run, if one did.
	Rollback *Verdict `json:"rollback,omitempty"`
	// Evidence holds the window's samples behind Rollback: the whole window
	// for a rate rule, the failing streak for consecutive failures.
	Evidence []Sample `json:"evidence,omitempty"`
	// Series is the down-sampled latency chart.
	Series []SeriesPoint `json:"series,omitempty"`
	// Alerts lists the alert episode changes in order, up to a bound;
	// AlertsDropped counts the later ones left out.
	Alerts        []AlertChange `json:"alerts,omitempty"`
	AlertsDropped int           `json:"alerts_dropped,omitempty"`
	// Ticks is how many probe rounds were started.
	Ticks int `json:"ticks"`
	// StoppedEarly is true when a rollback verdict or cancellation ended the
	// run before Duration.
	StoppedEarly bool `json:"stopped_early"`
	// Duration is how long the run watched.
	Duration time.Duration `json:"duration_ns"`
	// Traffic is the primary request source's figures, when one was
	// read; Sources holds every source's, in Options.Sources order.
	Traffic *Traffic  `json:"traffic,omitempty"`
	Sources []Traffic `json:"sources,omitempty"`
	// Findings are the request sources' news about themselves, in order,
	// each after its source's name, up to a bound; FindingsDropped counts
	// the later ones left out.
	Findings        []string `json:"findings,omitempty"`
	FindingsDropped int      `json:"findings_dropped,omitempty"`
	// Unjudged counts the probes left out of every figure and rule because
	// their answers said nothing about the app; LastUnjudged is why the
	// last one was.
	Unjudged     int    `json:"unjudged,omitempty"`
	LastUnjudged string `json:"last_unjudged,omitempty"`
	// Failures counts the failed probes by what they answered, the most
	// frequent first, up to a bound; FailuresOther counts the failures of
	// every other kind. A monitor that passed with a few failed probes
	// still says why they failed.
	Failures      []FailureCount `json:"failures,omitempty"`
	FailuresOther int            `json:"failures_other,omitempty"`
	// NotJudged lists the probe rules the run ended with too few samples
	// for (see NotJudged), and MinSamples is the minimum they needed: a
	// monitor that passed with a rule listed here did not judge it.
	NotJudged  []RuleID `json:"not_judged,omitempty"`
	MinSamples int      `json:"min_samples,omitempty"`
}

// maxFindings bounds Result.Findings when pods churn all day.
const maxFindings = 100

// Run probes opts.Endpoints every Interval for Duration, feeding each sample
// into Stats and evaluating the rules as it lands, and stops at once when a
// verdict asks for a rollback. A round starts immediately and then on every
// tick; an endpoint whose previous probe is still running is skipped for
// that round, so at most one probe per endpoint is ever in flight. onEvent
// (which may be nil) is called from the calling goroutine only. Cancelling
// ctx ends the run promptly with what it has; probes still in flight are
// cancelled and Run waits for the prober to return from them.
func Run(ctx context.Context, opts Options, probe Prober, onEvent func(Event)) Result {
	if opts.Duration <= 0 || probe == nil {
		return Result{}
	}
	o := opts.withDefaults()
	var targets []target
	seen := map[string]bool{}
	for _, ep := range o.Endpoints {
		if !seen[ep] {
			seen[ep] = true
			targets = append(targets, newTarget(ep))
		}
	}
	if len(targets) == 0 {
		return Result{}
	}
	if onEvent == nil {
		onEvent = func(Event) {}
	}
	r := &runner{
		opts:     o,
		probe:    probe,
		emit:     onEvent,
		targets:  targets,
		inflight: make([]bool, len(targets)),
		// One slot per endpoint: with one probe each in flight, senders never block.
		results: make(chan probeResult, len(targets)),
		stats:   NewStats(o.Rules.Window, o.Interval),
	}
	for _, src := range o.Sources {
		if src.Read != nil {
			r.sources = append(r.sources, src)
			r.traffic = append(r.traffic, Traffic{Source: src.Name})
		}
	}
	// One slot per source: with one read each in flight, senders never block.
	r.windows = make(chan sourceWindow, max(len(r.sources), 1))
	r.reading = make([]bool, len(r.sources))
	r.requestVerdicts = make([][]Verdict, len(r.sources))
	return r.run(ctx)
}

// probeResult carries a finished probe back to the loop.
type probeResult struct {
	index  int
	sample Sample
}

// sourceWindow carries a window read back to the loop.
type sourceWindow struct {
	index  int
	window RequestWindow
}

// runner is the state of one Run, owned by the calling goroutine.
type runner struct {
	opts     Options
	probe    Prober
	emit     func(Event)
	targets  []target
	inflight []bool
	results  chan probeResult
	wg       sync.WaitGroup

	stats    *Stats
	failures failureTally
	tracker  Tracker
	verdicts []Verdict
	// probeVerdicts and requestVerdicts are the latest of each source;
	// verdicts is all of them together.
	probeVerdicts   []Verdict
	requestVerdicts [][]Verdict
	sources         []NamedSource
	windows         chan sourceWindow
	reading         []bool
	traffic         []Traffic
	res             Result
	start           time.Time
}

func (r *runner) run(ctx context.Context) Result {
	probeCtx, cancel := context.WithCancel(ctx)
	defer r.wg.Wait() // after cancel below: deferred calls run last-in first-out
	defer cancel()

	ticker := r.opts.Clock.NewTicker(r.opts.Interval)
	defer ticker.Stop()
	r.start = r.opts.Clock.Now()
	r.round(probeCtx, r.start)

loop:
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case now := <-ticker.C():
			if now.Sub(r.start) >= r.opts.Duration {
				break loop
			}
			r.round(probeCtx, now)
		case pr := <-r.results:
			if r.record(pr) {
				r.res.StoppedEarly = true
				break loop
			}
		case w := <-r.windows:
			if r.recordWindow(w) {
				r.res.StoppedEarly = true
				break loop
			}
		}
	}
	if ctx.Err() != nil {
		r.res.StoppedEarly = true
	}

	r.res.Snapshot = r.snapshot()
	r.res.Verdicts = r.verdicts
	if len(r.traffic) > 0 {
		r.res.Sources = slices.Clone(r.traffic)
		r.res.Traffic = &r.res.Sources[0]
	}
	r.res.Series = r.stats.Series()
	r.res.Failures, r.res.FailuresOther = r.failures.counts()
	r.res.NotJudged = NotJudged(r.res.Snapshot, r.opts.Rules)
	r.res.MinSamples = max(r.opts.Rules.MinSamples, 1)
	r.res.Duration = r.opts.Clock.Now().Sub(r.start)
	return r.res
}

// round reports progress and starts a probe of every idle endpoint.
func (r *runner) round(ctx context.Context, now time.Time) {
	r.res.Ticks++
	snap := r.snapshot()
	r.emit(Event{Kind: EventProgress, Time: now, Tick: r.res.Ticks, Snapshot: &snap, Verdicts: slices.Clone(r.verdicts)})
	for i, t := range r.targets {
		if r.inflight[i] {
			continue
		}
		r.inflight[i] = true
		r.wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
			defer cancel()
			s := r.probe(pctx, t.raw)
			if s.Time.IsZero() {
				s.Time = now
			}
			r.results <- probeResult{index: i, sample: s}
		})
	}
	for i, src := range r.sources {
		if r.reading[i] {
			continue
		}
		r.reading[i] = true
		r.wg.Go(func() {
			r.windows <- sourceWindow{index: i, window: src.Read(ctx)}
		})
	}
}

// snapshot is the probes' figures with the request source's beside them.
func (r *runner) snapshot() Snapshot {
	s := r.stats.Snapshot()
	if len(r.traffic) > 0 {
		s.Sources = slices.Clone(r.traffic)
		s.Traffic = &s.Sources[0]
	}
	return s
}

// recordWindow judges one window of a source's requests, emitting what
// changed, and reports whether a rollback verdict ends the run.
func (r *runner) recordWindow(sw sourceWindow) bool {
	i, w := sw.index, sw.window
	r.reading[i] = false
	w.Source = r.sources[i].Name
	if w.End.IsZero() {
		w.End = r.opts.Clock.Now()
	}
	for _, f := range w.Findings {
		if len(r.res.Findings) < maxFindings {
			r.res.Findings = append(r.res.Findings, string(w.Source)+": "+f)
		} else {
			r.res.FindingsDropped++
		}
	}
	verdicts, note := EvaluateRequests(w, w.Source, r.opts.Rules)
	r.traffic[i].add(w, note)
	r.emit(Event{Kind: EventRequests, Time: w.End, Tick: r.res.Ticks, Window: &w, Note: note})
	r.requestVerdicts[i] = verdicts
	return r.update(w.End, nil)
}

// record feeds one sample through stats, rules and tracker, emitting what
// changed, and reports whether a rollback verdict ends the run.
func (r *runner) record(pr probeResult) bool {
	r.inflight[pr.index] = false
	t := r.targets[pr.index]
	s := pr.sample
	s.Endpoint = t.shown
	s.Err = t.scrub(s.Err)
	if s.Unjudged {
		r.res.Unjudged++
		r.res.LastUnjudged = s.Err
		r.emit(Event{Kind: EventSample, Time: s.Time, Tick: r.res.Ticks, Sample: &s})
		return false
	}

	r.stats.Add(s)
	if !s.OK {
		r.failures.add(s)
	}
	r.emit(Event{Kind: EventSample, Time: s.Time, Tick: r.res.Ticks, Sample: &s})

	r.probeVerdicts = Evaluate(r.stats.Snapshot(), r.opts.Rules)
	return r.update(s.Time, r.stats.Window())
}

// update feeds both sources' latest verdicts to the tracker, emitting the
// episode changes, and reports whether one of them asks for a rollback;
// window is the probes' evidence for a probe verdict.
func (r *runner) update(at time.Time, window []Sample) bool {
	r.verdicts = slices.Clone(r.probeVerdicts)
	for _, vs := range r.requestVerdicts {
		r.verdicts = append(r.verdicts, vs...)
	}
	for _, ch := range r.tracker.Update(at, r.verdicts) {
		if len(r.res.Alerts) < maxAlertHistory {
			r.res.Alerts = append(r.res.Alerts, ch)
		} else {
			r.res.AlertsDropped++
		}
		kind := EventAlertRaised
		if ch.State == AlertResolved {
			kind = EventAlertResolved
		}
		r.emit(Event{Kind: kind, Time: ch.Time, Tick: r.res.Ticks, Alert: &ch})
	}

	for _, v := range r.verdicts {
		if v.Action == Rollback {
			r.res.Rollback = &v
			if v.Source == SourceProbes {
				if window == nil {
					window = r.stats.Window()
				}
				r.res.Evidence = evidence(v, window)
			}
			return true
		}
	}
	return false
}

// evidence picks the window samples that tripped verdict v.
func evidence(v Verdict, window []Sample) []Sample {
	if v.Rule != RuleConsecutiveFailures {
		return window
	}
	start := len(window)
	for start > 0 && !window[start-1].OK {
		start--
	}
	return window[start:]
}

package report

import (
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/monitor"
)

// Bounds that keep a Document's size independent of how long a run lasts or
// how noisy the cluster is. Items beyond them are counted in Dropped.
const (
	maxFindings   = 50
	maxAlerts     = 100
	maxWarnings   = 50
	maxObjects    = 100
	maxResults    = 8
	maxSmoke      = 100
	maxEvidence   = 200
	maxComponents = 100
	// maxTextBytes bounds one message; a container's termination message
	// can be kilobytes long and the report needs its start only.
	maxTextBytes = 4096
	// maxFixBytes bounds a "fix" finding, a recipe of commands and YAML
	// that is useless when cut short.
	maxFixBytes = 16 << 10
)

// Option configures a Recorder.
type Option func(*Recorder)

// WithRules tells the Recorder the monitor's thresholds, so the latency
// chart can draw the alert threshold even when no alert fired; events carry
// thresholds only inside verdicts.
func WithRules(r monitor.Rules) Option {
	return func(rec *Recorder) {
		rec.alertThreshold = r.AlertResponseTime
		rec.rollbackThreshold = r.RollbackResponseTime
	}
}

// Recorder is an event.Sink that folds a run's events into a Document. It
// is safe for concurrent use and keeps only the latest snapshot and series,
// so its memory does not grow with the length of monitoring.
type Recorder struct {
	mu  sync.Mutex
	doc Document

	alertThreshold, rollbackThreshold time.Duration
}

var _ event.Sink = (*Recorder)(nil)

// NewRecorder returns a Recorder with an empty Document.
func NewRecorder(opts ...Option) *Recorder {
	r := &Recorder{doc: Document{SchemaVersion: SchemaVersion}}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Document returns a deep copy of the report so far.
func (r *Recorder) Document() Document {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.doc.clone()
}

// Handle folds one event into the report. It never blocks on I/O and
// ignores fields it has no place for.
func (r *Recorder) Handle(e event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := &r.doc
	// Durations come from wall-clock times alone, as they do when an event
	// log is replayed: the report of a run and of its log are the same.
	e.Time = e.Time.Round(0)
	if e.Run != nil {
		run := *e.Run
		run.StartedAt = run.StartedAt.Round(0)
		e.Run = &run
	}

	// The run's identity comes with run-started; run-finished may repeat it
	// with what was learned on the way, such as the previous image.
	if e.Run != nil {
		started := d.Run.StartedAt
		d.Run = *e.Run
		d.Run.Image = clampText(d.Run.Image)
		d.Run.PreviousImage = clampText(d.Run.PreviousImage)
		if d.Run.StartedAt.IsZero() {
			d.Run.StartedAt = started
		}
	}

	switch e.Kind {
	case event.StageStarted:
		if s := r.stage(e.Stage); s != nil {
			s.Start = e.Time
			if s.Outcome == "" {
				s.Outcome = event.Pending
			}
		}
	case event.StageFinished:
		if s := r.stage(e.Stage); s != nil {
			s.End = e.Time
			s.Outcome = e.Outcome
			if s.Outcome == "" {
				s.Outcome = event.Succeeded
			}
			if !s.Start.IsZero() && !s.End.Before(s.Start) {
				s.Duration = s.End.Sub(s.Start)
			}
			if e.Message != "" {
				s.Finding = clampText(e.Message)
			}
			s.Findings = r.addFindings(s.Findings, e.Findings)
		}
	case event.HealthChecked:
		if e.Health != nil {
			d.Health = r.upsertHealth(d.Health, *e.Health)
		}
	case event.SmokeTested:
		if len(e.Smoke) > maxSmoke {
			d.Dropped += len(e.Smoke) - maxSmoke
		}
		d.Smoke = slices.Clone(e.Smoke[:min(len(e.Smoke), maxSmoke)])
	case event.TrafficVerified:
		if e.Traffic != nil {
			d.Traffic = r.upsertTraffic(d.Traffic, *e.Traffic)
		}
	case event.AlertRaised, event.AlertResolved:
		if e.Alert != nil {
			m := r.monitoring()
			r.learnThreshold(e.Alert.Verdict)
			if len(m.Alerts) >= maxAlerts {
				m.AlertsDropped++
				d.Dropped++
			} else {
				m.Alerts = append(m.Alerts, *e.Alert)
			}
		}
	case event.RollbackStarted:
		rb := r.rollback()
		rb.Start = e.Time
		if e.Message != "" {
			rb.Reason = clampText(e.Message)
		}
		rb.Findings = r.addFindings(rb.Findings, e.Findings)
	case event.RollbackFinished:
		rb := r.rollback()
		rb.End = e.Time
		rb.Outcome = e.Outcome
		if e.Message != "" {
			rb.Message = clampText(e.Message)
		}
		rb.Findings = r.addFindings(rb.Findings, e.Findings)
	case event.ObjectsChanged:
		if len(e.Objects) > maxObjects {
			d.Dropped += len(e.Objects) - maxObjects
		}
		d.Objects = slices.Clone(e.Objects[:min(len(e.Objects), maxObjects)])
		for i := range d.Objects {
			d.Objects[i].Detail = clampText(d.Objects[i].Detail)
		}
	case event.Warning:
		if e.Message != "" {
			if len(d.Warnings) >= maxWarnings {
				d.Dropped++
			} else {
				d.Warnings = append(d.Warnings, Warning{Time: e.Time, Stage: e.Stage, Message: clampText(e.Message)})
			}
		}
	case event.RunFinished:
		if e.Result != nil {
			res := cloneResult(*e.Result)
			res.Reason = clampText(res.Reason)
			res.ManualCommand = clampText(res.ManualCommand)
			d.Result = &res
			if res.Monitor != nil {
				r.monitoring().Snapshot = *res.Monitor
			}
			end := res.FinishedAt.Round(0)
			if end.IsZero() {
				end = e.Time
			}
			if !d.Run.StartedAt.IsZero() && end.After(d.Run.StartedAt) {
				d.Duration = end.Sub(d.Run.StartedAt)
			}
		}
	}

	// Monitoring figures may ride on any event (progress, the monitor
	// stage's end, the rollback's start); the latest wins.
	if e.Snapshot != nil {
		r.monitoring().Snapshot = *e.Snapshot
	}
	if len(e.Series) > 0 {
		s := e.Series[max(0, len(e.Series)-monitor.MaxSeriesPoints):]
		r.monitoring().Series = slices.Clone(s)
	}
	if e.Verdict != nil {
		m := r.monitoring()
		r.learnThreshold(*e.Verdict)
		if m.Verdict == nil || e.Verdict.Action == monitor.Rollback {
			v := *e.Verdict
			m.Verdict = &v
		}
	}
	if len(e.Evidence) > 0 {
		ev := e.Evidence[max(0, len(e.Evidence)-maxEvidence):]
		r.monitoring().Evidence = slices.Clone(ev)
	}
	if m := r.doc.Monitoring; m != nil {
		if m.AlertThreshold == 0 {
			m.AlertThreshold = r.alertThreshold
		}
		if m.RollbackThreshold == 0 {
			m.RollbackThreshold = r.rollbackThreshold
		}
	}
}

// stage returns the named stage, adding it in run order; nil for an event
// without a stage.
func (r *Recorder) stage(name event.Stage) *Stage {
	if name == "" {
		return nil
	}
	for i := range r.doc.Stages {
		if r.doc.Stages[i].Name == name {
			return &r.doc.Stages[i]
		}
	}
	r.doc.Stages = append(r.doc.Stages, Stage{Name: name})
	return &r.doc.Stages[len(r.doc.Stages)-1]
}

func (r *Recorder) monitoring() *Monitoring {
	if r.doc.Monitoring == nil {
		r.doc.Monitoring = &Monitoring{}
	}
	return r.doc.Monitoring
}

func (r *Recorder) rollback() *Rollback {
	if r.doc.Rollback == nil {
		r.doc.Rollback = &Rollback{}
	}
	return r.doc.Rollback
}

// learnThreshold keeps the response-time limits a verdict reveals, for
// when no rules were given.
func (r *Recorder) learnThreshold(v monitor.Verdict) {
	if v.Rule != monitor.RuleResponseTime || v.Threshold <= 0 {
		return
	}
	d := time.Duration(v.Threshold * float64(time.Second))
	switch v.Action {
	case monitor.Alert:
		if r.alertThreshold == 0 {
			r.alertThreshold = d
		}
	case monitor.Rollback:
		if r.rollbackThreshold == 0 {
			r.rollbackThreshold = d
		}
	}
}

func (r *Recorder) addFindings(have, add []event.Finding) []event.Finding {
	for _, f := range add {
		if len(have) >= maxFindings {
			r.doc.Dropped++
			continue
		}
		f.Subject = clampText(f.Subject)
		f.Reason = clampText(f.Reason)
		if strings.EqualFold(f.Kind, "fix") {
			f.Message = clampBytes(f.Message, maxFixBytes)
		} else {
			f.Message = clampText(f.Message)
		}
		have = append(have, f)
	}
	return have
}

func (r *Recorder) upsertHealth(have []health.Result, res health.Result) []health.Result {
	res = cloneHealthResult(res)
	for i := range res.Endpoints {
		if det := res.Endpoints[i].Detailed; det != nil && len(det.Components) > maxComponents {
			r.doc.Dropped += len(det.Components) - maxComponents
			det.Components = det.Components[:maxComponents]
		}
	}
	for i := range have {
		if have[i].Mode == res.Mode && have[i].Target == res.Target {
			have[i] = res
			return have
		}
	}
	if len(have) >= maxResults {
		r.doc.Dropped++
		return have
	}
	return append(have, res)
}

func (r *Recorder) upsertTraffic(have []health.TrafficResult, res health.TrafficResult) []health.TrafficResult {
	res.Versions = slices.Clone(res.Versions)
	for i := range have {
		if have[i].Mode == res.Mode && have[i].Target == res.Target {
			have[i] = res
			return have
		}
	}
	if len(have) >= maxResults {
		r.doc.Dropped++
		return have
	}
	return append(have, res)
}

// clampText cuts s to maxTextBytes on a rune boundary.
func clampText(s string) string { return clampBytes(s, maxTextBytes) }

// clampBytes cuts s to n bytes on a rune boundary, marking the cut.
func clampBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

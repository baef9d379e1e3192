package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/monitor"
)

// SchemaVersion is the version of the JSON report's shape. It changes only
// when a field is removed or changes meaning, so consumers can rely on it.
const SchemaVersion = 1

// Document is the whole report of one run: what the JSON report holds and
// what every rendering is made from. Times are RFC 3339, durations are
// nanoseconds, rates are fractions in 0..1.
type Document struct {
	// SchemaVersion is always SchemaVersion for documents this package makes.
	SchemaVersion int `json:"schema_version"`
	// Run identifies the deploy.
	Run event.Run `json:"run"`
	// Duration is from the run's start to its finish; zero while running.
	Duration time.Duration `json:"duration_ns"`
	// Stages are in run order.
	Stages []Stage `json:"stages,omitempty"`
	// Health holds the latest health check of each mode and target.
	Health []health.Result `json:"health,omitempty"`
	// Smoke holds the latest smoke test results.
	Smoke []health.SmokeResult `json:"smoke,omitempty"`
	// Traffic holds the latest traffic verification of each mode and target.
	Traffic []health.TrafficResult `json:"traffic,omitempty"`
	// Monitoring is nil when the run never reached the monitor stage.
	Monitoring *Monitoring `json:"monitoring,omitempty"`
	// Rollback is nil when the run did not roll back.
	Rollback *Rollback `json:"rollback,omitempty"`
	// Result is nil until the run has finished.
	Result *event.Result `json:"result,omitempty"`
	// Objects are the manifests' objects with what the deploy changed and
	// how each ended, as last reported (after a rollback, its outcome).
	Objects []event.ObjectChange `json:"objects,omitempty"`
	// Warnings are in the order they were emitted.
	Warnings []Warning `json:"warnings,omitempty"`
	// Dropped counts items left out to keep the report bounded: findings,
	// alerts, warnings or results beyond their limits.
	Dropped int `json:"dropped,omitempty"`
}

// Stage is how one stage of the run went.
type Stage struct {
	Name    event.Stage   `json:"name"`
	Outcome event.Outcome `json:"outcome"`
	Start   time.Time     `json:"start,omitzero"`
	End     time.Time     `json:"end,omitzero"`
	// Duration is End-Start, zero while the stage runs.
	Duration time.Duration `json:"duration_ns"`
	// Finding is the one line that sums the stage up.
	Finding string `json:"finding,omitempty"`
	// Findings are the typed facts behind it, such as failing pods.
	Findings []event.Finding `json:"findings,omitempty"`
}

// Monitoring is what watching the new version showed.
type Monitoring struct {
	// Snapshot holds the latest figures.
	Snapshot monitor.Snapshot `json:"snapshot"`
	// Series is the latest latency chart series, at most
	// monitor.MaxSeriesPoints points.
	Series []monitor.SeriesPoint `json:"series,omitempty"`
	// AlertThreshold and RollbackThreshold are the response-time limits the
	// chart draws; zero when unknown or disabled.
	AlertThreshold    time.Duration `json:"alert_threshold_ns,omitempty"`
	RollbackThreshold time.Duration `json:"rollback_threshold_ns,omitempty"`
	// Alerts are the alert episodes' starts and ends, in order.
	Alerts []monitor.AlertChange `json:"alerts,omitempty"`
	// AlertsDropped counts alert changes beyond the bound.
	AlertsDropped int `json:"alerts_dropped,omitempty"`
	// Verdict is the verdict that asked for a rollback, if one did.
	Verdict *monitor.Verdict `json:"verdict,omitempty"`
	// Evidence holds the samples behind Verdict.
	Evidence []monitor.Sample `json:"evidence,omitempty"`
}

// Rollback is how restoring the previous version went.
type Rollback struct {
	// Reason is why the rollback started, in one sentence.
	Reason  string        `json:"reason,omitempty"`
	Start   time.Time     `json:"start,omitzero"`
	End     time.Time     `json:"end,omitzero"`
	Outcome event.Outcome `json:"outcome,omitempty"`
	// Message is the one line the rollback finished with.
	Message  string          `json:"message,omitempty"`
	Findings []event.Finding `json:"findings,omitempty"`
}

// Warning is something worth knowing that did not change the outcome.
type Warning struct {
	Time    time.Time   `json:"time,omitzero"`
	Stage   event.Stage `json:"stage,omitempty"`
	Message string      `json:"message"`
}

// Status returns the run's status, or "" while it is still running.
func (d Document) Status() event.Status {
	if d.Result == nil {
		return ""
	}
	return d.Result.Status
}

// Stage returns the named stage and whether the run reached it.
func (d Document) Stage(name event.Stage) (Stage, bool) {
	for _, s := range d.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return Stage{}, false
}

// WriteJSON writes doc as indented JSON, the format of the report file.
func WriteJSON(w io.Writer, doc Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Messages from pods keep their < and > readable; the file is not HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// ErrSchemaVersion is returned by ReadJSON for a report of another schema
// version.
var ErrSchemaVersion = errors.New("unsupported report schema version")

// ReadJSON reads a report written by WriteJSON and refuses one whose
// schema_version this package does not know.
func ReadJSON(r io.Reader) (Document, error) {
	var doc Document
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return Document{}, fmt.Errorf("read JSON report: %w", err)
	}
	if doc.SchemaVersion != SchemaVersion {
		return Document{}, fmt.Errorf("read JSON report: %w %d (want %d)", ErrSchemaVersion, doc.SchemaVersion, SchemaVersion)
	}
	return doc, nil
}

// clone returns a deep copy of d, so a caller can keep it while the
// recorder goes on.
func (d Document) clone() Document {
	out := d
	out.Stages = slices.Clone(d.Stages)
	for i := range out.Stages {
		out.Stages[i].Findings = slices.Clone(out.Stages[i].Findings)
	}
	out.Health = cloneHealth(d.Health)
	out.Smoke = slices.Clone(d.Smoke)
	out.Traffic = cloneTraffic(d.Traffic)
	if d.Monitoring != nil {
		m := *d.Monitoring
		m.Series = slices.Clone(m.Series)
		m.Alerts = slices.Clone(m.Alerts)
		m.Evidence = slices.Clone(m.Evidence)
		if m.Verdict != nil {
			v := *m.Verdict
			m.Verdict = &v
		}
		out.Monitoring = &m
	}
	if d.Rollback != nil {
		rb := *d.Rollback
		rb.Findings = slices.Clone(rb.Findings)
		out.Rollback = &rb
	}
	if d.Result != nil {
		res := cloneResult(*d.Result)
		out.Result = &res
	}
	out.Objects = slices.Clone(d.Objects)
	out.Warnings = slices.Clone(d.Warnings)
	return out
}

func cloneResult(r event.Result) event.Result {
	if r.Monitor != nil {
		s := *r.Monitor
		r.Monitor = &s
	}
	return r
}

func cloneHealth(in []health.Result) []health.Result {
	out := slices.Clone(in)
	for i := range out {
		out[i] = cloneHealthResult(out[i])
	}
	return out
}

func cloneHealthResult(r health.Result) health.Result {
	r.Endpoints = slices.Clone(r.Endpoints)
	for j := range r.Endpoints {
		if det := r.Endpoints[j].Detailed; det != nil {
			c := *det
			c.Components = slices.Clone(c.Components)
			r.Endpoints[j].Detailed = &c
		}
	}
	return r
}

func cloneTraffic(in []health.TrafficResult) []health.TrafficResult {
	out := slices.Clone(in)
	for i := range out {
		out[i].Versions = slices.Clone(out[i].Versions)
	}
	return out
}

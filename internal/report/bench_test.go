package report

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/monitor"
)

// BenchmarkRecorderProgress measures folding one monitor-progress event
// with a full chart series, the most frequent large event of a run.
func BenchmarkRecorderProgress(b *testing.B) {
	rec := NewRecorder()
	snap := monitor.Snapshot{Count: 1000}
	e := event.Event{Kind: event.MonitorProgress, Snapshot: &snap, Series: series(monitor.MaxSeriesPoints, t0)}
	b.ReportAllocs()
	for b.Loop() {
		rec.Handle(e)
	}
}

// BenchmarkMarkdown renders the summary of a recorded successful run.
func BenchmarkMarkdown(b *testing.B) {
	doc := benchDoc(b, "podinfo-success")
	b.ReportAllocs()
	for b.Loop() {
		_ = Markdown(doc)
	}
}

// BenchmarkMarkdownTrimmed renders a document far over the budget, as a
// report file can hold, so the trim steps run.
func BenchmarkMarkdownTrimmed(b *testing.B) {
	doc := benchDoc(b, "sampleapp-rollback-monitor")
	long := strings.Repeat("x", 280)
	h := doc.Health[0]
	for i := range 60 {
		h.Endpoints[2].Detailed.Components = append(h.Endpoints[2].Detailed.Components, health.Component{Name: fmt.Sprintf("dependency-%d", i), Status: "fail", Message: long})
	}
	for i := range 300 {
		h.Target = fmt.Sprintf("https://replica-%d.example", i)
		doc.Health = append(doc.Health, h)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = Markdown(doc)
	}
}

// BenchmarkText renders the rollback summary for a terminal.
func BenchmarkText(b *testing.B) {
	doc := benchDoc(b, "podinfo-rollback-monitor")
	b.ReportAllocs()
	for b.Loop() {
		_ = Text(doc)
	}
}

func benchDoc(b *testing.B, name string) Document {
	b.Helper()
	return recordStream(b, name)
}

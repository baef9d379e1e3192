package ops

import (
	"io"
	"testing"
)

// BenchmarkWriteStatusTable renders the busiest golden status: a status
// runs it once, so it only has to stay far below a probe's latency.
func BenchmarkWriteStatusTable(b *testing.B) {
	s := statuses()["blue-green"]
	b.ReportAllocs()
	for b.Loop() {
		WriteStatusTable(io.Discard, s, true)
	}
}

// BenchmarkWriteStatusJSON encodes the same status as JSON.
func BenchmarkWriteStatusJSON(b *testing.B) {
	s := statuses()["blue-green"]
	b.ReportAllocs()
	for b.Loop() {
		_ = WriteStatusJSON(io.Discard, s)
	}
}

// BenchmarkWriteHistoryTable renders a full history of HistoryLimit records.
func BenchmarkWriteHistoryTable(b *testing.B) {
	entries := sampleEntries()
	for len(entries) < 50 {
		entries = append(entries, entries...)
	}
	entries = entries[:50]
	b.ReportAllocs()
	for b.Loop() {
		WriteHistoryTable(io.Discard, entries, false)
	}
}

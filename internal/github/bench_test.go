package github

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/ebeautything/greenlight/internal/event"
)

// BenchmarkStatusSinkHandle measures what Handle costs the pipeline for the
// most frequent event, probe progress, which the sink does not queue.
func BenchmarkStatusSinkHandle(b *testing.B) {
	s := NewStatusSink(StatusOptions{})
	defer s.Close(context.Background())
	e := event.Event{Kind: event.MonitorProgress, Message: "probe"}
	b.ReportAllocs()
	for b.Loop() {
		s.Handle(e)
	}
}

// BenchmarkMaskValues measures expanding a base64 kubeconfig into masks.
func BenchmarkMaskValues(b *testing.B) {
	secret := base64.StdEncoding.EncodeToString([]byte(kubeconfig))
	b.ReportAllocs()
	for b.Loop() {
		_ = maskValues(secret)
	}
}

package report

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/event"
)

// TestEventLogRoundTrip: every recorded stream written back through the
// event log reads as the same lines, so a run's log replays into the
// report it produced.
func TestEventLogRoundTrip(t *testing.T) {
	t.Parallel()
	for _, name := range streamNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			recorded, err := os.ReadFile(streamPath(t, name))
			require.NoError(t, err)
			var buf bytes.Buffer
			log := NewEventLog(&buf)
			require.NoError(t, DecodeStream(bytes.NewReader(recorded), log))
			require.NoError(t, log.Err())
			assert.Equal(t, string(bytes.TrimSpace(recorded)), string(bytes.TrimSpace(buf.Bytes())))
		})
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errors.New("disk full")
}

// TestEventLogKeepsItsFirstError: a log that cannot write says why once and
// stops trying.
func TestEventLogKeepsItsFirstError(t *testing.T) {
	t.Parallel()
	w := &failingWriter{}
	log := NewEventLog(w)
	log.Handle(event.Event{Kind: event.StageStarted, Stage: event.Validate})
	log.Handle(event.Event{Kind: event.StageStarted, Stage: event.Deploy})
	require.Error(t, log.Err())
	assert.Contains(t, log.Err().Error(), "write event log: disk full")
	assert.Equal(t, 1, w.n)
}

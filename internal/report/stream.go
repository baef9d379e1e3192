package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ebeautything/greenlight/internal/event"
)

// maxStreamLine bounds one event line; a monitor-progress event with a full
// chart series is a few tens of kilobytes.
const maxStreamLine = 4 << 20

// DecodeStream reads an event stream, one JSON event per line as written
// by an event log, and hands each event to sink in order. Blank lines are
// skipped; a line that is not an event stops the stream with its number.
func DecodeStream(r io.Reader, sink event.Sink) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxStreamLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e event.Event
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("decode event stream line %d: %w", n, err)
		}
		sink.Handle(e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read event stream after line %d: %w", n, err)
	}
	return nil
}

// EventLog is a sink that writes every event as one JSON line, the format
// DecodeStream reads back. A write error is kept and reported by Err; the
// run goes on without its log.
type EventLog struct {
	w   io.Writer
	err error
}

// NewEventLog writes the events it handles to w.
func NewEventLog(w io.Writer) *EventLog { return &EventLog{w: w} }

// Handle writes e as one line.
func (l *EventLog) Handle(e event.Event) {
	if l.err != nil {
		return
	}
	line, err := json.Marshal(e)
	if err != nil {
		l.err = fmt.Errorf("encode %s event: %w", e.Kind, err)
		return
	}
	if _, err := l.w.Write(append(line, '\n')); err != nil {
		l.err = fmt.Errorf("write event log: %w", err)
	}
}

// Err is the first error the log met, if any.
func (l *EventLog) Err() error { return l.err }

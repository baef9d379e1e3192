package testcluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// memLogLimit bounds an in-process container's log, as a runtime rotates
// a container's log file.
const memLogLimit = 64 << 10

// fileLogReadLimit bounds how much of a public app's log file one request
// reads: its tail.
const fileLogReadLimit = 4 << 20

// logTimeFormat is how a kubelet prefixes lines with timestamps=true.
const logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// logLine is one line of a container's output; the last line of a log may
// lack its newline. A zero time is a line whose time is not known (a
// public app's log file records none).
type logLine struct {
	at   time.Time
	text []byte
}

// logSource is where a container instance's output is kept.
type logSource interface {
	lines() ([]logLine, error)
}

// memLog is an in-process container's stdout: the newest memLogLimit bytes
// of what it printed, each line with the time it was printed.
type memLog struct {
	mu      sync.Mutex
	entries []logLine
	size    int
	now     func() time.Time
}

func newMemLog() *memLog { return &memLog{now: time.Now} }

// Write records p as the process printed it; a line without its newline
// is continued by the next write.
func (m *memLog) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for rest := p; len(rest) > 0; {
		chunk := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			chunk = rest[:i+1]
		}
		rest = rest[len(chunk):]
		if n := len(m.entries); n > 0 && !bytes.HasSuffix(m.entries[n-1].text, []byte("\n")) {
			m.entries[n-1].text = append(m.entries[n-1].text, chunk...)
		} else {
			m.entries = append(m.entries, logLine{at: now, text: bytes.Clone(chunk)})
		}
		m.size += len(chunk)
	}
	for m.size > memLogLimit && len(m.entries) > 1 {
		m.size -= len(m.entries[0].text)
		m.entries = m.entries[1:]
	}
	return len(p), nil
}

func (m *memLog) lines() ([]logLine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]logLine, len(m.entries))
	for i, e := range m.entries {
		out[i] = logLine{at: e.at, text: bytes.Clone(e.text)}
	}
	return out, nil
}

// fileLog is a public app's log file, written by its process.
type fileLog struct{ path string }

func (f fileLog) lines() ([]logLine, error) {
	file, err := os.Open(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // the process never started: it printed nothing
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open log file %q: %w", f.path, err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("failed to read log file %q: %w", f.path, err)
	}
	start := max(info.Size()-fileLogReadLimit, 0)
	data, err := io.ReadAll(io.NewSectionReader(file, start, info.Size()-start))
	if err != nil {
		return nil, fmt.Errorf("failed to read log file %q: %w", f.path, err)
	}
	if start > 0 {
		// Drop the line cut by the read limit.
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	var out []logLine
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i+1]
		}
		data = data[len(line):]
		out = append(out, logLine{text: line})
	}
	return out, nil
}

// logOptions are the options of a kubelet's containerLogs endpoint that
// shape the output.
type logOptions struct {
	tailLines  *int64
	limitBytes *int64
	since      time.Time
	timestamps bool
}

// writeLog writes lines as a kubelet's log reader does: the last tailLines
// complete lines (an unfinished last line is not counted, and is written
// only while fewer lines than asked exist), lines older than since skipped, each line
// prefixed with its time when asked, and output cut at limitBytes.
func writeLog(w io.Writer, lines []logLine, opts logOptions) error {
	if opts.tailLines != nil {
		complete, start := int64(0), len(lines)
		for start > 0 && complete < *opts.tailLines {
			start--
			if bytes.HasSuffix(lines[start].text, []byte("\n")) {
				complete++
			}
		}
		lines = lines[start:]
		if int64(len(lines)) > *opts.tailLines {
			lines = lines[:*opts.tailLines]
		}
	}
	remain := int64(-1)
	if opts.limitBytes != nil {
		remain = *opts.limitBytes
	}
	for _, l := range lines {
		if !opts.since.IsZero() && !l.at.IsZero() && l.at.Before(opts.since) {
			continue
		}
		text := l.text
		if opts.timestamps && !l.at.IsZero() {
			text = append([]byte(l.at.UTC().Format(logTimeFormat)+" "), text...)
		}
		if remain >= 0 && int64(len(text)) > remain {
			text = text[:remain]
		}
		if _, err := w.Write(text); err != nil {
			return err
		}
		if remain >= 0 {
			remain -= int64(len(text))
			if remain <= 0 {
				return nil
			}
		}
	}
	return nil
}

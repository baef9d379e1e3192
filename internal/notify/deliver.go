package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/redact"
)

// Defaults shared by the sinks.
const (
	// DefaultTimeout bounds one POST.
	DefaultTimeout = 5 * time.Second
	// DefaultQueueSize is how many messages may wait for delivery; a run
	// sends a handful, plus one per alert.
	DefaultQueueSize = 32
	// maxTries is how many times one message is sent at most.
	maxTries = 2
	// defaultRetryWait is the pause before the second try when the receiver
	// does not say how long to wait.
	defaultRetryWait = time.Second
	// maxRetryWait is the longest Retry-After honoured; a receiver asking
	// for more will not be ready within a run's last seconds.
	maxRetryWait = 5 * time.Second
)

// delivery is one message ready to send.
type delivery struct {
	// what names the message in warnings, such as "run start message".
	what   string
	body   []byte
	header http.Header
}

// sender posts deliveries to one URL from a worker goroutine, so that a
// slow or broken receiver never blocks the pipeline. Its URL is a secret:
// it appears in no warning.
type sender struct {
	// name is how warnings call the receiver, such as "the Slack webhook".
	name string
	// noun names one message in warnings, such as "Slack message".
	noun      string
	url       string
	client    *http.Client
	timeout   time.Duration
	retryWait time.Duration
	queueSize int
	secrets   []string

	// ctx ends the request in flight once Close's deadline has passed.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	queue    chan delivery
	closed   bool
	cut      bool
	inFlight bool
	dropped  int
	warnings []string
}

// senderConfig is what newSender needs.
type senderConfig struct {
	name, noun string
	url        string
	client     *http.Client
	timeout    time.Duration
	retryWait  time.Duration
	queueSize  int
	secrets    []string
}

// newSender starts a sender's worker. An unusable URL leaves it idle with
// one warning.
func newSender(c senderConfig) *sender {
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.queueSize <= 0 {
		c.queueSize = DefaultQueueSize
	}
	if c.retryWait == 0 {
		c.retryWait = defaultRetryWait
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sender{
		name: c.name, noun: c.noun, url: c.url,
		timeout: c.timeout, retryWait: max(c.retryWait, 0), queueSize: c.queueSize,
		secrets: append(urlSecrets(c.url), c.secrets...),
		ctx:     ctx, cancel: cancel,
		done:  make(chan struct{}),
		queue: make(chan delivery, c.queueSize),
	}
	s.client = noRedirects(c.client)
	u, err := url.Parse(c.url)
	switch {
	case c.url == "":
		s.warnings = append(s.warnings, fmt.Sprintf("%s is not configured; no %ss are sent", capitalize(c.name), c.noun))
		s.closed = true
		close(s.queue)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		s.warnings = append(s.warnings, fmt.Sprintf("%s URL is not an http(s) URL; no %ss are sent", capitalize(c.name), c.noun))
		s.closed = true
		close(s.queue)
	}
	go s.work()
	return s
}

// noRedirects copies c (or a new client) so that it does not follow
// redirects: a redirect would carry a signed alert to an address nobody
// configured.
func noRedirects(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}

// enqueue queues d without blocking; it is dropped and counted when the
// queue is full or the sender closed.
func (s *sender) enqueue(d delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.queue <- d:
	default:
		s.dropped++
	}
}

// close stops accepting messages, waits for the queued ones until ctx ends
// and returns the warnings. The request in flight when ctx ends is cancelled.
func (s *sender) close(ctx context.Context) []string {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()

	select {
	case <-s.done:
	case <-ctx.Done():
		s.mu.Lock()
		if !s.cut {
			s.cut = true
			left := len(s.queue)
			if s.inFlight {
				left++
			}
			if left > 0 {
				s.warnings = append(s.warnings, fmt.Sprintf("%s not delivered: %s did not answer before the deadline",
					count(left, s.noun), s.name))
			}
		}
		s.mu.Unlock()
		s.cancel()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.warnings)
	if s.dropped > 0 {
		out = append(out, fmt.Sprintf("%s dropped because the queue of %d was full", count(s.dropped, s.noun), s.queueSize))
	}
	return out
}

// warn records a warning that does not come from a delivery.
func (s *sender) warn(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warnings = append(s.warnings, s.scrub(msg))
}

// work sends the queued deliveries in order until the queue is closed.
func (s *sender) work() {
	defer close(s.done)
	defer s.cancel()
	for d := range s.queue {
		s.mu.Lock()
		cut := s.cut
		s.inFlight = !cut
		s.mu.Unlock()
		if cut {
			continue
		}
		err := s.send(d)
		s.mu.Lock()
		s.inFlight = false
		if err != nil && !s.cut {
			s.warnings = append(s.warnings, fmt.Sprintf("%s for %s not delivered: %s", capitalize(s.noun), d.what, s.scrub(err.Error())))
		}
		s.mu.Unlock()
	}
}

// send posts d, trying a second time after a transport failure, a 429 or
// a 5xx answer.
func (s *sender) send(d delivery) error {
	var err error
	for try := 1; try <= maxTries; try++ {
		var wait time.Duration
		var again bool
		wait, again, err = s.post(d)
		if err == nil || !again || try == maxTries {
			return err
		}
		if !sleep(s.ctx, wait) {
			return err
		}
	}
	return err
}

// post sends d once. It reports whether a failure is worth another try, and
// after how long.
func (s *sender) post(d delivery) (wait time.Duration, again bool, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(d.body))
	if err != nil {
		// The error would quote the URL.
		return 0, false, fmt.Errorf("build the request to %s", s.name)
	}
	for k, vs := range d.header {
		req.Header[k] = vs
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return s.retryWait, true, s.transportError(err)
	}
	defer resp.Body.Close()
	snippet := truncate(s.scrub(firstLine(resp.Body)), 120)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, false, nil
	}
	msg := fmt.Sprintf("%s answered %d %s", s.name, resp.StatusCode, http.StatusText(resp.StatusCode))
	if snippet != "" {
		msg += ": " + snippet
	}
	err = errors.New(msg)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		wait := s.retryWait
		if ra, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
			if ra > maxRetryWait {
				return 0, false, err
			}
			wait = ra
		}
		return wait, true, err
	}
	return 0, false, err
}

// transportError describes a failed request without its URL, which
// net/http puts in every error it returns.
func (s *sender) transportError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("post to %s: no answer within %s", s.name, s.timeout)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("post to %s: cancelled", s.name)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("post to %s: %s", s.name, s.scrub(err.Error()))
}

// scrub replaces the URL and its secret parts in text with the receiver's
// name, a last line of defence for text from elsewhere.
func (s *sender) scrub(text string) string {
	for _, sec := range s.secrets {
		if len(sec) >= redact.MinSecret && strings.Contains(text, sec) {
			text = strings.ReplaceAll(text, sec, s.name)
		}
	}
	return text
}

// urlSecrets lists the forms of a webhook URL that must never be printed,
// longest first so a whole URL is replaced before its parts: the URL as
// given and quoted, and its path, query and userinfo, which is where the
// credential of a webhook lives. The host stays printable: it names the
// service, and errors such as "no such host" need it.
func urlSecrets(raw string) []string {
	if raw == "" {
		return nil
	}
	out := []string{raw, strconv.Quote(raw)}
	u, err := url.Parse(raw)
	if err != nil {
		return out
	}
	out = append(out, u.String(), u.Redacted())
	if p := u.EscapedPath(); p != "" && p != "/" {
		out = append(out, p, u.Path)
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery)
		for _, vs := range u.Query() {
			out = append(out, vs...)
		}
	}
	if u.User != nil {
		out = append(out, u.User.String())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// firstLine reads the first line of a response body for a warning. It
// reads enough that a URL echoed by the receiver is whole when scrubbed.
func firstLine(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	text := strings.TrimSpace(string(b))
	if i := strings.IndexAny(text, "\r\n"); i >= 0 {
		text = text[:i]
	}
	if !utf8.ValidString(text) {
		return ""
	}
	return text
}

// retryAfter reads a Retry-After header in seconds.
func retryAfter(v string) (time.Duration, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// sleep waits d or until ctx ends, reporting whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// count renders "1 Slack message" or "3 Slack messages".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// capitalize upper-cases the first letter of s.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return strings.ToUpper(string(r)) + s[n:]
}

// truncate returns s cut to at most n runes, ending in "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	i, c := 0, 0
	for i = range s {
		if c == n-1 {
			break
		}
		c++
	}
	return strings.TrimRight(s[:i], " ") + "…"
}

// runMemory keeps the run's identity from its RunStarted event, so later
// events that carry none can still name the run.
type runMemory struct {
	mu  sync.Mutex
	run *event.Run
}

// observe records the run of a RunStarted event and returns the run an
// event belongs to: its own, else the remembered one.
func (m *runMemory) observe(e event.Event) event.Run {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.Kind == event.RunStarted && e.Run != nil {
		r := *e.Run
		m.run = &r
	}
	switch {
	case e.Run != nil:
		return *e.Run
	case m.run != nil:
		return *m.run
	}
	return event.Run{}
}

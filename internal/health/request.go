package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"time"
)

// Body limits keep a misbehaving service from filling memory; health bodies
// are small, smoke test answers may be larger.
const (
	healthBodyLimit = 1 << 20
	smokeBodyLimit  = 4 << 20
)

// Timing splits one request's latency into phases measured with
// net/http/httptrace. A phase that did not happen (no DNS lookup for an IP
// address, no TLS for plain HTTP) is zero.
type Timing struct {
	// DNS is the name lookup.
	DNS time.Duration
	// Connect is the TCP connect, from the first dial to the successful one.
	Connect time.Duration
	// TLSHandshake is the TLS handshake.
	TLSHandshake time.Duration
	// FirstByte is the time from sending the request to the first byte of
	// the answer, including the phases above.
	FirstByte time.Duration
	// Total is the whole exchange, including reading the body.
	Total time.Duration
}

// request is one HTTP exchange this package performs.
type request struct {
	method  string
	path    string
	header  http.Header
	body    []byte
	timeout time.Duration
	limit   int64
}

// response is what one exchange returned.
type response struct {
	statusCode int
	header     http.Header
	body       []byte
	truncated  bool
	timing     Timing
}

// requestError is a failed exchange whose message has been redacted; Unwrap
// keeps the cause (context.DeadlineExceeded, x509 errors) for errors.Is/As.
type requestError struct {
	msg string
	err error
}

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return e.err }

// do performs one exchange on a fresh connection and reads the body.
func (t Target) do(ctx context.Context, r request) (response, error) {
	u, err := t.resolve(r.path)
	if err != nil {
		return response{}, err
	}
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	rec := &traceRecorder{}
	ctx = httptrace.WithClientTrace(ctx, rec.clientTrace())

	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	// The URL is set afterwards so that a parse error can never quote it.
	req, err := http.NewRequestWithContext(ctx, r.method, "", body)
	if err != nil {
		return response{}, fmt.Errorf("build %s request: %w", r.method, err)
	}
	req.URL = u
	req.Close = true
	for k, vs := range r.header {
		// net/http ignores a Host header field; the request's Host is used.
		if http.CanonicalHeaderKey(k) == "Host" && len(vs) > 0 {
			req.Host = vs[0]
			continue
		}
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}

	rec.begin()
	resp, err := t.client.Do(req)
	if err != nil {
		return response{timing: rec.end()}, t.requestError(r.method, u, err)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, r.limit+1))
	_ = resp.Body.Close()
	timing := rec.end()
	if err != nil {
		return response{statusCode: resp.StatusCode, header: resp.Header, timing: timing},
			t.requestError(r.method, u, fmt.Errorf("read body: %w", err))
	}
	out := response{statusCode: resp.StatusCode, header: resp.Header, body: data, timing: timing}
	if int64(len(data)) > r.limit {
		out.body, out.truncated = data[:r.limit], true
	}
	return out, nil
}

// requestError builds the redacted error for a failed exchange. net/http's
// own message quotes the full URL, so the *url.Error layer is replaced.
func (t Target) requestError(method string, u *url.URL, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	msg := fmt.Sprintf("%s %s: %s", method, redacted(u), explain(err))
	return &requestError{msg: scrub(msg, t.secrets), err: err}
}

// explain turns the transport failures people meet most into advice.
func explain(err error) string {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown):
		return "the server's TLS certificate is signed by an unknown authority; add that CA to the CA bundle (" + err.Error() + ")"
	case errors.As(err, &hostname):
		return "the server's TLS certificate is not valid for this host (" + err.Error() + ")"
	case errors.As(err, &invalid):
		return "the server's TLS certificate is invalid (" + err.Error() + ")"
	case errors.As(err, &verify):
		return "the server's TLS certificate could not be verified (" + err.Error() + ")"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer before the timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return err.Error()
}

// traceRecorder collects httptrace callbacks, which may run on other
// goroutines (parallel dials), hence the mutex.
type traceRecorder struct {
	mu           sync.Mutex
	start        time.Time
	dnsStart     time.Time
	dnsDone      time.Time
	connectStart time.Time
	connectDone  time.Time
	tlsStart     time.Time
	tlsDone      time.Time
	firstByte    time.Time
}

func (r *traceRecorder) clientTrace() *httptrace.ClientTrace {
	mark := func(field *time.Time, keepFirst bool) {
		now := time.Now()
		r.mu.Lock()
		if !keepFirst || field.IsZero() {
			*field = now
		}
		r.mu.Unlock()
	}
	return &httptrace.ClientTrace{
		DNSStart:     func(httptrace.DNSStartInfo) { mark(&r.dnsStart, true) },
		DNSDone:      func(httptrace.DNSDoneInfo) { mark(&r.dnsDone, false) },
		ConnectStart: func(string, string) { mark(&r.connectStart, true) },
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				mark(&r.connectDone, false)
			}
		},
		TLSHandshakeStart:    func() { mark(&r.tlsStart, true) },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { mark(&r.tlsDone, false) },
		GotFirstResponseByte: func() { mark(&r.firstByte, true) },
	}
}

func (r *traceRecorder) begin() {
	r.mu.Lock()
	r.start = time.Now()
	r.mu.Unlock()
}

// end returns the phases seen so far, with Total measured up to now.
func (r *traceRecorder) end() Timing {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	return Timing{
		DNS:          span(r.dnsStart, r.dnsDone),
		Connect:      span(r.connectStart, r.connectDone),
		TLSHandshake: span(r.tlsStart, r.tlsDone),
		FirstByte:    span(r.start, r.firstByte),
		Total:        span(r.start, now),
	}
}

// span is b-a when both happened, else zero.
func span(a, b time.Time) time.Duration {
	if a.IsZero() || b.IsZero() || b.Before(a) {
		return 0
	}
	return b.Sub(a)
}

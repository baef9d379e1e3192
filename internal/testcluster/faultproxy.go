package testcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// FaultKind is what a FaultProxy does to a request it faults.
type FaultKind string

// Faults a FaultProxy can inject.
const (
	// FaultTooManyRequests answers 429 with a Retry-After header, as an API
	// server under priority-and-fairness pressure does.
	FaultTooManyRequests FaultKind = "429"
	// FaultInternalError answers 500, as an API server whose etcd hiccups does.
	FaultInternalError FaultKind = "500"
	// FaultUnavailable answers 503, as a restarting API server does.
	FaultUnavailable FaultKind = "503"
	// FaultReset resets the connection (TCP RST) without answering and
	// without forwarding the request: nothing reached the API server.
	FaultReset FaultKind = "reset"
	// FaultDelay holds the request back for Fault.Delay, then forwards it.
	FaultDelay FaultKind = "delay"
	// FaultCutWatch lets a watch stream for Fault.Delay and then resets its
	// connection mid-stream; requests that are not watches pass.
	FaultCutWatch FaultKind = "watch-cut"
)

// defaultWatchCut is how long a watch streams before FaultCutWatch cuts it.
const defaultWatchCut = 500 * time.Millisecond

// Fault describes what to do to which requests, and for how long.
type Fault struct {
	// Kind is what happens to a faulted request.
	Kind FaultKind
	// RetryAfter is the 429's Retry-After, in whole seconds (at least 1).
	RetryAfter time.Duration
	// Delay is how long FaultDelay holds each request back, and how long a
	// watch streams before FaultCutWatch cuts it (default 500ms).
	Delay time.Duration
	// Limit is how many requests are faulted at most; 0 means no limit.
	Limit int
	// For is how long the fault lasts after Inject; 0 means until Clear or
	// until Limit requests were faulted.
	For time.Duration
	// Method, when set, faults only requests with this HTTP method.
	Method string
	// PathContains, when set, faults only requests whose path and query
	// contain it, such as "/services/" or "watch=true".
	PathContains string
}

// matches tells whether a request with this method and request URI (path
// and query) is one the fault applies to.
func (f Fault) matches(method, requestURI string, watch bool) bool {
	if f.Kind == FaultCutWatch && !watch {
		return false
	}
	if f.Method != "" && !strings.EqualFold(f.Method, method) {
		return false
	}
	return f.PathContains == "" || strings.Contains(requestURI, f.PathContains)
}

// String reads "503 on GET requests containing /services/, 4 at most,
// for 3s".
func (f Fault) String() string {
	var b strings.Builder
	b.WriteString(string(f.Kind))
	if f.Kind == FaultDelay || f.Kind == FaultCutWatch {
		fmt.Fprintf(&b, " %s", f.delay())
	}
	if f.Method != "" {
		fmt.Fprintf(&b, " on %s requests", strings.ToUpper(f.Method))
	}
	if f.PathContains != "" {
		fmt.Fprintf(&b, " containing %s", f.PathContains)
	}
	if f.Limit > 0 {
		fmt.Fprintf(&b, ", %d at most", f.Limit)
	}
	if f.For > 0 {
		fmt.Fprintf(&b, ", for %s", f.For)
	}
	return b.String()
}

func (f Fault) delay() time.Duration {
	if f.Delay <= 0 && f.Kind == FaultCutWatch {
		return defaultWatchCut
	}
	return f.Delay
}

func (f Fault) retryAfterSeconds() int {
	return max(1, int((f.RetryAfter+time.Second-1)/time.Second))
}

// isWatch tells whether a request opens a watch stream.
func isWatch(r *http.Request) bool {
	w := r.URL.Query().Get("watch")
	return w == "true" || w == "1" || strings.Contains(r.URL.Path, "/watch/")
}

// FaultCounts are what a FaultProxy has seen. Faulted counts only the
// current fault; the others count since the proxy started.
type FaultCounts struct {
	// Requests is every request that reached the proxy.
	Requests int
	// Passed is requests forwarded without a fault (a cut watch counts as
	// passed when it starts and as faulted when it is cut).
	Passed int
	// Faulted is requests the current fault affected.
	Faulted int
	// Watches is watch requests among Requests.
	Watches int
	// Unauthorized is requests refused for a missing or wrong token.
	Unauthorized int
}

// FaultProxy is a reverse proxy on 127.0.0.1 in front of a cluster's API
// server that fails requests on command. Clients reach it with its own
// kubeconfig (a bearer token and the proxy's CA); it forwards with the
// upstream credentials, so a client under test never holds them.
type FaultProxy struct {
	srv        *httptest.Server
	upstream   *url.URL
	transport  http.RoundTripper
	rp         *httputil.ReverseProxy
	token      string
	kubeconfig []byte
	closing    chan struct{}
	closeOnce  sync.Once

	mu    sync.Mutex
	fault *Fault
	// injected is when the last fault was injected; Reachable counts only
	// what it could hit from then until it expired.
	injected time.Time
	until    time.Time
	counts   FaultCounts
	changed  chan struct{} // closed and replaced on every Inject and Clear
	log      []string
	// at is when each faulted request of log was faulted.
	at []time.Time
	// seen is every request, for Reachable; bounded by maxSeen.
	seen []seenRequest
}

// seenRequest is one request the proxy served, and when.
type seenRequest struct {
	method, uri string
	watch       bool
	start, end  time.Time
}

// cutCheckEvery is how often a streaming watch checks whether a cut fault
// is due (and at every Inject).
const cutCheckEvery = 50 * time.Millisecond

// maxSeen bounds the requests kept for Reachable.
const maxSeen = 50_000

// Reachable counts the requests f, the fault injected last, could have
// affected between from and to while it was in force: those it matches
// that started then, or, for a cut watch, watches still open once they had
// streamed for the fault's delay. Zero means the fault could not hit a
// single request of that span, whatever greenlight did.
func (p *FaultProxy) Reachable(f Fault, from, to time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Only while the fault was in force.
	if p.injected.After(from) {
		from = p.injected
	}
	if !p.until.IsZero() && p.until.Before(to) {
		to = p.until
	}
	n := 0
	for _, r := range p.seen {
		if !f.matches(r.method, r.uri, r.watch) {
			continue
		}
		if f.Kind == FaultCutWatch {
			// A watch is cut once it has streamed for the fault's delay:
			// it is reachable when that moment falls in the span while
			// it is still open. A watch that ends sooner cannot be cut.
			cuttable := r.start.Add(f.delay())
			if cuttable.Before(from) {
				cuttable = from
			}
			// The proxy looks at open watches every cutCheckEvery: one that
			// ends sooner after becoming cuttable (a watch its client had
			// already dropped, whose end the proxy saw a moment late)
			// escapes.
			if !cuttable.After(to) && (r.end.IsZero() || !r.end.Before(cuttable.Add(cutCheckEvery))) {
				n++
			}
			continue
		}
		if !r.start.Before(from) && !r.start.After(to) {
			n++
		}
	}
	return n
}

// maxFaultLog bounds the list of faulted requests kept for messages.
const maxFaultLog = 200

// NewFaultProxy starts a fault proxy in front of the cluster's API server,
// stopped when the test ends.
func (c *Cluster) NewFaultProxy(t testing.TB) *FaultProxy {
	t.Helper()
	p, err := StartFaultProxy(c.Config())
	if err != nil {
		t.Fatalf("start fault proxy: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// StartFaultProxy starts a fault proxy in front of the API server that
// upstream configures. The caller must Close it.
func StartFaultProxy(upstream *rest.Config) (*FaultProxy, error) {
	target, err := url.Parse(upstream.Host)
	if err != nil {
		return nil, fmt.Errorf("fault proxy: parse API server address: %w", err)
	}
	transport, err := rest.TransportFor(upstream)
	if err != nil {
		return nil, fmt.Errorf("fault proxy: transport to the API server: %w", err)
	}
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	p := &FaultProxy{
		upstream:  target,
		transport: transport,
		token:     "faultproxy-" + hex.EncodeToString(token),
		closing:   make(chan struct{}),
		changed:   make(chan struct{}),
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Del("Authorization") // the upstream transport authenticates
		},
		Transport: transport,
		// A refused upstream is the API server being down: say so as it would.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return
			}
			writeStatus(w, apierrors.NewServiceUnavailable("fault proxy: the API server did not answer"))
		},
		ErrorLog: discardLogger(),
	}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.Config.ErrorLog = discardLogger()
	// HTTP/1.1 only: a reset and a cut watch close a connection of their own.
	p.srv.StartTLS()
	if p.kubeconfig, err = p.buildKubeconfig(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// URL is the proxy's https address.
func (p *FaultProxy) URL() string { return p.srv.URL }

// Token is the bearer token the proxy's kubeconfig carries: a secret of the
// kubeconfig that tests can look for in what greenlight printed.
func (p *FaultProxy) Token() string { return p.token }

// Kubeconfig is a kubeconfig that reaches the API server through the
// proxy: the proxy's address and CA, and its bearer token.
func (p *FaultProxy) Kubeconfig() []byte { return bytes.Clone(p.kubeconfig) }

// Config is a REST config that reaches the API server through the proxy.
func (p *FaultProxy) Config() *rest.Config {
	return &rest.Config{
		Host:            p.srv.URL,
		BearerToken:     p.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: p.caPEM()},
		QPS:             100, Burst: 200,
	}
}

func (p *FaultProxy) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
}

func (p *FaultProxy) buildKubeconfig() ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["faultproxy"] = &clientcmdapi.Cluster{Server: p.srv.URL, CertificateAuthorityData: p.caPEM()}
	cfg.AuthInfos["faultproxy"] = &clientcmdapi.AuthInfo{Token: p.token}
	cfg.Contexts["faultproxy"] = &clientcmdapi.Context{Cluster: "faultproxy", AuthInfo: "faultproxy"}
	cfg.CurrentContext = "faultproxy"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("fault proxy: write kubeconfig: %w", err)
	}
	return data, nil
}

// Inject makes the proxy fault requests as f says, replacing any fault in
// force; the Faulted count starts again from zero.
func (p *FaultProxy) Inject(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = &f
	p.injected = time.Now()
	p.until = time.Time{}
	if f.For > 0 {
		p.until = time.Now().Add(f.For)
	}
	p.counts.Faulted = 0
	p.log, p.at = nil, nil
	close(p.changed)
	p.changed = make(chan struct{})
}

// Clear stops faulting: every request passes from now on. Watches already
// streaming go on.
func (p *FaultProxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = nil
	close(p.changed)
	p.changed = make(chan struct{})
}

// Active tells whether a fault is in force: injected, not cleared, not
// expired and under its limit.
func (p *FaultProxy) Active() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.activeLocked(time.Now())
}

// Counts returns what the proxy has seen.
func (p *FaultProxy) Counts() FaultCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts
}

// FaultedRequests lists the requests the current fault affected, as
// "GET /api/v1/...", the first 200 of them.
func (p *FaultProxy) FaultedRequests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// FaultedAt lists when the current fault affected each request of
// FaultedRequests, so a test can tell which stage of a run it hit.
func (p *FaultProxy) FaultedAt() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.at...)
}

// Close stops the proxy, cutting the watches still streaming.
func (p *FaultProxy) Close() {
	p.closeOnce.Do(func() {
		close(p.closing)
		p.srv.CloseClientConnections()
		p.srv.Close()
		if c, ok := p.transport.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	})
}

func (p *FaultProxy) activeLocked(now time.Time) bool {
	f := p.fault
	switch {
	case f == nil:
		return false
	case !p.until.IsZero() && !now.Before(p.until):
		return false
	case f.Limit > 0 && p.counts.Faulted >= f.Limit:
		return false
	}
	return true
}

// take decides whether this request is faulted now, and counts it.
func (p *FaultProxy) take(r *http.Request, watch bool) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.activeLocked(time.Now()) || !p.fault.matches(r.Method, r.URL.RequestURI(), watch) || p.fault.Kind == FaultCutWatch {
		p.counts.Passed++
		return Fault{}, false
	}
	p.faultedLocked(r)
	return *p.fault, true
}

// takeCut decides whether a watch that has streamed since started is cut
// now, and counts it.
func (p *FaultProxy) takeCut(r *http.Request, started time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if !p.activeLocked(now) || p.fault.Kind != FaultCutWatch || !p.fault.matches(r.Method, r.URL.RequestURI(), true) {
		return false
	}
	if now.Sub(started) < p.fault.delay() {
		return false
	}
	p.faultedLocked(r)
	return true
}

func (p *FaultProxy) faultedLocked(r *http.Request) {
	p.counts.Faulted++
	if len(p.log) < maxFaultLog {
		p.log = append(p.log, r.Method+" "+r.URL.RequestURI())
		p.at = append(p.at, time.Now())
	}
}

func (p *FaultProxy) changes() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	watch := isWatch(r)
	p.mu.Lock()
	p.counts.Requests++
	if watch {
		p.counts.Watches++
	}
	idx := -1
	if len(p.seen) < maxSeen {
		idx = len(p.seen)
		p.seen = append(p.seen, seenRequest{method: r.Method, uri: r.URL.RequestURI(), watch: watch, start: time.Now()})
	}
	p.mu.Unlock()
	if idx >= 0 {
		defer func() {
			p.mu.Lock()
			p.seen[idx].end = time.Now()
			p.mu.Unlock()
		}()
	}
	if r.Header.Get("Authorization") != "Bearer "+p.token {
		p.mu.Lock()
		p.counts.Unauthorized++
		p.mu.Unlock()
		writeStatus(w, apierrors.NewUnauthorized("fault proxy: a missing or wrong bearer token"))
		return
	}
	if f, ok := p.take(r, watch); ok {
		switch f.Kind {
		case FaultTooManyRequests:
			w.Header().Set("Retry-After", strconv.Itoa(f.retryAfterSeconds()))
			writeStatus(w, apierrors.NewTooManyRequests("fault proxy: too many requests", f.retryAfterSeconds()))
			return
		case FaultInternalError:
			writeStatus(w, apierrors.NewInternalError(errors.New("fault proxy: internal error")))
			return
		case FaultUnavailable:
			writeStatus(w, apierrors.NewServiceUnavailable("fault proxy: the server is unavailable"))
			return
		case FaultReset:
			resetConnection(w)
			return
		case FaultDelay:
			timer := time.NewTimer(f.delay())
			select {
			case <-timer.C:
			case <-r.Context().Done():
				timer.Stop()
				return
			case <-p.closing:
				timer.Stop()
				resetConnection(w)
				return
			}
		}
	}
	if watch {
		p.serveWatch(w, r)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// serveWatch streams a watch through, checking while it streams whether a
// FaultCutWatch in force cuts it.
func (p *FaultProxy) serveWatch(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	out := r.Clone(ctx)
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.upstream.Scheme, p.upstream.Host
	out.Host = ""
	out.Header.Del("Authorization")
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		if ctx.Err() == nil {
			writeStatus(w, apierrors.NewServiceUnavailable("fault proxy: the API server did not answer"))
		}
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	_ = rc.Flush()

	// One reader, one writer: the body is read here and written below, so
	// only this goroutine touches w.
	chunks := make(chan []byte)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			buf := make([]byte, 32<<10)
			n, err := resp.Body.Read(buf)
			if n > 0 {
				select {
				case chunks <- buf[:n]:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	started := time.Now()
	tick := time.NewTicker(cutCheckEvery)
	defer tick.Stop()
	for {
		select {
		case b := <-chunks:
			if _, err := w.Write(b); err != nil {
				return
			}
			_ = rc.Flush()
			continue
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-p.closing:
			cancel()
			resetConnection(w)
			return
		case <-p.changes():
		case <-tick.C:
		}
		if p.takeCut(r, started) {
			cancel()
			resetConnection(w)
			return
		}
	}
}

// resetConnection takes the connection from the server and closes it with
// a TCP reset, so the client reads "connection reset by peer", not a clean
// end of stream.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	raw := conn
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		raw = nc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}

// writeStatus answers with err's Status, as the API server would.
func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	status := err.ErrStatus
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	body, _ := json.Marshal(status)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(int(status.Code))
	_, _ = w.Write(body)
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

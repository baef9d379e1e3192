package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

var podsResource = schema.GroupResource{Resource: "pods"}

// urlError wraps err the way net/http hands transport failures to client-go.
func urlError(err error) error {
	return &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api/v1/namespaces/x/pods", Err: err}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		err   error
		retry bool
		delay time.Duration
	}{
		{"nil", nil, false, 0},
		{"too many requests with Retry-After", apierrors.NewTooManyRequests("slow down", 3), true, 3 * time.Second},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 0), true, 0},
		{"server timeout", apierrors.NewServerTimeout(podsResource, "list", 2), true, 2 * time.Second},
		{"internal error", apierrors.NewInternalError(errors.New("etcd hiccup")), true, 0},
		{"service unavailable", apierrors.NewServiceUnavailable("shutting down"), true, 0},
		{"gateway timeout", apierrors.NewTimeoutError("timed out", 1), true, time.Second},
		{"bad gateway", apierrors.NewGenericServerResponse(http.StatusBadGateway, "get", podsResource, "web", "", 0, true), true, 0},
		{"wrapped 503", fmt.Errorf("get pod: %w", apierrors.NewServiceUnavailable("x")), true, 0},
		{"conflict", apierrors.NewConflict(podsResource, "web", errors.New("changed")), false, 0},
		{"not found", apierrors.NewNotFound(podsResource, "web"), false, 0},
		{"forbidden", apierrors.NewForbidden(podsResource, "web", errors.New("no")), false, 0},
		{"unauthorized", apierrors.NewUnauthorized("expired"), false, 0},
		{"bad request", apierrors.NewBadRequest("bad"), false, 0},
		{"already exists", apierrors.NewAlreadyExists(podsResource, "web"), false, 0},
		{"too large", apierrors.NewRequestEntityTooLargeError("big"), false, 0},
		{"connection reset", urlError(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), true, 0},
		{"connection refused", urlError(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), true, 0},
		{"EOF", urlError(io.EOF), true, 0},
		{"unexpected EOF", urlError(io.ErrUnexpectedEOF), true, 0},
		{"reset in text only", errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer"), true, 0},
		{"cancelled", urlError(context.Canceled), false, 0},
		{"deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), false, 0},
		{"unknown", errors.New("boom"), false, 0},
		{"host unknown", urlError(&net.DNSError{Err: "no such host", Name: "nowhere.invalid"}), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			retry, delay := Retryable(tt.err)
			assert.Equal(t, tt.retry, retry)
			assert.Equal(t, tt.delay, delay)
		})
	}
}

func TestRetryPolicyWaits(t *testing.T) {
	t.Parallel()
	defaults := RetryPolicy{}.withDefaults()
	assert.Equal(t, RetryPolicy{Attempts: 5, Initial: 200 * time.Millisecond, Max: 5 * time.Second}, defaults)

	none := func(time.Duration) time.Duration { return 0 }
	full := func(d time.Duration) time.Duration { return d }
	tests := []struct {
		name      string
		policy    RetryPolicy
		attempt   int
		suggested time.Duration
		jitter    func(time.Duration) time.Duration
		want      time.Duration
	}{
		{"first, full jitter", RetryPolicy{}, 1, 0, full, 200 * time.Millisecond},
		{"first, no jitter", RetryPolicy{}, 1, 0, none, 100 * time.Millisecond},
		{"doubles", RetryPolicy{}, 3, 0, full, 800 * time.Millisecond},
		{"capped at max", RetryPolicy{}, 10, 0, full, 5 * time.Second},
		{"capped at max with no jitter", RetryPolicy{}, 10, 0, none, 2500 * time.Millisecond},
		{"server asks for longer", RetryPolicy{}, 1, 2 * time.Second, none, 2 * time.Second},
		{"server asks for longer than max", RetryPolicy{Max: time.Second}, 1, 30 * time.Second, none, time.Second},
		{"server asks for less than backoff", RetryPolicy{}, 4, time.Second, full, 1600 * time.Millisecond},
		{"initial above max", RetryPolicy{Initial: time.Minute, Max: time.Second}, 1, 0, full, time.Second},
		{"huge attempt", RetryPolicy{}, 1000, 0, full, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.policy.withDefaults().retryWait(tt.attempt, tt.suggested, tt.jitter))
		})
	}
}

func TestRetryCalls(t *testing.T) {
	t.Parallel()
	fast := RetryPolicy{Attempts: 4, Initial: time.Millisecond, Max: 2 * time.Millisecond}
	unavailable := apierrors.NewServiceUnavailable("restarting")
	forbidden := apierrors.NewForbidden(podsResource, "web", errors.New("no"))
	tests := []struct {
		name      string
		failures  []error
		wantCalls int
		wantErr   error
		wantMsg   string
	}{
		{"succeeds at once", nil, 1, nil, ""},
		{"succeeds after transient failures", []error{unavailable, urlError(io.EOF)}, 3, nil, ""},
		{"gives up on a permanent error", []error{forbidden}, 1, forbidden, "forbidden"},
		{"permanent after transient", []error{unavailable, forbidden}, 2, forbidden, "after 2 attempts"},
		{"runs out of attempts", []error{unavailable, unavailable, unavailable, unavailable, unavailable}, 4, unavailable, "gave up after 4 attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			err := Retry(context.Background(), fast, func(context.Context) error {
				calls++
				if calls <= len(tt.failures) {
					return tt.failures[calls-1]
				}
				return nil
			})
			assert.Equal(t, tt.wantCalls, calls)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			assert.Contains(t, err.Error(), tt.wantMsg)
		})
	}
}

func TestRetryStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Retry(ctx, RetryPolicy{Attempts: 100, Initial: time.Hour, Max: time.Hour}, func(context.Context) error {
		calls++
		cancel()
		return apierrors.NewServiceUnavailable("restarting")
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, apierrors.IsServiceUnavailable(err), "the last API error stays in the chain: %v", err)
	assert.Equal(t, 1, calls)
}

// Fault modes of faultProxy.
const (
	faultTooMany     = "429"
	faultUnavailable = "503"
	faultForbidden   = "403"
	faultHangUp      = "hang-up" // hijack the connection and close it unanswered
)

// faultProxy is a reverse proxy to the test cluster's API server that fails
// the next requests it is told to, then passes requests through.
type faultProxy struct {
	mu      sync.Mutex
	mode    string
	pending int // requests still to fail
	failed  int // requests failed so far
	passed  int // requests passed through so far
}

// newFaultProxy starts a proxy to the API server of cfg and returns a REST
// config pointing at it; the proxy adds cfg's credentials itself.
func newFaultProxy(t *testing.T, cfg *rest.Config) (*faultProxy, *rest.Config) {
	t.Helper()
	target, err := url.Parse(cfg.Host)
	require.NoError(t, err)
	transport, err := rest.TransportFor(cfg)
	require.NoError(t, err)
	fp := &faultProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: transport,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fp.mu.Lock()
		mode, fail := fp.mode, fp.pending > 0
		if fail {
			fp.pending--
			fp.failed++
		} else {
			fp.passed++
		}
		fp.mu.Unlock()
		if !fail {
			rp.ServeHTTP(w, r)
			return
		}
		switch mode {
		case faultHangUp:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		case faultTooMany:
			// No Retry-After header, so client-go hands the error back at
			// once; the delay rides in the Status body instead.
			writeStatus(w, apierrors.NewTooManyRequests("the server is busy", 1))
		case faultUnavailable:
			writeStatus(w, apierrors.NewServiceUnavailable("the server is restarting"))
		case faultForbidden:
			writeStatus(w, apierrors.NewForbidden(podsResource, "", errors.New("not allowed")))
		}
	}))
	t.Cleanup(srv.Close)
	return fp, &rest.Config{Host: srv.URL, Timeout: 10 * time.Second, QPS: 100, Burst: 200}
}

func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	body := err.ErrStatus
	body.Kind, body.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(body.Code))
	_ = json.NewEncoder(w).Encode(body)
}

// fail makes the next n requests fail in mode.
func (fp *faultProxy) fail(mode string, n int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.mode, fp.pending, fp.failed, fp.passed = mode, n, 0, 0
}

func (fp *faultProxy) counts() (failed, passed int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.failed, fp.passed
}

func TestRetryThroughFaultyAPIServer(t *testing.T) {
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	// A short Max keeps the 429's one-second Retry-After from slowing the test.
	policy := RetryPolicy{Attempts: 5, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}

	get := func(ctx context.Context, client kubernetes.Interface, _ int) error {
		_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err
	}
	create := func(ctx context.Context, client kubernetes.Interface, i int) error {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("retry-%d", i)}}
		_, err := client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
		return err
	}
	tests := []struct {
		name     string
		mode     string
		failures int
		call     func(context.Context, kubernetes.Interface, int) error
		// wantCalls is how often Retry calls fn; 0 when client-go's own
		// retries may absorb some failures (a GET cut short).
		wantCalls int
		wantErr   func(error) bool
	}{
		{"get after 429s", faultTooMany, 2, get, 3, nil},
		{"get after 503s", faultUnavailable, 3, get, 4, nil},
		{"get after hang-ups", faultHangUp, 2, get, 0, nil},
		{"create after 429s", faultTooMany, 2, create, 3, nil},
		{"create after 503s", faultUnavailable, 2, create, 3, nil},
		{"create after hang-ups", faultHangUp, 3, create, 4, nil},
		{"503s outlast the attempts", faultUnavailable, 10, get, 5, apierrors.IsServiceUnavailable},
		{"403 is not retried", faultForbidden, 1, get, 1, apierrors.IsForbidden},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fp, cfg := newFaultProxy(t, c.Config())
			client, err := kubernetes.NewForConfig(cfg)
			require.NoError(t, err)
			fp.fail(tt.mode, tt.failures)

			calls := 0
			err = Retry(t.Context(), policy, func(ctx context.Context) error {
				calls++
				return tt.call(ctx, client, i)
			})
			failed, passed := fp.counts()
			if tt.wantErr != nil {
				require.Error(t, err)
				assert.True(t, tt.wantErr(err), "unexpected error: %v", err)
				assert.Equal(t, 0, passed, "no request should have reached the API server")
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.failures, failed)
				assert.Equal(t, 1, passed)
			}
			if tt.wantCalls > 0 {
				assert.Equal(t, tt.wantCalls, calls)
			}
		})
	}
}

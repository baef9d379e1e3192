package testcluster

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestFaultMatches(t *testing.T) {
	t.Parallel()
	const list = "/api/v1/namespaces/shop/pods"
	tests := []struct {
		name   string
		fault  Fault
		method string
		uri    string
		watch  bool
		want   bool
	}{
		{"any request", Fault{Kind: FaultUnavailable}, "GET", list, false, true},
		{"a watch too", Fault{Kind: FaultUnavailable}, "GET", list + "?watch=true", true, true},
		{"method matches in any case", Fault{Kind: FaultInternalError, Method: "post"}, "POST", list, false, true},
		{"other method", Fault{Kind: FaultInternalError, Method: "POST"}, "GET", list, false, false},
		{"path contains", Fault{Kind: FaultReset, PathContains: "/pods"}, "GET", list, false, true},
		{"path does not contain", Fault{Kind: FaultReset, PathContains: "/services/"}, "GET", list, false, false},
		{"query counts as path", Fault{Kind: FaultDelay, PathContains: "watch=true"}, "GET", list + "?watch=true", true, true},
		{"cut watch spares a plain request", Fault{Kind: FaultCutWatch}, "GET", list, false, false},
		{"cut watch takes a watch", Fault{Kind: FaultCutWatch}, "GET", list + "?watch=true", true, true},
		{"cut watch with a filter", Fault{Kind: FaultCutWatch, PathContains: "/services"}, "GET", list + "?watch=1", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.fault.matches(tt.method, tt.uri, tt.watch))
		})
	}
}

func TestFaultString(t *testing.T) {
	t.Parallel()
	for want, f := range map[string]Fault{
		"503":                              {Kind: FaultUnavailable},
		"429 on GET requests, 2 at most":   {Kind: FaultTooManyRequests, Method: "get", Limit: 2},
		"delay 2s containing /pods":        {Kind: FaultDelay, Delay: 2 * time.Second, PathContains: "/pods"},
		"watch-cut 500ms, for 3s":          {Kind: FaultCutWatch, For: 3 * time.Second},
		"reset containing /leases, for 1s": {Kind: FaultReset, PathContains: "/leases", For: time.Second},
	} {
		assert.Equal(t, want, f.String())
	}
	assert.Equal(t, 1, Fault{RetryAfter: 0}.retryAfterSeconds(), "Retry-After is at least a second")
	assert.Equal(t, 2, Fault{RetryAfter: 1500 * time.Millisecond}.retryAfterSeconds(), "rounded up")
}

// rawGet sends one GET through the proxy with its credentials and returns
// the answer or the transport error.
func rawGet(ctx context.Context, t *testing.T, p *FaultProxy, path string) (*http.Response, []byte, error) {
	t.Helper()
	rt, err := rest.TransportFor(p.Config())
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+path, nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestFaultProxyAnswers(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	tests := []struct {
		name       string
		fault      Fault
		wantStatus int
		wantHeader map[string]string
		wantErr    func(error) bool
	}{
		{"429 with Retry-After", Fault{Kind: FaultTooManyRequests, RetryAfter: 2 * time.Second}, http.StatusTooManyRequests, map[string]string{"Retry-After": "2"}, nil},
		{"500", Fault{Kind: FaultInternalError}, http.StatusInternalServerError, nil, nil},
		{"503", Fault{Kind: FaultUnavailable}, http.StatusServiceUnavailable, nil, nil},
		{"reset", Fault{Kind: FaultReset}, 0, nil, func(err error) bool {
			return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		}},
		{"delay past the caller's deadline", Fault{Kind: FaultDelay, Delay: time.Minute}, 0, nil, func(err error) bool {
			return errors.Is(err, context.DeadlineExceeded)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := c.NewFaultProxy(t)
			tt.fault.Limit = 1
			p.Inject(tt.fault)

			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			if tt.fault.Kind == FaultDelay {
				ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
			}
			resp, body, err := rawGet(ctx, t, p, "/api/v1/namespaces/default")
			cancel()
			if tt.wantErr != nil {
				require.Error(t, err)
				assert.True(t, tt.wantErr(err), "unexpected error: %v", err)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.wantStatus, resp.StatusCode)
				for k, v := range tt.wantHeader {
					assert.Equal(t, v, resp.Header.Get(k), k)
				}
				var status metav1.Status
				require.NoError(t, json.Unmarshal(body, &status), "the answer is a Status like the API server's")
				assert.Equal(t, int32(tt.wantStatus), status.Code)
				assert.Equal(t, "Status", status.Kind)
			}
			assert.Equal(t, []string{"GET /api/v1/namespaces/default"}, p.FaultedRequests())
			assert.False(t, p.Active(), "the limit of one request is reached")

			resp, _, err = rawGet(t.Context(), t, p, "/api/v1/namespaces/default")
			require.NoError(t, err, "past its limit the fault is gone")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			counts := p.Counts()
			assert.Equal(t, 1, counts.Faulted)
			assert.GreaterOrEqual(t, counts.Passed, 1)
		})
	}
}

func TestFaultProxyKubeconfigAndToken(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	p := c.NewFaultProxy(t)

	cfg, err := clientcmd.RESTConfigFromKubeConfig(p.Kubeconfig())
	require.NoError(t, err)
	assert.Equal(t, p.URL(), cfg.Host)
	assert.Empty(t, cfg.CertData, "the kubeconfig holds no client certificate")
	assert.Equal(t, p.Token(), cfg.BearerToken)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	_, err = client.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{})
	require.NoError(t, err, "the proxy forwards with the cluster's own credentials")

	cfg.BearerToken = "not-the-token"
	stranger, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	_, err = stranger.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{})
	assert.True(t, apierrors.IsUnauthorized(err), "a wrong token is refused: %v", err)
	assert.Equal(t, 1, p.Counts().Unauthorized)
	assert.NotContains(t, string(p.Kubeconfig()), "client-key", "the cluster's credentials never leave the proxy")
}

func TestFaultProxyFilters(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	p := c.NewFaultProxy(t)
	client, err := kubernetes.NewForConfig(p.Config())
	require.NoError(t, err)
	ctx := t.Context()
	getNS := func() error {
		_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err
	}
	create := func(name string) error {
		_, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		return err
	}

	p.Inject(Fault{Kind: FaultUnavailable, Method: http.MethodPost})
	require.NoError(t, getNS(), "a GET passes a fault on POST")
	assert.True(t, apierrors.IsServiceUnavailable(create("a")), "a POST is faulted")

	p.Inject(Fault{Kind: FaultInternalError, PathContains: "/configmaps"})
	require.NoError(t, getNS(), "a path without /configmaps passes")
	assert.True(t, apierrors.IsInternalError(create("b")))
	assert.Equal(t, 1, p.Counts().Faulted, "Inject starts the count again")

	p.Inject(Fault{Kind: FaultUnavailable, Limit: 2})
	assert.Error(t, getNS())
	assert.Error(t, getNS())
	require.NoError(t, getNS(), "the third request passes a limit of two")

	p.Inject(Fault{Kind: FaultUnavailable, For: 200 * time.Millisecond})
	assert.Error(t, getNS())
	require.Eventually(t, func() bool { return !p.Active() }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, getNS(), "an expired fault lets requests pass")

	p.Inject(Fault{Kind: FaultUnavailable})
	assert.Error(t, getNS())
	p.Clear()
	require.NoError(t, getNS(), "Clear ends the fault")
	require.NoError(t, create("c"))
}

func TestFaultProxyCutsWatches(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	p := c.NewFaultProxy(t)
	client, err := kubernetes.NewForConfig(p.Config())
	require.NoError(t, err)
	ctx := t.Context()

	next := func(w watch.Interface) (watch.Event, bool) {
		select {
		case ev, ok := <-w.ResultChan():
			return ev, ok
		case <-time.After(30 * time.Second):
			t.Fatal("no watch event in 30s")
			return watch.Event{}, false
		}
	}
	createCM := func(name string) {
		_, err := c.Client().CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}

	// A watch streaming before the fault is cut once the fault is in force.
	ongoing, err := client.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	defer ongoing.Stop()
	createCM("before")
	ev, ok := next(ongoing)
	require.True(t, ok)
	assert.Equal(t, watch.Added, ev.Type, "events stream through the proxy")
	p.Inject(Fault{Kind: FaultCutWatch, Delay: 100 * time.Millisecond, Limit: 2})
	for ok {
		_, ok = next(ongoing)
	}
	assert.Equal(t, 1, p.Counts().Faulted)

	// A new watch streams for a moment and is cut mid-stream; plain
	// requests pass meanwhile.
	fresh, err := client.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	defer fresh.Stop()
	_, err = client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err, "a fault on watches spares plain requests")
	for ok = true; ok; {
		_, ok = next(fresh)
	}
	counts := p.Counts()
	assert.Equal(t, 2, counts.Faulted)
	assert.GreaterOrEqual(t, counts.Watches, 2)
	for _, r := range p.FaultedRequests() {
		assert.True(t, strings.Contains(r, "watch=true"), r)
	}
	assert.False(t, p.Active(), "both cuts used the limit")

	// Past the limit a watch streams on.
	third, err := client.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	defer third.Stop()
	createCM("after")
	for {
		ev, ok := next(third)
		require.True(t, ok, "the watch past the limit was not cut")
		if cm, isCM := ev.Object.(*corev1.ConfigMap); isCM && cm.Name == "after" {
			break
		}
	}
}

// TestFaultProxyReachableCutWatch: a cut watch can hit only the watches
// still open once they have streamed for its delay inside the span.
func TestFaultProxyReachableCutWatch(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)
	to := from.Add(time.Second)
	ms := func(n int) time.Time { return from.Add(time.Duration(n) * time.Millisecond) }
	cut := Fault{Kind: FaultCutWatch, Delay: 100 * time.Millisecond}
	tests := []struct {
		name string
		seen seenRequest
		want int
	}{
		{"ended before its delay", seenRequest{watch: true, start: ms(10), end: ms(60)}, 0},
		{"streamed past its delay", seenRequest{watch: true, start: ms(10), end: ms(300)}, 1},
		{"still open, its delay past the span", seenRequest{watch: true, start: ms(950)}, 0},
		{"still open, delay inside the span", seenRequest{watch: true, start: ms(800)}, 1},
		{"opened before the span, open in it", seenRequest{watch: true, start: ms(-500), end: ms(80)}, 1},
		{"dropped by its client as the span began", seenRequest{watch: true, start: ms(-500), end: ms(20)}, 0},
		{"ended before the span", seenRequest{watch: true, start: ms(-500), end: ms(-10)}, 0},
		{"not a watch", seenRequest{start: ms(10), end: ms(300)}, 0},
	}
	for _, tt := range tests {
		p := &FaultProxy{seen: []seenRequest{tt.seen}}
		assert.Equal(t, tt.want, p.Reachable(cut, from, to), tt.name)
	}
	expired := &FaultProxy{injected: from, until: ms(400), seen: []seenRequest{{watch: true, start: ms(500), end: ms(900)}}}
	assert.Equal(t, 0, expired.Reachable(cut, from, to), "a watch opened after the fault expired")
	late := &FaultProxy{injected: ms(300), seen: []seenRequest{{watch: true, start: ms(0), end: ms(250)}}}
	assert.Equal(t, 0, late.Reachable(cut, from, to), "a watch that ended before the fault was injected")
	get := Fault{Kind: FaultUnavailable, Method: "GET"}
	p := &FaultProxy{seen: []seenRequest{{method: "GET", start: ms(10), end: ms(20)}, {method: "GET", start: ms(-10), end: ms(20)}}}
	assert.Equal(t, 1, p.Reachable(get, from, to), "other faults reach the requests that start in the span")
}

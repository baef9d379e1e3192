package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// statusBody is a Status as the API server writes it for err.
func statusBody(t *testing.T, err *apierrors.StatusError) []byte {
	t.Helper()
	s := err.ErrStatus
	s.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	data, jerr := json.Marshal(s)
	require.NoError(t, jerr)
	return data
}

// The service proxy's own words when it cannot reach a pod, as
// k8s.io/apiserver's proxy writes them.
const (
	noEndpoints  = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"no endpoints available for service \"shop\"","reason":"ServiceUnavailable","code":503}`
	unreachedPod = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"error trying to reach service: dial tcp 198.51.100.7:8080: connect: connection refused","reason":"ServiceUnavailable","code":503}`
)

func TestAPIServerFailure(t *testing.T) {
	t.Parallel()
	svc := schema.GroupResource{Resource: "services"}
	for _, tc := range []struct {
		name string
		code int
		body []byte
		own  bool
	}{
		{"throttled", 429, statusBody(t, apierrors.NewTooManyRequests("too many requests, please try again later", 1)), true},
		{"etcd", 500, statusBody(t, apierrors.NewInternalError(context.DeadlineExceeded)), true},
		{"timeout", 504, statusBody(t, apierrors.NewTimeoutError("request did not complete within 60s", 0)), true},
		{"unavailable", 503, statusBody(t, apierrors.NewServiceUnavailable("the server is currently unable to handle the request")), true},
		{"no endpoints: the app's", 503, []byte(noEndpoints), false},
		{"pod unreachable: the app's", 503, []byte(unreachedPod), false},
		{"the app's own 500", 500, []byte(`{"status":"error","error":"database down"}`), false},
		{"the app's own 429", 429, []byte("slow down"), false},
		{"the app's 503 in plain text", 503, []byte("no healthy upstream"), false},
		{"a Status below 500 is not a hiccup", 404, statusBody(t, apierrors.NewNotFound(svc, "shop")), false},
		{"forbidden is about credentials, reported elsewhere", 403, statusBody(t, apierrors.NewForbidden(svc, "shop", nil)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			why, own := APIServerFailure(tc.code, tc.body)
			assert.Equal(t, tc.own, own, why)
			if own {
				assert.Contains(t, why, "the Kubernetes API server's own")
			}
		})
	}
}

// TestProbeThroughServiceProxy runs probes against a scripted API server:
// its own failures are asked again and, if they last, left unjudged; the
// app's answers and the proxy's failures to reach a pod are counted at once.
func TestProbeThroughServiceProxy(t *testing.T) {
	t.Parallel()
	throttled := statusBody(t, apierrors.NewTooManyRequests("too many requests", 0))
	for _, tc := range []struct {
		name     string
		answers  []int // status codes in order; the last repeats
		bodies   map[int][]byte
		ok       bool
		unjudged bool
		requests int
	}{
		{"a hiccup then the app's 200", []int{500, 200}, nil, true, false, 2},
		{"throttled three times: unjudged", []int{429}, map[int][]byte{429: throttled}, false, true, 3},
		{"no endpoints: a failure, not asked again", []int{503}, map[int][]byte{503: []byte(noEndpoints)}, false, false, 1},
		{"the app's 500: a failure, not asked again", []int{500}, map[int][]byte{500: []byte(`{"status":"error"}`)}, false, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			etcd := statusBody(t, apierrors.NewInternalError(context.DeadlineExceeded))
			_, srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				code := tc.answers[min(i, len(tc.answers)-1)]
				body, ok := tc.bodies[code]
				if !ok && code >= 500 {
					body = etcd
				}
				if !ok && code < 300 {
					body = []byte(`{"status":"ok"}`)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				_, _ = w.Write(body)
			}))
			target, err := NewServiceProxyTarget(&rest.Config{Host: srv.URL}, "shop", "web", "http")
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			p := Probe(ctx, target, "/health", time.Second)
			assert.Equal(t, tc.ok, p.OK)
			assert.Equal(t, tc.unjudged, p.Unjudged != "", p.Unjudged)
			assert.Equal(t, tc.requests, int(n.Load()))
		})
	}
}

// TestProbeOfAURLTargetNeverRetries: without the API server in front,
// every answer is the app's.
func TestProbeOfAURLTargetNeverRetries(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	body := statusBody(t, apierrors.NewTooManyRequests("too many requests", 0))
	target, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write(body)
	}))
	p := Probe(context.Background(), target, "/health", time.Second)
	assert.False(t, p.OK)
	assert.Empty(t, p.Unjudged)
	assert.Equal(t, int64(1), n.Load())
}

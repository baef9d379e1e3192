package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fastRetry keeps retrying tests quick without changing what they prove.
var fastRetry = Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		b       Backoff
		attempt int
		want    time.Duration
	}{
		{Backoff{}, 1, 500 * ms},
		{Backoff{}, 2, time.Second},
		{Backoff{}, 4, 4 * time.Second},
		{Backoff{}, 5, 5 * time.Second},
		{Backoff{}, 1000, 5 * time.Second},
		{Backoff{Initial: 10 * ms, Max: 25 * ms}, 2, 20 * ms},
		{Backoff{Initial: 10 * ms, Max: 25 * ms}, 3, 25 * ms},
		{Backoff{Initial: time.Second, Max: 10 * ms}, 3, time.Second},
		{Backoff{}, 0, 500 * ms},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.b.Delay(tt.attempt), "%+v attempt %d", tt.b, tt.attempt)
	}
}

func TestPathsFor(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "/health/ready", Paths{}.For(EndpointReady))
	p := Paths{Basic: "/livez", Detailed: "/status/full"}
	assert.Equal(t, "/livez", p.For(EndpointBasic))
	assert.Equal(t, "/health/ready", p.For(EndpointReady))
	assert.Equal(t, "/status/full", p.For(EndpointDetailed))
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name        string
		endpoint    Endpoint
		resp        response
		err         error
		auth        authState
		wantHealthy bool
		wantFailure string
		wantVersion string
		wantNote    string
		wantComps   int
	}{
		{
			name:     "basic 200 text",
			endpoint: EndpointBasic, resp: response{statusCode: 200, body: []byte("OK"), header: http.Header{"X-App-Version": {"v2"}}},
			wantHealthy: true, wantVersion: "v2",
		},
		{
			name:     "basic 200 reporting down",
			endpoint: EndpointBasic, resp: response{statusCode: 200, header: jsonHeader, body: []byte(`{"status":"down"}`)},
			wantFailure: `/health reports status "down"`,
		},
		{
			name:     "ready 503",
			endpoint: EndpointReady, resp: response{statusCode: 503, body: []byte(`{"status":"starting"}`)},
			wantFailure: "/health/ready answered 503 Service Unavailable",
		},
		{
			name:     "ready 503 reporting down",
			endpoint: EndpointReady, resp: response{statusCode: 503, body: []byte(`{"status":"DOWN"}`)},
			wantFailure: `/health/ready answered 503 Service Unavailable and reports status "DOWN"`,
		},
		{
			name:     "detailed all up",
			endpoint: EndpointDetailed, resp: response{statusCode: 200, header: jsonHeader, body: []byte(`{"status":"ok","version":"v3","checks":{"db":{"status":"up"}}}`)},
			wantHealthy: true, wantVersion: "v3", wantComps: 1,
		},
		{
			name:     "detailed component down names it",
			endpoint: EndpointDetailed, resp: response{statusCode: 200, body: []byte(`{"status":"ok","checks":{"db":{"status":"down","message":"connection refused"},"cache":{"status":"up"}}}`)},
			wantFailure: `/health/detailed reports component db as "down" (connection refused)`, wantComps: 2,
		},
		{
			name:     "detailed 503 with two failing components",
			endpoint: EndpointDetailed, resp: response{statusCode: 503, header: http.Header{"Content-Type": {"application/health+json"}}, body: []byte(`{"status":"fail","checks":{"db:responseTime":[{"status":"fail"}],"queue":[{"status":"error","output":"full"}]}}`)},
			wantFailure: `/health/detailed answered 503 Service Unavailable and reports components db:responseTime as "fail", queue as "error" (full)`, wantComps: 2,
		},
		{
			name:     "detailed overall fail without components",
			endpoint: EndpointDetailed, resp: response{statusCode: 200, body: []byte(`{"status":"unhealthy"}`)},
			wantFailure: `/health/detailed reports status "unhealthy"`,
		},
		{
			name:     "detailed warn passes",
			endpoint: EndpointDetailed, resp: response{statusCode: 200, body: []byte(`{"status":"warn","checks":{"disk":[{"status":"warn"}]}}`)},
			wantHealthy: true, wantComps: 1,
		},
		{
			name:     "detailed text body passes with a note",
			endpoint: EndpointDetailed, resp: response{statusCode: 200, body: []byte("all good")},
			wantHealthy: true, wantNote: "components not read: body is not JSON: invalid character 'a' looking for beginning of value",
		},
		{
			name:     "detailed 401 without token",
			endpoint: EndpointDetailed, resp: response{statusCode: 401}, auth: authNone,
			wantFailure: "/health/detailed answered 401 Unauthorized: the bearer token was missing (no health-check token is configured)",
		},
		{
			name:     "detailed 403 with token",
			endpoint: EndpointDetailed, resp: response{statusCode: 403}, auth: authSent,
			wantFailure: "/health/detailed answered 403 Forbidden: the bearer token was rejected",
		},
		{
			name:     "basic 401 is a plain status failure",
			endpoint: EndpointBasic, resp: response{statusCode: 401},
			wantFailure: "/health answered 401 Unauthorized",
		},
		{
			name:     "503 from a proxy in plain text names its reason",
			endpoint: EndpointReady, resp: response{statusCode: 503, header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, body: []byte("no healthy upstream\nretry later\n")},
			wantFailure: "/health/ready answered 503 Service Unavailable: no healthy upstream",
		},
		{
			name:     "500 HTML page is not quoted",
			endpoint: EndpointBasic, resp: response{statusCode: 500, header: http.Header{"Content-Type": {"text/html"}}, body: []byte("<html><body>oops</body></html>")},
			wantFailure: "/health answered 500 Internal Server Error",
		},
		{
			name:     "503 from the API server's service proxy",
			endpoint: EndpointBasic, resp: response{statusCode: 503, header: jsonHeader, body: []byte(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"no endpoints available for service \"web\"","reason":"ServiceUnavailable","code":503}`)},
			wantFailure: `/health answered 503 Service Unavailable from the Kubernetes API server: no endpoints available for service "web"`,
		},
		{
			name:     "403 from the API server is not blamed on the app token",
			endpoint: EndpointDetailed, auth: authNotForwarded, resp: response{statusCode: 403, header: jsonHeader, body: []byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"services \"web\" is forbidden: User \"ci\" cannot get resource \"services/proxy\"","reason":"Forbidden","code":403}`)},
			wantFailure: `/health/detailed answered 403 Forbidden from the Kubernetes API server: services "web" is forbidden: User "ci" cannot get resource "services/proxy"`,
		},
		{
			name:     "an app's own status field is not an API server Status",
			endpoint: EndpointBasic, resp: response{statusCode: 503, header: jsonHeader, body: []byte(`{"kind":"Status","status":"Failure"}`)},
			wantFailure: `/health answered 503 Service Unavailable and reports status "Failure"`,
		},
		{
			name:     "transport error",
			endpoint: EndpointBasic, err: errors.New("GET http://127.0.0.1:1/health: connection refused"),
			wantFailure: "GET http://127.0.0.1:1/health: connection refused",
		},
		{
			name:     "truncated body is noted",
			endpoint: EndpointBasic, resp: response{statusCode: 204, truncated: true},
			wantHealthy: true, wantNote: "body cut at 1 MiB",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := evaluate(tt.endpoint, DefaultPaths().For(tt.endpoint), tt.resp, tt.err, tt.auth)
			assert.Equal(t, tt.wantHealthy, r.Healthy)
			assert.Equal(t, tt.wantFailure, r.Failure)
			assert.Equal(t, tt.wantVersion, r.Version)
			assert.Equal(t, tt.wantNote, r.Note)
			if tt.wantComps > 0 {
				require.NotNil(t, r.Detailed)
				assert.Len(t, r.Detailed.Components, tt.wantComps)
			}
		})
	}
}

func TestCheckHealthy(t *testing.T) {
	t.Parallel()
	var sawToken atomic.Value
	target, _ := serve(t, healthMux(
		jsonHandler(200, `{"status":"ok","version":"v2"}`),
		jsonHandler(200, `{"status":"ready"}`),
		func(w http.ResponseWriter, r *http.Request) {
			sawToken.Store(r.Header.Get("Authorization"))
			w.Header().Set("Content-Type", "application/health+json")
			_, _ = w.Write([]byte(`{"status":"pass","checks":{"db:responseTime":[{"status":"pass","observedValue":3,"observedUnit":"ms"}]}}`))
		},
	))
	res := Check(context.Background(), target, CheckOptions{Mode: ModePostDeployment, Token: "tok-abc-123"})
	require.True(t, res.Healthy, res.Reason)
	assert.Equal(t, ModePostDeployment, res.Mode)
	assert.Equal(t, 1, res.Attempts)
	assert.Empty(t, res.Reason)
	assert.Equal(t, "v2", res.Version)
	assert.Equal(t, "Bearer tok-abc-123", sawToken.Load())
	require.Len(t, res.Endpoints, 3)
	for _, e := range res.Endpoints {
		assert.Equal(t, 200, e.StatusCode)
		assert.Positive(t, e.Timing.Total)
		assert.Positive(t, e.Timing.FirstByte)
	}
	d := res.Endpoints[2].Detailed
	require.NotNil(t, d)
	assert.Equal(t, FormatHealthJSON, d.Format)
	assert.Equal(t, []Component{{Name: "db:responseTime", Status: "pass", Latency: 3 * time.Millisecond, ObservedValue: "3", ObservedUnit: "ms"}}, d.Components)
}

func TestCheckSendsTokenOnlyToDetailed(t *testing.T) {
	t.Parallel()
	var leaked atomic.Bool
	basic := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
	}
	target, _ := serve(t, healthMux(basic, basic, basic))
	res := Check(context.Background(), target, CheckOptions{Token: "tok-abc-123", Endpoints: []Endpoint{EndpointBasic, EndpointReady}})
	require.True(t, res.Healthy, res.Reason)
	assert.False(t, leaked.Load())
}

func TestCheckBecomesHealthyAfterRequests(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	target, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) <= 4 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	res := Check(context.Background(), target, CheckOptions{Timeout: 10 * time.Second, Backoff: fastRetry, Endpoints: []Endpoint{EndpointBasic}})
	require.True(t, res.Healthy, res.Reason)
	assert.Equal(t, 5, res.Attempts)
}

func TestCheckBecomesHealthyAfterAWhile(t *testing.T) {
	t.Parallel()
	start := time.Now()
	target, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if time.Since(start) < 1500*time.Millisecond {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	res := Check(context.Background(), target, CheckOptions{Timeout: 10 * time.Second, Backoff: Backoff{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond}})
	require.True(t, res.Healthy, res.Reason)
	assert.Greater(t, res.Attempts, 1)
	for _, e := range res.Endpoints {
		assert.True(t, e.Healthy)
	}
}

func TestCheckNeverHealthy(t *testing.T) {
	t.Parallel()
	target, _ := serve(t, healthMux(
		jsonHandler(200, `{"status":"ok"}`),
		jsonHandler(503, `{"status":"starting"}`),
		jsonHandler(503, `{"status":"DOWN","components":{"db":{"status":"DOWN","message":"dial tcp 10.0.0.5:5432: connection refused"},"ping":{"status":"UP"}}}`),
	))
	res := Check(context.Background(), target, CheckOptions{Mode: ModePreDeployment, Timeout: 300 * time.Millisecond, Backoff: fastRetry})
	assert.False(t, res.Healthy)
	assert.Greater(t, res.Attempts, 1)
	require.Len(t, res.Endpoints, 3)
	assert.True(t, res.Endpoints[0].Healthy)
	assert.Equal(t, 503, res.Endpoints[1].StatusCode, "the last complete attempt is reported, not one cut short by the deadline")
	assert.Regexp(t, `^Not healthy after \d+ attempts in [0-9.]+m?s: `+
		`/health/ready answered 503 Service Unavailable; `+
		`/health/detailed answered 503 Service Unavailable and reports component db as "DOWN" \(dial tcp 10\.0\.0\.5:5432: connection refused\)\.$`, res.Reason)
}

func TestCheckUnreachable(t *testing.T) {
	t.Parallel()
	_, srv := serve(t, http.NotFoundHandler())
	srv.Close() // a port that refuses connections
	target, err := NewURLTarget(srv.URL, TLSOptions{})
	require.NoError(t, err)
	res := Check(context.Background(), target, CheckOptions{Timeout: 100 * time.Millisecond, Backoff: fastRetry, Endpoints: []Endpoint{EndpointBasic}})
	assert.False(t, res.Healthy)
	assert.Contains(t, res.Reason, "GET "+srv.URL+"/health: ")
	assert.Contains(t, res.Reason, "connection refused")
}

func TestCheckSlowServerTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	target, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	res := Check(context.Background(), target, CheckOptions{Timeout: time.Minute, RequestTimeout: 50 * time.Millisecond, Backoff: Backoff{Initial: time.Hour}, Endpoints: []Endpoint{EndpointBasic}})
	assert.False(t, res.Healthy)
	assert.Equal(t, 1, res.Attempts, "no second attempt fits in the timeout, so the check stops instead of waiting")
	assert.Contains(t, res.Reason, "/health: no answer before the timeout")
}

func TestCheckCanceled(t *testing.T) {
	t.Parallel()
	target, _ := serve(t, jsonHandler(503, `{}`))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	res := Check(ctx, target, CheckOptions{Backoff: fastRetry, Endpoints: []Endpoint{EndpointBasic}})
	assert.False(t, res.Healthy)
	assert.Contains(t, res.Reason, "Check canceled after")
}

func TestCheckCustomPaths(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("/livez", jsonHandler(200, `{"version":"v5"}`))
	mux.Handle("/readyz", jsonHandler(200, `{}`))
	mux.Handle("/status", jsonHandler(200, `{"status":"UP"}`))
	target, _ := serve(t, mux)
	res := Check(context.Background(), target, CheckOptions{Paths: Paths{Basic: "/livez", Ready: "/readyz", Detailed: "/status"}})
	require.True(t, res.Healthy, res.Reason)
	assert.Equal(t, "v5", res.Version)
	assert.Equal(t, []string{"/livez", "/readyz", "/status"}, []string{res.Endpoints[0].Path, res.Endpoints[1].Path, res.Endpoints[2].Path})
}

func TestCheckDetailedAuth(t *testing.T) {
	t.Parallel()
	detailed := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer right-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}
	target, _ := serve(t, healthMux(jsonHandler(200, `{}`), jsonHandler(200, `{}`), detailed))
	opts := CheckOptions{Timeout: 100 * time.Millisecond, Backoff: fastRetry}

	tests := []struct {
		token, want string
	}{
		{"", "the bearer token was missing (no health-check token is configured)"},
		{"wrong-token-999", "the bearer token was rejected"},
		{"right-token", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("token %q", tt.token), func(t *testing.T) {
			t.Parallel()
			o := opts
			o.Token = tt.token
			res := Check(context.Background(), target, o)
			if tt.want == "" {
				assert.True(t, res.Healthy, res.Reason)
				return
			}
			assert.False(t, res.Healthy)
			assert.Contains(t, res.Reason, "/health/detailed answered 401 Unauthorized: "+tt.want)
			if tt.token != "" {
				assert.NotContains(t, fmt.Sprintf("%+v", res), tt.token)
			}
		})
	}
}

func TestCheckUnsetTargetFailsAtOnce(t *testing.T) {
	t.Parallel()
	res := Check(context.Background(), Target{}, CheckOptions{Timeout: time.Hour})
	assert.False(t, res.Healthy)
	assert.Zero(t, res.Attempts)
	assert.Contains(t, res.Reason, "target is not set")

	tr := VerifyTraffic(context.Background(), Target{}, "v1", 3, CheckOptions{Timeout: time.Hour})
	assert.False(t, tr.Passed)
	assert.Contains(t, tr.Reason, "target is not set")
}

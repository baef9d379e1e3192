package sampleapp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{name: "defaults", env: nil, want: Config{Version: "v1"}},
		{name: "all knobs", env: map[string]string{
			EnvErrorRate: "0.4", EnvLatency: "20ms", EnvReady: "false", EnvFailAfter: "30s", EnvHealthToken: "tok", EnvCrash: "TRUE",
		}, want: Config{Version: "v1", ErrorRate: 0.4, Latency: 20 * time.Millisecond, NotReady: true, FailAfter: 30 * time.Second, HealthToken: "tok", Crash: true}},
		{name: "rate above one", env: map[string]string{EnvErrorRate: "1.5"}, wantErr: EnvErrorRate},
		{name: "rate not a number", env: map[string]string{EnvErrorRate: "half"}, wantErr: EnvErrorRate},
		{name: "bad latency", env: map[string]string{EnvLatency: "soon"}, wantErr: EnvLatency},
		{name: "negative fail after", env: map[string]string{EnvFailAfter: "-1s"}, wantErr: EnvFailAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ConfigFromEnv("v1", tt.env)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestErrorRateIsExact(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{0, 0.1, 0.2, 0.25, 0.4, 1} {
		app := New(Config{Version: "v1", ErrorRate: rate})
		failed := 0
		for range 100 {
			rec := httptest.NewRecorder()
			app.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/payments", nil))
			if rec.Code == http.StatusInternalServerError {
				failed++
			}
		}
		assert.Equal(t, int(rate*100), failed, "rate %v", rate)
	}
}

func TestFailAfter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	app := newWithClock(Config{Version: "v3", FailAfter: time.Minute}, func() time.Time { return now })
	get := func() int {
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
		return rec.Code
	}
	assert.Equal(t, http.StatusOK, get())
	now = now.Add(61 * time.Second)
	assert.Equal(t, http.StatusInternalServerError, get(), "after FAIL_AFTER every answer fails when no rate is set")
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(Config{Version: "v2", HealthToken: "s3cret", NotReady: true}))
	t.Cleanup(srv.Close)

	do := func(path, token string) (*http.Response, map[string]any) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp, body
	}

	resp, body := do("/health", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "v2", resp.Header.Get("X-App-Version"))
	assert.Equal(t, map[string]any{"status": "ok", "version": "v2"}, body)

	resp, _ = do("/health/ready", "")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	resp, _ = do("/health/detailed", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = do("/health/detailed", "wrong")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, body = do("/health/detailed", "s3cret")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/health+json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "pass", body["status"])
	assert.Contains(t, body["checks"], "database:responseTime")

	resp, body = do("/api/payments", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "v2", body["version"])
}

// TestLogsStartAndFailedHealthChecks: the app prints its start and every
// health check it fails, and nothing for checks it passes.
func TestLogsStartAndFailedHealthChecks(t *testing.T) {
	t.Parallel()
	var out safeBuffer
	app := New(Config{Version: "v7", NotReady: true, Log: &out, Addr: ":8080"})
	for _, path := range []string{"/health", "/health/ready", "/api/payments"} {
		app.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 2, out.String())
	assert.Regexp(t, `^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d sampleapp: version v7 listening on :8080$`, lines[0])
	assert.Regexp(t, `sampleapp: GET /health/ready answered 503: not ready \(SAMPLEAPP_READY=false\)$`, lines[1])

	out.Reset()
	failing := New(Config{Version: "v8", ErrorRate: 1, Log: &out})
	failing.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/health", nil))
	failing.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/payments", nil))
	assert.Contains(t, out.String(), "sampleapp: GET /health answered 500: injected failure\n")
	assert.NotContains(t, out.String(), "/api/payments", "only health checks are logged")
}

type safeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *safeBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

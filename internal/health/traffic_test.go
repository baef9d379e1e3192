package health

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func answers(versions ...string) []ProbeResult {
	out := make([]ProbeResult, 0, len(versions))
	for _, v := range versions {
		switch v {
		case "ERR":
			out = append(out, ProbeResult{Path: "/health", Err: "GET http://h/health: connection refused"})
		case "503":
			out = append(out, ProbeResult{Path: "/health", StatusCode: 503, Version: "v2"})
		default:
			out = append(out, ProbeResult{Path: "/health", StatusCode: 200, OK: true, Version: v})
		}
	}
	return out
}

func TestTallyVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		want        string
		answers     []ProbeResult
		wantPassed  bool
		wantSummary string
	}{
		{
			name: "all new", want: "v2", answers: answers("v2", "v2", "v2"),
			wantPassed: true, wantSummary: "3 of 3 answers came from v2; want v2",
		},
		{
			name: "mixed", want: "v2", answers: answers("v1", "v2", "v2", "v2", "v2", "v1", "v2", "v2", "v2", "v2"),
			wantSummary: "2 of 10 answers came from v1, 8 from v2; want v2",
		},
		{
			name: "v prefix tolerated", want: "v1.2.3", answers: answers("1.2.3", "v1.2.3"),
			wantPassed: true, wantSummary: "2 of 2 answers came from v1.2.3; want v1.2.3",
		},
		{
			name: "none from want, most frequent wrong first", want: "v3", answers: answers("v1", "v2", "v2"),
			wantSummary: "2 of 3 answers came from v2, 1 from v1; want v3",
		},
		{
			name: "missing versions and failures", want: "v2", answers: answers("v2", "", "ERR", "503", "v2"),
			wantSummary: "1 of 5 answers came without a version, 2 from v2, 2 failed (last: /health answered 503); want v2",
		},
		{
			name: "all failed", want: "v2", answers: answers("ERR", "ERR"),
			wantSummary: "all 2 requests failed (last: GET http://h/health: connection refused); want v2",
		},
		{
			name: "no answers", want: "v2", answers: nil,
			wantSummary: "no answers; want v2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := TallyVersions(tt.want, tt.answers)
			assert.Equal(t, tt.wantPassed, got.Passed)
			assert.Equal(t, tt.wantSummary, got.Summary)
		})
	}
}

func TestSameVersion(t *testing.T) {
	t.Parallel()
	assert.True(t, SameVersion("v1", "v1"))
	assert.True(t, SameVersion("v1", "1"))
	assert.True(t, SameVersion("1", "v1"))
	assert.True(t, SameVersion(" v1 ", "v1"))
	assert.False(t, SameVersion("v1", "v10"))
	assert.False(t, SameVersion("v1", ""))
	assert.False(t, SameVersion("", "v1"))
}

// versionServer answers "old" on every nth request and "new" otherwise.
func versionServer(every int) http.HandlerFunc {
	var calls atomic.Int64
	return func(w http.ResponseWriter, _ *http.Request) {
		v := "v2"
		if every > 0 && calls.Add(1)%int64(every) == 0 {
			v = "v1"
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok","version":"` + v + `"}`))
	}
}

func TestVerifyTrafficMixedFails(t *testing.T) {
	t.Parallel()
	target, _ := serve(t, versionServer(5))
	res := VerifyTraffic(context.Background(), target, "v2", 10, CheckOptions{Mode: ModeVerifyTraffic, Timeout: 300 * time.Millisecond, Backoff: fastRetry})
	assert.False(t, res.Passed)
	assert.Equal(t, ModeVerifyTraffic, res.Mode)
	assert.Greater(t, res.Attempts, 1, "the sequence is retried within the timeout")
	assert.Equal(t, 10, res.Answers)
	assert.Equal(t, []VersionCount{{"v1", 2}, {"v2", 8}}, res.Versions)
	assert.Equal(t, "2 of 10 answers came from v1, 8 from v2; want v2", res.Summary)
	assert.Contains(t, res.Reason, "Traffic does not reach v2 after")
	assert.Contains(t, res.Reason, ": 2 of 10 answers came from v1, 8 from v2; want v2.")
}

func TestVerifyTrafficAllNewPasses(t *testing.T) {
	t.Parallel()
	target, _ := serve(t, versionServer(0))
	res := VerifyTraffic(context.Background(), target, "v2", 0, CheckOptions{})
	require.True(t, res.Passed, res.Reason)
	assert.Equal(t, 1, res.Attempts)
	assert.Equal(t, DefaultTrafficAnswers, res.Answers)
	assert.Empty(t, res.Reason)
	assert.Equal(t, "10 of 10 answers came from v2; want v2", res.Summary)
}

func TestVerifyTrafficWaitsForTrafficToMove(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	target, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		v := "v1"
		if calls.Add(1) > 25 {
			v = "v2"
		}
		w.Header().Set("X-App-Version", v)
	}))
	res := VerifyTraffic(context.Background(), target, "v2", 10, CheckOptions{Timeout: 10 * time.Second, Backoff: fastRetry})
	require.True(t, res.Passed, res.Reason)
	assert.Equal(t, 4, res.Attempts)
}

func TestVerifyTrafficNeedsAVersion(t *testing.T) {
	t.Parallel()
	res := VerifyTraffic(context.Background(), Target{}, " ", 10, CheckOptions{})
	assert.False(t, res.Passed)
	assert.Equal(t, "No version to verify traffic against.", res.Reason)
}

func TestVerifyRollback(t *testing.T) {
	t.Parallel()
	healthyV1 := healthMux(jsonHandler(200, `{"version":"v1"}`), jsonHandler(200, `{}`), jsonHandler(200, `{"status":"ok"}`))
	opts := CheckOptions{Timeout: 300 * time.Millisecond, Backoff: fastRetry}

	t.Run("healthy and serving the old version", func(t *testing.T) {
		t.Parallel()
		target, _ := serve(t, healthyV1)
		res := VerifyRollback(context.Background(), target, "v1", 5, opts)
		require.True(t, res.Passed, res.Reason)
		assert.Equal(t, ModeVerifyRollback, res.Health.Mode)
		assert.Equal(t, ModeVerifyRollback, res.Traffic.Mode)
		assert.True(t, res.Health.Healthy)
		assert.Equal(t, 5, res.Traffic.Answers)
	})
	t.Run("healthy but still serving the new version", func(t *testing.T) {
		t.Parallel()
		target, _ := serve(t, healthyV1)
		res := VerifyRollback(context.Background(), target, "v0", 5, opts)
		assert.False(t, res.Passed)
		assert.True(t, res.Health.Healthy)
		assert.Contains(t, res.Reason, "5 of 5 answers came from v1; want v0")
	})
	t.Run("unhealthy", func(t *testing.T) {
		t.Parallel()
		target, _ := serve(t, jsonHandler(500, `{"version":"v1"}`))
		res := VerifyRollback(context.Background(), target, "v1", 5, opts)
		assert.False(t, res.Passed)
		assert.False(t, res.Health.Healthy)
		assert.Contains(t, res.Reason, "/health answered 500 Internal Server Error")
		assert.Equal(t, "Traffic not checked because the service is not healthy.", res.Traffic.Reason)
	})
}

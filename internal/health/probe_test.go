package health

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProbe(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle("/health", jsonHandler(200, `{"status":"ok","version":"v4"}`))
	mux.Handle("/broken", jsonHandler(502, `{"version":"v4"}`))
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	target, _ := serve(t, mux)

	tests := []struct {
		name, path  string
		timeout     time.Duration
		wantOK      bool
		wantStatus  int
		wantVersion string
		wantErr     string
	}{
		{name: "healthy", path: "/health", wantOK: true, wantStatus: 200, wantVersion: "v4"},
		{name: "non-2xx is not OK but still reports the version", path: "/broken", wantStatus: 502, wantVersion: "v4"},
		{name: "not found", path: "/nope", wantStatus: 404},
		{name: "timeout", path: "/slow", timeout: 50 * time.Millisecond, wantErr: "/slow: no answer before the timeout"},
		{name: "query is not reported", path: "/health?secret=1", wantOK: true, wantStatus: 200, wantVersion: "v4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := time.Now()
			res := Probe(context.Background(), target, tt.path, tt.timeout)
			assert.Equal(t, tt.wantOK, res.OK)
			assert.Equal(t, tt.wantStatus, res.StatusCode)
			assert.Equal(t, tt.wantVersion, res.Version)
			assert.Equal(t, redactPath(tt.path), res.Path)
			assert.False(t, res.Time.Before(before))
			assert.Positive(t, res.Latency)
			assert.Equal(t, res.Timing.Total, res.Latency)
			if tt.wantErr != "" {
				assert.Contains(t, res.Err, tt.wantErr)
			} else {
				require.Empty(t, res.Err)
				assert.Positive(t, res.Timing.Connect, "every probe opens its own connection")
				assert.Positive(t, res.Timing.FirstByte)
				assert.Zero(t, res.Timing.TLSHandshake)
			}
		})
	}
}

func TestProbeUsesFreshConnections(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	conns := map[string]bool{}
	target, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		conns[r.RemoteAddr] = true
	}))
	for range 3 {
		require.True(t, Probe(context.Background(), target, "/health", 0).OK)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, conns, 3, "a reused connection would pin every probe to one backend behind kube-proxy")
}

func TestProbeUnsetTarget(t *testing.T) {
	t.Parallel()
	res := Probe(context.Background(), Target{}, "/health", 0)
	assert.False(t, res.OK)
	assert.Contains(t, res.Err, "target is not set")
}

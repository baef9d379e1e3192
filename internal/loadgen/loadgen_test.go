package loadgen

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetricsLoadRateMixAndBounds(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()

	res, err := Run(t.Context(), Options{BaseURL: srv.URL, Paths: []string{"/a", "/a", "/fail"}, Rate: 200, Count: 60, Duration: 30 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, 60, res.Sent, "count bounds the run")
	assert.Equal(t, 40, res.OK)
	assert.Equal(t, 20, res.Failed)
	assert.Equal(t, map[string]int{"2xx": 40, "5xx": 20}, res.ByStatus)
	assert.Equal(t, map[string]int{"/a": 40, "/fail": 20}, seen, "the mix is kept")
	// 60 requests at 200/s take about 295ms; generous on a loaded machine.
	assert.GreaterOrEqual(t, res.Elapsed, 250*time.Millisecond, "the rate paces the requests")
	t.Logf("60 requests at 200/s took %s", res.Elapsed)

	res, err = Run(t.Context(), Options{BaseURL: srv.URL, Paths: []string{"/a"}, Rate: 20, Count: 1000, Duration: 300 * time.Millisecond})
	require.NoError(t, err)
	assert.Less(t, res.Sent, 20, "duration bounds the run")
	assert.Positive(t, res.Sent)
}

func TestMetricsLoadRefusesOtherTargetsAndUnboundedRuns(t *testing.T) {
	t.Parallel()
	ok := Options{BaseURL: "http://127.0.0.1:8080", Paths: []string{"/"}, Rate: 10, Count: 10, Duration: time.Second}
	require.NoError(t, ok.Validate())
	for _, target := range []string{"http://198.51.100.140/ns/svc", "http://[::1]:80", "http://podinfo.demo.svc:9898", "http://localhost:1"} {
		o := ok
		o.BaseURL = target
		assert.NoError(t, o.Validate(), target)
	}
	for _, tc := range []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.BaseURL = "https://example.com" }, "not loopback"},
		{func(o *Options) { o.BaseURL = "http://192.0.2.5" }, "neither loopback"},
		{func(o *Options) { o.BaseURL = "http://198.51.101.5" }, "neither loopback"},
		{func(o *Options) { o.BaseURL = "ftp://127.0.0.1" }, "not an http"},
		{func(o *Options) { o.Count = 0 }, "count must be"},
		{func(o *Options) { o.Duration = 0 }, "duration must be"},
		{func(o *Options) { o.Duration = 2 * time.Hour }, "duration must be"},
		{func(o *Options) { o.Rate = 0 }, "rate must be"},
		{func(o *Options) { o.Paths = nil }, "at least one path"},
		{func(o *Options) { o.Paths = []string{"x"} }, "does not start with /"},
	} {
		o := ok
		tc.change(&o)
		_, err := Run(t.Context(), o)
		require.Error(t, err)
		assert.True(t, strings.Contains(err.Error(), tc.want), "%v does not say %q", err, tc.want)
	}
}

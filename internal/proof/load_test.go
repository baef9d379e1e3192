package proof

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// versioned answers as the sample app does; every failEvery-th request
// fails with a 500 (0: none).
func versioned(t *testing.T, version string, failEvery int64) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-App-Version", version)
		if i := n.Add(1); failEvery > 0 && i%failEvery == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestLoadSendsEveryRequestInOrder(t *testing.T) {
	t.Parallel()
	srv, served := versioned(t, "v7", 10)
	shots, err := Load(context.Background(), LoadOptions{URL: srv.URL + "/health", Requests: 50, Rate: 2000, Concurrency: 4})
	require.NoError(t, err)
	require.Len(t, shots, 50)
	assert.EqualValues(t, 50, served.Load(), "exactly the requests asked for reached the server")
	failed := 0
	for i, s := range shots {
		assert.Equal(t, "v7", s.Version)
		assert.Positive(t, s.Latency)
		if i > 0 {
			assert.False(t, s.Start.Before(shots[i-1].Start), "ordered by start")
		}
		if !s.OK() {
			failed++
			assert.Equal(t, http.StatusInternalServerError, s.Status)
		}
	}
	assert.Equal(t, 5, failed)
}

func TestLoadStopsSendingWhenCancelledWithoutInventingFailures(t *testing.T) {
	t.Parallel()
	srv, served := versioned(t, "v1", 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	shots, err := Load(ctx, LoadOptions{URL: srv.URL, Requests: 1000, Rate: 10})
	require.NoError(t, err)
	assert.Empty(t, shots, "nothing is sent after cancellation")
	assert.Zero(t, served.Load())

	// Cancelled while a slow answer is in flight: the answer still counts.
	arrived, answer := make(chan struct{}, 1), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-answer
		w.Header().Set("X-App-Version", "v1")
	}))
	t.Cleanup(slow.Close)
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan []Shot)
	go func() {
		s, _ := Load(ctx, LoadOptions{URL: slow.URL, Requests: 1000, Rate: 1})
		done <- s
	}()
	// The first request goes out at once; cancel while it waits for its answer.
	<-arrived
	cancel()
	close(answer)
	shots = <-done
	require.Len(t, shots, 1)
	assert.True(t, shots[0].OK(), "the request in flight finished: %+v", shots[0])
}

func TestLoadStaysOnLoopback(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"http://example.com/", "http://10.0.0.1:8080/", "http://[2001:db8::1]/", "::bad"} {
		_, err := Load(context.Background(), LoadOptions{URL: url, Requests: 1, Rate: 1})
		assert.Error(t, err, url)
	}
	_, err := Load(context.Background(), LoadOptions{URL: "http://127.0.0.1:1/", Requests: 0, Rate: 1})
	assert.Error(t, err, "a load run needs requests")
}

func TestLoadErrorsHideCredentials(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-pass-91"
	for _, url := range []string{"http://user:" + secret + "@example.com/", "http://user:" + secret + "@127.0.0.1:1/%zz", "http://example.com/?token=" + secret} {
		_, err := Load(context.Background(), LoadOptions{URL: url, Requests: 1, Rate: 1})
		require.Error(t, err, url)
		assert.NotContains(t, err.Error(), secret)
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(sec int, lat time.Duration, status int) Shot {
		return Shot{Start: t0.Add(time.Duration(sec) * time.Second), Latency: lat, Status: status}
	}
	shots := []Shot{
		at(0, 1*time.Millisecond, 200), at(1, 2*time.Millisecond, 200), at(2, 3*time.Millisecond, 502),
		at(3, 4*time.Millisecond, 200), {Start: t0.Add(4 * time.Second), Err: "connection reset"}, at(9, 100*time.Millisecond, 200),
	}
	s := Summarize(shots, t0.Add(time.Second), t0.Add(5*time.Second))
	assert.Equal(t, 4, s.Count, "from is inclusive, to exclusive")
	assert.Equal(t, 2, s.Failed, "a 502 and a transport error")
	assert.Equal(t, 2.0, s.P50)
	assert.Equal(t, 4.0, s.P99)
	empty := Summarize(shots, t0.Add(5*time.Second), t0.Add(6*time.Second))
	assert.Zero(t, empty.Count)
	assert.True(t, math.IsNaN(empty.P50), "an empty window has no percentile")
}

func TestTimeToSafety(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// seq builds shots 20 ms apart from "version:status" codes.
	seq := func(codes ...string) []Shot {
		out := make([]Shot, len(codes))
		for i, c := range codes {
			s := Shot{Start: t0.Add(time.Duration(i) * 20 * time.Millisecond), Status: 200}
			switch c {
			case "1":
				s.Version = "v1"
			case "2":
				s.Version = "v2"
			case "2x":
				s.Version, s.Status = "v2", 500
			case "x":
				s.Status = 503 // the router found no endpoint
			case "1x":
				s.Version, s.Status = "v1", 500
			}
			out[i] = s
		}
		return out
	}
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * 20 * time.Millisecond) }
	for _, tc := range []struct {
		name    string
		shots   []Shot
		want    Safety
		wantErr string
	}{
		{name: "blue-green: clean switch back", shots: seq("1", "2", "2", "2x", "2x", "2x", "1", "1", "1"),
			want: Safety{FailedAt: ms(3), SafeAt: ms(6), Streak: 3}},
		{name: "failures of v1 before v2 answered do not count", shots: seq("1x", "1", "2", "2x", "1", "1", "1"),
			want: Safety{FailedAt: ms(3), SafeAt: ms(4), Streak: 3}},
		{name: "rolling: mixed answers until the last new pod is gone", shots: seq("1", "2", "2x", "2", "2x", "1", "2x", "1", "1", "1"),
			want: Safety{FailedAt: ms(2), SafeAt: ms(7), Streak: 3}},
		{name: "a router error after the rollback moves safety later", shots: seq("2", "2x", "1", "x", "1", "1", "1"),
			want: Safety{FailedAt: ms(1), SafeAt: ms(4), Streak: 3}},
		{name: "new version never answered", shots: seq("1", "1", "1"), wantErr: "never answered"},
		{name: "new version never failed", shots: seq("1", "2", "2", "1", "1", "1"), wantErr: "no request failed"},
		{name: "old version not alone long enough", shots: seq("2", "2x", "1", "1"), wantErr: "only 2 answers"},
		{name: "still failing at the end", shots: seq("2", "2x", "2x"), wantErr: "only 0 answers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := TimeToSafety(tc.shots, "v2", "v1", 3)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

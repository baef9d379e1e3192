package promsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const token = "prom-canary-7f3a"

var t0 = time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)

// fakeAPI answers /api/v1/query the way Prometheus's HTTP API does, with
// the body that answer(query) picks, and records what it was sent.
type fakeAPI struct {
	mu      sync.Mutex
	queries []string
	auth    []string
	answer  func(query string) (status int, body string)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/prom/api/v1/query" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	q := r.PostFormValue("query")
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	status, body := f.answer(q)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// vector is a success answer holding one series per value.
func vector(values ...string) string {
	var res []string
	for _, v := range values {
		res = append(res, fmt.Sprintf(`{"metric":{},"value":[%d.123,%q]}`, t0.Unix(), v))
	}
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(res, ",") + `]}}`
}

// healthy answers 300 requests, a 2% error share and a p95 of 0.05 s.
func healthy(q string) (int, string) {
	switch {
	case strings.HasPrefix(q, "sum(increase("):
		return 200, vector("300")
	case strings.HasPrefix(q, "(sum(rate("):
		return 200, vector("0.02")
	case strings.HasPrefix(q, "histogram_quantile("):
		return 200, vector("0.05")
	}
	return 400, `{"status":"error","errorType":"bad_data","error":"unexpected query"}`
}

func newSource(t *testing.T, api http.Handler) (*Source, string) {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &Source{
		URL: srv.URL + "/prom/", Token: token, Window: 30 * time.Second,
		Queries: DefaultQueries("http_requests_total", "status", "http_request_duration_seconds"),
		Pods: func(context.Context) ([]Pod, error) {
			return []Pod{{Name: "podinfo-7d9f-abcde", Started: t0.Add(-time.Hour)}, {Name: "podinfo-7d9f-fghij"}}, nil
		},
		Timeout: 2 * time.Second, Now: func() time.Time { return t0 },
	}, srv.URL
}

func TestPrometheusDefaultQueriesOverThePodLabel(t *testing.T) {
	t.Parallel()
	q := DefaultQueries("http_requests_total", "code", "http_request_duration_seconds")
	pods := []string{"shop-1.a", "shop-2"}
	assert.Equal(t, `sum(increase(http_requests_total{pod=~"shop-1\\.a|shop-2"}[30s]))`, Expand(q.Requests, pods, 30*time.Second))
	assert.Equal(t, `(sum(rate(http_requests_total{pod=~"shop-1\\.a|shop-2",code=~"5.."}[30s])) or vector(0)) / sum(rate(http_requests_total{pod=~"shop-1\\.a|shop-2"}[30s]))`,
		Expand(q.ErrorShare, pods, 30*time.Second))
	assert.Equal(t, `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{pod=~"shop-1\\.a|shop-2"}[30s])))`,
		Expand(q.Latency, pods, 30*time.Second))
	assert.Equal(t, "2s", Range(1500*time.Millisecond), "a range is rounded up to whole seconds")
	assert.Equal(t, "1s", Range(0))
}

func TestPrometheusWindowFromTheAPI(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{answer: healthy}
	s, _ := newSource(t, api)
	w := s.Next(t.Context())
	assert.False(t, w.Unread)
	assert.Empty(t, w.Findings)
	assert.Equal(t, 2, w.Pods)
	assert.Equal(t, 300.0, w.Requests)
	assert.InDelta(t, 6.0, w.Errors, 1e-9)
	assert.True(t, w.HasLatency)
	assert.Equal(t, 50*time.Millisecond, w.P95)
	assert.Equal(t, t0.Add(-30*time.Second), w.Start)
	assert.Equal(t, t0, w.End)

	young := s.Pods
	s.Pods = func(ctx context.Context) ([]Pod, error) {
		return []Pod{{Name: "podinfo-7d9f-abcde", Started: t0.Add(-10 * time.Second)}}, nil
	}
	w = s.Next(t.Context())
	assert.Equal(t, t0.Add(-10*time.Second), w.Start, "a window reaches no further back than the oldest pod's start")
	s.Pods = young

	require.Len(t, api.queries, 6, "three instant queries per interval, two intervals")
	assert.Contains(t, api.queries[0], `pod=~"podinfo-7d9f-abcde|podinfo-7d9f-fghij"`)
	for _, a := range api.auth {
		assert.Equal(t, "Bearer "+token, a)
	}
}

func TestPrometheusQuietWindowSkipsTheRatioQueries(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{answer: func(q string) (int, string) { return 200, vector("0") }}
	s, _ := newSource(t, api)
	w := s.Next(t.Context())
	assert.False(t, w.Unread, "no traffic is a window of no traffic, for the min-requests rule to call quiet")
	assert.Zero(t, w.Requests)
	assert.Len(t, api.queries, 1)
}

func TestPrometheusTroubleIsAFindingNotAFigure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		answer func(q string) (int, string)
		want   string
	}{
		{"server error", func(string) (int, string) { return 503, "upstream down" }, "answered the request count query with 503 Service Unavailable"},
		{"token refused", func(string) (int, string) { return 401, "Unauthorized" }, "refused the request count query with 401 Unauthorized: check prometheus-token"},
		{"query error", func(string) (int, string) {
			return 400, `{"status":"error","errorType":"bad_data","error":"1:14: parse error: unexpected identifier"}`
		}, "could not run the request count query: bad_data: 1:14: parse error"},
		{"query failed inside", func(string) (int, string) {
			return 503, `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`
		}, "could not run the request count query: timeout: query timed out"},
		{"empty result", func(string) (int, string) { return 200, vector() }, "found no series for the 2 pods of the new version in the last 30s: are they scraped, with the pod label kept?"},
		{"two series", func(string) (int, string) { return 200, vector("1", "2") }, "returned 2 series; it must return one (sum it)"},
		{"matrix", func(string) (int, string) {
			return 200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`
		}, "returned a matrix; it must return one number"},
		{"not the API", func(string) (int, string) { return 200, "<html>login</html>" }, "no API answer (is prometheus-url the base of its HTTP API?)"},
		{"error share missing", func(q string) (int, string) {
			if strings.HasPrefix(q, "sum(increase(") {
				return 200, vector("100")
			}
			return 200, vector()
		}, "the error share query found no series although the pods served requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newSource(t, &fakeAPI{answer: tc.answer})
			w := s.Next(t.Context())
			assert.True(t, w.Unread)
			require.Len(t, w.Findings, 1)
			assert.Contains(t, w.Findings[0], tc.want)
			assert.NotContains(t, w.Findings[0], token)
		})
	}
}

func TestPrometheusUnreachableIsReportedOnceAndItsEndToo(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	up := false
	api := &fakeAPI{answer: healthy}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ok := up
		mu.Unlock()
		if !ok {
			// A connection dropped without an answer, as a dead upstream does.
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		api.ServeHTTP(w, r)
	}))
	srv.Start()
	t.Cleanup(srv.Close)
	s, _ := newSource(t, api)
	s.URL = srv.URL + "/prom"

	w := s.Next(t.Context())
	assert.True(t, w.Unread)
	require.Len(t, w.Findings, 1)
	assert.Contains(t, w.Findings[0], "unreachable at "+srv.URL+"/prom: ")
	w = s.Next(t.Context())
	assert.True(t, w.Unread)
	assert.Empty(t, w.Findings, "a lasting outage is one finding")

	mu.Lock()
	up = true
	mu.Unlock()
	w = s.Next(t.Context())
	assert.False(t, w.Unread)
	require.Len(t, w.Findings, 1)
	assert.Contains(t, w.Findings[0], "answers again")
}

func TestPrometheusConnectionRefusedAndSlowAnswers(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	s, _ := newSource(t, http.NotFoundHandler())
	s.URL = url
	w := s.Next(t.Context())
	assert.True(t, w.Unread)
	require.Len(t, w.Findings, 1)
	assert.Contains(t, w.Findings[0], "connection refused")

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	s.URL, s.Timeout = slow.URL, 200*time.Millisecond
	w = s.Next(t.Context())
	assert.True(t, w.Unread)
	require.Len(t, w.Findings, 1)
	assert.Contains(t, w.Findings[0], "did not answer the request count query within 200ms")
}

func TestPrometheusPodsTrouble(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{answer: healthy}
	s, _ := newSource(t, api)
	s.Pods = func(context.Context) ([]Pod, error) { return nil, nil }
	w := s.Next(t.Context())
	assert.True(t, w.Unread)
	assert.Equal(t, []string{"the new version has no pods to query yet"}, w.Findings)
	s.Pods = func(context.Context) ([]Pod, error) { return nil, errors.New("forbidden") }
	w = s.Next(t.Context())
	assert.Equal(t, []string{"list the new version's pods to query: forbidden"}, w.Findings)
	assert.Empty(t, api.queries, "no query without pods: an empty regex would match every pod")
}

// The fake's bodies have the shapes the HTTP API documents for an instant
// query: a vector of [time, "value"] pairs, or a scalar pair.
func TestPrometheusFakeAnswersParseAsTheAPIDocuments(t *testing.T) {
	t.Parallel()
	var env apiResponse
	require.NoError(t, json.Unmarshal([]byte(vector("1.5")), &env))
	var d queryData
	require.NoError(t, json.Unmarshal(env.Data, &d))
	v, ok, err := valueOf("x", d)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 1.5, v)
	v, ok, err = valueOf("x", queryData{ResultType: "scalar", Result: json.RawMessage(`[1700000000,"NaN"]`)})
	require.NoError(t, err)
	assert.False(t, ok, "NaN (0/0) is no value")
	assert.Zero(t, v)
}

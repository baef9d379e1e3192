package promsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Window is what Prometheus says about the pods' requests over one window.
type Window struct {
	// Start and End bound the window: End is the queries' evaluation time.
	Start time.Time
	End   time.Time
	// Pods is how many pods the queries were limited to.
	Pods int
	// Requests is how many requests they served, Errors how many of those
	// answered 5xx.
	Requests float64
	Errors   float64
	// P95 is their 95th percentile latency when HasLatency is set.
	P95        time.Duration
	HasLatency bool
	// Unread is set when nothing could be read about the app: Prometheus
	// unreachable, refusing, failing a query, or knowing no series.
	Unread bool
	// Findings are the source's news about itself; none of them counts
	// for or against the app.
	Findings []string
}

// Pod is one pod whose requests are judged.
type Pod struct {
	Name string
	// Started is when it could first serve (turned ready): a window never
	// reaches before the first pod's, so a young version's rate is not
	// diluted by time it did not serve.
	Started time.Time
}

// maxBody bounds what is read of one answer: an instant query of one
// summed series is a few hundred bytes.
const maxBody = 1 << 20

// Source queries one Prometheus about the pods that Pods lists. Use one
// Source per monitoring run; it is not safe for concurrent Next calls.
type Source struct {
	// URL is the base of the HTTP API, before /api/v1.
	URL string
	// Token, when set, is sent as a bearer token; it never appears in a
	// finding.
	Token string
	// Queries are the templates run each interval.
	Queries Queries
	// Window is the range every query covers, ending at Now.
	Window time.Duration
	// Pods lists the pods to judge.
	Pods func(ctx context.Context) ([]Pod, error)
	// Client sends the queries (http.DefaultClient when nil); Timeout
	// bounds each one.
	Client  *http.Client
	Timeout time.Duration
	// Now is the time source.
	Now func() time.Time

	// trouble is the last problem reported, so that a lasting outage is
	// one finding and its end another.
	trouble string
}

// Next runs the queries for the window ending now. It never fails: a
// problem is a finding and an Unread window.
func (s *Source) Next(ctx context.Context) Window {
	now := s.Now()
	w := Window{Start: now.Add(-s.Window), End: now}
	list, err := s.Pods(ctx)
	if err != nil {
		return s.unread(w, fmt.Sprintf("list the new version's pods to query: %v", err))
	}
	if len(list) == 0 {
		return s.unread(w, "the new version has no pods to query yet")
	}
	pods := make([]string, len(list))
	first := now
	for i, p := range list {
		pods[i] = p.Name
		if !p.Started.IsZero() && p.Started.Before(first) {
			first = p.Started
		}
	}
	if first.After(w.Start) {
		w.Start = first
	}
	w.Pods = len(pods)

	requests, ok, err := s.query(ctx, "request count", Expand(s.Queries.Requests, pods, s.Window), now)
	if err != nil {
		return s.unread(w, err.Error())
	}
	if !ok {
		return s.unread(w, fmt.Sprintf("the request count query found no series for the %d pods of the new version in the last %s: are they scraped, with the pod label kept?", len(pods), Range(s.Window)))
	}
	w.Requests = max(requests, 0)
	if w.Requests > 0 {
		share, ok, err := s.query(ctx, "error share", Expand(s.Queries.ErrorShare, pods, s.Window), now)
		if err != nil {
			return s.unread(w, err.Error())
		}
		if !ok {
			return s.unread(w, "the error share query found no series although the pods served requests")
		}
		w.Errors = w.Requests * min(max(share, 0), 1)
		p95, ok, err := s.query(ctx, "latency", Expand(s.Queries.Latency, pods, s.Window), now)
		if err != nil {
			return s.unread(w, err.Error())
		}
		if ok && p95 >= 0 {
			w.P95, w.HasLatency = time.Duration(p95*float64(time.Second)), true
		}
	}
	if s.trouble != "" {
		w.Findings = append(w.Findings, fmt.Sprintf("answers again (after: %s)", s.trouble))
		s.trouble = ""
	}
	return w
}

// unread is a window about which nothing is known, with its finding when
// it differs from the last one.
func (s *Source) unread(w Window, problem string) Window {
	w.Unread = true
	if problem != s.trouble {
		s.trouble = problem
		w.Findings = append(w.Findings, problem)
	}
	return w
}

// apiResponse is the envelope of every Prometheus HTTP API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

// queryData is the data of an instant query.
type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// sample is one element of a vector result.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs one instant query (POST /api/v1/query, so many pod names fit)
// and returns its single value; ok is false when the answer holds no
// series or NaN (0/0: nothing to divide).
func (s *Source) query(ctx context.Context, what, promql string, at time.Time) (value float64, ok bool, err error) {
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	form := url.Values{"query": {promql}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	endpoint := strings.TrimRight(s.URL, "/") + "/api/v1/query"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, false, fmt.Errorf("build the %s query: %w", what, s.scrub(err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, false, fmt.Errorf("did not answer the %s query within %s", what, s.Timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL
		}
		return 0, false, fmt.Errorf("unreachable at %s: %w", s.URL, s.scrub(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, false, fmt.Errorf("read the answer to the %s query: %w", what, s.scrub(err))
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return 0, false, fmt.Errorf("refused the %s query with %s: check prometheus-token", what, resp.Status)
	case resp.StatusCode >= 500 && !isAPIError(body):
		return 0, false, fmt.Errorf("answered the %s query with %s", what, resp.Status)
	}
	var env apiResponse
	if err := json.Unmarshal(body, &env); err != nil {
		return 0, false, fmt.Errorf("answered the %s query with %s and no API answer (is prometheus-url the base of its HTTP API?)", what, resp.Status)
	}
	if env.Status != "success" {
		return 0, false, fmt.Errorf("could not run the %s query: %s: %s", what, env.ErrorType, s.scrubText(env.Error))
	}
	var data queryData
	if err := json.Unmarshal(env.Data, &data); err != nil {
		return 0, false, fmt.Errorf("read the answer to the %s query: %w", what, err)
	}
	return valueOf(what, data)
}

// valueOf reads the single number of an instant query's result.
func valueOf(what string, data queryData) (float64, bool, error) {
	var raw [2]any
	switch data.ResultType {
	case "scalar":
		if err := json.Unmarshal(data.Result, &raw); err != nil {
			return 0, false, fmt.Errorf("read the %s query's scalar: %w", what, err)
		}
	case "vector":
		var vec []sample
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return 0, false, fmt.Errorf("read the %s query's vector: %w", what, err)
		}
		switch len(vec) {
		case 0:
			return 0, false, nil
		case 1:
			raw = vec[0].Value
		default:
			return 0, false, fmt.Errorf("the %s query returned %d series; it must return one (sum it)", what, len(vec))
		}
	default:
		return 0, false, fmt.Errorf("the %s query returned a %s; it must return one number", what, data.ResultType)
	}
	text, _ := raw[1].(string)
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return 0, false, fmt.Errorf("the %s query returned %q, not a number", what, text)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, nil
	}
	return v, true, nil
}

// isAPIError reports whether a 5xx body is the API's own error envelope
// (a query that timed out or failed inside Prometheus).
func isAPIError(body []byte) bool {
	var env apiResponse
	return json.Unmarshal(body, &env) == nil && env.Status == "error"
}

func (s *Source) scrub(err error) error {
	if s.Token == "" || !strings.Contains(err.Error(), s.Token) {
		return err
	}
	return errors.New(s.scrubText(err.Error()))
}

func (s *Source) scrubText(text string) string {
	if s.Token == "" {
		return text
	}
	return strings.ReplaceAll(text, s.Token, "***")
}

package github

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ebeautything/greenlight/internal/event"
)

// Distinctive values that must never reach GitHub except the token, which
// belongs in the Authorization header only.
const (
	testToken       = "ghs_TOKEN0123456789abcdefDISTINCT"
	secretPassword  = "SECRETenvPASSWORD42"
	secretQuery     = "SECRETenvQUERYtoken"
	secretInMessage = "SECRETinMESSAGEvalue"
	secretInFinding = "SECRETinFINDINGvalue"
	headSHA         = "b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0"
	apiPrefix       = "/api/v3/"
)

// allSecrets lists every distinctive secret a test feeds in.
var allSecrets = []string{testToken, secretPassword, secretQuery, secretInMessage, secretInFinding}

// t0 is a fixed origin so golden files are reproducible.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// request is one request the fake API received.
type request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   any    `json:"body"`

	raw    string
	header http.Header
	query  string
}

// answer is what the fake API sends back.
type answer struct {
	code   int
	header map[string]string
	body   string
	// stored makes an error answer to a deployment create one sent after
	// the deployment was stored, as when GitHub's answer is lost.
	stored bool
}

// fakeAPI is a GitHub REST API on loopback, mounted under apiPrefix like an
// Enterprise Server, that records every request.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu   sync.Mutex
	reqs []request
	// respond may override the answer to the n-th (0-based) request; it
	// returns false to fall back to the default answer.
	respond func(n int, r request) (answer, bool)
	// hold, when set, is waited on before answering.
	hold chan struct{}
	// deployments are the deployments created, as GitHub lists them.
	deployments []map[string]any
}

// newFakeAPI starts a recording API server.
func newFakeAPI(t *testing.T, respond func(n int, r request) (answer, bool)) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, respond: respond}
	mux := http.NewServeMux()
	mux.HandleFunc(apiPrefix, f.serve)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request outside %s: %s %s", apiPrefix, r.Method, r.URL.Path)
		http.NotFound(w, r)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// serve records the request and answers it.
func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	req := request{Method: r.Method, Path: r.URL.Path, raw: string(raw), header: r.Header.Clone(), query: r.URL.RawQuery}
	if len(raw) > 0 {
		var body any
		if err := json.Unmarshal(raw, &body); err != nil {
			f.t.Errorf("request body is not JSON: %v", err)
		}
		req.Body = body
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, req)
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}

	a := defaultAnswer(req)
	if f.respond != nil {
		if got, ok := f.respond(n, req); ok {
			a = got
		}
	}
	if a.code == http.StatusCreated || a.stored {
		a = f.deploymentsAnswer(req, a)
	}
	if req.Method == http.MethodGet && strings.HasSuffix(req.Path, "/deployments") {
		a = f.listDeployments(r)
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.code)
	_, _ = io.WriteString(w, a.body)
}

// deploymentsAnswer stores a created deployment under the id the answer
// gives it, so a later list finds it.
func (f *fakeAPI) deploymentsAnswer(req request, a answer) answer {
	if req.Method != http.MethodPost || !strings.HasSuffix(req.Path, "/deployments") {
		return a
	}
	body, _ := req.Body.(map[string]any)
	f.mu.Lock()
	defer f.mu.Unlock()
	id := 4242 + len(f.deployments)
	d := map[string]any{"id": id, "sha": body["ref"], "ref": body["ref"], "task": body["task"],
		"environment": body["environment"], "payload": body["payload"]}
	f.deployments = append(f.deployments, d)
	if a.code == http.StatusCreated {
		a.body = fmt.Sprintf(`{"id": %d}`, id)
	}
	return a
}

// listDeployments answers GET .../deployments with the stored deployments
// that match its sha, environment and task filters, newest first.
func (f *fakeAPI) listDeployments(r *http.Request) answer {
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	list := []map[string]any{}
	for i := len(f.deployments) - 1; i >= 0; i-- {
		d := f.deployments[i]
		if (q.Get("sha") == "" || d["sha"] == q.Get("sha")) && (q.Get("environment") == "" || d["environment"] == q.Get("environment")) &&
			(q.Get("task") == "" || d["task"] == q.Get("task")) {
			list = append(list, d)
		}
	}
	body, _ := json.Marshal(list)
	return answer{code: http.StatusOK, body: string(body)}
}

// created returns the deployments created so far.
func (f *fakeAPI) created() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.deployments...)
}

// defaultAnswer is what github.com answers to a successful request.
func defaultAnswer(r request) answer {
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/deployments"):
		return answer{code: http.StatusCreated, body: `{"id": 4242}`}
	case r.Method == http.MethodPost && strings.Contains(r.Path, "/deployments/") && strings.HasSuffix(r.Path, "/statuses"):
		return answer{code: http.StatusCreated, body: `{"id": 1}`}
	case r.Method == http.MethodPost && strings.Contains(r.Path, "/statuses/"):
		return answer{code: http.StatusCreated, body: `{"id": 2}`}
	}
	return answer{code: http.StatusNotFound, body: `{"message": "Not Found"}`}
}

// requests returns a copy of what the server received so far.
func (f *fakeAPI) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// url is the API root to configure.
func (f *fakeAPI) url() string { return f.srv.URL + apiPrefix }

// sink starts a StatusSink against the server whose retries do not wait;
// the waits asked for are appended to *waits when waits is not nil.
func (f *fakeAPI) sink(opts StatusOptions, waits *[]time.Duration) *StatusSink {
	if opts.APIURL == "" {
		opts.APIURL = f.url()
	}
	opts.HTTPClient = f.srv.Client()
	var mu sync.Mutex
	return newStatusSink(opts, func(ctx context.Context, d time.Duration) bool {
		if waits != nil {
			mu.Lock()
			*waits = append(*waits, d)
			mu.Unlock()
		}
		return ctx.Err() == nil
	})
}

// testRun is a production run whose data carries secrets in the places a
// careless sink would copy them from.
func testRun() event.Run {
	return event.Run{
		Environment:    "production",
		Strategy:       "rolling",
		Namespace:      "shop",
		Deployment:     "app",
		Image:          "ghcr.io/octo/app:v2",
		PreviousImage:  "ghcr.io/octo/app:v1",
		DeploymentID:   "gl-20250301-1200",
		SHA:            headSHA,
		Repository:     "octo/app",
		ServerURL:      "https://github.com",
		RunURL:         "https://github.com/octo/app/actions/runs/99",
		Actor:          "octocat",
		EnvironmentURL: "https://deployer:" + secretPassword + "@app.example.com/shop?token=" + secretQuery,
		Production:     true,
		StartedAt:      t0,
	}
}

// stageEvents are the events of one stage that ends with outcome.
func stageEvents(stage event.Stage, outcome event.Outcome, msg string) []event.Event {
	return []event.Event{
		{Kind: event.StageStarted, Time: t0, Stage: stage},
		{Kind: event.StageFinished, Time: t0, Stage: stage, Outcome: outcome, Message: msg},
	}
}

// runEvents builds a run: RunStarted, the middle events, RunFinished.
func runEvents(run event.Run, status event.Status, reason string, middle ...[]event.Event) []event.Event {
	out := []event.Event{{Kind: event.RunStarted, Time: t0, Run: &run}}
	for _, m := range middle {
		out = append(out, m...)
	}
	return append(out, event.Event{Kind: event.RunFinished, Time: t0, Run: &run,
		Result: &event.Result{Status: status, Reason: reason, FinishedAt: t0.Add(time.Minute)}})
}

// play feeds events to s, closes it and returns its warnings.
func play(t *testing.T, s *StatusSink, events []event.Event) []string {
	t.Helper()
	for _, e := range events {
		s.Handle(e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.Close(ctx)
}

// assertNoSecrets checks that the token appears only as the bearer token
// and that no other secret was sent anywhere.
func assertNoSecrets(t *testing.T, reqs []request) {
	t.Helper()
	for i, r := range reqs {
		assert.Equal(t, "Bearer "+testToken, r.header.Get("Authorization"), "request %d", i)
		var parts []string
		parts = append(parts, r.Path, r.query, r.raw)
		for k, vs := range r.header {
			if k == "Authorization" {
				continue
			}
			parts = append(parts, k+": "+strings.Join(vs, ","))
		}
		all := strings.Join(parts, "\n")
		for _, s := range allSecrets {
			assert.NotContains(t, all, s, "request %d %s %s", i, r.Method, r.Path)
		}
	}
}

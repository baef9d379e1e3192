package github

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/redact"
)

// Defaults for StatusOptions.
const (
	// DefaultAPIURL is the REST API root of github.com.
	DefaultAPIURL = "https://api.github.com/"
	// DefaultCallTimeout bounds one API request.
	DefaultCallTimeout = 10 * time.Second
	// DefaultRetryBudget bounds one call with its retries: a status that
	// cannot be set within it is not worth holding the run's end for.
	DefaultRetryBudget = 10 * time.Second
	// DefaultQueueSize is how many events may wait for the API. A run emits
	// about a dozen that this sink acts on.
	DefaultQueueSize = 64
)

// StatusOptions configures a StatusSink.
type StatusOptions struct {
	// Token authenticates every request (GITHUB_TOKEN or a personal token);
	// without one the sink does nothing but record one warning.
	Token string
	// APIURL is the REST API root, GITHUB_API_URL, which differs on GitHub
	// Enterprise Server; empty means DefaultAPIURL.
	APIURL string
	// HTTPClient sends the requests; nil means a new client with the default
	// transport.
	HTTPClient *http.Client
	// Secrets are replaced in every description sent, in case a message
	// quotes one.
	Secrets []string
	// CallTimeout bounds each request; zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// RetryBudget bounds one call including its retries; zero means
	// DefaultRetryBudget.
	RetryBudget time.Duration
	// QueueSize bounds the events waiting for the worker; zero means
	// DefaultQueueSize. Events beyond it are dropped and counted.
	QueueSize int
	// SkipDeployment leaves the GitHub Deployment out (github-deployment:
	// off), for a job that declares an environment: GitHub creates a
	// Deployment for it already. Commit statuses are still set.
	SkipDeployment bool
}

// StatusSink mirrors a run to GitHub: a commit status per stage, context
// greenlight/<environment>/<stage>, pending when the stage starts and
// success, failure or error when it ends; and a GitHub Deployment created
// when the run starts, with an in_progress status and a final success or
// failure status.
//
// Handle never blocks: events go to a bounded queue served by one worker
// goroutine. Failed calls become warnings that Close returns. A missing
// token, or a token GitHub refuses (401, 403, 404; pull requests from forks
// get a read-only token), stops every later call with a single warning.
type StatusSink struct {
	client  *gh.Client
	opts    StatusOptions
	secrets []string
	// sleep waits between retries; tests replace it to run without waiting.
	sleep func(context.Context, time.Duration) bool

	// ctx ends in-flight calls once Close's deadline has passed.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	queue    chan event.Event
	closed   bool
	dropped  int
	warnings []string
	stopped  bool

	// Worker-only state.
	run          *event.Run
	owner, repo  string
	deploymentID int64
	pending      map[event.Stage]bool
}

// NewStatusSink starts a sink's worker. Close must be called to stop it.
func NewStatusSink(opts StatusOptions) *StatusSink {
	return newStatusSink(opts, sleep)
}

// newStatusSink is NewStatusSink with the retry wait injected.
func newStatusSink(opts StatusOptions, sleepFn func(context.Context, time.Duration) bool) *StatusSink {
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.RetryBudget <= 0 {
		opts.RetryBudget = DefaultRetryBudget
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &StatusSink{
		opts:    opts,
		secrets: secretsOf(opts),
		sleep:   sleepFn,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		queue:   make(chan event.Event, opts.QueueSize),
		pending: map[event.Stage]bool{},
	}
	client, err := newClient(opts)
	switch {
	case opts.Token == "":
		s.stop("GitHub commit statuses and deployment skipped: no GitHub token was given")
	case err != nil:
		s.stop(fmt.Sprintf("GitHub commit statuses and deployment skipped: %v", err))
	default:
		s.client = client
	}
	go s.work()
	return s
}

// secretsOf lists what must never be sent: the configured secrets and the
// token itself, which belongs in the Authorization header only.
func secretsOf(opts StatusOptions) []string {
	out := slices.Clone(opts.Secrets)
	if opts.Token != "" {
		out = append(out, opts.Token)
	}
	return out
}

// newClient returns a go-github client for opts.APIURL. The URL is used as
// given, since GITHUB_API_URL is already the API root on github.com and on
// Enterprise Server alike.
func newClient(opts StatusOptions) (*gh.Client, error) {
	raw := opts.APIURL
	if raw == "" {
		raw = DefaultAPIURL
	}
	base, err := url.Parse(raw)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("the GitHub API URL %q is not an http(s) URL", redact.PublicURL(raw))
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	c := gh.NewClient(hc).WithAuthToken(opts.Token)
	c.BaseURL = base
	return c, nil
}

// relevant reports whether the sink acts on events of kind k; the others
// (probe progress above all) are not queued at all.
func relevant(k event.Kind) bool {
	switch k {
	case event.RunStarted, event.StageStarted, event.StageFinished, event.RunFinished:
		return true
	}
	return false
}

// Handle queues e for the worker without blocking. Events arriving when the
// queue is full, or after Close, are dropped.
func (s *StatusSink) Handle(e event.Event) {
	if !relevant(e.Kind) {
		return
	}
	e = detach(e)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.stopped {
		return
	}
	select {
	case s.queue <- e:
	default:
		s.dropped++
	}
}

// detach copies the parts of e this sink reads, so the pipeline may reuse
// its values after emitting.
func detach(e event.Event) event.Event {
	if e.Run != nil {
		r := *e.Run
		e.Run = &r
	}
	if e.Result != nil {
		r := *e.Result
		e.Result = &r
	}
	return e
}

// Close stops accepting events, waits for the queued ones to be sent until
// ctx ends, and returns the warnings collected. Calls still in flight when
// ctx ends are cancelled and counted in a warning. Close may be called more
// than once.
func (s *StatusSink) Close(ctx context.Context) []string {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()

	select {
	case <-s.done:
	case <-ctx.Done():
		left := len(s.queue)
		s.cancel()
		s.mu.Lock()
		if !s.stopped {
			s.warnings = append(s.warnings, fmt.Sprintf(
				"GitHub updates were cut short when the deadline passed: the call in flight and %d queued events were not sent", left))
			s.stopped = true
		}
		s.mu.Unlock()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.warnings)
	if s.dropped > 0 {
		out = append(out, fmt.Sprintf("%d GitHub updates were dropped because the queue of %d was full", s.dropped, s.opts.QueueSize))
	}
	return out
}

// warn records a warning unless the sink has been stopped.
func (s *StatusSink) warn(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.warnings = append(s.warnings, redact.Secrets(msg, s.secrets))
	}
}

// stop records msg as the last warning and skips every later call.
func (s *StatusSink) stop(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.warnings = append(s.warnings, redact.Secrets(msg, s.secrets))
		s.stopped = true
	}
}

// isStopped reports whether later calls are to be skipped.
func (s *StatusSink) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped || s.ctx.Err() != nil
}

// work serves the queue until Close closes it.
func (s *StatusSink) work() {
	defer close(s.done)
	defer s.cancel()
	for e := range s.queue {
		if s.isStopped() {
			continue
		}
		s.handle(e)
	}
}

// handle turns one event into API calls.
func (s *StatusSink) handle(e event.Event) {
	if e.Kind == event.RunStarted {
		s.start(e.Run)
		return
	}
	if s.run == nil {
		return
	}
	switch e.Kind {
	case event.StageStarted:
		s.pending[e.Stage] = true
		s.setStatus(e.Stage, "pending", stageDescription(e))
	case event.StageFinished:
		state, ok := commitState(e.Outcome, s.pending[e.Stage])
		delete(s.pending, e.Stage)
		if ok {
			s.setStatus(e.Stage, state, stageDescription(e))
		}
	case event.RunFinished:
		s.finish(e)
	}
}

// start records the run and creates its GitHub Deployment.
func (s *StatusSink) start(run *event.Run) {
	if run == nil || s.run != nil {
		return
	}
	owner, repo, ok := strings.Cut(run.Repository, "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		s.stop(fmt.Sprintf("GitHub commit statuses and deployment skipped: the repository %q is not owner/name", run.Repository))
		return
	}
	if run.SHA == "" {
		s.stop("GitHub commit statuses and deployment skipped: the commit SHA is unknown")
		return
	}
	s.run, s.owner, s.repo = run, owner, repo
	if s.opts.SkipDeployment {
		return
	}

	req := deploymentRequest(*run, s.secrets)
	var created *gh.Deployment
	tries := 0
	ok = s.call("create the GitHub deployment for "+run.Environment, func(ctx context.Context) (*gh.Response, error) {
		// A create whose answer was lost (a 5xx or a cut connection after
		// GitHub stored it) must not leave a second Deployment behind: a
		// retry first looks for the one this run made.
		if tries++; tries > 1 {
			d, resp, err := s.findDeployment(ctx, req)
			if err != nil || d != nil {
				created = d
				return resp, err
			}
		}
		d, resp, err := s.client.Repositories.CreateDeployment(ctx, owner, repo, req)
		created = d
		return resp, err
	})
	if !ok {
		return
	}
	if created == nil || created.ID == nil {
		s.warn("create the GitHub deployment for " + run.Environment + ": GitHub's answer has no deployment id; deployment statuses skipped")
		return
	}
	s.deploymentID = created.GetID()
	s.setDeploymentStatus(deploymentStatus(*run, "in_progress", "Deploying "+run.Image, s.secrets))
}

// findDeployment returns the Deployment of this run that an earlier try of
// req created, or nil: one for the same commit, environment and task whose
// payload carries the same run key.
//
// GitHub API docs: https://docs.github.com/rest/deployments/deployments#list-deployments
func (s *StatusSink) findDeployment(ctx context.Context, req *gh.DeploymentRequest) (*gh.Deployment, *gh.Response, error) {
	want := req.Payload.(map[string]string)[runKeyField]
	list, resp, err := s.client.Repositories.ListDeployments(ctx, s.owner, s.repo, &gh.DeploymentsListOptions{
		SHA: req.GetRef(), Environment: req.GetEnvironment(), Task: req.GetTask(), ListOptions: gh.ListOptions{PerPage: 100},
	})
	if err != nil {
		return nil, resp, err
	}
	for _, d := range list {
		var payload map[string]any
		if json.Unmarshal(d.Payload, &payload) == nil && payload[runKeyField] == want && d.ID != nil {
			return d, resp, nil
		}
	}
	return nil, resp, nil
}

// finish resolves stages left pending and sets the deployment's final status.
func (s *StatusSink) finish(e event.Event) {
	for _, st := range event.Stages() {
		if s.pending[st] {
			delete(s.pending, st)
			s.setStatus(st, "error", fmt.Sprintf("The run ended before %s finished", st))
		}
	}
	if e.Result == nil {
		return
	}
	state, desc := finalDeployment(*s.run, *e.Result)
	s.setDeploymentStatus(deploymentStatus(*s.run, state, desc, s.secrets))
}

// setStatus sets the commit status of one stage.
//
// GitHub API docs: https://docs.github.com/rest/commits/statuses#create-a-commit-status
func (s *StatusSink) setStatus(stage event.Stage, state, desc string) {
	st := commitStatus(*s.run, stage, state, desc, s.secrets)
	s.call(fmt.Sprintf("set commit status %s to %s", st.GetContext(), state), func(ctx context.Context) (*gh.Response, error) {
		_, resp, err := s.client.Repositories.CreateStatus(ctx, s.owner, s.repo, s.run.SHA, st)
		return resp, err
	})
}

// setDeploymentStatus adds a status to the run's deployment, if one exists.
//
// GitHub API docs: https://docs.github.com/rest/deployments/statuses#create-a-deployment-status
func (s *StatusSink) setDeploymentStatus(req *gh.DeploymentStatusRequest) {
	if s.deploymentID == 0 {
		return
	}
	s.call(fmt.Sprintf("set GitHub deployment status to %s", req.GetState()), func(ctx context.Context) (*gh.Response, error) {
		_, resp, err := s.client.Repositories.CreateDeploymentStatus(ctx, s.owner, s.repo, s.deploymentID, req)
		return resp, err
	})
}

// call runs one API call with a timeout per try, retrying rate limits, 5xx
// answers and transport failures within the retry budget. It reports
// whether the call succeeded; a failure has been recorded as a warning.
func (s *StatusSink) call(what string, do func(context.Context) (*gh.Response, error)) bool {
	start := time.Now()
	for try := 1; ; try++ {
		if s.isStopped() {
			return false
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.CallTimeout)
		resp, err := do(ctx)
		cancel()
		if err == nil {
			return true
		}
		if s.ctx.Err() != nil {
			return false
		}
		d := classify(resp, err, try, time.Now())
		switch d.next {
		case stopAll:
			s.stop(fmt.Sprintf("GitHub commit statuses and deployment skipped from here on: %s: %s", what, d.reason))
			return false
		case retry:
			if try < maxTries && time.Since(start)+d.wait <= s.opts.RetryBudget && s.sleep(s.ctx, d.wait) {
				continue
			}
			if d.rateLimited {
				s.stop(fmt.Sprintf("GitHub commit statuses and deployment skipped from here on: %s: %s", what, d.reason))
			} else {
				s.warn(fmt.Sprintf("%s: %s (gave up after %d tries)", what, d.reason, try))
			}
			return false
		default:
			s.warn(fmt.Sprintf("%s: %s", what, d.reason))
			return false
		}
	}
}

package github

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sethvargo/go-githubactions"
)

// Context is what a run needs to know about the workflow run it is part of.
type Context struct {
	// Repository is "owner/name".
	Repository string
	// SHA is the commit statuses and deployments are attached to: the pull
	// request's head commit on pull_request and pull_request_target events
	// (GITHUB_SHA is then a merge or base commit nobody sees on the pull
	// request), GITHUB_SHA otherwise.
	SHA string
	// Ref is GITHUB_REF, such as refs/heads/main or refs/pull/7/merge.
	Ref string
	// EventName is the event that started the workflow, such as "push".
	EventName string
	// Actor is the user who started the run.
	Actor string
	// RunID identifies the workflow run; RunURL is its page.
	RunID  int64
	RunURL string
	// ServerURL is the GitHub web root and APIURL the REST API root, which
	// differ on GitHub Enterprise Server.
	ServerURL string
	APIURL    string
	// PullRequest is the pull request's number on pull request events.
	PullRequest int
	// Fork is true when the pull request comes from another repository; its
	// token is then read-only and secrets are not passed to the workflow.
	Fork bool
}

// pullRequestEvents are the events whose payload names a pull request whose
// head commit is the one under review.
var pullRequestEvents = []string{"pull_request", "pull_request_target"}

// eventPayload holds the parts of the event payload Context reads.
type eventPayload struct {
	PullRequest *struct {
		Number int `json:"number"`
		Head   struct {
			SHA  string       `json:"sha"`
			Repo *payloadRepo `json:"repo"`
		} `json:"head"`
		Base struct {
			Repo *payloadRepo `json:"repo"`
		} `json:"base"`
	} `json:"pull_request"`
}

// payloadRepo is a repository in an event payload.
type payloadRepo struct {
	FullName string `json:"full_name"`
}

// Context reads the workflow run's context from the GITHUB_* variables and,
// for pull request events, the event payload at GITHUB_EVENT_PATH. The
// returned Context is usable even with an error, which then lists what could
// not be read (and SHA falls back to GITHUB_SHA).
func (a *Action) Context() (Context, error) {
	// The payload is read here rather than by go-githubactions so that an
	// unreadable file still leaves the variables usable.
	withoutEvent := func(k string) string {
		if k == "GITHUB_EVENT_PATH" {
			return ""
		}
		return a.getenv(k)
	}
	gc, err := githubactions.New(githubactions.WithGetenv(withoutEvent), githubactions.WithWriter(io.Discard)).Context()
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("read GitHub context variables: %w", err))
	}
	if gc == nil {
		gc = &githubactions.GitHubContext{}
	}
	c := Context{
		Repository: gc.Repository,
		SHA:        gc.SHA,
		Ref:        gc.Ref,
		EventName:  gc.EventName,
		Actor:      gc.Actor,
		RunID:      gc.RunID,
		ServerURL:  strings.TrimRight(gc.ServerURL, "/"),
		APIURL:     strings.TrimRight(gc.APIURL, "/"),
	}
	c.RunURL = runURL(c.ServerURL, c.Repository, c.RunID)

	for _, name := range pullRequestEvents {
		if c.EventName == name {
			if err := c.fromPullRequest(a.getenv("GITHUB_EVENT_PATH")); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return c, errors.Join(errs...)
}

// runURL returns the workflow run's page, or "" when a part is unknown.
func runURL(server, repo string, id int64) string {
	if server == "" || repo == "" || id <= 0 {
		return ""
	}
	return server + "/" + repo + "/actions/runs/" + strconv.FormatInt(id, 10)
}

// fromPullRequest fills the pull request fields from the payload at path.
func (c *Context) fromPullRequest(path string) error {
	if path == "" {
		return fmt.Errorf("read %s event: GITHUB_EVENT_PATH is not set; using GITHUB_SHA", c.EventName)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s event payload: %w; using GITHUB_SHA", c.EventName, err)
	}
	var p eventPayload
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("parse %s event payload %q: %w; using GITHUB_SHA", c.EventName, path, err)
	}
	pr := p.PullRequest
	if pr == nil || pr.Head.SHA == "" {
		return fmt.Errorf("%s event payload %q has no pull_request.head.sha; using GITHUB_SHA", c.EventName, path)
	}
	c.SHA = pr.Head.SHA
	c.PullRequest = pr.Number
	c.Fork = isFork(pr.Head.Repo, pr.Base.Repo, c.Repository)
	return nil
}

// isFork compares the head repository with the base one. A missing head
// repository means the fork was deleted; the repository's own "fork" flag is
// not used because it is also set for branches within a forked repository.
func isFork(head, base *payloadRepo, repository string) bool {
	if head == nil || head.FullName == "" {
		return true
	}
	want := repository
	if base != nil && base.FullName != "" {
		want = base.FullName
	}
	return !strings.EqualFold(head.FullName, want)
}

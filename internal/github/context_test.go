package github

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const mergeSHA = "ffffffffffffffffffffffffffffffffffffffff"
	pr := func(head, base string) string {
		headRepo := "null"
		if head != "" {
			headRepo = `{"full_name":"` + head + `","fork":true}`
		}
		return `{"pull_request":{"number":7,"head":{"sha":"` + headSHA + `","repo":` + headRepo + `},"base":{"repo":{"full_name":"` + base + `"}}}}`
	}
	base := map[string]string{
		"GITHUB_REPOSITORY": "octo/app",
		"GITHUB_SHA":        mergeSHA,
		"GITHUB_REF":        "refs/heads/main",
		"GITHUB_EVENT_NAME": "push",
		"GITHUB_ACTOR":      "octocat",
		"GITHUB_RUN_ID":     "1234",
		"GITHUB_SERVER_URL": "https://github.com",
		"GITHUB_API_URL":    "https://api.github.com",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	push := Context{
		Repository: "octo/app", SHA: mergeSHA, Ref: "refs/heads/main", EventName: "push", Actor: "octocat",
		RunID: 1234, RunURL: "https://github.com/octo/app/actions/runs/1234",
		ServerURL: "https://github.com", APIURL: "https://api.github.com",
	}
	prCtx := func(eventName string, fork bool) Context {
		c := push
		c.EventName, c.SHA, c.PullRequest, c.Fork, c.Ref = eventName, headSHA, 7, fork, "refs/pull/7/merge"
		return c
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    Context
		wantErr string
	}{
		{name: "push", env: base, want: push},
		{
			name: "enterprise server",
			env:  with("GITHUB_SERVER_URL", "https://ghes.example.com/", "GITHUB_API_URL", "https://ghes.example.com/api/v3"),
			want: func() Context {
				c := push
				c.ServerURL, c.APIURL, c.RunURL = "https://ghes.example.com", "https://ghes.example.com/api/v3", "https://ghes.example.com/octo/app/actions/runs/1234"
				return c
			}(),
		},
		{
			name: "defaults outside a runner",
			env:  map[string]string{},
			want: Context{ServerURL: "https://github.com", APIURL: "https://api.github.com"},
		},
		{
			name: "pull request from a branch uses the head SHA",
			env: with("GITHUB_EVENT_NAME", "pull_request", "GITHUB_REF", "refs/pull/7/merge",
				"GITHUB_EVENT_PATH", writeFile(t, dir, "same.json", pr("octo/app", "octo/app"))),
			want: prCtx("pull_request", false),
		},
		{
			name: "pull request from a fork",
			env: with("GITHUB_EVENT_NAME", "pull_request", "GITHUB_REF", "refs/pull/7/merge",
				"GITHUB_EVENT_PATH", writeFile(t, dir, "fork.json", pr("someone/app", "octo/app"))),
			want: prCtx("pull_request", true),
		},
		{
			name: "pull_request_target from a fork",
			env: with("GITHUB_EVENT_NAME", "pull_request_target", "GITHUB_REF", "refs/pull/7/merge",
				"GITHUB_EVENT_PATH", writeFile(t, dir, "target.json", pr("someone/app", "octo/app"))),
			want: prCtx("pull_request_target", true),
		},
		{
			name: "pull request whose fork was deleted",
			env: with("GITHUB_EVENT_NAME", "pull_request", "GITHUB_REF", "refs/pull/7/merge",
				"GITHUB_EVENT_PATH", writeFile(t, dir, "deleted.json", pr("", "octo/app"))),
			want: prCtx("pull_request", true),
		},
		{
			name:    "pull request without a payload falls back to GITHUB_SHA",
			env:     with("GITHUB_EVENT_NAME", "pull_request", "GITHUB_EVENT_PATH", dir+"/missing.json"),
			want:    func() Context { c := push; c.EventName = "pull_request"; return c }(),
			wantErr: "read pull_request event payload",
		},
		{
			name:    "pull request with a broken payload",
			env:     with("GITHUB_EVENT_NAME", "pull_request", "GITHUB_EVENT_PATH", writeFile(t, dir, "broken.json", "{")),
			want:    func() Context { c := push; c.EventName = "pull_request"; return c }(),
			wantErr: "parse pull_request event payload",
		},
		{
			name:    "pull request payload without a head SHA",
			env:     with("GITHUB_EVENT_NAME", "pull_request", "GITHUB_EVENT_PATH", writeFile(t, dir, "nohead.json", `{"pull_request":{"number":7}}`)),
			want:    func() Context { c := push; c.EventName = "pull_request"; return c }(),
			wantErr: "has no pull_request.head.sha; using GITHUB_SHA",
		},
		{
			name:    "a push payload is not read",
			env:     with("GITHUB_EVENT_PATH", writeFile(t, dir, "push.json", "not json")),
			want:    push,
			wantErr: "",
		},
		{
			name:    "bad run id",
			env:     with("GITHUB_RUN_ID", "abc"),
			want:    func() Context { c := push; c.RunID, c.RunURL = 0, ""; return c }(),
			wantErr: "read GitHub context variables",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NewAction(mapEnv(tt.env), &strings.Builder{}).Context()
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

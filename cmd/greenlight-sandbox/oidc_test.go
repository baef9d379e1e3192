package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// printed reads "  NAME=value" and "  name: value" lines of up's output.
func printed(out string) map[string]string {
	values := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "  ") {
			continue
		}
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.Contains(k, " ") {
			values[k] = v
		} else if k, v, ok := strings.Cut(line, ": "); ok && !strings.Contains(k, " ") {
			values[k] = v
		}
	}
	return values
}

// TestUpOIDCPrintsWhatAJobNeeds runs `up --oidc`, takes an ID token from
// the printed endpoint with the printed request token, as greenlight does
// in a job, and uses it with the printed step inputs against the API
// server: it authenticates as the job's subject, which may deploy in the
// namespace and nothing else.
func TestUpOIDCPrintsWhatAJobNeeds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	start := time.Now()
	go func() {
		done <- run(ctx, []string{"up", "--oidc", "--kubeconfig", filepath.Join(t.TempDir(), "sandbox.kubeconfig"),
			"--oidc-repository", "acme/payments", "--oidc-environment", "production", "--oidc-namespace", "payments"}, &stdout, &stderr)
	}()
	for !strings.Contains(stdout.String(), "Running until interrupted") {
		select {
		case code := <-done:
			t.Fatalf("up exited %d before it was ready:\n%s\n%s", code, stdout.String(), stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
		require.Less(t, time.Since(start), 4*time.Minute, "up is ready within 4 minutes:\n%s", stderr.String())
	}
	t.Logf("up --oidc ready in %s:\n%s", time.Since(start).Round(time.Millisecond), stdout.String())
	v := printed(stdout.String())
	assert.Equal(t, "github-oidc", v["auth"])
	for _, name := range []string{"ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "server", "certificate-authority-data", "audience"} {
		require.NotEmpty(t, v[name], "up prints %s", name)
	}

	// The request greenlight (and @actions/core) makes for the job's token.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v["ACTIONS_ID_TOKEN_REQUEST_URL"]+"&audience="+url.QueryEscape(v["audience"]), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+v["ACTIONS_ID_TOKEN_REQUEST_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var answer struct {
		Value string `json:"value"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
	require.NotEmpty(t, answer.Value)

	ca, err := base64.StdEncoding.DecodeString(v["certificate-authority-data"])
	require.NoError(t, err)
	client, err := kubernetes.NewForConfig(&rest.Config{Host: v["server"], BearerToken: answer.Value, TLSClientConfig: rest.TLSClientConfig{CAData: ca}})
	require.NoError(t, err)
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	require.NoError(t, err, "the API server accepts the token")
	assert.Equal(t, "github:repo:acme/payments:environment:production", review.Status.UserInfo.Username)
	assert.Contains(t, review.Status.UserInfo.Groups, "github:environment:acme/payments:production")
	_, err = client.AppsV1().Deployments("payments").List(ctx, metav1.ListOptions{})
	assert.NoError(t, err, "the job may read Deployments in its namespace")
	for ns, want := range map[string]bool{"payments": true, "default": false} {
		access, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "patch", Group: "apps", Resource: "deployments"},
		}}, metav1.CreateOptions{})
		require.NoError(t, err)
		assert.Equal(t, want, access.Status.Allowed, "patch deployments in %s", ns)
	}

	cancel()
	select {
	case code := <-done:
		assert.Equal(t, exitOK, code)
	case <-time.After(time.Minute):
		t.Fatal("up did not stop within a minute of the interrupt")
	}
}

// TestUpOIDCRejectsBadFlags: each bad value names its flag, exits 2 and
// starts nothing.
func TestUpOIDCRejectsBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--oidc", "--oidc-repository=shop"}, `--oidc-repository: "shop" is not a repository`},
		{[]string{"--oidc", "--oidc-repository=acme/shop/extra"}, "--oidc-repository:"},
		{[]string{"--oidc", "--oidc-environment=prod:eu"}, `--oidc-environment: "prod:eu"`},
		{[]string{"--oidc", "--oidc-ref=main"}, `--oidc-ref: "main" is not a Git ref`},
		{[]string{"--oidc", "--oidc-namespace=Payments"}, `--oidc-namespace: "Payments" is not a namespace name`},
		{[]string{"--oidc-repository=acme/shop"}, "--oidc-repository: needs --oidc"},
		{[]string{"--oidc=maybe"}, "-oidc"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"up"}, tt.args...), &stdout, &stderr)
			assert.Equal(t, exitBadInput, code)
			assert.Contains(t, stderr.String(), tt.want)
			assert.Empty(t, stdout.String())
		})
	}
}

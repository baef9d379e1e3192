package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/strategy"
)

func TestVersionOf(t *testing.T) {
	t.Parallel()
	for image, want := range map[string]string{
		"sampleapp:v2":                "v2",
		"ghcr.io/acme/payments:1.4.0": "1.4.0",
		"localhost:5000/payments":     "",
		"payments@sha256:" + sha:      "",
		"payments:v3@sha256:" + sha:   "v3",
		"not a reference":             "",
	} {
		assert.Equal(t, want, VersionOf(image), image)
	}
}

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestUndoneByStrategy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		steps      []strategy.Step
		undone     bool
		undoFailed bool
	}{
		{"no steps", nil, false, false},
		{"undo succeeded", []strategy.Step{{Name: "apply"}, {Name: "rollout", Err: "x"}, {Name: "undo"}}, true, false},
		{"undo failed", []strategy.Step{{Name: "rollout", Err: "x"}, {Name: "undo", Err: "y"}}, false, true},
		{"failed without undo", []strategy.Step{{Name: "apply", Err: "x"}}, false, false},
	}
	for _, tt := range tests {
		d := strategy.Deployed{Steps: tt.steps}
		assert.Equal(t, tt.undone, undoneByStrategy(d), tt.name)
		assert.Equal(t, tt.undoFailed, undoFailedInStrategy(d), tt.name)
	}
}

func TestManualCommand(t *testing.T) {
	t.Parallel()
	r := &run{cfg: config.Config{Namespace: "shop", Deployment: "payments", Environment: "production"}, out: &Outcome{}}
	r.out.Deployed = strategy.Deployed{Strategy: strategy.NameBlueGreen, PreviousColor: "blue"}
	assert.Equal(t, `kubectl -n shop patch service payments -p '{"spec":{"selector":{"greenlight.dev/color":"blue"}}}'`, r.manualCommand())
	r.out.Deployed = strategy.Deployed{Strategy: strategy.NameRolling, PreviousRevision: 3}
	assert.Equal(t, "kubectl -n shop rollout undo deployment/payments --to-revision=3", r.manualCommand())
	r.out.Deployed = strategy.Deployed{Strategy: strategy.NameRolling}
	assert.Equal(t, "greenlight rollback --environment=production", r.manualCommand())
}

// TestRollForwardCommand: after a rollback the by-hand command puts the new
// version back. TestActionRollForwardByHand runs it on the test cluster.
func TestRollForwardCommand(t *testing.T) {
	t.Parallel()
	r := &run{cfg: config.Config{Namespace: "shop", Deployment: "payments", Environment: "production", RolloutTimeout: 5 * time.Minute}, out: &Outcome{}}
	r.out.Deployed = strategy.Deployed{Strategy: strategy.NameBlueGreen, Deployment: "payments-green", Color: "green",
		PreviousColor: "blue", PreviousDeployment: "payments-blue"}
	assert.Equal(t, `kubectl -n shop scale deployment/payments-green --replicas="$(kubectl -n shop get deployment/payments-blue -o jsonpath='{.spec.replicas}')"
kubectl -n shop rollout status deployment/payments-green --timeout=5m0s
kubectl -n shop patch service payments -p '{"spec":{"selector":{"greenlight.dev/color":"green"}}}'`, r.rollForwardCommand())
	r.cfg.Replicas = 4
	assert.Contains(t, r.rollForwardCommand(), "scale deployment/payments-green --replicas=4\n")
	r.out.Deployed = strategy.Deployed{Strategy: strategy.NameRolling, PreviousRevision: 3, Revision: 4}
	assert.Equal(t, "kubectl -n shop rollout undo deployment/payments --to-revision=4", r.rollForwardCommand())

	// A unit: the workloads beside the Deployment were put back too, and
	// rolling the Deployment alone forward would leave them behind.
	r.cfg.Image = "ghcr.io/acme/payments:2.0.0"
	r.cfg.Manifests = []string{"deploy/app.yaml", "deploy/jobs dir/*.yaml"}
	r.out.Deployed.Objects = []strategy.ObjectResult{
		{Object: "Job/migrate", Result: strategy.ResultKept},
		{Object: "Deployment/payments", Result: strategy.ResultUndone},
		{Object: "Deployment/worker", Result: strategy.ResultUndone},
	}
	assert.Equal(t, "greenlight deploy --environment=production --namespace=shop --deployment=payments --image=ghcr.io/acme/payments:2.0.0 --manifests='deploy/app.yaml,deploy/jobs dir/*.yaml'", r.rollForwardCommand())
	r.out.Deployed.Objects = r.out.Deployed.Objects[:2]
	assert.Equal(t, "kubectl -n shop rollout undo deployment/payments --to-revision=4", r.rollForwardCommand(), "the Deployment was the only workload put back")

	// Blue-green: the colors' Deployments are the application's own.
	r.cfg.Replicas = 0
	r.out.Deployed = strategy.Deployed{Strategy: strategy.NameBlueGreen, Deployment: "payments-green", Color: "green",
		PreviousColor: "blue", PreviousDeployment: "payments-blue", Objects: []strategy.ObjectResult{
			{Object: "Deployment/payments-green", Result: strategy.ResultUndone},
			{Object: "Deployment/payments-blue", Result: strategy.ResultUndone},
			{Object: "Service/payments", Result: strategy.ResultApplied},
		}}
	assert.Contains(t, r.rollForwardCommand(), "kubectl -n shop patch service payments", "only the application's colors were put back")
	r.out.Deployed.Objects = append(r.out.Deployed.Objects, strategy.ObjectResult{Object: "StatefulSet/cache", Result: strategy.ResultUndone})
	assert.True(t, strings.HasPrefix(r.rollForwardCommand(), "greenlight deploy "), "a StatefulSet beside the colors was put back too")
}

func TestShellWord(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"ghcr.io/acme/app:1.2.3@sha256:ab", "ghcr.io/acme/app:1.2.3@sha256:ab"},
		{"a.yaml,b/c.yaml", "a.yaml,b/c.yaml"},
		{"", "''"},
		{"k8s/*.yaml", "'k8s/*.yaml'"},
		{"it's here", `'it'\''s here'`},
		{"$(rm -rf /)", "'$(rm -rf /)'"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, shellWord(tc.in), "%q", tc.in)
	}
}

func TestFindingsOf(t *testing.T) {
	t.Parallel()
	rf := &kube.RolloutFailure{Deployment: "payments", Reason: kube.PodsFailing,
		Pods:   []kube.Failure{{Kind: kube.FailureImagePull, Pod: "payments-1", Reason: "ImagePullBackOff", Image: "x:missing"}},
		Events: []kube.EventLine{{Object: "Pod/payments-1", Reason: "BackOff", Message: "Back-off pulling image"}}}
	got := findingsOf(errors.Join(errors.New("deploy"), rf))
	assert.Equal(t, []string{"pod", "event"}, kinds(got))
	assert.Equal(t, "payments-1", got[0].Subject)

	pe := &permissionError{missing: []kube.Permission{{Group: "apps", Resource: "deployments", Verb: "patch", Namespace: "shop"}}, rule: "kubectl create role …"}
	got = findingsOf(pe)
	assert.Equal(t, []string{"permission", "fix"}, kinds(got))
	assert.Equal(t, "kubectl create role …", got[1].Message)
	assert.Nil(t, findingsOf(errors.New("plain")))
}

func kinds(fs []event.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

func TestOneSentence(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "a b c", oneSentence(errors.New("a\n  b\tc")))
	assert.Empty(t, oneSentence(nil))
}

// TestUnhealthyRefusalNamesTheWayOut checks that validate's refusal over an
// unhealthy production tells how to dispatch an emergency fix.
func TestUnhealthyRefusalNamesTheWayOut(t *testing.T) {
	t.Parallel()
	msg := unhealthyRefusal("/health answered 503").Error()
	for _, want := range []string{"/health answered 503", "continue-on-unhealthy", "continue_on_unhealthy=true", "--continue-on-unhealthy", "gh workflow run"} {
		assert.Contains(t, msg, want)
	}
}

func TestRequestPoll(t *testing.T) {
	t.Parallel()
	for interval, want := range map[time.Duration]time.Duration{
		0: 500 * time.Millisecond, 100 * time.Millisecond: 500 * time.Millisecond, 2 * time.Second: 2 * time.Second, time.Minute: 10 * time.Second,
	} {
		assert.Equal(t, want, requestPoll(interval), interval)
	}
}

func TestRequestedOr(t *testing.T) {
	t.Parallel()
	other := errors.New("monitoring cancelled")
	ctx, cancel := context.WithCancelCause(context.Background())
	assert.Equal(t, other, requestedOr(ctx, other))
	cancel(&requestedError{req: kube.RollbackRequest{Actor: "alice@laptop", Reason: "checkout errors"}})
	assert.EqualError(t, requestedOr(ctx, other), "a rollback was requested by alice@laptop (checkout errors)")
	plain, stop := context.WithCancel(context.Background())
	stop()
	assert.Equal(t, other, requestedOr(plain, other))
}

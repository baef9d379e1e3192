package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/strategy"
)

// decideInputs are the inputs of the job that promotes or rejects: the
// deploy's environment inputs and the command, without an image — all
// the job needs is in the cluster.
func decideInputs(deploy map[string]string, command string) map[string]string {
	in := map[string]string{}
	for k, v := range deploy {
		if k != "image" && k != "manifests" && k != "promotion" {
			in[k] = v
		}
	}
	in["command"] = command
	return in
}

// awaitingProduction runs a production deploy of image with promotion
// manual over a blue-green shop serving v2, in its own runner step.
func awaitingProduction(t *testing.T, e *env, image string, extra map[string]string) (map[string]string, result) {
	t.Helper()
	in := e.inputs("production", "sampleapp:v2")
	require.Equal(t, 0, e.runAction(t, in, "").code)
	in["image"] = image
	in["promotion"] = "manual"
	for k, v := range extra {
		in[k] = v
	}
	return in, e.runAction(t, in, "")
}

// selector reads the Service's selected color.
func (e *env) selectedColor(t *testing.T, service string) string {
	t.Helper()
	svc, err := e.client.CoreV1().Services(e.ns).Get(context.Background(), service, metav1.GetOptions{})
	require.NoError(t, err)
	return kube.ActiveColor(svc)
}

// restartPods deletes a Deployment's pods, as a node restart would, and
// waits until its ReplicaSet has replaced them and they are ready.
func (e *env) restartPods(t *testing.T, deployment string) {
	t.Helper()
	ctx := context.Background()
	d, err := e.client.AppsV1().Deployments(e.ns).Get(ctx, deployment, metav1.GetOptions{})
	require.NoError(t, err)
	sel := metav1.FormatLabelSelector(d.Spec.Selector)
	pods, err := e.client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	require.NoError(t, err)
	require.NotEmpty(t, pods.Items)
	old := map[string]bool{}
	for _, p := range pods.Items {
		old[p.Name] = true
		require.NoError(t, e.client.CoreV1().Pods(e.ns).Delete(ctx, p.Name, metav1.DeleteOptions{}))
	}
	require.Eventually(t, func() bool {
		pods, err := e.client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return false
		}
		fresh := 0
		for _, p := range pods.Items {
			if old[p.Name] || p.DeletionTimestamp != nil {
				return false
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					fresh++
				}
			}
		}
		return fresh == int(*d.Spec.Replicas)
	}, 2*time.Minute, 200*time.Millisecond, "%s's pods were not replaced", deployment)
}

// summaryLine is the first line of the summary that starts with prefix.
func summaryLine(t *testing.T, summary, prefix string) string {
	t.Helper()
	for line := range strings.SplitSeq(summary, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	t.Fatalf("no line starting with %q in the summary:\n%s", prefix, summary)
	return ""
}

// kubectl runs the real kubectl against the test cluster with args.
func (e *env) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, e.c.Kubeconfig(), 0o600))
	out, err := exec.Command(e.c.Binaries().Kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
	require.NoError(t, err, "kubectl %v:\n%s", args, out)
	return string(out)
}

// TestPromoteManualDeployAcrossTwoRunnerStepsWithARestart: the deploy
// step (promotion manual) stops with green ready and verified and no
// traffic, and tells how to reach green — the command it prints works
// with the real kubectl. Green's pods are then restarted; a second step,
// a fresh process with its own runner files and only the environment
// inputs, promotes: green is checked again, switched to, verified and
// monitored.
func TestPromoteManualDeployAcrossTwoRunnerStepsWithARestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in, held := awaitingProduction(t, e, "sampleapp:v3", nil)
	require.Equal(t, 0, held.code, "stdout:\n%s", held.stdout)
	assert.Equal(t, "awaiting-promotion", held.outputs["status"])
	assert.Equal(t, "sampleapp:v3", held.outputs["image"])
	assert.Equal(t, "sampleapp:v2", held.outputs["previous-image"])
	assert.Equal(t, "false", held.outputs["rolled-back"])
	assert.Contains(t, held.summary, "Awaiting promotion")
	assert.Contains(t, held.summary, "/shop-green-", "green's checks are in the summary")
	assert.Contains(t, held.summary, "(service shop-preview port http, port-forward)")
	assert.Contains(t, held.summary, "port-forward service/shop-preview")
	assert.Contains(t, held.summary, "command: promote")
	assert.Contains(t, held.summary, "greenlight promote --environment=production")
	assert.NotContains(t, held.stdout, "::error::")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)), "green gets no traffic while it awaits promotion")
	assert.Equal(t, "blue", e.selectedColor(t, "shop"))
	assert.False(t, e.lockHeld(t), "the waiting deploy holds no lock")
	assert.Equal(t, int32(2), e.replicasOf(t, "shop-green"))

	// How the summary says to reach green, run as written.
	proxy := strings.TrimSpace(summaryLine(t, held.summary, "kubectl get --raw"))
	body := e.kubectl(t, strings.Fields(proxy)[1:]...)
	assert.Contains(t, body, "v3", "the service-proxy command reaches green")

	e.restartPods(t, "shop-green")

	// A promote is a writer: it takes the environment's lock first.
	promote := decideInputs(in, "promote")
	lock, err := kube.AcquireLock(context.Background(), e.client, kube.LockOptions{Namespace: e.ns, Deployment: "shop",
		Holder: kube.Holder{ID: "scale-by-bob", Actor: "bob", Environment: "production"}})
	require.NoError(t, err)
	promote["lock-timeout"] = "0"
	locked := e.runAction(t, promote, "")
	assert.Equal(t, 1, locked.code)
	assert.Contains(t, locked.stdout, "bob")
	assert.Equal(t, "blue", e.selectedColor(t, "shop"), "a promote that did not get the lock moved nothing")
	require.NoError(t, lock.Release(context.Background()))
	delete(promote, "lock-timeout")

	res := e.runAction(t, promote, "")
	require.Equal(t, 0, res.code, "stdout:\n%s", res.stdout)
	assert.Equal(t, "succeeded", res.outputs["status"])
	assert.Equal(t, "sampleapp:v3", res.outputs["image"], "the image comes from the cluster, not an input")
	assert.Equal(t, "sampleapp:v2", res.outputs["previous-image"])
	assert.Equal(t, "green", res.outputs["revision"])
	assert.Contains(t, res.stdout, "healthy again before any traffic")
	assert.Contains(t, res.summary, "promoted by octocat")
	assert.NotEmpty(t, res.outputs["p95-ms"], "the promote monitored")
	assert.JSONEq(t, `{"v3": 20}`, mustJSON(e.serving(t, 20)))
	assert.Zero(t, e.replicasOf(t, "shop-blue"), "blue is scaled down once monitoring passed")
	assert.False(t, e.lockHeld(t))
	e.assertNoSecrets(t, held, in)
	e.assertNoSecrets(t, res, promote)

	h := e.historyJSON(t, "--environment=production")
	require.GreaterOrEqual(t, len(h), 2)
	assert.Equal(t, "succeeded", h[0].Result, "%+v", h[0])
	assert.Equal(t, "sampleapp:v3", h[0].Image)
	assert.Equal(t, "awaiting-promotion", h[1].Result, "%+v", h[1])

	again := e.runAction(t, promote, "")
	assert.Equal(t, 1, again.code, "a second promote has nothing to promote")
	assert.Contains(t, again.stdout, "nothing awaits promotion")
	assert.JSONEq(t, `{"v3": 20}`, mustJSON(e.serving(t, 20)))
}

// TestRejectManualDeployInItsOwnRunnerStep: the reject step, a fresh
// process with its own runner files, removes green; blue never stopped
// serving, and nothing is left to promote.
func TestRejectManualDeployInItsOwnRunnerStep(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in, held := awaitingProduction(t, e, "sampleapp:v3", nil)
	require.Equal(t, 0, held.code, "stdout:\n%s", held.stdout)
	require.Equal(t, "awaiting-promotion", held.outputs["status"])

	e.restartPods(t, "shop-blue")

	reject := decideInputs(in, "reject")
	res := e.runAction(t, reject, "")
	require.Equal(t, 0, res.code, "stdout:\n%s", res.stdout)
	assert.Equal(t, "rejected", res.outputs["status"])
	assert.Equal(t, "sampleapp:v3", res.outputs["image"])
	assert.Contains(t, res.summary, "Rejected")
	assert.Contains(t, res.summary, "never got traffic")
	_, err := e.client.AppsV1().Deployments(e.ns).Get(context.Background(), "shop-green", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "green is removed: %v", err)
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
	assert.Equal(t, "blue", e.selectedColor(t, "shop"))
	assert.False(t, e.lockHeld(t))
	slack := strings.Join(e.slack.requests(), "\n")
	assert.Contains(t, slack, "Awaiting promotion in production")
	assert.Contains(t, slack, "Rejected in production")
	h := e.historyJSON(t, "--environment=production")
	require.NotEmpty(t, h)
	assert.Equal(t, "rejected", h[0].Result, "%+v", h[0])

	promote := e.runAction(t, decideInputs(in, "promote"), "")
	assert.Equal(t, 1, promote.code)
	assert.Equal(t, "failed", promote.outputs["status"])
	assert.Contains(t, promote.stdout, "nothing awaits promotion")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
}

// TestPromoteRefusedAfterGreenChanged: someone edits green's pod template
// after it was verified (here a new environment variable, the image
// unchanged). The promote is refused, nothing is switched; then a new
// image on green is refused the same way, naming it.
func TestPromoteRefusedAfterGreenChanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in, held := awaitingProduction(t, e, "sampleapp:v3", nil)
	require.Equal(t, 0, held.code, "stdout:\n%s", held.stdout)
	ctx := context.Background()
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"EDITED_BY_HAND","value":"yes"}]}]}}}}`
	_, err := e.client.AppsV1().Deployments(e.ns).Patch(ctx, "shop-green", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)
	_, err = kube.WaitRollout(ctx, e.client, e.ns, "shop-green", kube.WaitOptions{Timeout: time.Minute})
	require.NoError(t, err)

	code, out, _ := e.opsCLI(t, e.prodArgs("status")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "its pod template was edited since, so promote refuses it: reject it, or deploy again", "status says so before anyone tries")
	assert.NotContains(t, out, "promote: greenlight promote")

	promote := decideInputs(in, "promote")
	res := e.runAction(t, promote, "")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "failed", res.outputs["status"])
	assert.Contains(t, res.stdout, "shop-green changed after it was verified")
	assert.Contains(t, res.stdout, "its pod template was edited")
	assert.Equal(t, "blue", e.selectedColor(t, "shop"))
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
	assert.False(t, e.lockHeld(t))

	patch = `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"sampleapp:v4"}]}}}}`
	_, err = e.client.AppsV1().Deployments(e.ns).Patch(ctx, "shop-green", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)
	res = e.runAction(t, promote, "")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stdout, "it runs sampleapp:v4 now")
	assert.Equal(t, "blue", e.selectedColor(t, "shop"))

	// An image input that is not the one waiting is refused too.
	promote["image"] = "sampleapp:v5"
	res = e.runAction(t, promote, "")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stdout, "the image input is sampleapp:v5, but shop-green awaits promotion with sampleapp:v3")

	// What waits can still be rejected.
	rej := e.runAction(t, decideInputs(in, "reject"), "")
	assert.Equal(t, 0, rej.code, "stdout:\n%s", rej.stdout)
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
}

// TestPromoteRefusedWhenGreenWentUnhealthy: green (the sample app, as
// fault injection) passes its checks, then starts failing while it waits;
// the promote checks it again and refuses, and blue keeps serving.
func TestPromoteRefusedWhenGreenWentUnhealthy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in, held := awaitingProduction(t, e, "sampleapp:v3", map[string]string{
		"manifests": manifests(t, corev1.EnvVar{Name: "SAMPLEAPP_FAIL_AFTER", Value: "20s"}),
	})
	require.Equal(t, 0, held.code, "stdout:\n%s", held.stdout)
	require.Equal(t, "awaiting-promotion", held.outputs["status"])
	ctx := context.Background()
	require.Eventually(t, func() bool {
		_, err := e.client.CoreV1().Services(e.ns).ProxyGet("http", strategy.PreviewService("shop"), "http", "/health", nil).DoRaw(ctx)
		return err != nil
	}, 2*time.Minute, 500*time.Millisecond, "green never started failing")

	promote := decideInputs(in, "promote")
	promote["timeout"] = "5"
	res := e.runAction(t, promote, "")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "failed", res.outputs["status"])
	assert.Contains(t, res.stdout, "shop-green went unhealthy after it was verified")
	assert.Equal(t, "blue", e.selectedColor(t, "shop"))
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
	assert.Equal(t, int32(2), e.replicasOf(t, "shop-green"), "green is kept for a look; reject removes it")
}

// TestPromoteManualRollingIsBadInput: promotion manual where the strategy
// is rolling (staging's default) is refused before the cluster is touched.
func TestPromoteManualRollingIsBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	before := e.specSnapshot(t)
	in := e.inputs("staging", "sampleapp:v2")
	in["promotion"] = "manual"
	res := e.runAction(t, in, "")
	assert.Equal(t, 2, res.code)
	assert.Contains(t, res.stdout, `input "promotion": manual needs the blue-green strategy`)
	assert.Equal(t, before, e.specSnapshot(t), "nothing in the cluster changed")
}

// TestPodinfoPromoteAcrossTwoRunsWithARestart: podinfo's own manifests,
// production blue-green through the API server with promotion manual;
// podinfo-green's pods are restarted while it waits, and a second run
// promotes it, proven by the endpoints proof.
func TestPodinfoPromoteAcrossTwoRunsWithARestart(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	e := newEnv(t, "")
	in := e.podinfoInputs(apps, "production", podinfoSHA1)
	in["monitor-duration"] = "2s"
	require.Equal(t, 0, e.runAction(t, in, "").code)

	in["image"] = podinfoSHA2
	in["promotion"] = "manual"
	held := e.runAction(t, in, "")
	require.Equal(t, 0, held.code, "stdout:\n%s", held.stdout)
	assert.Equal(t, "awaiting-promotion", held.outputs["status"])
	assert.Contains(t, held.summary, "port-forward service/podinfo-preview")
	assert.Equal(t, "blue", e.selectedColor(t, "podinfo"))

	// status, from another process, shows what waits and how to decide.
	statusArgs := []string{"status", "--environment=production", "--namespace=" + e.ns, "--deployment=podinfo", "--container=podinfod", "--config=/dev/null"}
	code, out, _ := e.opsCLI(t, statusArgs...)
	require.Equal(t, 0, code)
	assert.Regexp(t, `awaiting +green \(deployment podinfo-green\) runs `+regexp.QuoteMeta(podinfoSHA2)+`, verified at .* by octocat, without traffic`, out)
	assert.Contains(t, out, "promote: greenlight promote --environment=production --namespace="+e.ns+" --deployment=podinfo")
	code, out, _ = e.opsCLI(t, append(statusArgs, "--output=json")...)
	require.Equal(t, 0, code)
	var waiting struct {
		Awaiting *struct {
			Color, Image string
			Edited       bool
		} `json:"awaitingPromotion"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &waiting), out)
	require.NotNil(t, waiting.Awaiting, out)
	assert.Equal(t, "green", waiting.Awaiting.Color)
	assert.Equal(t, podinfoSHA2, waiting.Awaiting.Image)
	assert.False(t, waiting.Awaiting.Edited, "nothing edited its pod template")

	e.restartPods(t, "podinfo-green")

	res := e.runAction(t, decideInputs(in, "promote"), "")
	require.Equal(t, 0, res.code, "stdout:\n%s", res.stdout)
	assert.Equal(t, "succeeded", res.outputs["status"])
	assert.Equal(t, podinfoSHA2, res.outputs["image"])
	assert.Equal(t, podinfoSHA1, res.outputs["previous-image"])
	assert.Equal(t, "endpoints", res.outputs["traffic-proof"])
	assert.Equal(t, "green", e.selectedColor(t, "podinfo"))
	code, out, _ = e.opsCLI(t, statusArgs...)
	require.Equal(t, 0, code)
	assert.NotRegexp(t, `(?m)^awaiting `, out, "nothing waits once promoted")
}

// TestRollbackRefusesAColorAwaitingPromotion: blue served before green, so
// a rollback switches back to blue — unless blue now holds a version that
// awaits promotion, which nobody approved: then the rollback refuses and
// says to reject it first.
func TestRollbackRefusesAColorAwaitingPromotion(t *testing.T) {
	t.Parallel()
	e := newBlueEnv(t, "sampleapp:v1")
	in := e.inputs("production", "sampleapp:v2")
	require.Equal(t, 0, e.runAction(t, in, "").code)
	require.Equal(t, "green", e.selectedColor(t, "shop"))
	in["image"] = "sampleapp:v3"
	in["promotion"] = "manual"
	held := e.runAction(t, in, "")
	require.Equal(t, 0, held.code, "stdout:\n%s", held.stdout)
	require.Equal(t, "awaiting-promotion", held.outputs["status"])

	code, out, errOut := e.opsCLI(t, e.prodArgs("rollback", "--reason=checkout errors")...)
	assert.Equal(t, 1, code)
	assert.Contains(t, out+errOut, "shop-blue holds a version awaiting promotion")
	assert.Equal(t, "green", e.selectedColor(t, "shop"))
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))

	require.Equal(t, 0, e.runAction(t, decideInputs(in, "reject"), "").code)
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
}

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/testcluster"
)

// Images of podinfo as a pipeline tags them: with the commit's SHA, and
// by digest alone.
var (
	podinfoSHA1   = "ghcr.io/acme/podinfo:" + strings.Repeat("1", 40)
	podinfoSHA2   = "ghcr.io/acme/podinfo:" + strings.Repeat("2", 40)
	podinfoDigest = "ghcr.io/acme/podinfo@sha256:" + strings.Repeat("d", 64)
)

// publicApps returns the built public apps, skipping where they cannot run.
func publicApps(t *testing.T) testcluster.Apps {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the test cluster; skipped with -short")
	}
	if why := testcluster.PublicAppsSupported(); why != "" {
		t.Skip(why)
	}
	apps, err := testcluster.EnsureApps("", os.Stderr)
	require.NoError(t, err)
	return apps
}

// podinfoInputs deploy podinfo's own kustomize/deployment.yaml and
// service.yaml (its HPA left out), unchanged: greenlight sets the image.
func (e *env) podinfoInputs(apps testcluster.Apps, environment, image string) map[string]string {
	in := e.inputs(environment, image)
	dir := filepath.Join(apps.PodinfoSource, "kustomize")
	in["deployment"] = "podinfo"
	in["container"] = "podinfod"
	in["manifests"] = filepath.Join(dir, "deployment.yaml") + "," + filepath.Join(dir, "service.yaml")
	in["health-paths"] = "/healthz,/readyz"
	in["url"] = e.c.ServiceURL(e.ns, "podinfo")
	in["timeout"] = "60"
	in["rollout-timeout"] = "120s"
	delete(in, "health-check-token")
	return in
}

// podinfoDeploymentEdited writes podinfo's own kustomize/deployment.yaml
// with one edit, from replaced by to once, and returns its path.
func podinfoDeploymentEdited(t *testing.T, apps testcluster.Apps, fromTo ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(apps.PodinfoSource, "kustomize", "deployment.yaml"))
	require.NoError(t, err)
	edited := string(data)
	for i := 0; i+1 < len(fromTo); i += 2 {
		from, to := fromTo[i], fromTo[i+1]
		require.Contains(t, edited, from, "deployment.yaml holds %q", from)
		edited = strings.Replace(edited, from, to, 1)
	}
	path := filepath.Join(t.TempDir(), "deployment.yaml")
	require.NoError(t, os.WriteFile(path, []byte(edited), 0o644))
	return path
}

// randomErrors writes podinfo's deployment.yaml with its own
// --random-error flag turned on: a version that fails a third of requests.
func randomErrors(t *testing.T, apps testcluster.Apps) string {
	t.Helper()
	return podinfoDeploymentEdited(t, apps, "--random-error=false", "--random-error=true")
}

func TestPodinfoStagingRollingDeploysBySHAWithEndpointsProof(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	e := newEnv(t, "")
	in := e.podinfoInputs(apps, "staging", podinfoSHA1)

	first := e.runAction(t, in, "")
	require.Equal(t, 0, first.code)
	assert.Equal(t, "succeeded", first.outputs["status"])
	assert.Equal(t, "endpoints", first.outputs["traffic-proof"])

	in["image"] = podinfoSHA2
	second := e.runAction(t, in, "")
	require.Equal(t, 0, second.code, "podinfo reports 6.9.2, not the SHA tag: the cluster proves the switch")
	assert.Equal(t, "endpoints", second.outputs["traffic-proof"])
	assert.Equal(t, podinfoSHA1, second.outputs["previous-image"])
	assert.Contains(t, second.summary, "proof: **endpoints**")
	assert.Contains(t, second.summary, "reported no version")
	assert.Contains(t, second.report, `"traffic_proof": "endpoints"`)

	in["image"] = podinfoSHA1
	back := e.runAction(t, in, "")
	require.Equal(t, 0, back.code, "a second deploy back to the first image")
	assert.Equal(t, podinfoSHA2, back.outputs["previous-image"])
	d, err := e.client.AppsV1().Deployments(e.ns).Get(context.Background(), "podinfo", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, podinfoSHA1, d.Spec.Template.Spec.Containers[0].Image)
}

func TestPodinfoProductionBlueGreenBySHAThroughTheAPIServer(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	e := newEnv(t, "")
	in := e.podinfoInputs(apps, "production", podinfoSHA1)
	delete(in, "url") // checks go through the API server's service proxy
	in["monitor-duration"] = "2s"

	first := e.runAction(t, in, "")
	require.Equal(t, 0, first.code)
	assert.Equal(t, "endpoints", first.outputs["traffic-proof"])

	in["image"] = podinfoSHA2
	second := e.runAction(t, in, "")
	require.Equal(t, 0, second.code)
	assert.Equal(t, "endpoints", second.outputs["traffic-proof"])
	assert.Equal(t, podinfoSHA1, second.outputs["previous-image"])
}

// TestPodinfoSameImageNewTemplateIsANewVersion: in production, podinfo
// 6.9.2 deployed again as it is rolls nothing out; deployed again with
// another flag in its pod template, it is a new version that goes through
// blue-green like a new image, and since both colors answer 6.9.2 the
// cluster, not the answers, proves the switch, and the switch back of a
// rollback by hand.
func TestPodinfoSameImageNewTemplateIsANewVersion(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	e := newEnv(t, "")
	const released = "ghcr.io/stefanprodan/podinfo:6.9.2"
	in := e.podinfoInputs(apps, "production", released)
	in["health-paths"] = "/healthz,/version" // /version answers {"version": "6.9.2", …}
	in["monitor-duration"] = "2s"
	first := e.runAction(t, in, "")
	require.Equal(t, 0, first.code)
	require.Equal(t, "blue", first.outputs["revision"])

	again := e.runAction(t, in, "")
	require.Equal(t, 0, again.code)
	assert.Equal(t, "blue", again.outputs["revision"])
	assert.Equal(t, "endpoints", again.outputs["traffic-proof"], "both sides answer 6.9.2")
	assert.Contains(t, again.stdout, "already running "+released+": nothing rolled out")

	in["manifests"] = podinfoDeploymentEdited(t, apps, "--level=info", "--level=debug") + "," + filepath.Join(apps.PodinfoSource, "kustomize", "service.yaml")
	debug := e.runAction(t, in, "")
	require.Equal(t, 0, debug.code, "stdout: %s", debug.stdout)
	assert.Equal(t, "succeeded", debug.outputs["status"])
	assert.Equal(t, "green", debug.outputs["revision"])
	assert.Contains(t, debug.stdout, "the pod template of podinfo-blue would change: a new color rolls out")
	assert.Equal(t, "endpoints", debug.outputs["traffic-proof"])
	assert.Contains(t, debug.summary, "the version serving before the deploy reports 6.9.2 too, so answers cannot tell the two apart")
	green, err := e.client.AppsV1().Deployments(e.ns).Get(context.Background(), "podinfo-green", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, green.Spec.Template.Spec.Containers[0].Command, "--level=debug")

	// Rolled back by hand, 6.9.2 to 6.9.2: blue answers at /version as
	// green did, so the cluster proves the switch back.
	code, out, errOut := e.opsCLI(t, "rollback", "--environment=production", "--namespace="+e.ns, "--deployment=podinfo", "--container=podinfod",
		"--health-paths=/healthz,/version", "--url="+in["url"], "--timeout=30", "--config=/dev/null", "--reason=debug logs too loud")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Equal(t, "blue", e.selectedColor(t, "podinfo"))
}

func TestPodinfoRollbackToDigestOnlyImageIsVerified(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	e := newEnv(t, "")
	in := e.podinfoInputs(apps, "staging", podinfoDigest)
	first := e.runAction(t, in, "")
	require.Equal(t, 0, first.code)

	in["image"] = podinfoSHA2
	in["manifests"] = randomErrors(t, apps) + "," + filepath.Join(apps.PodinfoSource, "kustomize", "service.yaml")
	in["timeout"] = "15"
	in["monitor-duration"] = "10s"
	res := e.runAction(t, in, "")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "rolled-back", res.outputs["status"], "the rollback to the digest-only image is verified, not rollback-failed")
	assert.Contains(t, res.report, `"rollback_proof": "endpoints"`)
	assertContainerLog(t, res, "podinfo-", `"msg":"Starting podinfo"`)
	d, err := e.client.AppsV1().Deployments(e.ns).Get(context.Background(), "podinfo", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, podinfoDigest, d.Spec.Template.Spec.Containers[0].Image)
}

// TestHttpbinDeploysAndRollsBackLikePodinfo: go-httpbin reports no version
// at all; a deploy succeeds by the endpoints proof, and a version that moved
// its paths under a prefix is rolled back, verified the same way.
func TestHttpbinDeploysAndRollsBackLikePodinfo(t *testing.T) {
	t.Parallel()
	publicApps(t)
	e := newEnv(t, "")
	path := filepath.Join(t.TempDir(), "httpbin.yaml")
	require.NoError(t, os.WriteFile(path, []byte(testcluster.HttpbinManifest("httpbin", "ghcr.io/mccutchen/go-httpbin:placeholder", 2)), 0o644))
	in := e.inputs("staging", "ghcr.io/mccutchen/go-httpbin:"+strings.Repeat("a", 40))
	delete(in, "health-check-token")
	in["deployment"] = "httpbin"
	in["manifests"] = path
	in["health-paths"] = "/status/200"
	in["url"] = e.c.ServiceURL(e.ns, "httpbin")
	first := e.runAction(t, in, "")
	require.Equal(t, 0, first.code)
	assert.Equal(t, "endpoints", first.outputs["traffic-proof"])

	in["image"] = "ghcr.io/mccutchen/go-httpbin:" + strings.Repeat("b", 40)
	second := e.runAction(t, in, "")
	require.Equal(t, 0, second.code)
	assert.Equal(t, "endpoints", second.outputs["traffic-proof"])

	prefixed := strings.Replace(testcluster.HttpbinManifest("httpbin", "ghcr.io/mccutchen/go-httpbin:placeholder", 2),
		"        ports:\n", "        command: [\"/bin/go-httpbin\", \"-prefix=/v2\"]\n        ports:\n", 1)
	prefixed = strings.Replace(prefixed, "path: /status/200", "path: /v2/status/200", 1)
	require.NoError(t, os.WriteFile(path, []byte(prefixed), 0o644))
	in["image"] = "ghcr.io/mccutchen/go-httpbin:" + strings.Repeat("c", 40)
	in["timeout"] = "10"
	bad := e.runAction(t, in, "")
	assert.Equal(t, 1, bad.code)
	assert.Equal(t, "rolled-back", bad.outputs["status"])
	assert.Contains(t, bad.report, `"rollback_proof": "endpoints"`)
	// go-httpbin's own request log: the health path it no longer serves.
	assertContainerLog(t, bad, "httpbin-", "status=404 method=GET uri=/status/200")
}

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestActionGreenWithoutItsTokenNeverGetsTraffic: a new color whose
// detailed health wants a token it is not given fails its checks before
// traffic (they reach each green pod through a port-forward, token and
// all); given the token it wants, the switch happens.
func TestActionGreenWithoutItsTokenNeverGetsTraffic(t *testing.T) {
	t.Parallel()
	const greenToken = "green-wants-this-token-41c7"
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("production", "sampleapp:v2")
	in["manifests"] = manifests(t, corev1.EnvVar{Name: "SAMPLEAPP_HEALTH_TOKEN", Value: greenToken})
	in["health-check-token"] = "not-the-token-green-wants-93"
	in["timeout"] = "5"
	refused := e.runAction(t, in, "")
	assert.Equal(t, 1, refused.code, "stdout:\n%s", refused.stdout)
	assert.Equal(t, "failed", refused.outputs["status"])
	assert.Contains(t, refused.summary, "port-forward", "the check went to the green pod itself")
	assert.Contains(t, refused.stdout, "/health/detailed answered 401")
	assert.JSONEq(t, `{"v1": 20}`, mustJSON(e.serving(t, 20)), "the green that failed before traffic never got any")

	in["health-check-token"] = greenToken
	in["timeout"] = "30"
	switched := e.runAction(t, in, "")
	require.Equal(t, 0, switched.code, "stdout:\n%s", switched.stdout)
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
}

// TestPodinfoSmokeTestCarriesTheTokenToGreenBeforeTraffic: podinfo's
// /headers echoes what arrived. A smoke test that needs the bearer token
// to arrive — which the API server's service proxy never forwards — passes
// against each green pod before the switch.
func TestPodinfoSmokeTestCarriesTheTokenToGreenBeforeTraffic(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	e := newEnv(t, "")
	in := e.podinfoInputs(apps, "production", podinfoSHA1)
	in["monitor-duration"] = "2s"
	require.Equal(t, 0, e.runAction(t, in, "").code)

	smoke := filepath.Join(t.TempDir(), "smoke-tests.yml")
	require.NoError(t, os.WriteFile(smoke, []byte(`tests:
  - name: the bearer token arrives
    path: /headers
    expect:
      status: 200
      contains: Bearer
`), 0o644))
	in["image"] = podinfoSHA2
	in["smoke-tests"] = smoke
	in["health-check-token"] = "podinfo-smoke-token-5d02"
	res := e.runAction(t, in, "")
	require.Equal(t, 0, res.code, "stdout:\n%s", res.stdout)
	assert.Equal(t, podinfoSHA1, res.outputs["previous-image"])
	assert.Contains(t, res.summary, "port-forward")
	assert.Contains(t, res.summary, "the bearer token arrives")
}

// TestPodinfoGreenChecksItsOwnTokenBeforeTraffic: podinfo's
// /token/validate answers 200 whatever the token and says in its body
// whether it was valid ({"code": 401, ...} or the token's name), so the
// check is a smoke test on that body. Given a token podinfo never issued,
// the smoke test fails on green before any traffic and green never gets
// any; given one podinfo itself issued (POST /token on the version
// serving), which the service proxy would drop, each green pod gets it
// through its own port-forward and the switch happens.
func TestPodinfoGreenChecksItsOwnTokenBeforeTraffic(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	e := newEnv(t, "")
	in := e.podinfoInputs(apps, "production", podinfoSHA1)
	in["monitor-duration"] = "2s"
	require.Equal(t, 0, e.runAction(t, in, "").code)
	color := func() string {
		svc, err := e.client.CoreV1().Services(e.ns).Get(context.Background(), "podinfo", metav1.GetOptions{})
		require.NoError(t, err)
		return svc.Spec.Selector["greenlight.dev/color"]
	}
	require.Equal(t, "blue", color())

	resp, err := http.Post(e.c.ServiceURL(e.ns, "podinfo")+"/token", "text/plain", strings.NewReader("greenlight"))
	require.NoError(t, err)
	var issued struct{ Token string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&issued))
	resp.Body.Close()
	require.NotEmpty(t, issued.Token, "podinfo issued a token")

	smoke := filepath.Join(t.TempDir(), "smoke-tests.yml")
	require.NoError(t, os.WriteFile(smoke, []byte(`tests:
  - name: podinfo accepts the token
    path: /token/validate
    expect:
      status: 200
      json:
        token_name: greenlight
`), 0o644))
	in["image"] = podinfoSHA2
	in["smoke-tests"] = smoke
	in["health-check-token"] = "not-a-podinfo-token-b7"
	in["timeout"] = "10"
	refused := e.runAction(t, in, "")
	assert.Equal(t, 1, refused.code, "stdout:\n%s", refused.stdout)
	assert.Equal(t, "failed", refused.outputs["status"])
	assert.Contains(t, refused.stdout, `smoke test "podinfo accepts the token" failed`)
	assert.Equal(t, "blue", color(), "the green that refused the token never got traffic")

	in["health-check-token"] = issued.Token
	in["timeout"] = "60"
	res := e.runAction(t, in, "")
	require.Equal(t, 0, res.code, "stdout:\n%s", res.stdout)
	assert.Equal(t, "green", color())
	_, deploy, _ := strings.Cut(res.stdout, "::group::deploy")
	deploy, _, _ = strings.Cut(deploy, "::endgroup::")
	assert.Contains(t, deploy, "smoke tests: 1 of 1 passed", "podinfo accepted its own token on green before the switch")
	assert.Contains(t, res.summary, "port-forward")
	assert.NotContains(t, res.summary, issued.Token)
}

// TestActionSecondBlueGreenNeverChecksTheOldColorAsTheNew is the
// regression test of a preview Service kept from the last deploy: on the
// second and third deploys (no token: the checks go through the preview
// Service), every answer a check before traffic got came from the new
// version.
func TestActionSecondBlueGreenNeverChecksTheOldColorAsTheNew(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("production", "sampleapp:v2")
	delete(in, "health-check-token")
	require.Equal(t, 0, e.runAction(t, in, "").code)
	for _, image := range []string{"sampleapp:v3", "sampleapp:v4"} {
		in["image"] = image
		res := e.runAction(t, in, "")
		require.Equal(t, 0, res.code, "stdout:\n%s", res.stdout)
		var doc struct {
			Health []struct {
				Target    string
				Endpoints []struct{ Path, Version string }
			}
		}
		require.NoError(t, json.Unmarshal([]byte(res.report), &doc))
		previews := 0
		for _, h := range doc.Health {
			if !strings.Contains(h.Target, "shop-preview") {
				continue
			}
			previews++
			for _, ep := range h.Endpoints {
				assert.Equal(t, strings.TrimPrefix(image, "sampleapp:"), ep.Version, "%s answered by the old color during the check of %s", ep.Path, image)
			}
		}
		assert.Positive(t, previews, "the new color was checked through the preview Service")
	}
}

// TestActionAuthenticatedSmokeTestRunsOnGreenBeforeTraffic: a smoke test
// that needs the bearer token (the sample app's /health/detailed, which
// wants it) runs against each green pod before the switch.
func TestActionAuthenticatedSmokeTestRunsOnGreenBeforeTraffic(t *testing.T) {
	t.Parallel()
	const token = "smoke-token-for-green-7e21"
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("production", "sampleapp:v2")
	in["manifests"] = manifests(t, corev1.EnvVar{Name: "SAMPLEAPP_HEALTH_TOKEN", Value: token})
	in["health-check-token"] = token
	smoke := filepath.Join(t.TempDir(), "smoke-tests.yml")
	require.NoError(t, os.WriteFile(smoke, []byte(`tests:
  - name: detailed health with the token
    path: /health/detailed
    expect:
      status: 200
`), 0o644))
	in["smoke-tests"] = smoke
	res := e.runAction(t, in, "")
	require.Equal(t, 0, res.code, "stdout:\n%s", res.stdout)
	_, deploy, _ := strings.Cut(res.stdout, "::group::deploy")
	deploy, _, _ = strings.Cut(deploy, "::endgroup::")
	assert.Contains(t, deploy, "smoke tests: 1 of 1 passed", "the smoke test ran on green before the switch:\n%s", deploy)
	assert.Contains(t, res.report, `"detailed health with the token"`)
	assert.Contains(t, res.summary, "port-forward")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
}

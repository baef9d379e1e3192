package main

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/ebeautything/greenlight/internal/testcluster"
)

// throughAPIServer makes a run's checks go through the API server's
// service proxy behind a fault-injecting proxy, as a deploy without `url`
// does.
func throughAPIServer(t *testing.T, e *env, in map[string]string) *testcluster.FaultProxy {
	t.Helper()
	proxy := e.c.NewFaultProxy(t)
	in["kubeconfig"] = base64.StdEncoding.EncodeToString(proxy.Kubeconfig())
	delete(in, "url")
	in["service-port"] = "80"
	return proxy
}

// TestActionAPIServerHiccupDuringMonitoringIsNotCounted: the API server
// answers every service-proxy request with its own 500 for 3 s of a
// healthy version's monitoring — more than the 5 consecutive failures that
// would roll back. Those probes say nothing about the app: the deploy
// succeeds, saying how many were left out and why.
func TestActionAPIServerHiccupDuringMonitoringIsNotCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("staging", "sampleapp:v2")
	proxy := throughAPIServer(t, e, in)
	in["monitor-duration"] = "8s"
	fault := testcluster.Fault{Kind: testcluster.FaultInternalError, PathContains: "/proxy/", For: 3 * time.Second}
	res := e.runHooked(t, in, stdoutHook{at: "::group::monitor", do: func(liveRun) { proxy.Inject(fault) }})
	require.Equal(t, 0, res.code, "stdout:\n%s", res.stdout)
	assert.Equal(t, "succeeded", res.outputs["status"])
	assert.Positive(t, proxy.Counts().Faulted, "the fault hit")
	assert.Contains(t, res.stdout, "probes not counted: the Kubernetes API server in front of the app failed on its own")
	assert.Contains(t, res.stdout, "500 Internal Server Error")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
}

// TestActionAllPodsDownThroughAPIServerRollsBack: when every pod of the
// new version fails, what the service proxy passes on is the app's
// failure, counted: the deploy without `url` rolls back.
func TestActionAllPodsDownThroughAPIServerRollsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("staging", "sampleapp:v2")
	throughAPIServer(t, e, in)
	in["manifests"] = manifests(t, corev1.EnvVar{Name: "SAMPLEAPP_FAIL_AFTER", Value: "4s"})
	in["monitor-duration"] = "60s"
	res := e.runAction(t, in, "")
	assert.Equal(t, 1, res.code, "stdout:\n%s", res.stdout)
	assert.Equal(t, "rolled-back", res.outputs["status"])
	assert.NotContains(t, res.stdout, "probes not counted")
	assert.JSONEq(t, `{"v1": 20}`, mustJSON(e.serving(t, 20)))
}

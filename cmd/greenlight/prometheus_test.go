package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/ebeautything/greenlight/internal/testcluster"
)

// secretPrometheus is the token the auth proxy in front of the test
// Prometheus accepts.
const secretPrometheus = secretMarker + "-prom-token-2b7e91c4"

// prometheusFor starts a real Prometheus (built once) scraping the pods of
// e's namespace on their port named port every second, over the `pod`
// label.
func prometheusFor(t *testing.T, e *env, port string) *testcluster.Prometheus {
	t.Helper()
	bin, err := testcluster.EnsurePrometheus("", os.Stderr)
	require.NoError(t, err)
	return e.c.StartPrometheus(t, bin, testcluster.PrometheusOptions{Namespace: e.ns, Port: port})
}

// bearerProxy puts Prometheus behind a loopback proxy that answers 401
// unless a request carries token as its bearer token (Prometheus's own web
// config knows basic auth only), and counts what it forwarded.
func bearerProxy(t *testing.T, target, token string) (proxyURL string, forwarded *atomic.Int64) {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	forwarded = &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		forwarded.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, forwarded
}

// prometheusInputs judge every second from Prometheus alone (no
// metrics-path), the probes needing 20 samples before their rate rules.
func prometheusInputs(in map[string]string, promURL string) map[string]string {
	in["prometheus-url"] = promURL
	in["monitor-interval"] = "1s"
	in["min-samples"] = "20"
	return in
}

// TestPodinfoPrometheusJudgesRealTraffic: podinfo under the same load
// before and after, judged through a real Prometheus scraping it: a
// healthy release passes with Prometheus's figures in the outputs and the
// summary (the token sent, never shown); with the pods' own metrics too,
// both sources are judged and shown; with a wrong token the release still
// passes and the refusal is a finding.
func TestPodinfoPrometheusJudgesRealTraffic(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	e := newEnv(t, "")
	prom := prometheusFor(t, e, "http-metrics")
	authURL, forwarded := bearerProxy(t, prom.URL, secretPrometheus)
	in := e.podinfoInputs(apps, "staging", podinfoSHA1)
	in["monitor-duration"] = "2s"
	first := e.runAction(t, in, "")
	require.Equal(t, 0, first.code)

	stop := podinfoLoad(t, e.c.ServiceURL(e.ns, "podinfo"))
	defer stop()
	in = prometheusInputs(in, authURL)
	in["prometheus-token"] = secretPrometheus
	in["image"] = podinfoSHA2
	in["monitor-duration"] = "20s"
	healthy := e.runAction(t, in, "")
	require.Equal(t, 0, healthy.code, "a healthy release under load passes:\n%s", prom.LogTail())
	assert.Equal(t, "succeeded", healthy.outputs["status"])
	assert.Positive(t, forwarded.Load(), "the token was sent and accepted")
	rps, err := strconv.ParseFloat(healthy.outputs["throughput-rps"], 64)
	require.NoError(t, err, "throughput-rps is Prometheus's when it is the only source")
	// Prometheus's increase() starts at each new series' first scrape, a
	// few seconds after the pod turned ready: it reads below what was sent.
	assert.Greater(t, rps, 15.0, "Prometheus counted the load (40 req/s sent, plus probes)")
	assert.Equal(t, "0.0000", healthy.outputs["requests-error-rate"])
	assert.NotEmpty(t, healthy.outputs["requests-p95-ms"])
	assert.Contains(t, healthy.summary, "Requests the pods served, as Prometheus counts them")
	assert.Contains(t, healthy.stdout, "prometheus: ")
	e.assertNoSecrets(t, healthy, in) // the token carries the marker the sweep looks for

	// Both sources at once: each judged and shown, the outputs the pods'.
	in["metrics-path"] = "/metrics"
	in["metrics-port"] = "http-metrics"
	in["image"] = podinfoSHA1
	in["monitor-duration"] = "10s"
	both := e.runAction(t, in, "")
	require.Equal(t, 0, both.code)
	assert.Contains(t, both.summary, "Requests the pods served, from their own metrics")
	assert.Contains(t, both.summary, "Requests the pods served, as Prometheus counts them")
	assert.Regexp(t, `monitor: .*; pod metrics: .*; prometheus: `, both.stdout, "the monitor's finding lists every source")
	assert.NotEmpty(t, both.outputs["throughput-rps"])
	delete(in, "metrics-path")
	delete(in, "metrics-port")

	in["prometheus-token"] = secretMarker + "-wrong-token-0000"
	in["image"] = podinfoSHA2
	in["monitor-duration"] = "6s"
	refused := e.runAction(t, in, "")
	require.Equal(t, 0, refused.code, "a Prometheus refusing the token never fails the app")
	assert.Contains(t, refused.stdout, "prometheus: refused the request count query with 401 Unauthorized: check prometheus-token")
	assert.Empty(t, refused.outputs["requests-error-rate"], "nothing was read")
	e.assertNoSecrets(t, refused, in)
	load := stop()
	assert.Positive(t, load.Sent)
	t.Logf("healthy through Prometheus: %s req/s, 5xx %s, p95 %s ms (probes p95 %s ms)",
		healthy.outputs["throughput-rps"], healthy.outputs["requests-error-rate"], healthy.outputs["requests-p95-ms"], healthy.outputs["p95-ms"])
}

// TestPodinfoPrometheusUnreachableIsAFinding: a Prometheus at a loopback
// port nothing listens on is reported, once, and the healthy release
// passes on its probes.
func TestPodinfoPrometheusUnreachableIsAFinding(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	e := newEnv(t, "")
	dead := testcluster.ClosedLoopbackURL(t)
	in := prometheusInputs(e.podinfoInputs(apps, "staging", podinfoSHA1), dead)
	in["monitor-duration"] = "6s"
	res := e.runAction(t, in, "")
	require.Equal(t, 0, res.code, "an unreachable Prometheus never fails the app")
	assert.Equal(t, "succeeded", res.outputs["status"])
	assert.Contains(t, res.stdout, "prometheus: unreachable at "+dead+": ")
	assert.Contains(t, res.stdout, "connection refused")
	assert.Empty(t, res.outputs["throughput-rps"], "no window was read")
	assert.Contains(t, res.summary, "No window could be read")
}

// TestSampleAppPrometheusAloneRollsBackWhileProbesStayGreen: a version
// whose API answers half its requests with 500 while every /health path
// passes is rolled back by the requests Prometheus counted; the probes see
// nothing.
func TestSampleAppPrometheusAloneRollsBackWhileProbesStayGreen(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	prom := prometheusFor(t, e, "http")
	in := prometheusInputs(e.inputs("staging", "sampleapp:v2"), prom.URL)
	in["monitor-duration"] = "40s"
	in["manifests"] = manifests(t,
		corev1.EnvVar{Name: "SAMPLEAPP_ERROR_RATE", Value: "0.5"},
		corev1.EnvVar{Name: "SAMPLEAPP_ERROR_SCOPE", Value: "api"})

	stop := sampleAppLoad(t, e)
	res := e.runAction(t, in, "")
	stop()
	assert.Equal(t, 1, res.code)
	require.Equal(t, "rolled-back", res.outputs["status"], "Prometheus's log:\n%s", prom.LogTail())
	assert.Contains(t, res.stdout, "(prometheus) is above the rollback threshold 25%")
	assert.Contains(t, res.report, `"source": "prometheus"`)
	assert.Equal(t, "0.0000", res.outputs["error-rate"], "the probes of /health stayed green")
	rate, err := strconv.ParseFloat(res.outputs["requests-error-rate"], 64)
	require.NoError(t, err)
	assert.Greater(t, rate, 0.25)
}

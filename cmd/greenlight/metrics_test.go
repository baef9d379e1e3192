package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/ebeautything/greenlight/internal/loadgen"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// podinfoLoad sends podinfo's own paths through the Service at 40 requests
// a second until the returned stop is called (or 4 minutes pass), and
// reports what it sent.
func podinfoLoad(t *testing.T, url string) (stop func() loadgen.Result) {
	t.Helper()
	return serviceLoad(t, url, []string{"/", "/api/info", "/env", "/headers", "/api/info"}, 4*time.Minute)
}

// sampleAppLoad sends the sample app's API, twice as often as its front
// page, through the shop Service at 40 requests a second until stop is
// called (or 3 minutes pass).
func sampleAppLoad(t *testing.T, e *env) (stop func() loadgen.Result) {
	t.Helper()
	return serviceLoad(t, e.c.ServiceURL(e.ns, "shop"), []string{"/api/payments", "/", "/api/payments"}, 3*time.Minute)
}

// serviceLoad sends paths in turn to url at 40 requests a second for at
// most limit; stop ends it and reports what it sent.
func serviceLoad(t *testing.T, url string, paths []string, limit time.Duration) (stop func() loadgen.Result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg  sync.WaitGroup
		res loadgen.Result
		err error
	)
	wg.Go(func() {
		res, err = loadgen.Run(ctx, loadgen.Options{
			BaseURL: url, Paths: paths,
			Rate: 40, Count: int(40 * limit.Seconds()), Duration: limit, Timeout: 5 * time.Second,
		})
	})
	return func() loadgen.Result {
		cancel()
		wg.Wait()
		require.NoError(t, err)
		t.Logf("load: %+v", res)
		return res
	}
}

// metricsInputs read podinfo's own metrics on its http-metrics port and
// judge every second, the probes needing 20 samples before their rate rules.
func metricsInputs(in map[string]string) map[string]string {
	in["metrics-path"] = "/metrics"
	in["metrics-port"] = "http-metrics"
	in["monitor-interval"] = "1s"
	in["monitor-duration"] = "40s"
	in["min-samples"] = "20"
	return in
}

// randomDelays writes podinfo's deployment.yaml with its own --random-delay
// turned on, at most 4 s so its exec probes (5 s timeout) still pass: a
// version whose answers take 0 to 4 whole seconds.
func randomDelays(t *testing.T, apps testcluster.Apps) string {
	t.Helper()
	return podinfoDeploymentEdited(t, apps, "- --random-delay=false", "- --random-delay=true\n        - --random-delay-max=4")
}

// TestPodinfoMetricsJudgeRealTraffic: a first release watched too briefly
// for the probes' rate rules says they were not judged; under the same
// load before and after,
// a healthy podinfo release passes with the pods' own figures in the
// outputs and summary, and podinfo released with --random-delay raises the
// response-time alert from the requests the pods served, the verdict
// naming the pods' metrics as its source.
func TestPodinfoMetricsJudgeRealTraffic(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	e := newEnv(t, "")
	in := metricsInputs(e.podinfoInputs(apps, "staging", podinfoSHA1))
	in["monitor-duration"] = "2s"
	first := e.runAction(t, in, "")
	require.Equal(t, 0, first.code)
	// 2 s of probes cannot reach the 20 samples the rate rules wait for:
	// the run says so instead of passing them.
	assert.Contains(t, first.summary, "response time, error rate and availability not judged (")
	assert.Contains(t, first.stdout, "fewer than the 20 min-samples asks for")

	stop := podinfoLoad(t, e.c.ServiceURL(e.ns, "podinfo"))
	in["image"] = podinfoSHA2
	in["monitor-duration"] = "15s"
	healthy := e.runAction(t, in, "")
	require.Equal(t, 0, healthy.code, "a healthy release under load passes")
	assert.Equal(t, "succeeded", healthy.outputs["status"])
	rps, err := strconv.ParseFloat(healthy.outputs["throughput-rps"], 64)
	require.NoError(t, err, "throughput-rps is set")
	assert.Greater(t, rps, 20.0, "the pods counted the load (40 req/s sent, plus probes)")
	assert.Equal(t, "0.0000", healthy.outputs["requests-error-rate"])
	assert.NotEmpty(t, healthy.outputs["requests-p95-ms"])
	assert.Contains(t, healthy.summary, "Requests the pods served, from their own metrics")

	in["image"] = podinfoSHA1
	in["manifests"] = randomDelays(t, apps) + "," + filepath.Join(apps.PodinfoSource, "kustomize", "service.yaml")
	in["monitor-duration"] = "20s"
	in["min-requests"] = "10"
	slow := e.runAction(t, in, "")
	load := stop()
	assert.Positive(t, load.Sent)
	assert.Contains(t, slow.stdout, "(pod metrics) is above the alert threshold 3s", "the response-time alert comes from the requests the pods served")
	assert.Contains(t, slow.report, `"source": "pod metrics"`)
	t.Logf("healthy: %s req/s, 5xx %s, p95 %s ms; slow: status %s, %s req/s, p95 %s ms (probes p95 %s ms)",
		healthy.outputs["throughput-rps"], healthy.outputs["requests-error-rate"], healthy.outputs["requests-p95-ms"],
		slow.outputs["status"], slow.outputs["throughput-rps"], slow.outputs["requests-p95-ms"], slow.outputs["p95-ms"])
}

// TestPodinfoMetricsDeadEndpointIsNotAnAppFailure: a metrics path the pods
// do not serve (404 through the pod proxy) is the source's own finding,
// reported once per pod after three misses; the healthy release passes.
func TestPodinfoMetricsDeadEndpointIsNotAnAppFailure(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	e := newEnv(t, "")
	in := metricsInputs(e.podinfoInputs(apps, "staging", podinfoSHA1))
	in["metrics-path"] = "/no-metrics-here"
	in["monitor-duration"] = "6s"
	res := e.runAction(t, in, "")
	require.Equal(t, 0, res.code, "a silent metrics endpoint never fails the app")
	assert.Equal(t, "succeeded", res.outputs["status"])
	assert.Contains(t, res.stdout, "its metrics endpoint has not answered 3 scrapes in a row")
	assert.Empty(t, res.outputs["requests-error-rate"], "no request was counted")
}

// TestSampleAppMetricsAloneRollBackWhileProbesStayGreen: a version whose
// API answers half its requests with 500 while every /health path passes
// is rolled back by the requests the pods served; the probes see nothing.
func TestSampleAppMetricsAloneRollBackWhileProbesStayGreen(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := metricsInputs(e.inputs("staging", "sampleapp:v2"))
	in["metrics-port"] = "http"
	in["monitor-duration"] = "30s"
	in["manifests"] = manifests(t,
		corev1.EnvVar{Name: "SAMPLEAPP_ERROR_RATE", Value: "0.5"},
		corev1.EnvVar{Name: "SAMPLEAPP_ERROR_SCOPE", Value: "api"})

	stop := sampleAppLoad(t, e)
	res := e.runAction(t, in, "")
	stop()
	assert.Equal(t, 1, res.code)
	require.Equal(t, "rolled-back", res.outputs["status"])
	assert.Contains(t, res.stdout, "(pod metrics) is above the rollback threshold 25%")
	assert.Equal(t, "0.0000", res.outputs["error-rate"], "the probes of /health stayed green")
	rate, err := strconv.ParseFloat(res.outputs["requests-error-rate"], 64)
	require.NoError(t, err)
	assert.Greater(t, rate, 0.25)
}

// podinfoServiceWithMetricsPort writes podinfo's own service.yaml with its
// metrics port (9797, http-metrics) exposed beside http and grpc, as a team
// that health-checks an admin port separate from user traffic does.
func podinfoServiceWithMetricsPort(t *testing.T, apps testcluster.Apps) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(apps.PodinfoSource, "kustomize", "service.yaml"))
	require.NoError(t, err)
	edited := strings.TrimRight(string(data), "\n") + "\n    - port: 9797\n      targetPort: http-metrics\n      protocol: TCP\n      name: http-metrics\n"
	path := filepath.Join(t.TempDir(), "service.yaml")
	require.NoError(t, os.WriteFile(path, []byte(edited), 0o644))
	return path
}

// randomErrorsProbedOnAdminPort is randomErrors with the kubelet's own
// liveness and readiness probes moved to the admin port's /healthz, as
// greenlight's are: podinfo's --random-error also fails a third of the
// seconds of its user port's /healthz and /readyz, so three misses in a
// row (one chance in 27 every 10 s) would take the only pod out of the
// Service or restart it, and every probe through the Service would rightly
// fail for seconds.
func randomErrorsProbedOnAdminPort(t *testing.T, apps testcluster.Apps) string {
	t.Helper()
	return podinfoDeploymentEdited(t, apps, "--random-error=false", "--random-error=true",
		"localhost:9898/healthz", "localhost:9797/healthz", "localhost:9898/readyz", "localhost:9797/healthz")
}

// TestPodinfoRandomErrorsTripMetricsWhileProbesStayGreen: podinfo's own
// --random-error fails whole seconds of its user traffic (every request of
// such a second answers 500, 400 or 409), but not its admin port's
// /healthz, where the health checks, greenlight's and the kubelet's, go. Under the same load before and
// after, the requests the pods served trip the error-rate rule of the
// source that read them — the pods' own metrics, or a real Prometheus
// scraping them — while the probes never do.
func TestPodinfoRandomErrorsTripMetricsWhileProbesStayGreen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		source string
		inputs func(t *testing.T, e *env, in map[string]string)
	}{
		{"pod metrics", func(_ *testing.T, _ *env, in map[string]string) {}},
		{"prometheus", func(t *testing.T, e *env, in map[string]string) {
			delete(in, "metrics-path")
			delete(in, "metrics-port")
			prometheusInputs(in, prometheusFor(t, e, "http-metrics").URL)
			// Prometheus's minute-long window averages the failing
			// seconds (about one in nine answers 500) with the rest.
			in["alert-error-rate"] = "5%"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.source, func(t *testing.T) {
			t.Parallel()
			apps := publicApps(t)
			e := newEnv(t, "")
			service := podinfoServiceWithMetricsPort(t, apps)
			in := metricsInputs(e.podinfoInputs(apps, "staging", podinfoSHA1))
			delete(in, "url") // through the API server's service proxy, to the admin port
			in["service-port"] = "9797"
			in["health-paths"] = "/healthz"
			in["manifests"] = filepath.Join(apps.PodinfoSource, "kustomize", "deployment.yaml") + "," + service
			in["monitor-duration"] = "2s"
			first := e.runAction(t, in, "")
			require.Equal(t, "succeeded", first.outputs["status"])

			tc.inputs(t, e, in)
			stop := podinfoLoad(t, e.c.ServiceURL(e.ns, "podinfo"))
			in["image"] = podinfoSHA2
			in["manifests"] = randomErrorsProbedOnAdminPort(t, apps) + "," + service
			in["monitor-duration"] = "60s"
			// Probes through the API server's service proxy get 2 s each
			// (the interval) on a machine that runs many tests at once.
			in["monitor-interval"] = "2s"
			in["min-samples"] = "10"
			in["min-requests"] = "10"
			res := e.runAction(t, in, "")
			load := stop()
			assert.Positive(t, load.Sent)
			assert.Regexp(t, `\(`+tc.source+`\) is above the (alert|rollback) threshold`, res.stdout, "the requests the pods served trip a rule")
			assert.Contains(t, res.report, `"source": "`+tc.source+`"`)
			assert.NotContains(t, res.stdout, "(probes) is above")
			assert.Equal(t, "0.0000", res.outputs["error-rate"], "the probes of the admin port's /healthz stayed green")
			t.Logf("status %s: %s; requests 5xx %s, %s req/s; probes error rate %s", res.outputs["status"], res.outputs["reason"],
				res.outputs["requests-error-rate"], res.outputs["throughput-rps"], res.outputs["error-rate"])
		})
	}
}

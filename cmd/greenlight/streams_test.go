package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/ebeautything/greenlight/internal/monitor"
	"github.com/ebeautything/greenlight/internal/report"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// The event streams under the repository's testdata/streams are the event
// logs of real runs on the test cluster, with podinfo, and with the sample
// app where it shows what podinfo cannot (a component report); the report
// package renders its goldens, in testdata/golden, from them. Record them again with
// go test ./cmd/greenlight -run TestRecordedStreams -record-streams.
var recordStreams = flag.Bool("record-streams", false, "rewrite testdata/streams/*.jsonl at the repository root from real runs")

// streamAlertResponseTime is the alert threshold every recorded run uses,
// which the report package's goldens render with.
const streamAlertResponseTime = "500ms"

// recordedRun is one real run whose event log becomes a recorded stream.
type recordedRun struct {
	name string
	// namespace replaces the run's generated namespace in the recording.
	namespace string
	// run prepares the cluster, runs greenlight with the inputs it is
	// given (event-log set) and returns the run to record.
	run func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result
	// status is the status output the run must end with.
	status string
	// realNode runs it on a cluster of its own whose pods are containers:
	// Jobs run to completion, StatefulSets roll out.
	realNode bool
}

func recordedRuns() []recordedRun {
	return []recordedRun{
		{name: "podinfo-success", namespace: "shop", status: "succeeded", run: func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result {
			e.firstPodinfo(t, apps, in)
			in["image"] = podinfoSHA2
			in["smoke-tests"] = podinfoSmokeTests(t, "6.9.2")
			in["monitor-duration"] = "15s"
			in["monitor-interval"] = "500ms"
			return e.runAction(t, in, "")
		}},
		{name: "podinfo-awaiting-promotion", namespace: "shop", status: "awaiting-promotion", run: func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result {
			e.firstPodinfo(t, apps, in)
			in["image"] = podinfoSHA2
			in["promotion"] = "manual"
			in["smoke-tests"] = podinfoSmokeTests(t, "6.9.2")
			return e.runAction(t, in, "")
		}},
		{name: "podinfo-skip-tests-production", namespace: "shop", status: "succeeded", run: func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result {
			e.firstPodinfo(t, apps, in)
			in["image"] = podinfoSHA2
			in["smoke-tests"] = podinfoSmokeTests(t, "7.0.0") // would fail: skipped
			in["skip-tests"] = "true"
			return e.runAction(t, in, "")
		}},
		{name: "podinfo-fail-validate", namespace: "shop-staging", status: "failed", run: func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result {
			in["environment"] = "staging"
			in["manifests"] = podinfoDeploymentEdited(t, apps, "minReadySeconds: 3", "minReadySeconds: -3") + "," + filepath.Join(apps.PodinfoSource, "kustomize", "service.yaml")
			return e.runAction(t, in, "")
		}},
		{name: "podinfo-fail-permissions", namespace: "shop-staging", status: "failed", run: func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result {
			// The deployer's credential may only read the namespace, so
			// validation names what it lacks and changes nothing.
			in["environment"] = "staging"
			e.firstPodinfo(t, apps, in)
			user := "deployer-" + e.ns
			kubeconfig, err := e.c.AddUser(user)
			require.NoError(t, err)
			e.grantReadOnly(t, user)
			in["image"] = podinfoSHA2
			in["kubeconfig"] = base64.StdEncoding.EncodeToString(kubeconfig)
			res := e.runAction(t, in, "")
			for _, line := range strings.Split(string(kubeconfig), "\n") {
				if _, secret, ok := strings.Cut(line, "-data: "); ok && secret != "" {
					require.NotContains(t, res.events, secret, "the user's credential is in the event log")
				}
			}
			return res
		}},
		{name: "podinfo-fail-deploy", namespace: "shop-staging", status: "rolled-back", run: func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result {
			in["environment"] = "staging"
			e.firstPodinfo(t, apps, in)
			in["image"] = "ghcr.io/acme/podinfo:missing-6.9.3"
			in["rollout-timeout"] = "20s"
			return e.runAction(t, in, "")
		}},
		{name: "podinfo-fail-verify", namespace: "shop", status: "failed", run: func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result {
			e.firstPodinfo(t, apps, in)
			in["image"] = podinfoSHA2
			in["smoke-tests"] = podinfoSmokeTests(t, "7.0.0")
			return e.runAction(t, in, "")
		}},
		{name: "podinfo-random-errors", namespace: "shop", status: "rolled-back", run: func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result {
			// podinfo's own --random-error fails every request of one
			// second in three: the preview's check, verify's or the
			// monitor's sees it, whichever such second it meets first.
			e.firstPodinfo(t, apps, in)
			in["image"] = podinfoSHA2
			in["manifests"] = randomErrors(t, apps) + "," + filepath.Join(apps.PodinfoSource, "kustomize", "service.yaml")
			in["health-paths"] = "/status/200"
			return e.runAction(t, in, "")
		}},
		{name: "podinfo-rollback-monitor", namespace: "shop", status: "rolled-back", run: func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result {
			// Once monitoring starts, green's podinfo is told to fail its
			// readiness (its own POST /readyz/disable): the new version
			// stops serving after the switch.
			e.firstPodinfo(t, apps, in)
			in["image"] = podinfoSHA2
			in["monitor-duration"] = "60s"
			in["monitor-interval"] = "250ms"
			res := e.runHooked(t, in, stdoutHook{at: "::group::monitor", do: func(liveRun) { e.disablePodinfoReadiness(t, "podinfo-green") }})
			t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
			return res
		}},
		{name: "sampleapp-rollback-monitor", namespace: "shop", status: "rolled-back", run: func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result {
			// The sample app reports its components on /health/detailed,
			// which podinfo has no counterpart of; its new version starts
			// answering 500 six seconds after it starts, during monitoring.
			e.createApp(t, "sampleapp:v1")
			first := e.inputs("production", "sampleapp:v2")
			require.Equal(t, "succeeded", e.runAction(t, first, "").outputs["status"], "the sample app's first deploy")
			delete(in, "container")
			delete(in, "health-paths") // the defaults, /health/detailed among them
			maps.Copy(in, e.inputs("production", "sampleapp:v3"))
			in["manifests"] = manifests(t, corev1.EnvVar{Name: "SAMPLEAPP_FAIL_AFTER", Value: "6s"})
			in["monitor-duration"] = "60s"
			in["monitor-interval"] = "250ms"
			return e.runAction(t, in, "")
		}},
		{name: "podinfo-rollback-failed", namespace: "shop-staging", status: "rollback-failed", run: func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result {
			// The version serving now is broken already (its image was
			// never pushed); an emergency fix that breaks too cannot be
			// rolled back to anything healthy.
			in["environment"] = "staging"
			e.createPodinfo(t, apps, "ghcr.io/acme/podinfo:missing-6.9.1")
			in["image"] = "ghcr.io/acme/podinfo:missing-6.9.3"
			in["continue-on-unhealthy"] = "true"
			in["rollout-timeout"] = "15s"
			return e.runAction(t, in, "")
		}},
		{name: "podinfo-unit-crashing-worker", namespace: "shop-staging", status: "rolled-back", realNode: true, run: func(t *testing.T, e *env, apps testcluster.Apps, in map[string]string) result {
			// Five workloads shipped as one unit, on the real node: the
			// migration runs and completes, then the worker of the new
			// version exits at start; everything but the migration is
			// put back, and the Objects table says what became of each.
			in["environment"] = "staging"
			in["deployment"] = "api"
			in["container"] = "api"
			in["url"] = e.c.ServiceURL(e.ns, "api")
			in["rollout-timeout"] = "60s"
			first := maps.Clone(in)
			delete(first, "event-log")
			first["image"] = "ghcr.io/stefanprodan/podinfo:1.0.0"
			first["manifests"] = podinfoUnitFile(t, "1.0.0", testcluster.UnitFaults{})
			first["monitor-duration"] = "1s"
			res := e.runAction(t, first, "")
			require.Equal(t, "succeeded", res.outputs["status"], "the unit's first version:\n%s", res.stdout)
			in["image"] = "ghcr.io/stefanprodan/podinfo:2.0.0"
			in["manifests"] = podinfoUnitFile(t, "2.0.0", testcluster.UnitFaults{CrashingWorker: true})
			e.recordedAs = map[string]string{filepath.Dir(in["manifests"]): "deploy"}
			return e.runAction(t, in, "")
		}},
	}
}

// TestRecordedStreams runs each recorded run for real and checks that its
// event log replays into exactly the report the run wrote; with
// -record-streams it rewrites the recordings. Without it only the first
// runs, so the suite keeps proving the log complete.
func TestRecordedStreams(t *testing.T) {
	t.Parallel()
	apps := publicApps(t)
	runs := recordedRuns()
	if !*recordStreams {
		runs = runs[:1]
	}
	for _, rr := range runs {
		t.Run(rr.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvFor(t, rr)
			in := e.podinfoInputs(apps, "production", podinfoSHA1)
			in["event-log"] = "events/" + rr.name + ".jsonl"
			in["alert-response-time"] = streamAlertResponseTime
			res := rr.run(t, e, apps, in)
			require.Equal(t, rr.status, res.outputs["status"], "stdout:\n%s", res.stdout)
			e.assertNoSecrets(t, res, in)

			replayed := report.NewRecorder(report.WithRules(monitor.Rules{AlertResponseTime: 500 * time.Millisecond}))
			require.NoError(t, report.DecodeStream(strings.NewReader(res.events), replayed))
			var got bytes.Buffer
			require.NoError(t, report.WriteJSON(&got, replayed.Document()))
			assert.JSONEq(t, res.report, got.String(), "the event log replays into the report the run wrote")

			if *recordStreams {
				recording := normalisePorts(strings.ReplaceAll(res.events, e.ns, rr.namespace))
				for path, name := range e.recordedAs {
					recording = strings.ReplaceAll(recording, path, name)
				}
				path := filepath.Join("..", "..", "testdata", "streams", rr.name+".jsonl")
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte(recording), 0o644))
			}
		})
	}
}

// ephemeralLoopback matches a loopback address with a port from the
// range the kernel hands out to listeners on port 0 (32768-60999 on
// Linux, and up to 65535 elsewhere): the test cluster's API server,
// router and fake servers, new on every run.
var ephemeralLoopback = regexp.MustCompile(`127\.0\.0\.1:(3276[89]|327[7-9]\d|32[89]\d\d|3[3-9]\d{3}|[4-5]\d{4}|6[0-5]\d{3})\b`)

// normalisePorts gives each loopback server of a recording a fixed port,
// 30001 for the first one named, 30002 for the next, so that recording
// the same runs again changes only what the runs did.
func normalisePorts(stream string) string {
	fixed := map[string]string{}
	return ephemeralLoopback.ReplaceAllStringFunc(stream, func(addr string) string {
		if _, ok := fixed[addr]; !ok {
			fixed[addr] = fmt.Sprintf("127.0.0.1:%d", 30001+len(fixed))
		}
		return fixed[addr]
	})
}

func TestNormalisePorts(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"https://127.0.0.1:46881 http://127.0.0.1:35493/shop http://127.0.0.1:46881/",
			"https://127.0.0.1:30001 http://127.0.0.1:30002/shop http://127.0.0.1:30001/"},
		{"curl http://127.0.0.1:8080/healthz, 127.0.0.1:32767", "curl http://127.0.0.1:8080/healthz, 127.0.0.1:32767"},
		{"127.0.0.1:32768 127.0.0.1:65535 127.0.0.1:655350", "127.0.0.1:30001 127.0.0.1:30002 127.0.0.1:655350"},
		{"198.51.100.7:35493", "198.51.100.7:35493"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, normalisePorts(tc.in), "%q", tc.in)
	}
}

// TestRecordedStreamsAreNormalised: every stream checked in was recorded
// through normalisePorts, so no recording names a port of one run.
func TestRecordedStreamsAreNormalised(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "streams", "*.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Empty(t, ephemeralLoopback.FindAllString(string(data), -1), "%s names a run's own ports; record it with -record-streams", p)
	}
}

// newEnvFor is the env a recorded run runs in: the shared cluster, or one
// of its own with a real node.
func newEnvFor(t *testing.T, rr recordedRun) *env {
	t.Helper()
	if !rr.realNode {
		return newEnv(t, "")
	}
	return newEnvOn(t, testcluster.RealNodeFor(t), "")
}

// podinfoUnitFile writes the shared podinfo unit at tag to a file.
func podinfoUnitFile(t *testing.T, tag string, f testcluster.UnitFaults) string {
	t.Helper()
	yaml, err := testcluster.PodinfoUnit(tag, f)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "podinfo-unit-"+tag+".yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	return path
}

// firstPodinfo deploys podinfo's first version, so the recorded run has a
// version serving before it.
func (e *env) firstPodinfo(t *testing.T, apps testcluster.Apps, in map[string]string) {
	t.Helper()
	first := maps.Clone(in)
	delete(first, "event-log")
	first["image"] = podinfoSHA1
	first["monitor-duration"] = "1s"
	res := e.runAction(t, first, "")
	require.Equal(t, "succeeded", res.outputs["status"], "podinfo's first version")
}

// createPodinfo creates podinfo's own Deployment and Service at image, not
// waiting for it to become ready.
func (e *env) createPodinfo(t *testing.T, apps testcluster.Apps, image string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(apps.PodinfoSource, "kustomize", "deployment.yaml"))
	require.NoError(t, err)
	var d appsv1.Deployment
	require.NoError(t, yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096).Decode(&d))
	d.Spec.Template.Spec.Containers[0].Image = image
	_, err = e.client.AppsV1().Deployments(e.ns).Create(context.Background(), &d, metav1.CreateOptions{})
	require.NoError(t, err)
}

// disablePodinfoReadiness posts to /readyz/disable of every pod of the
// Deployment, through the API server's pod proxy.
func (e *env) disablePodinfoReadiness(t *testing.T, deployment string) {
	ctx := context.Background()
	pods, err := e.client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("list pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		if !strings.HasPrefix(p.Name, deployment+"-") {
			continue
		}
		err := e.client.CoreV1().RESTClient().Post().Namespace(e.ns).Resource("pods").Name(p.Name+":9898").
			SubResource("proxy").Suffix("readyz", "disable").Do(ctx).Error()
		if err != nil {
			t.Errorf("disable the readiness of %s: %v", p.Name, err)
		}
	}
}

// podinfoSmokeTests asks podinfo's /version for version.
func podinfoSmokeTests(t *testing.T, version string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "smoke-tests.yml")
	require.NoError(t, os.WriteFile(path, []byte(`tests:
  - name: podinfo reports its version
    path: /version
    expect:
      status: 200
      contains: '"version": "`+version+`"'
`), 0o644))
	return path
}

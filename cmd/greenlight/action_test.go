package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// Distinctive secrets, each starting with secretMarker: none may appear in
// any output, in any encoding (see sweep).
const (
	secretToken   = secretMarker + "-hc-token-7f3a9d2e41b8"
	secretGitHub  = secretMarker + "_ghs_greenlightTestToken0123456789"
	secretSlack   = secretMarker + "/T000/B000/slackSecretPath9f8e7d"
	secretWebhook = secretMarker + "-whsec-5c4b3a291807"
)

// env is one namespace of the test cluster with a running app "shop".
type env struct {
	c      *testcluster.Cluster
	ns     string
	client kubernetes.Interface
	github *recorder
	slack  *recorder
	// environ is added to the runner-style environment of runAction.
	environ []string
	// objects, once set, is the namespace's objects as clusterObjects
	// read them, kept after the namespace was deleted early.
	objects map[string]string
	// recordedAs names, for a recorded stream, what a path of this run
	// is called in the recording (a temp directory as "deploy").
	recordedAs map[string]string
}

// recorder is a loopback HTTP server that records what it receives.
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []string
}

func newRecorder(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// What was sent: the URL, the headers and the body. Two places
		// legitimately hold a secret and are left out: the Slack webhook's
		// path (the secret itself) and the Authorization header (the
		// GitHub token, for GitHub).
		uri := r.URL.RequestURI()
		if strings.HasPrefix(r.URL.Path, "/services/") {
			uri = "/services/(the webhook's secret path)"
			if r.URL.RawQuery != "" {
				uri += "?" + r.URL.RawQuery
			}
		}
		var headers strings.Builder
		for name, values := range r.Header {
			if name != "Authorization" {
				fmt.Fprintf(&headers, "%s: %s\n", name, strings.Join(values, ", "))
			}
		}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r.Method+" "+uri+"\n"+headers.String()+"\n"+string(body))
		rec.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

func newEnv(t *testing.T, image string, envVars ...corev1.EnvVar) *env {
	t.Helper()
	return newEnvOn(t, cluster.Get(t), image, envVars...)
}

// newEnvOn is newEnv on cluster c.
func newEnvOn(t *testing.T, c *testcluster.Cluster, image string, envVars ...corev1.EnvVar) *env {
	t.Helper()
	e := &env{c: c, ns: c.NewNamespace(t), client: c.Client()}
	e.github = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"id": 7}`)
	})
	e.slack = newRecorder(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	if image != "" {
		e.createApp(t, image, envVars...)
	}
	return e
}

func (e *env) createApp(t *testing.T, image string, envVars ...corev1.EnvVar) {
	t.Helper()
	ctx := context.Background()
	_, err := e.client.AppsV1().Deployments(e.ns).Create(ctx, shopDeployment(image, envVars...), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = e.client.CoreV1().Services(e.ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "shop"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.WaitRollout(ctx, e.client, e.ns, "shop", kube.WaitOptions{Timeout: time.Minute})
	require.NoError(t, err)
}

func shopDeployment(image string, envVars ...corev1.EnvVar) *appsv1.Deployment {
	labels := map[string]string{"app": "shop"}
	replicas := int32(2)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: image, Env: envVars,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health/ready", Port: intstr.FromString("http")}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}
}

// inputs are a deploy's action inputs with fast monitoring.
func (e *env) inputs(environment, image string) map[string]string {
	return map[string]string{
		"environment":          environment,
		"kubeconfig":           base64.StdEncoding.EncodeToString(e.c.Kubeconfig()),
		"namespace":            e.ns,
		"deployment":           "shop",
		"image":                image,
		"url":                  e.c.ServiceURL(e.ns, "shop"),
		"monitor-duration":     "2s",
		"monitor-interval":     "100ms",
		"timeout":              "30",
		"health-check-token":   secretToken,
		"github-token":         secretGitHub,
		"slack-webhook-url":    e.slack.srv.URL + "/services/" + secretSlack,
		"alert-webhook-url":    e.slack.srv.URL + "/hooks",
		"alert-webhook-secret": secretWebhook,
		"config":               "/dev/null",
		// Today's behaviour unless a test opens a rollback window.
		"scale-down-delay": "0",
	}
}

// result of one run of the binary.
type result struct {
	code           int
	stdout, stderr string
	outputs        map[string]string
	summary        string
	report         string
	// events is the event-log input's file, when the run wrote one.
	events string
	// lines are stdout's lines with the moment each reached the test
	// (runHooked only).
	lines []stampedLine
}

// runAction runs the binary as the runner does: GITHUB_ACTIONS=true,
// INPUT_* variables and file commands in a temp dir. signalAt, when set,
// sends SIGTERM once stdout contains it.
func (e *env) runAction(t *testing.T, inputs map[string]string, signalAt string) result {
	t.Helper()
	var hooks []stdoutHook
	if signalAt != "" {
		hooks = append(hooks, stdoutHook{at: signalAt, do: func(r liveRun) { _ = r.proc.Signal(syscall.SIGTERM) }})
	}
	res := e.runHooked(t, inputs, hooks...)
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	return res
}

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

// parseOutputs reads the runner's output file: name<<DELIMITER lines, the
// value, then the delimiter alone on a line.
func parseOutputs(s string) map[string]string {
	out := map[string]string{}
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		name, delim, ok := strings.Cut(lines[i], "<<")
		if !ok {
			continue
		}
		var value []string
		for i++; i < len(lines) && lines[i] != delim; i++ {
			value = append(value, lines[i])
		}
		out[name] = strings.Join(value, "\n")
	}
	return out
}

// assertNoSecrets checks that no secret reaches stdout (besides the
// ::add-mask:: commands that hide it), stderr, outputs, summary, report or
// the Slack receiver.
func (e *env) assertNoSecrets(t *testing.T, res result, inputs map[string]string) {
	t.Helper()
	var logged []string
	for _, line := range strings.Split(res.stdout, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			logged = append(logged, line)
		}
	}
	outputs, _ := json.Marshal(res.outputs)
	places := map[string]string{
		"stdout": strings.Join(logged, "\n"), "stderr": res.stderr, "outputs": string(outputs),
		"summary": res.summary, "report": res.report, "events": res.events, "slack": strings.Join(e.slack.requests(), "\n"),
	}
	places["github"] = strings.Join(e.github.requests(), "\n")
	objects := e.objects
	if objects == nil {
		objects = clusterObjects(t, e.client, e.ns)
	}
	for where, text := range objects {
		places[where] = text
	}
	for _, leak := range sweep(places, markedSecrets...) {
		t.Errorf("a secret leaked: %s", leak)
	}
	// The kubeconfig's credentials are the cluster's own, without the
	// marker: they are looked for whole.
	kubeconfigSecrets := []string{inputs["kubeconfig"]}
	for _, line := range strings.Split(string(e.c.Kubeconfig()), "\n") {
		if i := strings.Index(line, "-data: "); i >= 0 {
			kubeconfigSecrets = append(kubeconfigSecrets, line[i+len("-data: "):])
		}
	}
	for where, text := range places {
		for _, secret := range kubeconfigSecrets {
			if secret != "" {
				assert.NotContains(t, text, secret, "the kubeconfig's credentials leaked into %s", where)
			}
		}
	}
}

// serving counts the versions answering through the router.
func (e *env) serving(t *testing.T, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		resp, err := http.Get(e.c.ServiceURL(e.ns, "shop") + "/health")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			counts[fmt.Sprintf("status %d", resp.StatusCode)]++
			continue
		}
		counts[resp.Header.Get("X-App-Version")]++
	}
	return counts
}

func (e *env) lockHeld(t *testing.T) bool {
	holder, _, err := kube.ReadLock(context.Background(), e.client, e.ns, kube.LockName("shop"))
	require.NoError(t, err)
	return holder != nil && holder.ID != ""
}

func TestActionStagingRollingDeploy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("staging", "sampleapp:v2")
	res := e.runAction(t, in, "")
	require.Equal(t, 0, res.code)
	assert.Equal(t, "succeeded", res.outputs["status"])
	assert.Equal(t, "sampleapp:v2", res.outputs["image"])
	assert.Equal(t, "sampleapp:v1", res.outputs["previous-image"])
	assert.Equal(t, "2", res.outputs["revision"])
	assert.Equal(t, "false", res.outputs["rolled-back"])
	assert.Equal(t, "0123456789abcdef0123456789abcdef01234567", res.outputs["deployment-id"])
	assert.NotEmpty(t, res.outputs["p95-ms"])
	assert.Equal(t, "1.0000", res.outputs["availability"])
	assert.Contains(t, res.stdout, "::group::deploy")
	assert.Contains(t, res.summary, "sampleapp:v2")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
	assert.False(t, e.lockHeld(t), "the lock is released")
	e.assertNoSecrets(t, res, in)
	assert.NotEmpty(t, e.github.requests(), "commit statuses and a Deployment were sent")
	assert.NotEmpty(t, e.slack.requests(), "Slack was notified")
}

func TestActionProductionBlueGreenFirstAndSecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("production", "sampleapp:v2")
	first := e.runAction(t, in, "")
	require.Equal(t, 0, first.code)
	assert.Equal(t, "blue", first.outputs["revision"])
	assert.Equal(t, "sampleapp:v1", first.outputs["previous-image"])
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))

	in["image"] = "sampleapp:v3"
	second := e.runAction(t, in, "")
	require.Equal(t, 0, second.code)
	assert.Equal(t, "green", second.outputs["revision"])
	assert.Equal(t, "sampleapp:v2", second.outputs["previous-image"])
	assert.JSONEq(t, `{"v3": 20}`, mustJSON(e.serving(t, 20)))
	blue, err := e.client.AppsV1().Deployments(e.ns).Get(context.Background(), "shop-blue", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Zero(t, *blue.Spec.Replicas, "blue is scaled to zero once monitoring is over")
	e.assertNoSecrets(t, second, in)
}

// manifests writes a Deployment manifest for shop with extra env.
func manifests(t *testing.T, envVars ...corev1.EnvVar) string {
	d := shopDeployment("sampleapp:placeholder", envVars...)
	d.Spec.Template.Spec.Containers[0].ReadinessProbe = nil // ready at once: health is verify's to judge
	data, err := json.Marshal(d)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "shop.json")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

func TestActionFailedVerificationNeverGetsTraffic(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("production", "sampleapp:v2")
	in["manifests"] = manifests(t, corev1.EnvVar{Name: "SAMPLEAPP_ERROR_RATE", Value: "1"})
	in["timeout"] = "5"
	res := e.runAction(t, in, "")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "failed", res.outputs["status"])
	assert.Equal(t, "false", res.outputs["rolled-back"])
	assert.JSONEq(t, `{"v1": 20}`, mustJSON(e.serving(t, 20)), "the failed green never got traffic")
	// Read before the new color was scaled down: what its app printed.
	assertContainerLog(t, res, "shop-blue-", "answered 500: injected failure")
	e.assertNoSecrets(t, res, in)
}

// assertContainerLog checks that the summary shows a log of a pod whose
// name starts with pod, holding line, and that the JSON report keeps it.
func assertContainerLog(t *testing.T, res result, pod, line string) {
	t.Helper()
	_, logs, ok := strings.Cut(res.summary, "#### Container logs")
	require.True(t, ok, "the summary shows container logs:\n%s", res.summary)
	assert.Contains(t, logs, "<summary><code>"+pod)
	assert.Contains(t, logs, line)
	assert.Contains(t, res.report, `"kind": "log"`)
}

func TestActionFailureDuringMonitoringRollsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("production", "sampleapp:v2")
	require.Equal(t, 0, e.runAction(t, in, "").code)

	in["image"] = "sampleapp:v3"
	in["manifests"] = manifests(t, corev1.EnvVar{Name: "SAMPLEAPP_FAIL_AFTER", Value: "6s"})
	in["monitor-duration"] = "60s"
	res := e.runAction(t, in, "")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "rolled-back", res.outputs["status"])
	assert.Equal(t, "true", res.outputs["rolled-back"])
	assert.Equal(t, "sampleapp:v2", res.outputs["previous-image"])
	assert.Contains(t, res.summary, "rolled back")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)), "blue serves again")
	assert.False(t, e.lockHeld(t))
	assertContainerLog(t, res, "shop-green-", "answered 500: injected failure")
	e.assertNoSecrets(t, res, in)
}

func TestActionSIGTERMLeavesOldVersionServing(t *testing.T) {
	t.Parallel()
	for _, stage := range []string{"validate", "deploy", "verify", "monitor"} {
		t.Run(stage, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "sampleapp:v1")
			in := e.inputs("production", "sampleapp:v2")
			in["monitor-duration"] = "60s"
			res := e.runAction(t, in, "::group::"+stage)
			assert.NotEqual(t, 0, res.code)
			assert.Contains(t, []string{"failed", "rolled-back"}, res.outputs["status"])
			assert.NotEmpty(t, res.report, "the partial report is written")
			assert.JSONEq(t, `{"v1": 20}`, mustJSON(e.serving(t, 20)), "the old version serves after SIGTERM in %s", stage)
			assert.False(t, e.lockHeld(t), "the lock is released")
		})
	}
}

func TestActionBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	noContainer := manifests(t)
	tests := []struct {
		name  string
		set   map[string]string
		input string
	}{
		{"empty environment", map[string]string{"environment": ""}, "environment"},
		{"empty kubeconfig", map[string]string{"kubeconfig": ""}, "kubeconfig"},
		{"garbage base64", map[string]string{"kubeconfig": "bm90IGEga3ViZWNvbmZpZw=="}, "kubeconfig"},
		{"yaml that is not a kubeconfig", map[string]string{"kubeconfig": "apiVersion: v1\nkind: Pod\n"}, "kubeconfig"},
		{"unknown strategy", map[string]string{"strategy": "canary"}, "strategy"},
		{"negative duration", map[string]string{"monitor-duration": "-5m"}, "monitor-duration"},
		{"threshold out of range", map[string]string{"rollback-error-rate": "250%"}, "rollback-error-rate"},
		{"unknown environment in the config file", map[string]string{"config": writeFile(t, "environments:\n  production:\n    namespace: x\n")}, "environment"},
		{"nonexistent manifest path", map[string]string{"manifests": "/nonexistent/deploy.yaml"}, "manifests"},
		{"manifest with no matching container", map[string]string{"manifests": noContainer, "container": "sidecar"}, "container"},
		{"bad boolean", map[string]string{"skip-tests": "maybe"}, "skip-tests"},
		{"bad url", map[string]string{"url": "ftp://example.com"}, "url"},
	}
	before := e.snapshot(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := e.inputs("staging", "sampleapp:v2")
			for k, v := range tt.set {
				in[k] = v
			}
			res := e.runAction(t, in, "")
			assert.Equal(t, 2, res.code)
			assert.Contains(t, res.stdout+res.stderr, `"`+tt.input+`"`, "the message names the input")
			e.assertNoSecrets(t, res, in)
		})
	}
	assert.Equal(t, before, e.snapshot(t), "nothing in the namespace changed")
}

// snapshot lists the namespace's objects with their resource versions.
func (e *env) snapshot(t *testing.T) []string {
	ctx := context.Background()
	var out []string
	deps, err := e.client.AppsV1().Deployments(e.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, d := range deps.Items {
		out = append(out, "deployment/"+d.Name+"@"+d.ResourceVersion)
	}
	svcs, err := e.client.CoreV1().Services(e.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, s := range svcs.Items {
		out = append(out, "service/"+s.Name+"@"+s.ResourceVersion)
	}
	cms, err := e.client.CoreV1().ConfigMaps(e.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, c := range cms.Items {
		out = append(out, "configmap/"+c.Name+"@"+c.ResourceVersion)
	}
	leases, err := e.client.CoordinationV1().Leases(e.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, l := range leases.Items {
		out = append(out, "lease/"+l.Name)
	}
	sort.Strings(out)
	return out
}

func writeFile(t *testing.T, content string) string {
	path := filepath.Join(t.TempDir(), "greenlight.yml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

func mustJSON(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

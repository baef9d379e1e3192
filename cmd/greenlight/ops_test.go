package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/ops"
)

// opsCLI runs the binary as the local user alice would.
func (e *env) opsCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, e.c.Kubeconfig(), 0o600))
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "KUBECONFIG=" + kubeconfig, "USER=alice"}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	_ = cmd.Run()
	t.Logf("greenlight %v → exit %d in %s\n%s%s", args[:1], cmd.ProcessState.ExitCode(), time.Since(start).Round(time.Millisecond), out.String(), errOut.String())
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// alice is who opsCLI runs as: USER=alice on this host, as --actor
// defaults to user@host.
func alice() string {
	host, _ := os.Hostname()
	return "alice@" + host
}

// statusJSON is the part of `status --output=json` the tests read.
type statusJSON struct {
	Strategy string `json:"strategy"`
	Active   struct {
		Deployment string `json:"deployment"`
		Color      string `json:"color"`
		Revision   int64  `json:"revision"`
		Image      string `json:"image"`
		Replicas   struct{ Desired, Ready int32 }
	} `json:"active"`
	Endpoints struct {
		Ready    []string `json:"ready"`
		NotReady int      `json:"notReady"`
	} `json:"endpoints"`
	Lock *struct {
		Holder, Actor, RunURL string
	} `json:"lock"`
	Health *struct {
		StatusCode int    `json:"statusCode"`
		OK         bool   `json:"ok"`
		Version    string `json:"version"`
	} `json:"health"`
	Recent []historyJSON `json:"recent"`
}

// historyJSON is one entry of `history --output=json`.
type historyJSON struct {
	ID, Result, Image, Reason, Actor, RunURL string
	RolledBack                               bool
}

func (e *env) statusJSON(t *testing.T, extra ...string) statusJSON {
	t.Helper()
	code, out, _ := e.opsCLI(t, e.cliArgs("status", append(extra, "--output=json")...)...)
	require.Equal(t, 0, code)
	var s statusJSON
	require.NoError(t, json.Unmarshal([]byte(out), &s), out)
	return s
}

func (e *env) historyJSON(t *testing.T, extra ...string) []historyJSON {
	t.Helper()
	code, out, _ := e.opsCLI(t, e.cliArgs("history", append(extra, "--output=json")...)...)
	require.Equal(t, 0, code)
	var h []historyJSON
	require.NoError(t, json.Unmarshal([]byte(out), &h), out)
	return h
}

// replicas reads a Deployment's wanted and ready replicas.
func (e *env) replicas(t *testing.T, name string) (desired, ready int32) {
	t.Helper()
	d, err := e.client.AppsV1().Deployments(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return *d.Spec.Replicas, d.Status.ReadyReplicas
}

// specSnapshot lists what a command could change in the namespace: each
// Deployment's generation (a status update by the controller is not a
// change), each ConfigMap's resource version and each Lease's holder.
func (e *env) specSnapshot(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	deps, err := e.client.AppsV1().Deployments(e.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, d := range deps.Items {
		out = append(out, fmt.Sprintf("deployment/%s@%d", d.Name, d.Generation))
	}
	cms, err := e.client.CoreV1().ConfigMaps(e.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, c := range cms.Items {
		out = append(out, "configmap/"+c.Name+"@"+c.ResourceVersion)
	}
	leases, err := e.client.CoordinationV1().Leases(e.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, l := range leases.Items {
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		out = append(out, "lease/"+l.Name+"@"+holder)
	}
	sort.Strings(out)
	return out
}

func TestOpsStatusRolling(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	// The Deployment counts a pod ready before the EndpointSlice
	// controller lists it; status reports each as it is, so wait for both.
	require.True(t, pollUntil(30*time.Second, func() bool { return e.readyEndpoints(t, "shop") == 2 }), "the Service lists both pods ready")

	code, out, _ := e.opsCLI(t, e.cliArgs("status")...)
	require.Equal(t, 0, code)
	for _, want := range []string{"staging · rolling", "revision 1 (deployment shop)", "image       sampleapp:v1", "2/2 ready", "2 ready: shop-", "lock        free", "200 · version v1", "no deployments recorded yet"} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "\033[", "no colors off a terminal")

	s := e.statusJSON(t)
	assert.Equal(t, "rolling", s.Strategy)
	assert.Equal(t, "shop", s.Active.Deployment)
	assert.Empty(t, s.Active.Color)
	assert.EqualValues(t, 1, s.Active.Revision)
	assert.Equal(t, "sampleapp:v1", s.Active.Image)
	assert.EqualValues(t, 2, s.Active.Replicas.Ready)
	assert.Len(t, s.Endpoints.Ready, 2)
	assert.Nil(t, s.Lock)
	require.NotNil(t, s.Health)
	assert.True(t, s.Health.OK)
	assert.Equal(t, "v1", s.Health.Version)
	assert.Empty(t, s.Recent)

	code, out, _ = e.opsCLI(t, e.cliArgs("history")...)
	assert.Equal(t, 0, code)
	assert.Equal(t, "no deployments recorded yet\n", out)

	code, out, _ = e.opsCLI(t, "--help")
	assert.Equal(t, 0, code)
	for _, command := range []string{"status", "history", "scale", "maintenance"} {
		assert.Contains(t, out, "\n  "+command+" ", "the help lists %s", command)
	}
	code, out, _ = e.opsCLI(t, "maintenance", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "greenlight maintenance on --environment=production")
	assert.Contains(t, out, "-configmap")

	for _, tt := range []struct {
		args  []string
		input string
	}{
		{e.cliArgs("status", "--output=yaml"), `"output"`},
		{e.cliArgs("history", "--limit=0"), `"limit"`},
		{e.cliArgs("history", "--output=xml"), `"output"`},
		{e.cliArgs("scale"), `"replicas"`},
		{e.cliArgs("scale", "--replicas=-1"), `"replicas"`},
		{e.cliArgs("status", "extra"), "unexpected argument"},
	} {
		code, _, errOut := e.opsCLI(t, tt.args...)
		assert.Equal(t, 2, code, "%v", tt.args)
		assert.Contains(t, errOut, tt.input, "the message names the input")
	}
}

func TestOpsBlueGreenStatusScaleAndHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	prod := func(command string, extra ...string) []string {
		return e.cliArgs(command, append([]string{"--environment=production"}, extra...)...)
	}
	code, _, _ := e.opsCLI(t, prod("deploy", "--image=sampleapp:v2", "--monitor-duration=1s", "--monitor-interval=100ms", "--deployment-id=bg-1")...)
	require.Equal(t, 0, code)

	s := e.statusJSON(t, "--environment=production")
	assert.Equal(t, "blue-green", s.Strategy)
	assert.Equal(t, "blue", s.Active.Color)
	assert.Equal(t, "shop-blue", s.Active.Deployment)
	assert.Equal(t, "sampleapp:v2", s.Active.Image)
	assert.EqualValues(t, 2, s.Active.Replicas.Ready)
	require.Len(t, s.Endpoints.Ready, 2)
	for _, ep := range s.Endpoints.Ready {
		assert.True(t, strings.HasPrefix(ep, "shop-blue-"), "the Service's endpoints are the blue pods: %s", ep)
	}
	require.NotEmpty(t, s.Recent)
	assert.Equal(t, "bg-1", s.Recent[0].ID)
	assert.Equal(t, "succeeded", s.Recent[0].Result)
	require.NotNil(t, s.Health)
	assert.Equal(t, "v2", s.Health.Version)

	code, out, _ := e.opsCLI(t, prod("status")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "production · blue-green")
	assert.Contains(t, out, "blue (deployment shop-blue, revision 1)")
	assert.Contains(t, out, "bg-1")

	// Scaling acts on the active color only.
	_, plainBefore := e.replicas(t, "shop")
	code, out, _ = e.opsCLI(t, prod("scale", "--replicas=3")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "scaled deployment shop-blue from 2 to 3 replicas: 3 ready, 3 endpoints serving")
	desired, ready := e.replicas(t, "shop-blue")
	assert.EqualValues(t, 3, desired)
	assert.EqualValues(t, 3, ready)
	_, plainAfter := e.replicas(t, "shop")
	assert.Equal(t, plainBefore, plainAfter, "the idle Deployment is left alone")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))

	code, _, _ = e.opsCLI(t, prod("scale", "--replicas=2")...)
	require.Equal(t, 0, code)
	desired, _ = e.replicas(t, "shop-blue")
	assert.EqualValues(t, 2, desired)

	h := e.historyJSON(t, "--environment=production")
	require.Len(t, h, 3)
	assert.Equal(t, "scaled shop-blue to 2 replicas (from 3) by "+alice(), h[0].Reason)
	assert.Equal(t, "scaled shop-blue to 3 replicas (from 2) by "+alice(), h[1].Reason)
	assert.Equal(t, alice(), h[1].Actor)
	assert.Equal(t, "succeeded", h[1].Result)
	assert.Equal(t, "sampleapp:v2", h[1].Image)
	assert.Equal(t, "bg-1", h[2].ID)
	assert.False(t, h[2].RolledBack)

	code, out, _ = e.opsCLI(t, prod("history", "--limit=2")...)
	require.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, "a header, two records and the rollback window:\n%s", out)
	assert.Contains(t, lines[3], "rollback window: shop stays warm", "production keeps the adopted Deployment warm; history only reports it")
	assert.Contains(t, lines[0], "ROLLED BACK")
	assert.Contains(t, lines[1], "scale-")
	assert.NotContains(t, out, "bg-1", "--limit keeps the newest")
}

func TestOpsScaleUpAndBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")

	code, out, _ := e.opsCLI(t, e.cliArgs("scale", "--replicas=4")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "from 2 to 4 replicas: 4 ready, 4 endpoints serving")
	desired, ready := e.replicas(t, "shop")
	assert.EqualValues(t, 4, desired)
	assert.EqualValues(t, 4, ready)
	assert.Len(t, e.statusJSON(t).Endpoints.Ready, 4)

	before := e.specSnapshot(t)
	code, _, errOut := e.opsCLI(t, e.cliArgs("scale", "--replicas=0")...)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `"replicas"`)
	assert.Contains(t, errOut, "--force")
	assert.Equal(t, before, e.specSnapshot(t), "a refused scale changes nothing, not even the lock")

	code, _, _ = e.opsCLI(t, e.cliArgs("scale", "--replicas=0", "--force")...)
	require.Equal(t, 0, code)
	desired, _ = e.replicas(t, "shop")
	assert.Zero(t, desired)

	code, _, _ = e.opsCLI(t, e.cliArgs("scale", "--replicas=2")...)
	require.Equal(t, 0, code)
	desired, ready = e.replicas(t, "shop")
	assert.EqualValues(t, 2, desired)
	assert.EqualValues(t, 2, ready)
	assert.JSONEq(t, `{"v1": 20}`, mustJSON(e.serving(t, 20)))

	code, out, _ = e.opsCLI(t, e.cliArgs("scale", "--replicas=2")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "already has 2 replicas")

	var reasons []string
	for _, r := range e.historyJSON(t) {
		reasons = append(reasons, r.Reason)
	}
	assert.Equal(t, []string{
		"scaled shop to 2 replicas (from 0) by " + alice(),
		"scaled shop to 0 replicas (from 4) by " + alice(),
		"scaled shop to 4 replicas (from 2) by " + alice(),
	}, reasons, "every change is recorded, newest first; the no-op is not")
	assert.False(t, e.lockHeld(t), "the lock is released")
}

// createAppReadingConfig runs shop reading its environment from the
// ConfigMap shop-config, which holds data.
func (e *env) createAppReadingConfig(t *testing.T, data map[string]string) {
	t.Helper()
	ctx := context.Background()
	_, err := e.client.CoreV1().ConfigMaps(e.ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shop-config"}, Data: data}, metav1.CreateOptions{})
	require.NoError(t, err)
	d := shopDeployment("sampleapp:v1")
	d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shop-config"}}}}
	_, err = e.client.AppsV1().Deployments(e.ns).Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	e.createService(t)
	_, err = kube.WaitRollout(ctx, e.client, e.ns, "shop", kube.WaitOptions{Timeout: time.Minute})
	require.NoError(t, err)
}

func (e *env) createService(t *testing.T) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "shop"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	_, err := e.client.CoreV1().Services(e.ns).Create(context.Background(), svc, metav1.CreateOptions{})
	require.NoError(t, err)
}

// replicaSets lists shop's ReplicaSets: name → replicas.
func (e *env) replicaSets(t *testing.T) map[string]int32 {
	t.Helper()
	list, err := e.client.AppsV1().ReplicaSets(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=shop"})
	require.NoError(t, err)
	out := map[string]int32{}
	for _, rs := range list.Items {
		out[rs.Name] = *rs.Spec.Replicas
	}
	return out
}

func (e *env) configValue(t *testing.T, key string) (string, bool) {
	t.Helper()
	cm, err := e.client.CoreV1().ConfigMaps(e.ns).Get(context.Background(), "shop-config", metav1.GetOptions{})
	require.NoError(t, err)
	v, ok := cm.Data[key]
	return v, ok
}

func TestOpsMaintenanceOnOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "")
	e.createAppReadingConfig(t, map[string]string{"GREETING": "hello"})
	ctx := context.Background()

	code, out, _ := e.opsCLI(t, e.cliArgs("maintenance", "status")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "maintenance is off: configmap shop-config key MAINTENANCE_MODE is not set")

	setsBefore := e.replicaSets(t)
	require.Len(t, setsBefore, 1)
	code, out, _ = e.opsCLI(t, e.cliArgs("maintenance", "on")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "configmap shop-config: MAINTENANCE_MODE=true")
	assert.Contains(t, out, "revision 1 → 2")
	assert.Contains(t, out, "health answered 200")

	v, ok := e.configValue(t, "MAINTENANCE_MODE")
	assert.True(t, ok, "the missing key was created")
	assert.Equal(t, "true", v)
	other, _ := e.configValue(t, "GREETING")
	assert.Equal(t, "hello", other, "the other keys are kept")
	d, err := e.client.AppsV1().Deployments(e.ns).Get(ctx, "shop", metav1.GetOptions{})
	require.NoError(t, err)
	restartedAt := d.Spec.Template.Annotations[ops.RestartedAtAnnotation]
	assert.NotEmpty(t, restartedAt, "restarted the way kubectl rollout restart does")
	assert.Equal(t, "on", d.Spec.Template.Annotations[ops.MaintenanceAnnotation])
	setsOn := e.replicaSets(t)
	require.Len(t, setsOn, 2, "the restart made a new ReplicaSet")
	for name, replicas := range setsOn {
		if _, old := setsBefore[name]; old {
			assert.Zero(t, replicas, "the old ReplicaSet is scaled down")
		} else {
			assert.EqualValues(t, 2, replicas, "the new ReplicaSet runs every pod")
		}
	}
	assert.JSONEq(t, `{"v1": 20}`, mustJSON(e.serving(t, 20)))

	code, out, _ = e.opsCLI(t, e.cliArgs("maintenance", "status")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, `maintenance is on: configmap shop-config key MAINTENANCE_MODE is "true"; deployment shop runs pods started with maintenance on`)

	code, out, _ = e.opsCLI(t, e.cliArgs("maintenance", "on")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "already on; nothing changed")
	assert.Equal(t, setsOn, e.replicaSets(t), "no second restart")

	// The state may also come after the flags, and the ConfigMap be named.
	code, out, _ = e.opsCLI(t, append(e.cliArgs("maintenance", "--configmap=shop-config", "--key", "MAINTENANCE_MODE"), "off")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "revision 2 → 3")
	v, _ = e.configValue(t, "MAINTENANCE_MODE")
	assert.Equal(t, "false", v)
	assert.Len(t, e.replicaSets(t), 3)
	d, err = e.client.AppsV1().Deployments(e.ns).Get(ctx, "shop", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "off", d.Spec.Template.Annotations[ops.MaintenanceAnnotation])

	h := e.historyJSON(t)
	require.Len(t, h, 2)
	assert.True(t, strings.HasPrefix(h[0].ID, "maintenance-off-"), h[0].ID)
	assert.Equal(t, "maintenance off (shop-config MAINTENANCE_MODE=false), restarted shop to revision 3 by "+alice(), h[0].Reason)
	assert.Equal(t, "maintenance on (shop-config MAINTENANCE_MODE=true), restarted shop to revision 2 by "+alice(), h[1].Reason)

	code, out, _ = e.opsCLI(t, e.cliArgs("status")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "restarted   ", "status shows the last restart")
	assert.Contains(t, out, "maintenance-off-")

	// From a workflow step: the state is reported, with a job summary.
	in := e.inputs("staging", "")
	in["command"] = "maintenance"
	res := e.runAction(t, in, "")
	require.Equal(t, 0, res.code)
	assert.Contains(t, res.stdout, "maintenance is off")
	assert.Contains(t, res.summary, "### greenlight maintenance: staging")
	e.assertNoSecrets(t, res, in)

	before := e.specSnapshot(t)
	for _, tt := range []struct {
		args  []string
		input string
	}{
		{e.cliArgs("maintenance", "sideways"), `"maintenance state"`},
		{e.cliArgs("maintenance"), `"maintenance state"`},
		{e.cliArgs("maintenance", "on", "off"), `"maintenance state"`},
		{e.cliArgs("maintenance", "on", "--configmap=Not_A_Name"), `"configmap"`},
		{e.cliArgs("maintenance", "on", "--key=has space"), `"key"`},
	} {
		code, _, errOut := e.opsCLI(t, tt.args...)
		assert.Equal(t, 2, code, "%v", tt.args)
		assert.Contains(t, errOut, tt.input)
	}
	assert.Equal(t, before, e.specSnapshot(t), "bad input changes nothing")
}

func TestOpsRefusedWhileLockHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	ctx := context.Background()
	lock, err := kube.AcquireLock(ctx, e.client, kube.LockOptions{Namespace: e.ns, Deployment: "shop", Holder: kube.Holder{
		ID: "deploy-run-42", Repository: "acme/shop", RunURL: "https://github.com/acme/shop/actions/runs/42", Actor: "octocat", Environment: "staging",
	}})
	require.NoError(t, err)
	released := false
	t.Cleanup(func() {
		if !released {
			_ = lock.Release(ctx)
		}
	})

	before := e.specSnapshot(t)
	for _, args := range [][]string{
		e.cliArgs("scale", "--replicas=3", "--lock-timeout=1s"),
		e.cliArgs("maintenance", "on", "--configmap=shop-config", "--lock-timeout=0"),
	} {
		code, _, errOut := e.opsCLI(t, args...)
		assert.Equal(t, 1, code, "%v", args)
		assert.Contains(t, errOut, "is held by run https://github.com/acme/shop/actions/runs/42 (octocat, acme/shop)", "the message names the holder")
		assert.Contains(t, errOut, "nothing was changed")
	}
	code, _, errOut := e.opsCLI(t, e.cliArgs("maintenance", "on")...)
	assert.Equal(t, 2, code, "shop reads no ConfigMap: --configmap is needed")
	assert.Contains(t, errOut, `"configmap"`)
	assert.Equal(t, before, e.specSnapshot(t), "nothing changed while the lock was held")

	code, out, _ := e.opsCLI(t, e.cliArgs("status")...)
	require.Equal(t, 0, code, "status reads only: it works while a deploy holds the lock")
	assert.Contains(t, out, "held by run https://github.com/acme/shop/actions/runs/42 (octocat, acme/shop) since")
	s := e.statusJSON(t)
	require.NotNil(t, s.Lock)
	assert.Equal(t, "octocat", s.Lock.Actor)

	require.NoError(t, lock.Release(ctx))
	released = true
	code, _, _ = e.opsCLI(t, e.cliArgs("scale", "--replicas=3", "--lock-timeout=1s")...)
	assert.Equal(t, 0, code, "once released, the same command goes through")
	assert.False(t, e.lockHeld(t))
}

func TestOpsFromActionStep(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("staging", "")
	in["command"] = "scale"
	in["replicas"] = "3"
	res := e.runAction(t, in, "")
	require.Equal(t, 0, res.code)
	assert.Equal(t, "succeeded", res.outputs["status"])
	assert.Contains(t, res.summary, "### greenlight scale: staging")
	assert.Contains(t, res.summary, "Scaled `shop` (`sampleapp:v1`) from 2 to 3 replicas; 3 ready, 3 endpoints serving")
	e.assertNoSecrets(t, res, in)
	desired, _ := e.replicas(t, "shop")
	assert.EqualValues(t, 3, desired)

	h := e.historyJSON(t)
	require.Len(t, h, 1)
	assert.Equal(t, "octocat", h[0].Actor, "the workflow's actor did it")
	assert.Equal(t, "https://github.com/acme/shop/actions/runs/42", h[0].RunURL)

	for _, command := range []string{"status", "history"} {
		in := e.inputs("staging", "")
		in["command"] = command
		res := e.runAction(t, in, "")
		require.Equal(t, 0, res.code, command)
		assert.Contains(t, res.summary, "### greenlight "+command+": staging")
		assert.Contains(t, res.summary, "scale-")
		e.assertNoSecrets(t, res, in)
	}

	in["replicas"] = "0"
	res = e.runAction(t, in, "")
	assert.Equal(t, 2, res.code)
	assert.Contains(t, res.stdout+res.stderr, `"replicas"`)
}

// readyEndpoints counts the ready endpoints the Service's EndpointSlices
// list.
func (e *env) readyEndpoints(t *testing.T, service string) int {
	t.Helper()
	slices, err := e.client.DiscoveryV1().EndpointSlices(e.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + service})
	if err != nil {
		return 0
	}
	n := 0
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				n++
			}
		}
	}
	return n
}

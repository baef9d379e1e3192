package strategy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// unitManifests is the shared podinfo unit (testdata/manifests/
// podinfo-unit.yaml: API with its Service, worker, StatefulSet, pre-deploy
// migration Job, CronJob) at tag, decoded and sorted for apply.
func unitManifests(t testing.TB, tag string, f testcluster.UnitFaults) []*unstructured.Unstructured {
	t.Helper()
	yaml, err := testcluster.PodinfoUnit(tag, f)
	require.NoError(t, err)
	objs, err := kube.DecodeManifests("podinfo-unit.yaml", []byte(yaml))
	require.NoError(t, err)
	kube.SortForApply(objs)
	return objs
}

// realNodeEnv starts a cluster whose node runs real containers: Jobs
// complete and fail, probes run in the pods. It needs root.
func realNodeEnv(t testing.TB) env {
	t.Helper()
	c := testcluster.RealNodeFor(t)
	return env{c: c, ns: c.NewNamespace(t), client: c.Client()}
}

// unitState is every workload's image and what a writer of it changes,
// read from the cluster: the spec (its generation), labels and
// annotations. Not the resourceVersion: the controllers keep writing
// status (a Deployment's conditions, a pod turning ready) on their own.
type unitState struct {
	images   map[string]string // "Kind/name" → image of its pod template
	versions map[string]string // "Kind/name" → generation, labels and annotations
}

// written is what a write to an object by anyone but its controller shows.
func written(m metav1.ObjectMeta) string {
	return fmt.Sprintf("generation %d, labels %v, annotations %v", m.Generation, m.Labels, m.Annotations)
}

func (e env) unitState(t *testing.T) unitState { return e.unitStateOf(t, "api") }

// unitStateOf reads the state with app as the application's Deployment.
func (e env) unitStateOf(t *testing.T, app string) unitState {
	t.Helper()
	ctx := context.Background()
	s := unitState{images: map[string]string{}, versions: map[string]string{}}
	for _, name := range []string{app, "worker"} {
		d, err := e.client.AppsV1().Deployments(e.ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		s.images["Deployment/"+name] = d.Spec.Template.Spec.Containers[0].Image
		s.versions["Deployment/"+name] = written(d.ObjectMeta)
	}
	st, err := e.client.AppsV1().StatefulSets(e.ns).Get(ctx, "cache", metav1.GetOptions{})
	require.NoError(t, err)
	s.images["StatefulSet/cache"] = st.Spec.Template.Spec.Containers[0].Image
	s.versions["StatefulSet/cache"] = written(st.ObjectMeta)
	cj, err := e.client.BatchV1().CronJobs(e.ns).Get(ctx, "report", metav1.GetOptions{})
	require.NoError(t, err)
	s.images["CronJob/report"] = cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Image
	s.versions["CronJob/report"] = written(cj.ObjectMeta)
	return s
}

// settledState waits until the controllers stopped writing the workloads'
// status (an undone Deployment scales its failed ReplicaSet down after it
// reports rolled out), so that a later change can only be the deploy's.
func (e env) settledState(t *testing.T) unitState {
	t.Helper()
	last := e.unitState(t)
	for same, start := 0, time.Now(); same < 3; {
		require.Less(t, time.Since(start), time.Minute, "the workloads' status settles within a minute")
		time.Sleep(time.Second)
		now := e.unitState(t)
		if assert.ObjectsAreEqual(last, now) {
			same++
		} else {
			same = 0
		}
		last = now
	}
	return last
}

// requireServing asserts that every workload runs image, rolled out by its
// kind's rule, with all its pods ready on it, and that the API answers
// through its Service.
func (e env) requireServing(t *testing.T, image string) { e.requireServingOf(t, "api", image) }

// requireServingOf is requireServing with app as the application's
// Deployment (a blue-green color).
func (e env) requireServingOf(t *testing.T, app, image string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for obj, img := range e.unitStateOf(t, app).images {
		assert.Equal(t, image, img, "%s's template", obj)
	}
	for _, w := range [][2]string{{"Deployment", app}, {"Deployment", "worker"}, {"StatefulSet", "cache"}} {
		st, err := kube.WaitWorkload(ctx, e.client, e.ns, w[0], w[1], kube.WaitOptions{Timeout: time.Minute})
		require.NoError(t, err, "%s/%s rolled out", w[0], w[1])
		require.True(t, st.Done)
	}
	pods, err := e.client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: "app in (api, worker, cache)"})
	require.NoError(t, err)
	// A color scaled to zero or removed has pods on their way out only.
	pods.Items = slices.DeleteFunc(pods.Items, func(p corev1.Pod) bool {
		return p.Labels[kube.ColorLabel] != "" && !strings.HasSuffix(app, "-"+p.Labels[kube.ColorLabel])
	})
	require.NoError(t, err)
	running := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		running++
		assert.Equal(t, image, p.Spec.Containers[0].Image, "pod %s", p.Name)
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || (c.Type == "Ready" && c.Status == "True")
		}
		assert.True(t, ready, "pod %s ready", p.Name)
	}
	assert.Equal(t, 4, running, "api, worker and two cache pods")
	require.Eventually(t, func() bool {
		resp, err := http.Get(e.c.ServiceURL(e.ns, "api") + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 200*time.Millisecond, "the API answers through its Service")
}

func (e env) unitRolling(t *testing.T, timeout time.Duration) *Rolling {
	return &Rolling{Client: e.client, Applier: e.applier(t), Wait: kube.WaitOptions{Timeout: timeout}}
}

func resultOf(d Deployed, object string) ObjectResult {
	for _, o := range d.Objects {
		if o.Object == object {
			return o
		}
	}
	return ObjectResult{}
}

// TestWorkloadUnitPreDeploy deploys API + worker + StatefulSet +
// pre-deploy Job + CronJob as one unit on a real node, then breaks one
// workload per deploy: each failure leaves the previous version of
// everything serving, and a failing migration changes nothing else.
func TestWorkloadUnitPreDeploy(t *testing.T) {
	e := realNodeEnv(t)
	ctx := context.Background()
	const v1 = "ghcr.io/stefanprodan/podinfo:1.0.0"
	target := func(tag string, f testcluster.UnitFaults) Target {
		return Target{Namespace: e.ns, Deployment: "api", Service: "api", Image: "ghcr.io/stefanprodan/podinfo:" + tag, Manifests: unitManifests(t, tag, f)}
	}

	start := time.Now()
	d, err := e.unitRolling(t, 2*time.Minute).Deploy(ctx, target("1.0.0", testcluster.UnitFaults{}))
	require.NoError(t, err, "steps: %+v", d.Steps)
	t.Logf("first deploy of five workloads: %s", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, ObjectResult{Object: "Job/migrate", Change: ChangeCreated, Result: ResultCompleted, Detail: resultOf(d, "Job/migrate").Detail}, resultOf(d, "Job/migrate"))
	for _, o := range []string{"Deployment/api", "Deployment/worker", "StatefulSet/cache"} {
		assert.Equal(t, ResultReady, resultOf(d, o).Result, o)
		assert.Equal(t, ChangeCreated, resultOf(d, o).Change, o)
	}
	assert.Equal(t, ResultReady, resultOf(d, "CronJob/report").Result)
	assert.Equal(t, ResultApplied, resultOf(d, "Service/api").Result)
	e.requireServing(t, v1)

	t.Run("CrashingWorkerUndoesEverything", func(t *testing.T) {
		d, err := e.unitRolling(t, 2*time.Minute).Deploy(ctx, target("2.0.0", testcluster.UnitFaults{CrashingWorker: true}))
		require.Error(t, err)
		t.Logf("error: %v", err)
		var rf *kube.RolloutFailure
		require.True(t, errors.As(err, &rf), "a rollout failure with the worker's pods")
		assert.Equal(t, "Deployment/worker", rf.Object)
		assert.Equal(t, ResultUndone, resultOf(d, "Deployment/worker").Result)
		assert.Equal(t, ResultUndone, resultOf(d, "StatefulSet/cache").Result)
		assert.Equal(t, ResultUndone, resultOf(d, "CronJob/report").Result)
		assert.Equal(t, ResultUndone, resultOf(d, "Deployment/api").Result)
		// The migration ran to completion before the rest: it cannot be undone.
		assert.Equal(t, ResultKept, resultOf(d, "Job/migrate").Result)
		assert.Contains(t, resultOf(d, "Job/migrate").Detail, "cannot be undone")
		e.requireServing(t, v1)
	})

	t.Run("StatefulSetNeverReadyUndoesEverything", func(t *testing.T) {
		start := time.Now()
		d, err := e.unitRolling(t, 25*time.Second).Deploy(ctx, target("3.0.0", testcluster.UnitFaults{StatefulNeverReady: true}))
		require.Error(t, err)
		t.Logf("error after %s: %v", time.Since(start).Round(time.Millisecond), err)
		var rf *kube.RolloutFailure
		require.True(t, errors.As(err, &rf))
		assert.Equal(t, "StatefulSet/cache", rf.Object)
		assert.Equal(t, kube.RolloutTimeout, rf.Reason, "a pod that never becomes ready fails at rollout-timeout")
		assert.Equal(t, ResultUndone, resultOf(d, "StatefulSet/cache").Result)
		assert.Equal(t, ResultUndone, resultOf(d, "Deployment/worker").Result)
		e.requireServing(t, v1)
	})

	t.Run("PreDeployFailingMigrationChangesNothingElse", func(t *testing.T) {
		before := e.settledState(t)
		apiBefore, err := e.client.AppsV1().Deployments(e.ns).Get(ctx, "api", metav1.GetOptions{})
		require.NoError(t, err)
		d, err := e.unitRolling(t, time.Minute).Deploy(ctx, target("4.0.0", testcluster.UnitFaults{FailingMigration: true}))
		if apiAfter, gerr := e.client.AppsV1().Deployments(e.ns).Get(ctx, "api", metav1.GetOptions{}); gerr == nil && apiAfter.ResourceVersion != apiBefore.ResourceVersion {
			apiBefore.ManagedFields, apiAfter.ManagedFields = nil, nil
			t.Logf("api before: %+v\n%+v\napi after: %+v\n%+v", apiBefore.ObjectMeta, apiBefore.Status, apiAfter.ObjectMeta, apiAfter.Status)
		}
		require.Error(t, err)
		t.Logf("error: %v", err)
		var rf *kube.RolloutFailure
		require.True(t, errors.As(err, &rf))
		assert.Equal(t, "Job/migrate", rf.Object)
		assert.Equal(t, "BackoffLimitExceeded", rf.Reason)
		require.NotEmpty(t, rf.Logs, "the migration's log tail")
		assert.Contains(t, rf.Logs[0].Text, "check failed", "podcli's own words")
		assert.Contains(t, err.Error(), "nothing else was applied")
		assert.Equal(t, before, e.unitState(t), "no other object changed: generations, labels and annotations")
		assert.Equal(t, ResultFailed, resultOf(d, "Job/migrate").Result)
		assert.Len(t, d.Objects, 1, "nothing else was applied: %+v", d.Objects)
		e.requireServing(t, v1)
	})

	t.Run("BlueGreenCrashingWorkerUndoesEverything", func(t *testing.T) {
		bg := env{c: e.c, ns: e.c.NewNamespace(t), client: e.client}
		b := &BlueGreen{Client: bg.client, Applier: bg.applier(t), Wait: kube.WaitOptions{Timeout: 2 * time.Minute}, EndpointTimeout: time.Minute}
		first := Target{Namespace: bg.ns, Deployment: "api", Service: "api", Image: v1, Manifests: unitManifests(t, "1.0.0", testcluster.UnitFaults{})}
		d, err := b.Deploy(ctx, first)
		require.NoError(t, err, "steps: %+v", d.Steps)
		require.Equal(t, Blue, d.Color)
		bg.requireServingOf(t, "api-blue", v1)

		broken := Target{Namespace: bg.ns, Deployment: "api", Service: "api", Image: "ghcr.io/stefanprodan/podinfo:2.0.0", Manifests: unitManifests(t, "2.0.0", testcluster.UnitFaults{CrashingWorker: true})}
		d, err = b.Deploy(ctx, broken)
		require.Error(t, err)
		t.Logf("error: %v", err)
		assert.False(t, d.Switched, "traffic never moved")
		assert.Equal(t, ResultDeleted, resultOf(d, "Deployment/api-green").Result, "%+v", d.Objects)
		assert.Equal(t, ResultUndone, resultOf(d, "Deployment/worker").Result)
		assert.Equal(t, ResultUndone, resultOf(d, "StatefulSet/cache").Result)
		assert.Equal(t, ResultKept, resultOf(d, "Job/migrate").Result)
		svc, err := bg.client.CoreV1().Services(bg.ns).Get(ctx, "api", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, Blue, svc.Spec.Selector[kube.ColorLabel])
		bg.requireServingOf(t, "api-blue", v1)

		// promotion manual: the migration and the other workloads run
		// before approval; a reject puts them back.
		manual := *b
		manual.Manual = true
		next := Target{Namespace: bg.ns, Deployment: "api", Service: "api", Image: "ghcr.io/stefanprodan/podinfo:3.0.0", Manifests: unitManifests(t, "3.0.0", testcluster.UnitFaults{})}
		d, err = manual.Deploy(ctx, next)
		require.NoError(t, err, "steps: %+v", d.Steps)
		require.True(t, d.Awaiting)
		assert.Equal(t, next.Image, bg.unitStateOf(t, "api-green").images["Deployment/worker"], "the worker runs the new version before approval")
		d, _, err = manual.Reject(ctx, Target{Namespace: bg.ns, Deployment: "api", Service: "api"})
		require.NoError(t, err, "steps: %+v", d.Steps)
		assert.Equal(t, ResultUndone, resultOf(d, "Deployment/worker").Result, "%+v", d.Objects)
		assert.Equal(t, ResultUndone, resultOf(d, "StatefulSet/cache").Result)
		assert.Equal(t, ResultUndone, resultOf(d, "CronJob/report").Result)
		bg.requireServingOf(t, "api-blue", v1)
	})

	t.Run("BlueGreenSameImageRollsOutOnlyWhatChanged", func(t *testing.T) {
		bg := env{c: e.c, ns: e.c.NewNamespace(t), client: e.client}
		b := &BlueGreen{Client: bg.client, Applier: bg.applier(t), Wait: kube.WaitOptions{Timeout: 2 * time.Minute}, EndpointTimeout: time.Minute}
		same := func(edit ...func([]*unstructured.Unstructured)) Target {
			objs := unitManifests(t, "1.0.0", testcluster.UnitFaults{})
			for _, f := range edit {
				f(objs)
			}
			return Target{Namespace: bg.ns, Deployment: "api", Service: "api", Image: v1, Manifests: objs}
		}
		d, err := b.Deploy(ctx, same())
		require.NoError(t, err, "steps: %+v", d.Steps)
		require.NoError(t, b.Finish(ctx, same(), &d))

		// Nothing of the unit changed: not one object of six reads as changed.
		d, err = b.Deploy(ctx, same())
		require.NoError(t, err, "steps: %+v", d.Steps)
		assert.True(t, d.Unchanged, "steps: %+v", d.Steps)
		assert.Equal(t, Blue, d.Color)

		// Another variable in the API's pod template is another version.
		d, err = b.Deploy(ctx, same(withEnv("Deployment", "api", "PODINFO_UI_MESSAGE", "pool 20")))
		require.NoError(t, err, "steps: %+v", d.Steps)
		assert.False(t, d.Unchanged)
		assert.Equal(t, Green, d.Color)
		assert.True(t, d.Switched)
		assert.Contains(t, stepDetail(d, "compare api-blue"), "the pod template of api-blue would change")
		bg.requireServingOf(t, "api-green", v1)
		green, err := bg.client.AppsV1().Deployments(bg.ns).Get(ctx, "api-green", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Contains(t, green.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "PODINFO_UI_MESSAGE", Value: "pool 20"})
		require.NoError(t, b.Finish(ctx, same(), &d))

		// Only the worker changed: the unit rolls out under a new color.
		d, err = b.Deploy(ctx, same(withEnv("Deployment", "api", "PODINFO_UI_MESSAGE", "pool 20"), withEnv("Deployment", "worker", "QUEUE", "payments")))
		require.NoError(t, err, "steps: %+v", d.Steps)
		assert.Equal(t, Blue, d.Color)
		assert.Equal(t, "it runs "+v1+" already, but Deployment/worker would change: a new color rolls out", stepDetail(d, "compare api-green"))
		bg.requireServingOf(t, "api-blue", v1)
	})

	t.Run("PreDeployMigrationThenUnchangedRedeploy", func(t *testing.T) {
		d, err := e.unitRolling(t, 2*time.Minute).Deploy(ctx, target("5.0.0", testcluster.UnitFaults{}))
		require.NoError(t, err, "steps: %+v", d.Steps)
		assert.Equal(t, ObjectResult{Object: "Job/migrate", Change: ChangeReplaced, Result: ResultCompleted, Detail: resultOf(d, "Job/migrate").Detail}, resultOf(d, "Job/migrate"))
		e.requireServing(t, "ghcr.io/stefanprodan/podinfo:5.0.0")
		before := e.settledState(t)
		d, err = e.unitRolling(t, 2*time.Minute).Deploy(ctx, target("5.0.0", testcluster.UnitFaults{}))
		require.NoError(t, err)
		assert.Equal(t, ChangeUnchanged, resultOf(d, "Job/migrate").Change, "a completed migration of the same version is not run again")
		assert.Equal(t, before, e.unitState(t))
	})
}

// withEnv adds a variable to the first container of the named object's
// pod template.
func withEnv(kind, name, key, value string) func([]*unstructured.Unstructured) {
	return func(objs []*unstructured.Unstructured) {
		for _, o := range objs {
			if o.GetKind() != kind || o.GetName() != name {
				continue
			}
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			c := containers[0].(map[string]any)
			env, _ := c["env"].([]any)
			c["env"] = append(env, map[string]any{"name": key, "value": value})
			_ = unstructured.SetNestedSlice(o.Object, containers, "spec", "template", "spec", "containers")
		}
	}
}

// stepDetail is what the step named name found, or "" when none ran.
func stepDetail(d Deployed, name string) string {
	for _, s := range d.Steps {
		if s.Name == name {
			return s.Detail
		}
	}
	return ""
}

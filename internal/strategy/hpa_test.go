package strategy

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// createHPA makes an autoscaler with minReplicas = maxReplicas = n: the
// controller holds its target at n without needing a metrics API.
func (e env) createHPA(t *testing.T, target string, n int32) {
	t.Helper()
	h := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
			MinReplicas:    ptr.To(n), MaxReplicas: n,
		},
	}
	_, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(e.ns).Create(context.Background(), h, metav1.CreateOptions{})
	require.NoError(t, err)
}

// waitReplicas waits until the Deployment wants n replicas and all of them
// are rolled out.
func (e env) waitReplicas(t *testing.T, name string, n int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		d, err := e.client.AppsV1().Deployments(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		st, _ := kube.RolloutStatus(d)
		return replicasOf(d) == n && st.Done && d.Status.AvailableReplicas == n, nil
	})
	require.NoError(t, err, "waiting for %s to run %d replicas", name, n)
}

func (e env) replicas(t *testing.T, name string) int32 {
	t.Helper()
	d, err := e.client.AppsV1().Deployments(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return replicasOf(d)
}

func (e env) hpaTarget(t *testing.T) string {
	t.Helper()
	h, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(e.ns).Get(context.Background(), "shop", metav1.GetOptions{})
	require.NoError(t, err)
	return h.Spec.ScaleTargetRef.Name
}

// replicaWatch records every moment, seen through watches of Deployments and
// autoscalers, at which the Deployment the autoscaler scales wants fewer
// replicas than its minimum.
type replicaWatch struct {
	mu         sync.Mutex
	replicas   map[string]int32
	target     string
	min        int32
	events     int
	violations []string
	stop       context.CancelFunc
	done       chan struct{}
}

func (e env) watchAutoscaled(t *testing.T) *replicaWatch {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	deps, err := e.client.AppsV1().Deployments(e.ns).Watch(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	hpas, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(e.ns).Watch(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	w := &replicaWatch{replicas: map[string]int32{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer deps.Stop()
		defer hpas.Stop()
		for {
			var ev watch.Event
			var ok bool
			select {
			case ev, ok = <-deps.ResultChan():
			case ev, ok = <-hpas.ResultChan():
			case <-ctx.Done():
				return
			}
			if !ok {
				w.mu.Lock()
				w.violations = append(w.violations, "a watch ended early")
				w.mu.Unlock()
				return
			}
			w.observe(ev)
		}
	}()
	t.Cleanup(w.finish)
	return w
}

func (w *replicaWatch) observe(ev watch.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events++
	switch o := ev.Object.(type) {
	case *appsv1.Deployment:
		if ev.Type == watch.Deleted {
			delete(w.replicas, o.Name)
		} else {
			w.replicas[o.Name] = replicasOf(o)
		}
	case *autoscalingv2.HorizontalPodAutoscaler:
		w.target = o.Spec.ScaleTargetRef.Name
		w.min = ptr.Deref(o.Spec.MinReplicas, 1)
	default:
		return
	}
	if n, known := w.replicas[w.target]; w.target != "" && known && n < w.min {
		w.violations = append(w.violations, fmt.Sprintf("%s wanted %d replicas while %d is the autoscaler's minimum", w.target, n, w.min))
	}
}

func (w *replicaWatch) finish() {
	w.stop()
	<-w.done
}

func (w *replicaWatch) result() (events int, violations []string) {
	w.finish()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events, w.violations
}

func shopManifest(t *testing.T, image string, replicas int32) *unstructured.Unstructured {
	t.Helper()
	d := testcluster.SampleDeployment("shop", image, map[string]string{"app": "shop"})
	d.Spec.Replicas = &replicas
	u, err := toUnstructured(d)
	require.NoError(t, err)
	return u
}

// A rolling deploy under an autoscaler never applies replicas: not the
// manifest's, not the input's, and dropping the field greenlight applied
// before does not reset it to one.
func TestHPARollingNeverSetsReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	r := &Rolling{Client: e.client, Applier: e.applier(t), Wait: kube.WaitOptions{Timeout: time.Minute}}
	// greenlight applies replicas: 2 first, so it owns the field when the
	// autoscaler (whose minimum equals the count, so it never writes) arrives.
	_, err := r.Deploy(ctx, Target{Namespace: e.ns, Deployment: "shop", Image: "sampleapp:v1", Manifests: []*unstructured.Unstructured{shopManifest(t, "sampleapp:v1", 2)}})
	require.NoError(t, err)
	e.createHPA(t, "shop", 2)
	w := e.watchAutoscaled(t)

	d, err := r.Deploy(ctx, Target{Namespace: e.ns, Deployment: "shop", Image: "sampleapp:v2", Replicas: 5,
		Manifests: []*unstructured.Unstructured{shopManifest(t, "sampleapp:v2", 1)}})
	require.NoError(t, err)
	assert.Equal(t, "shop", d.Autoscaler)
	require.Len(t, d.Warnings, 1)
	assert.Contains(t, d.Warnings[0], "replicas 5 not applied: HorizontalPodAutoscaler shop owns the replica count of shop")
	assert.Equal(t, int32(2), e.replicas(t, "shop"))

	image, err := r.Deploy(ctx, Target{Namespace: e.ns, Deployment: "shop", Image: "sampleapp:v3", Replicas: 4,
		Manifests: []*unstructured.Unstructured{shopManifest(t, "sampleapp:v3", 1)}})
	require.NoError(t, err)
	assert.NotEmpty(t, image.Warnings)
	require.NoError(t, r.Rollback(ctx, Target{Namespace: e.ns, Deployment: "shop"}, &image))
	assert.Equal(t, int32(2), e.replicas(t, "shop"))

	events, violations := w.result()
	assert.Empty(t, violations)
	assert.Positive(t, events)
	t.Logf("%d watch events, none below the autoscaler's minimum", events)
}

// Blue-green under an autoscaler: adoption moves it from the plain
// Deployment, each new color starts at the serving count, the autoscaler
// moves at the switch, the warm color keeps its replicas, and a rollback
// moves it back.
func TestHPABlueGreenMovesWithTraffic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.plainApp(t, "sampleapp:v1")
	e.createHPA(t, "shop", 3)
	e.waitReplicas(t, "shop", 3) // the autoscaler controller runs and acts
	w := e.watchAutoscaled(t)
	bg := &BlueGreen{Client: e.client, Applier: e.applier(t), Wait: kube.WaitOptions{Timeout: time.Minute}}
	target := Target{Namespace: e.ns, Deployment: "shop", Service: "shop", Image: "sampleapp:v2"}

	first, err := bg.Deploy(ctx, target)
	require.NoError(t, err)
	assert.Equal(t, "shop", first.Autoscaler)
	assert.Equal(t, "shop-blue", e.hpaTarget(t), "adoption moves the autoscaler")
	assert.Equal(t, int32(3), e.replicas(t, "shop-blue"), "the new color starts at the serving count, not the template's 2")
	assert.Equal(t, int32(3), e.replicas(t, "shop"), "the warm Deployment keeps its replicas")
	e.waitServing(t, "v2")
	require.NoError(t, bg.Finish(ctx, target, &first))

	target.Image, target.Replicas = "sampleapp:v3", 5
	second, err := bg.Deploy(ctx, target)
	require.NoError(t, err)
	assert.NotEmpty(t, second.Warnings, "the replicas input is not applied under an autoscaler")
	assert.Equal(t, "shop-green", e.hpaTarget(t))
	assert.Equal(t, int32(3), e.replicas(t, "shop-green"))
	assert.Equal(t, int32(3), e.replicas(t, "shop-blue"), "the warm color keeps its replicas")
	e.waitServing(t, "v3")

	require.NoError(t, bg.Rollback(ctx, target, &second))
	assert.Equal(t, "shop-blue", e.hpaTarget(t), "a rollback moves the autoscaler back")
	e.waitServing(t, "v2")
	e.waitReplicas(t, "shop-blue", 3)

	events, violations := w.result()
	assert.Empty(t, violations)
	t.Logf("%d watch events, none below the autoscaler's minimum", events)
}

// Without an autoscaler the replicas input is applied by each strategy; in
// blue-green it wins over the manifest, and without it the new color starts
// at the serving count.
func TestReplicasInputPerStrategy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("rolling", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.plainApp(t, "sampleapp:v1")
		r := &Rolling{Client: e.client, Applier: e.applier(t), Wait: kube.WaitOptions{Timeout: time.Minute}}
		d, err := r.Deploy(ctx, Target{Namespace: e.ns, Deployment: "shop", Image: "sampleapp:v2", Replicas: 3})
		require.NoError(t, err)
		assert.Empty(t, d.Warnings)
		assert.Equal(t, int32(3), e.replicas(t, "shop"))
		_, err = r.Deploy(ctx, Target{Namespace: e.ns, Deployment: "shop", Image: "sampleapp:v2", Replicas: 1,
			Manifests: []*unstructured.Unstructured{shopManifest(t, "sampleapp:v2", 2)}})
		require.NoError(t, err)
		assert.Equal(t, int32(1), e.replicas(t, "shop"), "the input wins over the manifest")
	})
	t.Run("blue-green", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.plainApp(t, "sampleapp:v1")
		bg := &BlueGreen{Client: e.client, Applier: e.applier(t), Wait: kube.WaitOptions{Timeout: time.Minute}}
		manifests := []*unstructured.Unstructured{shopManifest(t, "sampleapp:v2", 1)}
		first, err := bg.Deploy(ctx, Target{Namespace: e.ns, Deployment: "shop", Service: "shop", Image: "sampleapp:v2", Replicas: 3, Manifests: manifests})
		require.NoError(t, err)
		assert.Equal(t, int32(3), e.replicas(t, "shop-blue"), "the input wins over the manifest's 1")
		require.NoError(t, bg.Finish(ctx, Target{Namespace: e.ns, Deployment: "shop", Service: "shop"}, &first))
		_, err = bg.Deploy(ctx, Target{Namespace: e.ns, Deployment: "shop", Service: "shop", Image: "sampleapp:v3",
			Manifests: []*unstructured.Unstructured{shopManifest(t, "sampleapp:v3", 1)}})
		require.NoError(t, err)
		assert.Equal(t, int32(3), e.replicas(t, "shop-green"), "without input the new color starts at the serving count")
		e.waitServing(t, "v3")
	})
}

func TestColorReplicas(t *testing.T) {
	t.Parallel()
	serving := func(n int32) *appsv1.Deployment { return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &n}} }
	for _, tc := range []struct {
		name       string
		manifest   *int32
		serving    *appsv1.Deployment
		input      int32
		autoscaled bool
		want       *int32
	}{
		{"input wins over manifest and serving", ptr.To[int32](2), serving(4), 6, false, ptr.To[int32](6)},
		{"autoscaled ignores the input", ptr.To[int32](2), serving(4), 6, true, ptr.To[int32](4)},
		{"serving count without input", ptr.To[int32](2), serving(4), 0, false, ptr.To[int32](4)},
		{"manifest when nothing serves", ptr.To[int32](2), nil, 0, false, ptr.To[int32](2)},
		{"manifest when serving is scaled to zero", ptr.To[int32](2), serving(0), 0, true, ptr.To[int32](2)},
		{"input when nothing serves", nil, nil, 3, false, ptr.To[int32](3)},
	} {
		got := colorReplicas(tc.manifest, tc.serving, tc.input, tc.autoscaled)
		assert.Equal(t, tc.want, got, tc.name)
	}
}

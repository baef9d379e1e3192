package strategy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/kube"
)

func TestRollingUpdateAndRollback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plainApp(t, "sampleapp:v1")
	r := &Rolling{Client: e.client, Wait: kube.WaitOptions{Timeout: time.Minute}}
	target := Target{Namespace: e.ns, Deployment: "shop", Service: "shop", Image: "sampleapp:v2",
		Annotations: map[string]string{"greenlight.dev/deployment-id": "abc123"}}
	ctx := context.Background()

	d, err := r.Deploy(ctx, target)
	require.NoError(t, err)
	assert.Equal(t, "sampleapp:v1", d.PreviousImage)
	assert.Equal(t, int64(1), d.PreviousRevision)
	assert.Equal(t, int64(2), d.Revision)
	assert.False(t, d.Unchanged)
	e.waitServing(t, "v2")
	dep, err := e.client.AppsV1().Deployments(e.ns).Get(ctx, "shop", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "abc123", dep.Annotations["greenlight.dev/deployment-id"])

	again, err := r.Deploy(ctx, target)
	require.NoError(t, err)
	assert.True(t, again.Unchanged, "deploying the running image is reported, not silently unchanged")

	require.NoError(t, r.Rollback(ctx, target, &d))
	e.waitServing(t, "v1")
}

func TestRollingMissingImageFailsFastAndUndoes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plainApp(t, "sampleapp:v1")
	r := &Rolling{Client: e.client, Wait: kube.WaitOptions{Timeout: 5 * time.Minute}}
	start := time.Now()
	d, err := r.Deploy(context.Background(), Target{Namespace: e.ns, Deployment: "shop", Image: "sampleapp:missing-2"})
	elapsed := time.Since(start)
	var rf *kube.RolloutFailure
	require.ErrorAs(t, err, &rf)
	assert.Equal(t, kube.PodsFailing, rf.Reason)
	require.NotEmpty(t, rf.Pods)
	assert.Equal(t, "ImagePullBackOff", rf.Pods[0].Reason)
	assert.NotEmpty(t, rf.Events, "the failure carries the latest events")
	assert.Less(t, elapsed, time.Minute, "fails on the back-off, not at the 10-minute progress deadline")
	assert.Equal(t, "undo", d.Steps[len(d.Steps)-1].Name)
	e.waitServing(t, "v1")
}

func TestUndoToRevision(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plainApp(t, "sampleapp:v1")
	r := &Rolling{Client: e.client, Wait: kube.WaitOptions{Timeout: time.Minute}}
	ctx := context.Background()
	for _, image := range []string{"sampleapp:v2", "sampleapp:v3"} {
		_, err := r.Deploy(ctx, Target{Namespace: e.ns, Deployment: "shop", Image: image})
		require.NoError(t, err)
	}
	history, err := kube.History(ctx, e.client, e.ns, "shop")
	require.NoError(t, err)
	require.Len(t, history, 3)
	assert.Equal(t, []string{"sampleapp:v3"}, history[0].Images)

	res, err := kube.Undo(ctx, e.client, e.ns, "shop", 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), res.To.Number)
	_, err = kube.WaitRollout(ctx, e.client, e.ns, "shop", kube.WaitOptions{Timeout: time.Minute})
	require.NoError(t, err)
	e.waitServing(t, "v1")

	_, err = kube.Undo(ctx, e.client, e.ns, "shop", 42)
	assert.ErrorContains(t, err, "revision 42 not found")
}

func TestBlueGreenAdoptDeploySwitchBackWithoutFailedRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plainApp(t, "sampleapp:v1")
	var previews []Preview
	bg := &BlueGreen{Client: e.client, Applier: e.applier(t), Wait: kube.WaitOptions{Timeout: time.Minute},
		Verify: func(_ context.Context, p Preview) error { previews = append(previews, p); return nil }}
	ctx := context.Background()
	tr := e.startTraffic(t)

	// First blue-green deploy adopts the plain Deployment.
	target := Target{Namespace: e.ns, Deployment: "shop", Service: "shop", Image: "sampleapp:v2"}
	first, err := bg.Deploy(ctx, target)
	require.NoError(t, err)
	assert.Equal(t, Blue, first.Color)
	assert.Equal(t, "shop", first.PreviousDeployment)
	assert.True(t, first.Switched)
	e.waitServing(t, "v2")
	require.NoError(t, bg.Finish(ctx, target, &first))
	plain, err := e.client.AppsV1().Deployments(e.ns).Get(ctx, "shop", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Zero(t, *plain.Spec.Replicas, "the adopted Deployment is scaled to zero, its spec kept")

	// Second deploy goes to green; then a rollback returns to blue.
	target.Image = "sampleapp:v3"
	second, err := bg.Deploy(ctx, target)
	require.NoError(t, err)
	assert.Equal(t, Green, second.Color)
	assert.Equal(t, "shop-blue", second.PreviousDeployment)
	e.waitServing(t, "v3")
	require.NoError(t, bg.Rollback(ctx, target, &second))
	e.waitServing(t, "v2")
	t.Logf("rollback switch (one write + endpoint confirmation): %s", second.SwitchTime)

	versions, failures := tr.result()
	assert.Empty(t, failures, "no request failed across adoption, deploy, switch and rollback")
	for v := range versions {
		assert.Contains(t, []string{"v1", "v2", "v3"}, v)
	}
	assert.Positive(t, versions["v3"])
	require.Len(t, previews, 2)
	assert.Equal(t, Preview{Namespace: e.ns, Service: "shop-preview", Port: "http", Color: Blue,
		Deployment: "shop-blue", PreviousImage: "sampleapp:v1",
		Selector: map[string]string{"app": "shop", kube.ColorLabel: string(Blue)}, Replicas: 2}, previews[0])

	// The state is read from the cluster: a fresh strategy value finds blue active.
	again, err := (&BlueGreen{Client: e.client, Applier: e.applier(t)}).Deploy(ctx, Target{Namespace: e.ns, Deployment: "shop", Service: "shop", Image: "sampleapp:v2"})
	require.NoError(t, err)
	assert.True(t, again.Unchanged)
	assert.Equal(t, Blue, again.Color)
}

func TestBlueGreenFailedGreenNeverGetsTraffic(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		image  string
		verify error
	}{
		"never ready":        {image: "sampleapp:missing-9"},
		"fails verification": {image: "sampleapp:v2", verify: errors.New("health check failed: /health answered 500")},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.plainApp(t, "sampleapp:v1")
			tr := e.startTraffic(t)
			bg := &BlueGreen{Client: e.client, Applier: e.applier(t), Wait: kube.WaitOptions{Timeout: time.Minute},
				Verify: func(context.Context, Preview) error { return tc.verify }}
			d, err := bg.Deploy(context.Background(), Target{Namespace: e.ns, Deployment: "shop", Service: "shop", Image: tc.image})
			require.Error(t, err)
			assert.False(t, d.Switched)
			versions, failures := tr.result()
			assert.Empty(t, failures)
			assert.Equal(t, []string{"v1"}, keys(versions), "only the old version ever answered")
			_, err = e.client.AppsV1().Deployments(e.ns).Get(context.Background(), "shop-blue", metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "the half-made color is removed")
		})
	}
}

func TestBlueGreenCancellationLeavesOldVersionServing(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"pin shop", "create blue", "wait blue", "preview blue", "verify blue", "switch"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.plainApp(t, "sampleapp:v1")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			bg := &BlueGreen{Client: e.client, Applier: e.applier(t), Wait: kube.WaitOptions{Timeout: time.Minute},
				Verify: func(ctx context.Context, _ Preview) error { return ctx.Err() },
				OnStep: func(s Step) {
					if s.Name == step {
						cancel()
					}
				}}
			d, err := bg.Deploy(ctx, Target{Namespace: e.ns, Deployment: "shop", Service: "shop", Image: "sampleapp:v2"})
			require.Error(t, err)
			assert.False(t, d.Switched, "traffic is not left on the new color")
			e.waitServing(t, "v1")
		})
	}
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestServing(t *testing.T) {
	t.Parallel()
	svc := func(sel map[string]string) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Selector: sel}}
	}
	assert.Equal(t, "shop-blue", Serving(svc(map[string]string{"app": "shop", kube.ColorLabel: "blue"}), "shop"))
	assert.Equal(t, "shop-green", Serving(svc(map[string]string{"app": "shop", kube.ColorLabel: "green"}), "shop"))
	assert.Equal(t, "shop", Serving(svc(map[string]string{"app": "shop"}), "shop"), "a plain Deployment before adoption")
	assert.Equal(t, "shop", Serving(svc(map[string]string{"app": "shop", "pod-template-hash": "abc"}), "shop"), "pinned during adoption")
}

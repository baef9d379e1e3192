package proof

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/strategy"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// podinfoOnRealNode is podinfo as its own manifests run it (exec probes
// with podcli), two replicas behind a ClusterIP Service on port 80.
func podinfoOnRealNode(ns, name, image string) (*appsv1.Deployment, *corev1.Service) {
	labels := map[string]string{"app": name}
	replicas := int32(2)
	no := false
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"podcli", "check", "http", "localhost:9898/" + path}}},
			PeriodSeconds: 1, TimeoutSeconds: 5,
		}
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: &no,
					Containers: []corev1.Container{{
						Name:            "podinfod",
						Image:           image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Command:         []string{"./podinfo", "--port=9898", "--level=info"},
						Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
						ReadinessProbe:  probe("readyz"),
						LivenessProbe:   probe("healthz"),
					}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	return dep, svc
}

// BenchmarkZeroDowntimeRealNode is figure 4 on a real node: greenlight's
// blue-green deploy of podinfo and its rollback under a bounded load (at
// most 12000 requests at 100/s, loopback only) through the router, which
// sends each request once to the Service's ClusterIP: kube-proxy, not our
// code, picks the pod. Every failed request is counted by cause and
// reported beside the strict router's figure; any failure fails the run.
func BenchmarkZeroDowntimeRealNode(b *testing.B) {
	c := testcluster.RealNodeFor(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	book.setServer(kubernetesVersion())
	client := c.Client()
	var err error
	var all, during, rollback Summary
	var shots []Shot
	for range b.N {
		ns := c.NewNamespace(b)
		dep, svc := podinfoOnRealNode(ns, "shop", "ghcr.io/stefanprodan/podinfo:6.9.2")
		_, err = client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
		require.NoError(b, err)
		_, err = client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		require.NoError(b, err)
		// Adoption pins the Service to the current ReplicaSet: let it exist.
		_, err = kube.WaitRollout(ctx, client, ns, "shop", kube.WaitOptions{Timeout: 3 * time.Minute})
		require.NoError(b, err)

		applier, err := kube.NewApplier(c.Config())
		require.NoError(b, err)
		bg := &strategy.BlueGreen{Client: client, Applier: applier, Wait: kube.WaitOptions{Timeout: 3 * time.Minute}}
		target := strategy.Target{Namespace: ns, Deployment: "shop", Service: "shop", Image: "ghcr.io/stefanprodan/podinfo:sha-1111111"}
		first, err := bg.Deploy(ctx, target)
		require.NoError(b, err)
		require.NoError(b, bg.Finish(ctx, target, &first))

		loadCtx, stopLoad := context.WithCancel(ctx)
		loaded := make(chan []Shot, 1)
		loadStart := time.Now()
		go func() {
			s, err := Load(loadCtx, LoadOptions{URL: c.ServiceURL(ns, "shop") + "/", Requests: 12000, Rate: 100, Concurrency: 8})
			if err != nil {
				b.Error(err)
			}
			loaded <- s
		}()
		time.Sleep(3 * time.Second) // the baseline
		deployStart := time.Now()
		target.Image = "ghcr.io/stefanprodan/podinfo:sha-2222222"
		deployed, err := bg.Deploy(ctx, target)
		require.NoError(b, err)
		deployWindow0, deployWindow1, err := window(deployed.Steps, "switch")
		require.NoError(b, err)
		time.Sleep(2 * time.Second)
		steps := len(deployed.Steps)
		require.NoError(b, bg.Rollback(ctx, target, &deployed))
		back0, back1, err := window(deployed.Steps[steps:], "switch back")
		require.NoError(b, err)
		// Past the old color's termination: a pod scaled down keeps its
		// kept-alive connections until it exits.
		time.Sleep(time.Until(back1.Add(5 * time.Second)))
		stopLoad()
		shots = <-loaded
		require.NotEmpty(b, shots)
		require.True(b, shots[0].Start.Before(deployStart), "the load started before the deploy")
		require.True(b, shots[len(shots)-1].Start.After(back1), "the load ran past the rollback's switch window")
		require.Less(b, len(shots), 12000, "the load was stopped by the test, not by running out of requests")

		all = Summarize(shots, loadStart, time.Now())
		before := Summarize(shots, loadStart, deployStart)
		during = Summarize(shots, deployWindow0, deployWindow1)
		between := Summarize(shots, deployWindow1, back0)
		rollback = Summarize(shots, back0, time.Now())
		b.Logf("through kube-proxy: %d of %d requests failed (before %d/%d, deploy switch %d/%d, between %d/%d, rollback and after %d/%d)",
			all.Failed, all.Count, before.Failed, before.Count, during.Failed, during.Count, between.Failed, between.Count, rollback.Failed, rollback.Count)
		for _, s := range shots {
			if !s.OK() {
				b.Logf("failed at +%s: status %d %s", s.Start.Sub(loadStart).Round(time.Millisecond), s.Status, s.Err)
			}
		}
		for _, st := range deployed.Steps {
			b.Logf("step %-24s +%s %s", st.Name, st.Started.Sub(loadStart).Round(time.Millisecond), st.Duration.Round(time.Millisecond))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(all.Failed), "failed-requests")
	book.add(Figure{Order: 48,
		Name: fmt.Sprintf("failed requests of %d across a blue-green deploy of podinfo and its rollback, through kube-proxy on a real node", all.Count),
		Unit: "requests", Ours: float64(all.Failed), Peer: "target", PeerValue: 0, Judgement: AgainstTarget,
		Why: fmt.Sprintf("%d failed during the deploy's switch, %d from the rollback on; by cause: %s", during.Failed, rollback.Failed, failureCauses(shots))})
	assert.Zero(b, all.Failed, "failed requests through kube-proxy across a blue-green deploy and its rollback")
}

// TestRealNodeRollingImagePullFailure deploys an image of a repository the
// node's registry does not know with greenlight's rolling strategy: the
// deploy fails within 30 s with the kubelet's own reason and events, and
// the rollout is undone.
func TestRealNodeRollingImagePullFailure(t *testing.T) {
	c := testcluster.RealNodeFor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	ns := c.NewNamespace(t)
	dep, svc := podinfoOnRealNode(ns, "shop", "ghcr.io/stefanprodan/podinfo:6.9.2")
	_, err := c.Client().AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.Client().CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.WaitRollout(ctx, c.Client(), ns, "shop", kube.WaitOptions{Timeout: 3 * time.Minute})
	require.NoError(t, err)

	applier, err := kube.NewApplier(c.Config())
	require.NoError(t, err)
	rolling := &strategy.Rolling{Client: c.Client(), Applier: applier, Wait: kube.WaitOptions{Timeout: 2 * time.Minute}}
	start := time.Now()
	_, err = rolling.Deploy(ctx, strategy.Target{Namespace: ns, Deployment: "shop", Service: "shop", Image: "ghcr.io/acme/no-such-app:v1"})
	took := time.Since(start)
	require.Error(t, err)
	var failure *kube.RolloutFailure
	require.True(t, errors.As(err, &failure), "a rollout failure, got %v", err)
	require.NotEmpty(t, failure.Pods)
	assert.Contains(t, []string{"ErrImagePull", "ImagePullBackOff"}, failure.Pods[0].Reason)
	assert.NotEmpty(t, failure.Events, "the kubelet's events")
	assert.Less(t, took, 30*time.Second, "failed fast, not at the timeout")
	t.Logf("unknown image: %s after %s; events: %+v", failure.Pods[0].Reason, took.Round(time.Millisecond), failure.Events)
}

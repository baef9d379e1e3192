package kube

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestWritesRetryThroughFaultyAPIServer: the engine's writes (image change,
// selector switch, scale) go through when the API server first answers 503
// or 429, or hangs up.
func TestWritesRetryThroughFaultyAPIServer(t *testing.T) {
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	replicas := int32(1)
	labels := map[string]string{"app": "w"}
	_, err := c.Client().AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "w"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "sampleapp:v1"}}}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.Client().CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "w"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	fp, cfg := newFaultProxy(t, c.Config())
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	for _, mode := range []string{faultUnavailable, faultTooMany, faultHangUp} {
		t.Run(mode, func(t *testing.T) {
			// The write is the request after the Get: fail from there on.
			fp.fail(mode, 0)
			d, err := client.AppsV1().Deployments(ns).Get(ctx, "w", metav1.GetOptions{})
			require.NoError(t, err)
			image := "sampleapp:v2"
			if d.Spec.Template.Spec.Containers[0].Image == image {
				image = "sampleapp:v3"
			}
			fp.fail(mode, 2)
			_, err = SetImage(ctx, client, ns, "w", "", image, nil)
			require.NoError(t, err, "set image through %s", mode)

			fp.fail(mode, 2)
			_, err = SwitchSelector(ctx, client, ns, "w", map[string]string{"app": "w", "mode": mode})
			require.NoError(t, err, "switch selector through %s", mode)

			fp.fail(mode, 2)
			require.NoError(t, ScaleDeployment(ctx, client, ns, "w", 2), "scale through %s", mode)
			if mode != faultHangUp { // client-go itself retries some hung-up requests
				failed, _ := fp.counts()
				assert.Equal(t, 2, failed, "both injected faults of the scale were met and retried")
			}
		})
	}
}

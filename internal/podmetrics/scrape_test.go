package podmetrics

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMetricsResolvePortAndServingPods(t *testing.T) {
	t.Parallel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo-1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: 9898}, {Name: "http-metrics", ContainerPort: 9797},
		}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	for port, want := range map[string]string{"http-metrics": "9797", "": "9898", "9797": "9797"} {
		got, err := ResolvePort(pod, port)
		assert.NoError(t, err)
		assert.Equal(t, want, got, "port %q", port)
	}
	_, err := ResolvePort(pod, "metrics")
	assert.ErrorContains(t, err, `no container port named "metrics"`)

	assert.True(t, serving(pod))
	unready := pod.DeepCopy()
	unready.Status.Conditions[0].Status = corev1.ConditionFalse
	assert.False(t, serving(unready))
	leaving := pod.DeepCopy()
	leaving.DeletionTimestamp = &metav1.Time{}
	assert.False(t, serving(leaving), "a terminating pod no longer serves")
}

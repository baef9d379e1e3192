package kube

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestServicePortAndTargetContainerPort(t *testing.T) {
	t.Parallel()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "podinfo"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
		{Name: "http", Port: 9898, TargetPort: intstr.FromString("http")},
		{Name: "grpc", Port: 9999, TargetPort: intstr.FromInt32(9999)},
		{Name: "metrics", Port: 9797},
	}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-1"}, Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "podinfod", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}, {Name: "http-metrics", ContainerPort: 9797}}},
	}}}
	for _, tc := range []struct {
		port string
		want int
		err  string
	}{
		{"http", 9898, ""},
		{"9898", 9898, ""},
		{"grpc", 9999, ""},
		{"metrics", 9797, ""},
		{"", 0, "has 3 ports"},
		{"admin", 0, `no port "admin"`},
	} {
		sp, err := ServicePortOf(svc, tc.port)
		if err == nil {
			var n int
			n, err = TargetContainerPort(sp, pod)
			if err == nil {
				assert.Equal(t, tc.want, n, tc.port)
				continue
			}
		}
		require.Error(t, err, tc.port)
		assert.Contains(t, err.Error(), tc.err, tc.port)
	}

	one := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("web")}}}}
	sp, err := ServicePortOf(one, "")
	require.NoError(t, err, "the only port when none is named")
	_, err = TargetContainerPort(sp, pod)
	assert.ErrorContains(t, err, `no container port named "web"`)
}

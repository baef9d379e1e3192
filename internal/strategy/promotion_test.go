package strategy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTemplateFingerprint(t *testing.T) {
	t.Parallel()
	base := func() *appsv1.Deployment {
		replicas := int32(2)
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "shop-green", Generation: 3},
			Spec: appsv1.DeploymentSpec{Replicas: &replicas, Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "shop", "greenlight.dev/color": "green"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop:v3"}}},
			}},
		}
	}
	want := TemplateFingerprint(base())
	tests := []struct {
		name    string
		edit    func(d *appsv1.Deployment)
		changed bool
	}{
		{"nothing", func(*appsv1.Deployment) {}, false},
		{"scaled", func(d *appsv1.Deployment) { n := int32(5); d.Spec.Replicas = &n }, false},
		{"annotated (rollback window, promotion record)", func(d *appsv1.Deployment) {
			d.Annotations = map[string]string{AnnotationAwaitingPromotion: "{}", AnnotationScaleDownAfter: "2026-01-01T00:00:00Z"}
		}, false},
		{"status and generation", func(d *appsv1.Deployment) { d.Generation = 9; d.Status.ReadyReplicas = 2 }, false},
		{"image", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "shop:v4" }, true},
		{"environment", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "FEATURE", Value: "on"}}
		}, true},
		{"rollout restart", func(d *appsv1.Deployment) {
			d.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := base()
			tt.edit(d)
			assert.Equal(t, tt.changed, TemplateFingerprint(d) != want)
		})
	}
}

func TestPendingOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		annotation string
		ok         bool
		want       Pending
	}{
		{"none", "", false, Pending{}},
		{"recorded", `{"image":"shop:v3","color":"green","deployment":"shop-green","template":"sha256:ab"}`, true,
			Pending{Image: "shop:v3", Color: "green", Deployment: "shop-green", Template: "sha256:ab"}},
		// Still marks the color as unverified for traffic; its empty
		// fingerprint matches no template, so a promote is refused.
		{"unreadable", `{not json`, true, Pending{Deployment: "shop-green"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shop-green"}}
			if tt.annotation != "" {
				d.Annotations = map[string]string{AnnotationAwaitingPromotion: tt.annotation}
			}
			got, ok := PendingOf(d)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

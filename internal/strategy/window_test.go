package strategy

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// TestCloseExpiredWindowsSaysWhy: a window still open stays open for a
// reader, and a deploy taking the idle color ends it, saying so rather
// than claiming the window had closed.
func TestCloseExpiredWindowsSaysWhy(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		until    time.Time
		takeIdle bool
		want     []string
		replicas int32
	}{
		{"open, read by a rollback", now.Add(10 * time.Minute), false, nil, 2},
		{"open, taken by a deploy", now.Add(10 * time.Minute), true, []string{"shop-blue scaled down: this deploy takes the idle color, so its rollback window (until 07:10:00 UTC) ends now"}, 0},
		{"closed", now.Add(-time.Minute), false, []string{"shop-blue scaled down: its rollback window closed at 06:59:00 UTC"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			blue := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shop-blue", Namespace: "ns",
				Annotations: map[string]string{AnnotationScaleDownAfter: tc.until.Format(time.RFC3339)}},
				Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}}
			client := fake.NewClientset(blue)
			got, err := CloseExpiredWindows(context.Background(), client, Target{Namespace: "ns", Deployment: "shop", Service: "shop"}, now, tc.takeIdle)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			d, err := client.AppsV1().Deployments("ns").Get(context.Background(), "shop-blue", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, tc.replicas, *d.Spec.Replicas)
		})
	}
}

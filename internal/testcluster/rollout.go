package testcluster

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// RolloutComplete is kubectl's rule for a finished rollout, applied to a
// Deployment at generation gen or later: the status describes the spec and
// every desired replica is updated and available, with no old one left.
func RolloutComplete(d *appsv1.Deployment, gen int64) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return d.Generation >= gen && s.ObservedGeneration >= d.Generation &&
		s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want
}

// WatchRolloutComplete returns the moment a watch of its own first
// delivers the Deployment with a complete status for generation gen: the
// referee benchmarks time rollout waiters against.
func WatchRolloutComplete(ctx context.Context, client kubernetes.Interface, namespace, name string, gen int64) (time.Time, error) {
	byName := fields.OneTermEqualSelector("metadata.name", name).String()
	list, err := client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{FieldSelector: byName})
	if err != nil {
		return time.Time{}, fmt.Errorf("list deployment %s/%s: %w", namespace, name, err)
	}
	for i := range list.Items {
		if RolloutComplete(&list.Items[i], gen) {
			return time.Now(), nil
		}
	}
	w, err := client.AppsV1().Deployments(namespace).Watch(ctx, metav1.ListOptions{FieldSelector: byName, ResourceVersion: list.ResourceVersion})
	if err != nil {
		return time.Time{}, fmt.Errorf("watch deployment %s/%s: %w", namespace, name, err)
	}
	defer w.Stop()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return time.Time{}, fmt.Errorf("watch deployment %s/%s: closed before the rollout completed", namespace, name)
			}
			if d, ok := ev.Object.(*appsv1.Deployment); ok && RolloutComplete(d, gen) {
				return time.Now(), nil
			}
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("watch deployment %s/%s: %w", namespace, name, ctx.Err())
		}
	}
}

package kube

import (
	"context"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// CurrentPodSelector is the label set of the pods of a Deployment's current
// ReplicaSet (its selector plus the ReplicaSet's pod-template-hash), and
// that ReplicaSet's name: what an endpoints proof wants the Service's
// EndpointSlices to list, and nothing else.
func CurrentPodSelector(ctx context.Context, client kubernetes.Interface, namespace, deployment string) (map[string]string, string, error) {
	var d *appsv1.Deployment
	err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
		var gerr error
		d, gerr = client.AppsV1().Deployments(namespace).Get(ctx, deployment, metav1.GetOptions{})
		return gerr
	})
	if err != nil {
		return nil, "", fmt.Errorf("get deployment %s/%s: %w", namespace, deployment, ClassifyAPIError(err))
	}
	if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
		return nil, "", fmt.Errorf("deployment %s/%s has no matchLabels selector", namespace, deployment)
	}
	var list *appsv1.ReplicaSetList
	err = Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
		var lerr error
		list, lerr = client.AppsV1().ReplicaSets(namespace).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(d.Spec.Selector)})
		return lerr
	})
	if err != nil {
		return nil, "", fmt.Errorf("list replica sets of deployment %s/%s: %w", namespace, deployment, ClassifyAPIError(err))
	}
	rs := currentReplicaSet(d, list.Items)
	if rs == nil {
		return nil, "", fmt.Errorf("deployment %s/%s has no replica set of revision %s", namespace, deployment, d.Annotations[revisionAnnotation])
	}
	sel := maps.Clone(d.Spec.Selector.MatchLabels)
	sel[appsv1.DefaultDeploymentUniqueLabelKey] = rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	return sel, rs.Name, nil
}

// ListPods lists the pods in namespace whose labels include selector.
func ListPods(ctx context.Context, client kubernetes.Interface, namespace string, selector map[string]string) ([]corev1.Pod, error) {
	sel := labels.SelectorFromSet(selector).String()
	var list *corev1.PodList
	err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
		var lerr error
		list, lerr = client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		return lerr
	})
	if err != nil {
		return nil, fmt.Errorf("list the pods of %s in %s: %w", sel, namespace, ClassifyAPIError(err))
	}
	return list.Items, nil
}

// currentReplicaSet is the ReplicaSet the Deployment owns whose revision is
// the Deployment's. Pure.
func currentReplicaSet(d *appsv1.Deployment, sets []appsv1.ReplicaSet) *appsv1.ReplicaSet {
	want := d.Annotations[revisionAnnotation]
	for i := range sets {
		rs := &sets[i]
		if !metav1.IsControlledBy(rs, d) || rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == "" {
			continue
		}
		if want != "" && rs.Annotations[revisionAnnotation] == want {
			return rs
		}
	}
	return nil
}

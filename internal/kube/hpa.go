package kube

import (
	"context"
	"encoding/json"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	appsv1apply "k8s.io/client-go/applyconfigurations/apps/v1"
	"k8s.io/client-go/kubernetes"
)

// replicasHandoverManager co-owns spec.replicas for the moment greenlight
// stops applying it, so that dropping the field from greenlight's applies
// never resets it to the default of one (the Kubernetes documentation's
// "transferring ownership" to an autoscaler).
const replicasHandoverManager = "greenlight-replicas-handover"

// Autoscalers maps each Deployment of the namespace that a
// HorizontalPodAutoscaler (autoscaling/v2) scales to that autoscaler's name.
func Autoscalers(ctx context.Context, client kubernetes.Interface, namespace string) (map[string]string, error) {
	var list *autoscalingv2.HorizontalPodAutoscalerList
	err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
		var lerr error
		list, lerr = client.AutoscalingV2().HorizontalPodAutoscalers(namespace).List(ctx, metav1.ListOptions{})
		return lerr
	})
	if err != nil {
		return nil, fmt.Errorf("list horizontal pod autoscalers in %s: %w", namespace, ClassifyAPIError(err))
	}
	out := map[string]string{}
	for _, h := range list.Items {
		if ref := h.Spec.ScaleTargetRef; targetsDeployment(ref.APIVersion, ref.Kind) {
			out[ref.Name] = h.Name
		}
	}
	return out, nil
}

func targetsDeployment(apiVersion, kind string) bool {
	return kind == "Deployment" && (apiVersion == "apps/v1" || apiVersion == "")
}

// ManifestAutoscalers maps each Deployment that a HorizontalPodAutoscaler
// among objs scales to that autoscaler's name.
func ManifestAutoscalers(objs []*unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	for _, obj := range objs {
		if obj.GetKind() != "HorizontalPodAutoscaler" {
			continue
		}
		apiVersion, _, _ := unstructured.NestedString(obj.Object, "spec", "scaleTargetRef", "apiVersion")
		kind, _, _ := unstructured.NestedString(obj.Object, "spec", "scaleTargetRef", "kind")
		name, _, _ := unstructured.NestedString(obj.Object, "spec", "scaleTargetRef", "name")
		if targetsDeployment(apiVersion, kind) && name != "" {
			out[name] = obj.GetName()
		}
	}
	return out
}

// RetargetHPA points a HorizontalPodAutoscaler at another Deployment. The
// autoscaler then scales that Deployment and leaves the previous one at the
// count it had.
func RetargetHPA(ctx context.Context, client kubernetes.Interface, namespace, hpa, deployment string) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"scaleTargetRef": map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
	}}})
	if err != nil {
		return fmt.Errorf("move autoscaler %s/%s: encode patch: %w", namespace, hpa, err)
	}
	err = Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
		_, perr := client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Patch(ctx, hpa, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		return perr
	})
	if err != nil {
		return fmt.Errorf("move autoscaler %s/%s to deployment %s: %w", namespace, hpa, deployment, ClassifyAPIError(err))
	}
	return nil
}

// HandOverReplicas lets greenlight stop applying a Deployment's
// spec.replicas without the API server resetting it: a second field manager
// first claims the current value. A conflict means the autoscaler already
// owns the field, which is what is wanted; a missing Deployment has nothing
// to hand over.
func HandOverReplicas(ctx context.Context, client kubernetes.Interface, namespace, name string) error {
	d, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get deployment %s/%s: %w", namespace, name, ClassifyAPIError(err))
	}
	if d.Spec.Replicas == nil {
		return nil
	}
	apply := appsv1apply.Deployment(name, namespace).WithSpec(appsv1apply.DeploymentSpec().WithReplicas(*d.Spec.Replicas))
	_, err = client.AppsV1().Deployments(namespace).Apply(ctx, apply, metav1.ApplyOptions{FieldManager: replicasHandoverManager})
	if err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("hand the replica count of deployment %s/%s to its autoscaler: %w", namespace, name, ClassifyAPIError(err))
	}
	return nil
}

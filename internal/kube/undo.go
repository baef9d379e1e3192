package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Revision is one entry of a Deployment's rollout history.
type Revision struct {
	Number      int64
	ReplicaSet  string
	Images      []string
	ChangeCause string
	Replicas    int32
}

// annotationsKeptOnUndo are the Deployment's own bookkeeping annotations,
// which an undo keeps instead of copying them from the ReplicaSet, as kubectl does.
var annotationsKeptOnUndo = map[string]bool{
	corev1.LastAppliedConfigAnnotation:          true,
	revisionAnnotation:                          true,
	"deployment.kubernetes.io/revision-history": true,
	"deployment.kubernetes.io/desired-replicas": true,
	"deployment.kubernetes.io/max-replicas":     true,
	appsv1.DeprecatedRollbackTo:                 true,
}

// History lists a Deployment's revisions, newest first, from the
// ReplicaSets it controls.
func History(ctx context.Context, client kubernetes.Interface, namespace, name string) ([]Revision, error) {
	_, sets, err := deploymentAndSets(ctx, client, namespace, name)
	if err != nil {
		return nil, err
	}
	var out []Revision
	for _, rs := range sets {
		n, err := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64)
		if err != nil {
			continue
		}
		var images []string
		for _, c := range rs.Spec.Template.Spec.Containers {
			images = append(images, c.Image)
		}
		out = append(out, Revision{Number: n, ReplicaSet: rs.Name, Images: images, ChangeCause: rs.Annotations["kubernetes.io/change-cause"], Replicas: rs.Status.Replicas})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number > out[j].Number })
	return out, nil
}

// UndoResult says what an undo did.
type UndoResult struct {
	// To is the revision whose template was restored.
	To Revision
	// Skipped is true when the Deployment already ran that template.
	Skipped bool
}

// Undo rolls a Deployment back like `kubectl rollout undo`: to the previous
// revision when toRevision is 0, else to that revision, by writing that
// revision's pod template back into the Deployment. Wait with WaitRollout.
func Undo(ctx context.Context, client kubernetes.Interface, namespace, name string, toRevision int64) (UndoResult, error) {
	if toRevision < 0 {
		return UndoResult{}, fmt.Errorf("roll back deployment %s/%s: revision %d: want a positive revision number, or 0 for the previous one", namespace, name, toRevision)
	}
	d, sets, err := deploymentAndSets(ctx, client, namespace, name)
	if err != nil {
		return UndoResult{}, err
	}
	if d.Spec.Paused {
		return UndoResult{}, fmt.Errorf("roll back deployment %s/%s: it is paused; resume it first (kubectl rollout resume deployment/%s)", namespace, name, name)
	}
	target, err := revisionToRestore(d, sets, toRevision)
	if err != nil {
		return UndoResult{}, err
	}
	n, _ := strconv.ParseInt(target.Annotations[revisionAnnotation], 10, 64)
	result := UndoResult{To: Revision{Number: n, ReplicaSet: target.Name, ChangeCause: target.Annotations["kubernetes.io/change-cause"]}}
	for _, c := range target.Spec.Template.Spec.Containers {
		result.To.Images = append(result.To.Images, c.Image)
	}
	template := target.Spec.Template.DeepCopy()
	delete(template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if equality.Semantic.DeepEqual(template, &d.Spec.Template) {
		result.Skipped = true
		return result, nil
	}
	annotations := map[string]string{}
	for k, v := range d.Annotations {
		if annotationsKeptOnUndo[k] {
			annotations[k] = v
		}
	}
	for k, v := range target.Annotations {
		if !annotationsKeptOnUndo[k] {
			annotations[k] = v
		}
	}
	patch, err := json.Marshal([]map[string]any{
		{"op": "replace", "path": "/spec/template", "value": template},
		{"op": "replace", "path": "/metadata/annotations", "value": annotations},
	})
	if err != nil {
		return UndoResult{}, fmt.Errorf("roll back deployment %s/%s: encode patch: %w", namespace, name, err)
	}
	err = Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
		_, perr := client.AppsV1().Deployments(namespace).Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		return perr
	})
	if err != nil {
		return UndoResult{}, fmt.Errorf("roll back deployment %s/%s to revision %d: %w", namespace, name, n, ClassifyAPIError(err))
	}
	return result, nil
}

func revisionToRestore(d *appsv1.Deployment, sets []appsv1.ReplicaSet, toRevision int64) (*appsv1.ReplicaSet, error) {
	var latest, previous *appsv1.ReplicaSet
	latestN, previousN := int64(-1), int64(-1)
	var known []int64
	for i := range sets {
		rs := &sets[i]
		n, err := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64)
		if err != nil {
			continue
		}
		known = append(known, n)
		if toRevision > 0 {
			if n == toRevision {
				return rs, nil
			}
			continue
		}
		switch {
		case n > latestN:
			previous, previousN = latest, latestN
			latest, latestN = rs, n
		case n > previousN:
			previous, previousN = rs, n
		}
	}
	sort.Slice(known, func(i, j int) bool { return known[i] < known[j] })
	if toRevision > 0 {
		return nil, fmt.Errorf("roll back deployment %s/%s: revision %d not found; known revisions: %v", d.Namespace, d.Name, toRevision, known)
	}
	if previous == nil {
		return nil, fmt.Errorf("roll back deployment %s/%s: no previous revision to roll back to (known revisions: %v)", d.Namespace, d.Name, known)
	}
	return previous, nil
}

func deploymentAndSets(ctx context.Context, client kubernetes.Interface, namespace, name string) (*appsv1.Deployment, []appsv1.ReplicaSet, error) {
	d, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("get deployment %s/%s: %w", namespace, name, ClassifyAPIError(err))
	}
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, nil, fmt.Errorf("deployment %s/%s has an invalid selector: %w", namespace, name, err)
	}
	list, err := client.AppsV1().ReplicaSets(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, nil, fmt.Errorf("list replica sets of deployment %s/%s: %w", namespace, name, ClassifyAPIError(err))
	}
	var owned []appsv1.ReplicaSet
	for _, rs := range list.Items {
		if metav1.IsControlledBy(&rs, d) {
			owned = append(owned, rs)
		}
	}
	return d, owned, nil
}

package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// PhaseLabel marks a Job's place in a deploy; PhasePreDeploy Jobs
// (migrations) run to completion before anything else is applied.
const (
	PhaseLabel     = "greenlight.dev/phase"
	PhasePreDeploy = "pre-deploy"
)

// WorkloadKind is the kind of a workload greenlight waits on and undoes
// ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"), or "" for
// any other object. Pure.
func WorkloadKind(obj *unstructured.Unstructured) string {
	switch gk := obj.GroupVersionKind().GroupKind(); gk.String() {
	case "Deployment.apps", "StatefulSet.apps", "DaemonSet.apps", "Job.batch", "CronJob.batch":
		return gk.Kind
	}
	return ""
}

// IsPreDeployJob tells a Job labelled greenlight.dev/phase: pre-deploy.
// Pure.
func IsPreDeployJob(obj *unstructured.Unstructured) bool {
	return WorkloadKind(obj) == "Job" && obj.GetLabels()[PhaseLabel] == PhasePreDeploy
}

// WorkloadSnapshot is a workload as it was before a deploy changed it:
// enough to put its pods back as they were.
type WorkloadSnapshot struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Existed is false when the deploy creates the workload: undoing
	// deletes it.
	Existed bool `json:"existed"`
	// Template is the previous pod template (a CronJob's job template).
	Template json.RawMessage `json:"template,omitempty"`
	// Revision is a StatefulSet's current revision before the deploy.
	Revision string `json:"revision,omitempty"`
	// ResourceVersion and Generation are the object's before the deploy.
	ResourceVersion string `json:"resource_version,omitempty"`
	Generation      int64  `json:"generation,omitempty"`
}

// Object is "Kind/name".
func (s WorkloadSnapshot) Object() string { return s.Kind + "/" + s.Name }

// SnapshotWorkload reads a workload before a deploy changes it. A workload
// that does not exist yet is a snapshot with Existed false.
func SnapshotWorkload(ctx context.Context, client kubernetes.Interface, namespace, kind, name string) (WorkloadSnapshot, error) {
	s := WorkloadSnapshot{Kind: kind, Namespace: namespace, Name: name}
	var obj metav1.Object
	var template any
	var err error
	switch kind {
	case "Deployment":
		var d *appsv1.Deployment
		if d, err = client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			obj, template = d, d.Spec.Template
		}
	case "StatefulSet":
		var st *appsv1.StatefulSet
		if st, err = client.AppsV1().StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			obj, template, s.Revision = st, st.Spec.Template, st.Status.CurrentRevision
		}
	case "DaemonSet":
		var d *appsv1.DaemonSet
		if d, err = client.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			obj, template = d, d.Spec.Template
		}
	case "Job":
		var j *batchv1.Job
		if j, err = client.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			obj, template = j, j.Spec.Template
		}
	case "CronJob":
		var c *batchv1.CronJob
		if c, err = client.BatchV1().CronJobs(namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			obj, template = c, c.Spec.JobTemplate
		}
	default:
		return s, fmt.Errorf("snapshot %s/%s: not a workload kind", kind, name)
	}
	if apierrors.IsNotFound(err) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read %s/%s in %s before the deploy: %w", kind, name, namespace, ClassifyAPIError(err))
	}
	s.Existed, s.ResourceVersion, s.Generation = true, obj.GetResourceVersion(), obj.GetGeneration()
	if s.Template, err = json.Marshal(template); err != nil {
		return s, fmt.Errorf("record the template of %s/%s: %w", kind, name, err)
	}
	return s, nil
}

// UndoOutcome says what undoing one workload did.
type UndoOutcome struct {
	// Detail is one line for the report.
	Detail string
	// Kept is true when the workload could not be undone: a Job that has
	// completed ran, and what it did stays done.
	Kept bool
}

// UndoWorkload puts a workload back as its snapshot recorded it, as
// `kubectl rollout undo` does: the previous pod template is written back
// (for a StatefulSet or DaemonSet kubectl takes it from the
// ControllerRevision, which holds the same template); a workload the
// deploy created is deleted, except a Job that completed. A StatefulSet's
// pods of the failed revision that are not ready are deleted, since the
// controller waits for a broken pod to become ready before replacing it
// (the "forced rollback" of the StatefulSet documentation). Wait with
// WaitWorkload.
func UndoWorkload(ctx context.Context, client kubernetes.Interface, s WorkloadSnapshot) (UndoOutcome, error) {
	ns, name := s.Namespace, s.Name
	if s.Kind == "Job" {
		j, err := client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return UndoOutcome{Detail: "not there"}, nil
		}
		if err != nil {
			return UndoOutcome{}, fmt.Errorf("read job %s/%s: %w", ns, name, ClassifyAPIError(err))
		}
		if st, _ := JobStatus(j); st.Done {
			return UndoOutcome{Kept: true, Detail: "completed: what it did cannot be undone, it is kept"}, nil
		}
		if err := DeleteJob(ctx, client, ns, name); err != nil {
			return UndoOutcome{}, err
		}
		if s.Existed {
			return UndoOutcome{Detail: "deleted; the Job it replaced is not restored"}, nil
		}
		return UndoOutcome{Detail: "deleted"}, nil
	}
	if !s.Existed {
		bg := metav1.DeletePropagationBackground
		var err error
		opts := metav1.DeleteOptions{PropagationPolicy: &bg}
		switch s.Kind {
		case "Deployment":
			err = client.AppsV1().Deployments(ns).Delete(ctx, name, opts)
		case "StatefulSet":
			err = client.AppsV1().StatefulSets(ns).Delete(ctx, name, opts)
		case "DaemonSet":
			err = client.AppsV1().DaemonSets(ns).Delete(ctx, name, opts)
		case "CronJob":
			err = client.BatchV1().CronJobs(ns).Delete(ctx, name, opts)
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return UndoOutcome{}, fmt.Errorf("delete %s in %s, which this deploy created: %w", s.Object(), ns, ClassifyAPIError(err))
		}
		return UndoOutcome{Detail: "deleted: this deploy created it"}, nil
	}
	path := "/spec/template"
	if s.Kind == "CronJob" {
		path = "/spec/jobTemplate"
	}
	patch, err := json.Marshal([]map[string]any{{"op": "replace", "path": path, "value": s.Template}})
	if err != nil {
		return UndoOutcome{}, fmt.Errorf("undo %s: encode patch: %w", s.Object(), err)
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager}
	switch s.Kind {
	case "Deployment":
		_, err = client.AppsV1().Deployments(ns).Patch(ctx, name, types.JSONPatchType, patch, opts)
	case "StatefulSet":
		_, err = client.AppsV1().StatefulSets(ns).Patch(ctx, name, types.JSONPatchType, patch, opts)
	case "DaemonSet":
		_, err = client.AppsV1().DaemonSets(ns).Patch(ctx, name, types.JSONPatchType, patch, opts)
	case "CronJob":
		_, err = client.BatchV1().CronJobs(ns).Patch(ctx, name, types.JSONPatchType, patch, opts)
	}
	if err != nil {
		return UndoOutcome{}, fmt.Errorf("undo %s in %s: %w", s.Object(), ns, ClassifyAPIError(err))
	}
	if s.Kind == "StatefulSet" && s.Revision != "" {
		n, err := deleteBrokenPods(ctx, client, ns, name, s.Revision)
		if err != nil {
			return UndoOutcome{}, err
		}
		if n > 0 {
			return UndoOutcome{Detail: fmt.Sprintf("previous template restored (revision %s); %d not-ready pod(s) of the failed revision deleted", s.Revision, n)}, nil
		}
		return UndoOutcome{Detail: fmt.Sprintf("previous template restored (revision %s)", s.Revision)}, nil
	}
	return UndoOutcome{Detail: "previous template restored"}, nil
}

// deleteBrokenPods deletes a StatefulSet's pods that are not ready and not
// at revision, so the controller recreates them from the restored template.
func deleteBrokenPods(ctx context.Context, client kubernetes.Interface, ns, name, revision string) (int, error) {
	s, err := client.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("get statefulset %s/%s: %w", ns, name, ClassifyAPIError(err))
	}
	sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
	if err != nil {
		return 0, fmt.Errorf("statefulset %s/%s has an invalid selector: %w", ns, name, err)
	}
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return 0, fmt.Errorf("list pods of statefulset %s/%s: %w", ns, name, ClassifyAPIError(err))
	}
	n := 0
	for _, p := range pods.Items {
		if !metav1.IsControlledBy(&p, s) || p.Labels[controllerRevisionLabel] == revision || podReady(&p) || p.DeletionTimestamp != nil {
			continue
		}
		if err := client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return n, fmt.Errorf("delete pod %s/%s of the failed revision: %w", ns, p.Name, ClassifyAPIError(err))
		}
		n++
	}
	return n, nil
}

// DeleteJob deletes a Job with its pods and waits until it is gone, so a
// Job of the same name can be created again.
func DeleteJob(ctx context.Context, client kubernetes.Interface, ns, name string) error {
	fg := metav1.DeletePropagationForeground
	err := client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete job %s/%s: %w", ns, name, ClassifyAPIError(err))
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, gerr := client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(gerr), nil
	})
	if err != nil {
		return fmt.Errorf("wait for job %s/%s to be deleted: %w", ns, name, err)
	}
	return nil
}

// JobRunsSame tells whether a live Job already ran what the manifest's Job
// would run: the same containers with the same images, commands and
// arguments. A Job's template cannot change, so any other Job of that name
// is replaced. Pure.
func JobRunsSame(live *batchv1.Job, manifest *unstructured.Unstructured) bool {
	var want batchv1.Job
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(manifest.Object, &want); err != nil {
		return false
	}
	a, b := live.Spec.Template.Spec.Containers, want.Spec.Template.Spec.Containers
	return slices.EqualFunc(a, b, func(x, y corev1.Container) bool {
		return x.Name == y.Name && x.Image == y.Image && slices.Equal(x.Command, y.Command) && slices.Equal(x.Args, y.Args)
	})
}

// WithoutLiveJobs leaves out the Jobs that exist already: a deploy
// replaces them rather than patching them (a Job's template cannot
// change), so a server-side dry run of a patch would refuse what the
// deploy will do.
func WithoutLiveJobs(ctx context.Context, client kubernetes.Interface, namespace string, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if WorkloadKind(o) == "Job" {
			ns := o.GetNamespace()
			if ns == "" {
				ns = namespace
			}
			if _, err := client.BatchV1().Jobs(ns).Get(ctx, o.GetName(), metav1.GetOptions{}); err == nil {
				continue
			}
		}
		out = append(out, o)
	}
	return out
}

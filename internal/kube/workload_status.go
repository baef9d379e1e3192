package kube

import (
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// WorkloadState is where the rollout of one workload of any kind stands.
type WorkloadState struct {
	// Object is "Kind/name".
	Object string
	// Done is true when the workload runs (or, for a Job, has completed)
	// what was applied.
	Done bool
	// Message says what is awaited, in kubectl's words where kubectl has them.
	Message string
}

// WorkloadFailure is a workload that will not finish by waiting longer: a
// failed Job.
type WorkloadFailure struct {
	// Object is "Kind/name".
	Object string
	// Reason is the controller's reason, such as BackoffLimitExceeded.
	Reason string
	// Message is the controller's explanation.
	Message string
}

// Error names the workload and the controller's reason.
func (f *WorkloadFailure) Error() string {
	msg := fmt.Sprintf("%s failed: %s", f.Object, f.Reason)
	if f.Message != "" {
		msg += ": " + f.Message
	}
	return msg
}

// WorkloadStatus decides whether a workload is rolled out, by kind:
// Deployments, StatefulSets and DaemonSets by kubectl's rollout status rules,
// a Job when it has completed, a CronJob once its new spec is stored (its
// next run uses it). Other kinds are done once applied.
func WorkloadStatus(obj *unstructured.Unstructured) (WorkloadState, error) {
	name := objectName(obj)
	convert := func(into any) error {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, into); err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		return nil
	}
	switch obj.GroupVersionKind().GroupKind().String() {
	case "Deployment.apps":
		var d appsv1.Deployment
		if err := convert(&d); err != nil {
			return WorkloadState{Object: name}, err
		}
		st, err := RolloutStatus(&d)
		return WorkloadState{Object: name, Done: st.Done, Message: st.Message}, err
	case "StatefulSet.apps":
		var s appsv1.StatefulSet
		if err := convert(&s); err != nil {
			return WorkloadState{Object: name}, err
		}
		return StatefulSetStatus(&s), nil
	case "DaemonSet.apps":
		var d appsv1.DaemonSet
		if err := convert(&d); err != nil {
			return WorkloadState{Object: name}, err
		}
		return DaemonSetStatus(&d), nil
	case "Job.batch":
		var j batchv1.Job
		if err := convert(&j); err != nil {
			return WorkloadState{Object: name}, err
		}
		return JobStatus(&j)
	case "CronJob.batch":
		var c batchv1.CronJob
		if err := convert(&c); err != nil {
			return WorkloadState{Object: name}, err
		}
		return CronJobStatus(&c), nil
	default:
		return WorkloadState{Object: name, Done: true, Message: name + " applied"}, nil
	}
}

// StatefulSetStatus follows kubectl's StatefulSetStatusViewer: the status
// must describe the current generation and every replica be ready; with a
// partition, the pods at or above it must be updated; otherwise the update
// revision must have become the current one (the ordered update is over).
// An OnDelete StatefulSet is done once observed: its pods change only when
// someone deletes them.
func StatefulSetStatus(s *appsv1.StatefulSet) WorkloadState {
	st := WorkloadState{Object: "StatefulSet/" + s.Name}
	replicas := int32(1)
	if s.Spec.Replicas != nil {
		replicas = *s.Spec.Replicas
	}
	switch {
	case s.Status.ObservedGeneration == 0 || s.Generation > s.Status.ObservedGeneration:
		st.Message = "Waiting for statefulset spec update to be observed..."
	case s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType:
		st.Done, st.Message = true, fmt.Sprintf("statefulset %q uses OnDelete: its pods change when deleted", s.Name)
	case s.Status.ReadyReplicas < replicas:
		st.Message = fmt.Sprintf("Waiting for %d pods to be ready...", replicas-s.Status.ReadyReplicas)
	case s.Spec.UpdateStrategy.RollingUpdate != nil && s.Spec.UpdateStrategy.RollingUpdate.Partition != nil:
		want := replicas - *s.Spec.UpdateStrategy.RollingUpdate.Partition
		if s.Status.UpdatedReplicas < want {
			st.Message = fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated...", s.Status.UpdatedReplicas, want)
		} else {
			st.Done, st.Message = true, fmt.Sprintf("partitioned roll out complete: %d new pods have been updated...", s.Status.UpdatedReplicas)
		}
	case s.Status.UpdateRevision != s.Status.CurrentRevision:
		st.Message = fmt.Sprintf("waiting for statefulset rolling update to complete %d pods at revision %s...", s.Status.UpdatedReplicas, s.Status.UpdateRevision)
	default:
		st.Done, st.Message = true, fmt.Sprintf("statefulset rolling update complete %d pods at revision %s...", s.Status.CurrentReplicas, s.Status.CurrentRevision)
	}
	return st
}

// DaemonSetStatus follows kubectl's DaemonSetStatusViewer: every node that
// should run a pod runs an updated one, and all of them are available. An
// OnDelete DaemonSet is done once observed.
func DaemonSetStatus(d *appsv1.DaemonSet) WorkloadState {
	st := WorkloadState{Object: "DaemonSet/" + d.Name}
	s := d.Status
	switch {
	case d.Generation > s.ObservedGeneration:
		st.Message = "Waiting for daemon set spec update to be observed..."
	case d.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType:
		st.Done, st.Message = true, fmt.Sprintf("daemon set %q uses OnDelete: its pods change when deleted", d.Name)
	case s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
		st.Message = fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated...", d.Name, s.UpdatedNumberScheduled, s.DesiredNumberScheduled)
	case s.NumberAvailable < s.DesiredNumberScheduled:
		st.Message = fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available...", d.Name, s.NumberAvailable, s.DesiredNumberScheduled)
	default:
		st.Done, st.Message = true, fmt.Sprintf("daemon set %q successfully rolled out", d.Name)
	}
	return st
}

// JobStatus is done when the Job's Complete condition is true, as `kubectl
// wait --for=condition=complete` decides; a true Failed condition is a
// *WorkloadFailure with the controller's reason (BackoffLimitExceeded,
// DeadlineExceeded, …).
func JobStatus(j *batchv1.Job) (WorkloadState, error) {
	st := WorkloadState{Object: "Job/" + j.Name}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			st.Done, st.Message = true, fmt.Sprintf("job %q completed: %d succeeded", j.Name, j.Status.Succeeded)
			return st, nil
		case batchv1.JobFailed:
			st.Message = fmt.Sprintf("job %q failed", j.Name)
			return st, &WorkloadFailure{Object: st.Object, Reason: c.Reason, Message: c.Message}
		}
	}
	completions := int32(1)
	if j.Spec.Completions != nil {
		completions = *j.Spec.Completions
	}
	st.Message = fmt.Sprintf("Waiting for job %q to complete: %d of %d succeeded, %d active, %d failed...", j.Name, j.Status.Succeeded, completions, j.Status.Active, j.Status.Failed)
	return st, nil
}

// CronJobStatus is done at once: a CronJob runs nothing when applied, and
// its next scheduled Job uses the stored template. A suspended CronJob is
// said to be so.
func CronJobStatus(c *batchv1.CronJob) WorkloadState {
	st := WorkloadState{Object: "CronJob/" + c.Name, Done: true,
		Message: fmt.Sprintf("cronjob %q updated: its next run (%s) uses the new template", c.Name, c.Spec.Schedule)}
	if c.Spec.Suspend != nil && *c.Spec.Suspend {
		st.Message = fmt.Sprintf("cronjob %q updated; it is suspended and runs nothing until resumed", c.Name)
	}
	return st
}

// applyRank orders kinds so that what others depend on exists first:
// definitions and namespaces, then configuration, then the network, then
// the workloads.
func applyRank(gk string) int {
	switch gk {
	case "CustomResourceDefinition.apiextensions.k8s.io", "Namespace":
		return 0
	case "ServiceAccount", "Role.rbac.authorization.k8s.io", "ClusterRole.rbac.authorization.k8s.io",
		"RoleBinding.rbac.authorization.k8s.io", "ClusterRoleBinding.rbac.authorization.k8s.io":
		return 1
	case "ConfigMap", "Secret", "PersistentVolumeClaim":
		return 2
	case "Service":
		return 3
	case "Deployment.apps", "StatefulSet.apps", "DaemonSet.apps", "Job.batch", "CronJob.batch", "Pod", "ReplicaSet.apps":
		return 5
	case "HorizontalPodAutoscaler.autoscaling", "PodDisruptionBudget.policy":
		return 6
	default:
		return 4
	}
}

// SortForApply orders objects in a safe apply order (CRDs and Namespaces,
// then ServiceAccounts and RBAC, ConfigMaps, Secrets and claims, Services,
// other kinds, workloads, then their autoscalers and disruption budgets),
// keeping the manifests' order within a rank.
func SortForApply(objs []*unstructured.Unstructured) {
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return applyRank(a.GroupVersionKind().GroupKind().String()) - applyRank(b.GroupVersionKind().GroupKind().String())
	})
}

package kube

import (
	"testing"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

func TestStatefulSetStatus(t *testing.T) {
	t.Parallel()
	sts := func(gen, observed int64, replicas int32, partition *int32, st appsv1.StatefulSetStatus) *appsv1.StatefulSet {
		s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: gen},
			Spec: appsv1.StatefulSetSpec{Replicas: &replicas, UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}}}
		if partition != nil {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: partition}
		}
		st.ObservedGeneration = observed
		s.Status = st
		return s
	}
	for _, tc := range []struct {
		name string
		in   *appsv1.StatefulSet
		done bool
		msg  string
	}{
		{"never observed", sts(1, 0, 3, nil, appsv1.StatefulSetStatus{}), false, "Waiting for statefulset spec update to be observed..."},
		{"older generation", sts(3, 2, 3, nil, appsv1.StatefulSetStatus{ReadyReplicas: 3}), false, "Waiting for statefulset spec update to be observed..."},
		{"one not ready", sts(2, 2, 3, nil, appsv1.StatefulSetStatus{ReadyReplicas: 2, UpdateRevision: "b", CurrentRevision: "b"}), false, "Waiting for 1 pods to be ready..."},
		{"ordered update in progress", sts(2, 2, 3, nil, appsv1.StatefulSetStatus{ReadyReplicas: 3, UpdatedReplicas: 2, UpdateRevision: "b", CurrentRevision: "a"}), false, "waiting for statefulset rolling update to complete 2 pods at revision b..."},
		{"update complete", sts(2, 2, 3, nil, appsv1.StatefulSetStatus{ReadyReplicas: 3, CurrentReplicas: 3, UpdateRevision: "b", CurrentRevision: "b"}), true, "statefulset rolling update complete 3 pods at revision b..."},
		{"partition not reached", sts(2, 2, 4, ptr.To[int32](2), appsv1.StatefulSetStatus{ReadyReplicas: 4, UpdatedReplicas: 1}), false, "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated..."},
		{"partition reached", sts(2, 2, 4, ptr.To[int32](2), appsv1.StatefulSetStatus{ReadyReplicas: 4, UpdatedReplicas: 2, UpdateRevision: "b", CurrentRevision: "a"}), true, "partitioned roll out complete: 2 new pods have been updated..."},
	} {
		got := StatefulSetStatus(tc.in)
		assert.Equal(t, tc.done, got.Done, tc.name)
		assert.Equal(t, tc.msg, got.Message, tc.name)
	}
}

func TestDaemonSetStatus(t *testing.T) {
	t.Parallel()
	ds := func(gen, observed int64, desired, updated, available int32) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Generation: gen},
			Spec:   appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType}},
			Status: appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired, UpdatedNumberScheduled: updated, NumberAvailable: available}}
	}
	for _, tc := range []struct {
		name string
		in   *appsv1.DaemonSet
		done bool
		msg  string
	}{
		{"not observed", ds(2, 1, 3, 3, 3), false, "Waiting for daemon set spec update to be observed..."},
		{"updating", ds(2, 2, 3, 2, 3), false, `Waiting for daemon set "agent" rollout to finish: 2 out of 3 new pods have been updated...`},
		{"not available", ds(2, 2, 3, 3, 2), false, `Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...`},
		{"done", ds(2, 2, 3, 3, 3), true, `daemon set "agent" successfully rolled out`},
		{"no nodes to run on", ds(1, 1, 0, 0, 0), true, `daemon set "agent" successfully rolled out`},
	} {
		got := DaemonSetStatus(tc.in)
		assert.Equal(t, tc.done, got.Done, tc.name)
		assert.Equal(t, tc.msg, got.Message, tc.name)
	}
}

func TestJobStatus(t *testing.T) {
	t.Parallel()
	job := func(conds ...batchv1.JobCondition) *batchv1.Job {
		return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "migrate"}, Status: batchv1.JobStatus{Conditions: conds, Active: 1, Failed: 1}}
	}
	for _, tc := range []struct {
		name    string
		in      *batchv1.Job
		done    bool
		failure string
	}{
		{"running", job(), false, ""},
		{"complete", job(batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}), true, ""},
		{"complete condition not yet true", job(batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionFalse}), false, ""},
		{"failed", job(batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"}), false,
			"Job/migrate failed: BackoffLimitExceeded: Job has reached the specified backoff limit"},
	} {
		got, err := JobStatus(tc.in)
		assert.Equal(t, tc.done, got.Done, tc.name)
		if tc.failure == "" {
			assert.NoError(t, err, tc.name)
			continue
		}
		var wf *WorkloadFailure
		assert.ErrorAs(t, err, &wf, tc.name)
		assert.EqualError(t, err, tc.failure, tc.name)
	}
}

func TestWorkloadStatusByKind(t *testing.T) {
	t.Parallel()
	u := func(obj runtime.Object, apiVersion, kind string) *unstructured.Unstructured {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		assert.NoError(t, err)
		out := &unstructured.Unstructured{Object: m}
		out.SetAPIVersion(apiVersion)
		out.SetKind(kind)
		return out
	}
	cron, err := WorkloadStatus(u(&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "report"}, Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *"}}, "batch/v1", "CronJob"))
	assert.NoError(t, err)
	assert.True(t, cron.Done)
	assert.Equal(t, `cronjob "report" updated: its next run (0 3 * * *) uses the new template`, cron.Message)

	dep, err := WorkloadStatus(u(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api", Generation: 2}, Status: appsv1.DeploymentStatus{ObservedGeneration: 1}}, "apps/v1", "Deployment"))
	assert.NoError(t, err)
	assert.False(t, dep.Done)
	assert.Equal(t, "Deployment/api", dep.Object)

	cm, err := WorkloadStatus(u(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}}, "v1", "ConfigMap"))
	assert.NoError(t, err)
	assert.True(t, cm.Done)
}

func TestSortForApply(t *testing.T) {
	t.Parallel()
	obj := func(apiVersion, kind, name string) *unstructured.Unstructured {
		o := &unstructured.Unstructured{Object: map[string]any{}}
		o.SetAPIVersion(apiVersion)
		o.SetKind(kind)
		o.SetName(name)
		return o
	}
	objs := []*unstructured.Unstructured{
		obj("autoscaling/v2", "HorizontalPodAutoscaler", "api"),
		obj("apps/v1", "Deployment", "api"),
		obj("batch/v1", "Job", "migrate"),
		obj("v1", "Service", "api"),
		obj("v1", "Secret", "api-env"),
		obj("networking.k8s.io/v1", "Ingress", "api"),
		obj("v1", "ConfigMap", "api"),
		obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.acme.example"),
		obj("v1", "Namespace", "shop"),
		obj("apps/v1", "StatefulSet", "db"),
	}
	SortForApply(objs)
	var got []string
	for _, o := range objs {
		got = append(got, objectName(o))
	}
	assert.Equal(t, []string{
		"CustomResourceDefinition/widgets.acme.example", "Namespace/shop",
		"Secret/api-env", "ConfigMap/api",
		"Service/api", "Ingress/api",
		"Deployment/api", "Job/migrate", "StatefulSet/db",
		"HorizontalPodAutoscaler/api",
	}, got)
}

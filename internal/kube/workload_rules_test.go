package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// TestWorkloadRulesEdges covers what the per-kind tables leave out: update
// strategies that roll nothing out by themselves, defaults, and a Job with
// several completions or suspended CronJobs.
func TestWorkloadRulesEdges(t *testing.T) {
	t.Parallel()
	onDeleteSTS := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: 2},
		Spec:   appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3), UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 2, ReadyReplicas: 1, UpdateRevision: "b", CurrentRevision: "a"}}
	defaultReplicas := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: 1},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, ReadyReplicas: 0}}
	onDeleteDS := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Generation: 3},
		Spec:   appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: 3, DesiredNumberScheduled: 2}}
	several := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "seed"}, Spec: batchv1.JobSpec{Completions: ptr.To[int32](3)},
		Status: batchv1.JobStatus{Succeeded: 1, Active: 1}}
	deadline := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "seed"}, Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "DeadlineExceeded", Message: "Job was active longer than specified deadline"}}}}
	suspended := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "report"}, Spec: batchv1.CronJobSpec{Schedule: "@daily", Suspend: ptr.To(true)}}

	for _, tc := range []struct {
		name    string
		got     func() (WorkloadState, error)
		done    bool
		msg     string
		failure string
	}{
		{"statefulset OnDelete is done once observed", func() (WorkloadState, error) { return StatefulSetStatus(onDeleteSTS), nil }, true,
			`statefulset "db" uses OnDelete: its pods change when deleted`, ""},
		{"statefulset without replicas wants one", func() (WorkloadState, error) { return StatefulSetStatus(defaultReplicas), nil }, false,
			"Waiting for 1 pods to be ready...", ""},
		{"daemonset OnDelete is done once observed", func() (WorkloadState, error) { return DaemonSetStatus(onDeleteDS), nil }, true,
			`daemon set "agent" uses OnDelete: its pods change when deleted`, ""},
		{"job counts its completions", func() (WorkloadState, error) { return JobStatus(several) }, false,
			`Waiting for job "seed" to complete: 1 of 3 succeeded, 1 active, 0 failed...`, ""},
		{"job past its deadline fails", func() (WorkloadState, error) { return JobStatus(deadline) }, false,
			`job "seed" failed`, "Job/seed failed: DeadlineExceeded: Job was active longer than specified deadline"},
		{"suspended cronjob says so", func() (WorkloadState, error) { return CronJobStatus(suspended), nil }, true,
			`cronjob "report" updated; it is suspended and runs nothing until resumed`, ""},
	} {
		st, err := tc.got()
		assert.Equal(t, tc.done, st.Done, tc.name)
		assert.Equal(t, tc.msg, st.Message, tc.name)
		if tc.failure == "" {
			assert.NoError(t, err, tc.name)
		} else {
			assert.EqualError(t, err, tc.failure, tc.name)
		}
	}
}

func TestWorkloadKindAndPreDeploy(t *testing.T) {
	t.Parallel()
	obj := func(apiVersion, kind string, labels map[string]string) *unstructured.Unstructured {
		o := &unstructured.Unstructured{Object: map[string]any{}}
		o.SetAPIVersion(apiVersion)
		o.SetKind(kind)
		o.SetName("x")
		o.SetLabels(labels)
		return o
	}
	pre := map[string]string{PhaseLabel: PhasePreDeploy}
	for _, tc := range []struct {
		obj       *unstructured.Unstructured
		kind      string
		preDeploy bool
	}{
		{obj("apps/v1", "Deployment", nil), "Deployment", false},
		{obj("apps/v1", "StatefulSet", nil), "StatefulSet", false},
		{obj("apps/v1", "DaemonSet", nil), "DaemonSet", false},
		{obj("batch/v1", "Job", nil), "Job", false},
		{obj("batch/v1", "Job", pre), "Job", true},
		{obj("batch/v1", "Job", map[string]string{PhaseLabel: "post-deploy"}), "Job", false},
		{obj("batch/v1", "CronJob", pre), "CronJob", false},
		{obj("v1", "ConfigMap", pre), "", false},
		{obj("extensions.example/v1", "Deployment", nil), "", false},
	} {
		what := tc.obj.GetAPIVersion() + " " + tc.obj.GetKind()
		assert.Equal(t, tc.kind, WorkloadKind(tc.obj), what)
		assert.Equal(t, tc.preDeploy, IsPreDeployJob(tc.obj), what)
	}
}

func TestLastPodLog(t *testing.T) {
	t.Parallel()
	at := func(s int) metav1.Time { return metav1.NewTime(time.Unix(1_700_000_000+int64(s), 0)) }
	pod := func(name string, created int, restarts int32, terminated bool) corev1.Pod {
		cs := corev1.ContainerStatus{Name: "migrate", RestartCount: restarts}
		if terminated {
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1}
		}
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: at(created)},
			Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "migrate"}, {Name: "sidecar"}}},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{cs}}}
	}
	for _, tc := range []struct {
		name string
		pods []corev1.Pod
		want []LogTarget
	}{
		{"no pods", nil, nil},
		{"the newest pod's first container", []corev1.Pod{pod("m-1", 0, 0, true), pod("m-2", 10, 0, true)}, []LogTarget{{Pod: "m-2", Container: "migrate"}}},
		{"a restarted container waiting to run again: its previous run", []corev1.Pod{pod("m-1", 0, 2, false)}, []LogTarget{{Pod: "m-1", Container: "migrate", Previous: true}}},
		{"a restarted container that ended: its last run", []corev1.Pod{pod("m-1", 0, 2, true)}, []LogTarget{{Pod: "m-1", Container: "migrate"}}},
	} {
		assert.Equal(t, tc.want, lastPodLog(tc.pods), tc.name)
	}
}

func TestJobRunsSame(t *testing.T) {
	t.Parallel()
	job := func(image string, command ...string) *batchv1.Job {
		return &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, ObjectMeta: metav1.ObjectMeta{Name: "migrate"},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "migrate", Image: image, Command: command}}}}}}
	}
	manifest := func(j *batchv1.Job) *unstructured.Unstructured {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(j)
		assert.NoError(t, err)
		return &unstructured.Unstructured{Object: m}
	}
	live := job("app:v1", "migrate", "up")
	assert.True(t, JobRunsSame(live, manifest(job("app:v1", "migrate", "up"))), "same image and command")
	assert.False(t, JobRunsSame(live, manifest(job("app:v2", "migrate", "up"))), "new image")
	assert.False(t, JobRunsSame(live, manifest(job("app:v1", "migrate", "down"))), "new command")
}

// TestWorkloadPermissions: each workload kind is watched and may be
// deleted by an undo; a failed Job's log is read; a StatefulSet's broken
// pods are deleted. A rolling deploy of one Deployment asks for no delete.
func TestWorkloadPermissions(t *testing.T) {
	t.Parallel()
	dep := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	for _, tc := range []struct {
		name  string
		kinds []schema.GroupVersionKind
		want  []Permission
		not   []Permission
	}{
		{"one deployment", []schema.GroupVersionKind{dep}, nil,
			[]Permission{{Group: "apps", Resource: "deployments", Verb: "delete", Namespace: "shop"}, {Resource: "pods/log", Verb: "get", Namespace: "shop"}}},
		{"api and worker", []schema.GroupVersionKind{dep, dep},
			[]Permission{{Group: "apps", Resource: "deployments", Verb: "delete", Namespace: "shop"}}, nil},
		{"statefulset", []schema.GroupVersionKind{{Group: "apps", Version: "v1", Kind: "StatefulSet"}},
			[]Permission{
				{Group: "apps", Resource: "statefulsets", Verb: "watch", Namespace: "shop"},
				{Group: "apps", Resource: "statefulsets", Verb: "delete", Namespace: "shop"},
				{Resource: "pods", Verb: "delete", Namespace: "shop"},
			}, nil},
		{"job", []schema.GroupVersionKind{{Group: "batch", Version: "v1", Kind: "Job"}},
			[]Permission{
				{Group: "batch", Resource: "jobs", Verb: "list", Namespace: "shop"},
				{Group: "batch", Resource: "jobs", Verb: "delete", Namespace: "shop"},
				{Resource: "pods/log", Verb: "get", Namespace: "shop"},
			}, nil},
		{"cronjob and daemonset", []schema.GroupVersionKind{{Group: "batch", Version: "v1", Kind: "CronJob"}, {Group: "apps", Version: "v1", Kind: "DaemonSet"}},
			[]Permission{
				{Group: "batch", Resource: "cronjobs", Verb: "delete", Namespace: "shop"},
				{Group: "apps", Resource: "daemonsets", Verb: "watch", Namespace: "shop"},
			}, nil},
	} {
		got := RequiredPermissions(Plan{Strategy: "rolling", Namespace: "shop", ManifestKinds: tc.kinds})
		for _, p := range tc.want {
			assert.Contains(t, got, p, tc.name)
		}
		for _, p := range tc.not {
			assert.NotContains(t, got, p, tc.name)
		}
	}
}

package kube

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func waitingPod(name, reason, message string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.PodStatus{
			Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "sidecar", Image: "envoy:1.30", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
				{Name: "app", Image: "ghcr.io/acme/payment-api:v2", State: corev1.ContainerState{
					Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message},
				}},
			},
		},
	}
}

func TestPodFailure(t *testing.T) {
	t.Parallel()
	crashing := waitingPod("payment-api-7d9f-abcde", "CrashLoopBackOff", "back-off 5m0s restarting failed container=app")
	crashing.Status.ContainerStatuses[1].RestartCount = 6
	crashing.Status.ContainerStatuses[1].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{
		ExitCode: 2, Reason: "Error", Message: "panic: missing DATABASE_URL\n\ngoroutine 1 [running]:",
	}

	oom := waitingPod("payment-api-7d9f-oom", "CrashLoopBackOff", "back-off 10s restarting failed container=app")
	oom.Status.ContainerStatuses[1].RestartCount = 1
	oom.Status.ContainerStatuses[1].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}

	initCrash := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "payment-api-7d9f-init"},
		Status: corev1.PodStatus{
			InitContainerStatuses: []corev1.ContainerStatus{{
				Name: "migrate", Image: "ghcr.io/acme/migrate:v2", RestartCount: 3,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}},
			}},
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}},
			}},
		},
	}

	unschedulable := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "payment-api-7d9f-pending"},
		Status: corev1.PodStatus{
			Phase: corev1.PodPending,
			Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
				Message: "0/3 nodes are available: 3 Insufficient cpu.",
			}},
		},
	}

	terminating := waitingPod("payment-api-old", "CrashLoopBackOff", "")
	now := metav1.Now()
	terminating.DeletionTimestamp = &now

	tests := []struct {
		name    string
		pod     *corev1.Pod
		want    *Failure
		summary string
	}{
		{
			name: "image pull back-off",
			pod:  waitingPod("payment-api-7d9f-abcde", "ImagePullBackOff", `Back-off pulling image "ghcr.io/acme/payment-api:v2"`),
			want: &Failure{Kind: FailureImagePull, Pod: "payment-api-7d9f-abcde", Container: "app", Image: "ghcr.io/acme/payment-api:v2",
				Reason: "ImagePullBackOff", Message: `Back-off pulling image "ghcr.io/acme/payment-api:v2"`},
			summary: `pod payment-api-7d9f-abcde: container "app" cannot pull image "ghcr.io/acme/payment-api:v2" (ImagePullBackOff: Back-off pulling image "ghcr.io/acme/payment-api:v2")`,
		},
		{
			name: "err image pull",
			pod:  waitingPod("p", "ErrImagePull", "manifest unknown"),
			want: &Failure{Kind: FailureImagePull, Pod: "p", Container: "app", Image: "ghcr.io/acme/payment-api:v2",
				Reason: "ErrImagePull", Message: "manifest unknown"},
			summary: `pod p: container "app" cannot pull image "ghcr.io/acme/payment-api:v2" (ErrImagePull: manifest unknown)`,
		},
		{
			name: "invalid image name",
			pod:  waitingPod("p", "InvalidImageName", `Failed to apply default image tag "Bad": invalid reference format`),
			want: &Failure{Kind: FailureImagePull, Pod: "p", Container: "app", Image: "ghcr.io/acme/payment-api:v2",
				Reason: "InvalidImageName", Message: `Failed to apply default image tag "Bad": invalid reference format`},
			summary: `pod p: container "app" cannot pull image "ghcr.io/acme/payment-api:v2" (InvalidImageName: Failed to apply default image tag "Bad": invalid reference format)`,
		},
		{
			name: "crash loop with termination message",
			pod:  crashing,
			want: &Failure{Kind: FailureCrashLoop, Pod: "payment-api-7d9f-abcde", Container: "app", Image: "ghcr.io/acme/payment-api:v2",
				Reason: "CrashLoopBackOff", Message: "panic: missing DATABASE_URL\n\ngoroutine 1 [running]:",
				RestartCount: 6, ExitCode: 2, TerminationReason: "Error"},
			summary: `pod payment-api-7d9f-abcde: container "app" keeps crashing (restarted 6 times; last exit code 2 Error: panic: missing DATABASE_URL goroutine 1 [running]:)`,
		},
		{
			name: "crash loop killed for memory keeps the kubelet message",
			pod:  oom,
			want: &Failure{Kind: FailureCrashLoop, Pod: "payment-api-7d9f-oom", Container: "app", Image: "ghcr.io/acme/payment-api:v2",
				Reason: "CrashLoopBackOff", Message: "back-off 10s restarting failed container=app",
				RestartCount: 1, ExitCode: 137, TerminationReason: "OOMKilled"},
			summary: `pod payment-api-7d9f-oom: container "app" keeps crashing (restarted once; last exit code 137 OOMKilled: back-off 10s restarting failed container=app)`,
		},
		{
			name: "init container crash loop",
			pod:  initCrash,
			want: &Failure{Kind: FailureCrashLoop, Pod: "payment-api-7d9f-init", Container: "migrate", InitContainer: true, Image: "ghcr.io/acme/migrate:v2",
				Reason: "CrashLoopBackOff", RestartCount: 3, ExitCode: 1, TerminationReason: "Error"},
			summary: `pod payment-api-7d9f-init: init container "migrate" keeps crashing (restarted 3 times; last exit code 1 Error)`,
		},
		{
			name: "missing secret",
			pod:  waitingPod("p", "CreateContainerConfigError", `secret "db-credentials" not found`),
			want: &Failure{Kind: FailureContainerConfig, Pod: "p", Container: "app", Image: "ghcr.io/acme/payment-api:v2",
				Reason: "CreateContainerConfigError", Message: `secret "db-credentials" not found`},
			summary: `pod p: container "app" cannot be configured (CreateContainerConfigError: secret "db-credentials" not found)`,
		},
		{
			name: "runtime refuses to start",
			pod:  waitingPod("p", "RunContainerError", "exec: not found"),
			want: &Failure{Kind: FailureContainerCreate, Pod: "p", Container: "app", Image: "ghcr.io/acme/payment-api:v2",
				Reason: "RunContainerError", Message: "exec: not found"},
			summary: `pod p: container "app" cannot be started (RunContainerError: exec: not found)`,
		},
		{
			name: "unschedulable",
			pod:  unschedulable,
			want: &Failure{Kind: FailureUnschedulable, Pod: "payment-api-7d9f-pending",
				Reason: "Unschedulable", Message: "0/3 nodes are available: 3 Insufficient cpu."},
			summary: `pod payment-api-7d9f-pending cannot be scheduled (Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.)`,
		},
		{name: "still creating", pod: waitingPod("p", "ContainerCreating", "")},
		{name: "pulling is not yet a failure", pod: waitingPod("p", "PodInitializing", "")},
		{name: "terminating pod is ignored", pod: terminating},
		{name: "nil pod", pod: nil},
		{
			name: "running",
			pod: &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
				Name: "app", Ready: true, RestartCount: 2, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := PodFailure(tt.pod)
			assert.Equal(t, tt.want, got)
			if tt.want != nil {
				assert.Equal(t, tt.summary, got.Summary())
				assert.NotContains(t, got.Summary(), "\n")
				assert.Contains(t, got.Error(), tt.want.Reason)
			}
		})
	}
}

func TestFailureSummaryShortensLongMessages(t *testing.T) {
	t.Parallel()
	f := Failure{Kind: FailureContainerConfig, Pod: "p", Container: "app", Reason: "CreateContainerConfigError", Message: strings.Repeat("x", 500)}
	s := f.Summary()
	assert.Less(t, len([]rune(s)), 300)
	assert.True(t, strings.HasSuffix(s, "…)"))
	assert.Contains(t, f.Error(), strings.Repeat("x", 500), "Error keeps the whole message")
}

func TestFailureError(t *testing.T) {
	t.Parallel()
	f := Failure{Kind: FailureCrashLoop, Pod: "p", Container: "app", Reason: "CrashLoopBackOff", RestartCount: 4, ExitCode: 1, TerminationReason: "Error", Message: "boom"}
	assert.Equal(t, `pod "p" container "app": CrashLoopBackOff (restarted 4 times, last exit code 1, Error): boom`, f.Error())
	u := Failure{Kind: FailureUnschedulable, Pod: "p", Reason: "Unschedulable", Message: "no nodes"}
	assert.Equal(t, `pod "p": Unschedulable: no nodes`, u.Error())
}

func TestPodFailures(t *testing.T) {
	t.Parallel()
	pods := []corev1.Pod{
		*waitingPod("a", "ImagePullBackOff", ""),
		*waitingPod("b", "ContainerCreating", ""),
		*waitingPod("c", "CrashLoopBackOff", ""),
	}
	got := PodFailures(pods)
	require.Len(t, got, 2)
	assert.Equal(t, "a", got[0].Pod)
	assert.Equal(t, "c", got[1].Pod)
	assert.Empty(t, PodFailures(nil))
}

func TestRolloutFailureError(t *testing.T) {
	t.Parallel()
	pull := Failure{Kind: FailureImagePull, Pod: "a", Container: "app", Image: "app:v2", Reason: "ErrImagePull", Message: "not found"}
	tests := []struct {
		name    string
		failure RolloutFailure
		want    string
	}{
		{
			name:    "deadline without pods",
			failure: RolloutFailure{Deployment: "api", Reason: DeadlineExceeded},
			want:    `deployment "api" rollout failed: exceeded its progress deadline`,
		},
		{
			name:    "pods failing",
			failure: RolloutFailure{Deployment: "api", Reason: PodsFailing, Pods: []Failure{pull}},
			want:    `deployment "api" rollout failed: pods are failing: pod a: container "app" cannot pull image "app:v2" (ErrImagePull: not found)`,
		},
		{
			name:    "several pods and a multi-line message",
			failure: RolloutFailure{Deployment: "api", Reason: DeadlineExceeded, Message: "timed\nout", Pods: []Failure{pull, pull, pull}},
			want:    `deployment "api" rollout failed: exceeded its progress deadline (timed out): pod a: container "app" cannot pull image "app:v2" (ErrImagePull: not found) (and 2 more failing pods)`,
		},
		{
			name:    "one more pod",
			failure: RolloutFailure{Deployment: "api", Reason: "Cancelled", Pods: []Failure{pull, pull}},
			want:    `deployment "api" rollout failed: Cancelled: pod a: container "app" cannot pull image "app:v2" (ErrImagePull: not found) (and 1 more failing pod)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.failure.Error())
		})
	}
}

func TestLatestEvents(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(base.Add(d)) }
	events := []corev1.Event{
		{
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "api-1"}, Type: "Warning", Reason: "BackOff",
			Message: "Back-off restarting failed container\n", Count: 5, LastTimestamp: at(3 * time.Minute), FirstTimestamp: at(0),
		},
		{
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Name: "api"}, Type: "Normal", Reason: "ScalingReplicaSet",
			Message: "Scaled up replica set api-2 to 1", LastTimestamp: at(time.Minute),
		},
		{
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "api-2"}, Type: "Warning", Reason: "Failed",
			Message: "Error: ErrImagePull", EventTime: metav1.NewMicroTime(base.Add(2 * time.Minute)),
		},
		{
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "api-3"}, Type: "Warning", Reason: "Unhealthy",
			Message: "Readiness probe failed", EventTime: metav1.NewMicroTime(base),
			Series: &corev1.EventSeries{Count: 9, LastObservedTime: metav1.NewMicroTime(base.Add(4 * time.Minute))},
		},
		{
			ObjectMeta:     metav1.ObjectMeta{CreationTimestamp: at(30 * time.Second)},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "api-4"}, Type: "Normal", Reason: "Scheduled",
		},
	}

	got := LatestEvents(events, 3)
	assert.Equal(t, []EventLine{
		{Time: base.Add(4 * time.Minute), Object: "Pod/api-3", Type: "Warning", Reason: "Unhealthy", Message: "Readiness probe failed", Count: 9},
		{Time: base.Add(3 * time.Minute), Object: "Pod/api-1", Type: "Warning", Reason: "BackOff", Message: "Back-off restarting failed container", Count: 5},
		{Time: base.Add(2 * time.Minute), Object: "Pod/api-2", Type: "Warning", Reason: "Failed", Message: "Error: ErrImagePull", Count: 1},
	}, got)

	all := LatestEvents(events, 0)
	require.Len(t, all, 5)
	assert.Equal(t, "Pod/api-4", all[4].Object)
	assert.Equal(t, base.Add(30*time.Second), all[4].Time)

	assert.Len(t, LatestEvents(events, 99), 5)
	assert.Empty(t, LatestEvents(nil, 3))
}

func TestLatestEventsKeepsOrderOfTies(t *testing.T) {
	t.Parallel()
	ts := metav1.NewTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	events := []corev1.Event{
		{InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "a"}, LastTimestamp: ts},
		{InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "b"}, LastTimestamp: ts},
		{InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "c"}, LastTimestamp: ts},
	}
	got := LatestEvents(events, 0)
	assert.Equal(t, []string{"Pod/a", "Pod/b", "Pod/c"}, []string{got[0].Object, got[1].Object, got[2].Object})
}
